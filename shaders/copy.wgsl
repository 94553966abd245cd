// Bandwidth rooflines the benchmarks compare matmul kernels with: `main` is a plain vec4 copy;
// `read_stream` only reads (each invocation sums its grid-stride vec4s and writes one vec4), to
// tell how far the copy, which also writes, is from what reading alone costs.
override WG: u32 = 64u;

@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let stride = groups.x * WG;
  for (var i = gid.x; i < arrayLength(&src); i += stride) {
    dst[i] = src[i];
  }
}

@compute @workgroup_size(WG)
fn read_stream(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let stride = groups.x * WG;
  var acc = vec4<f32>(0.0);
  for (var i = gid.x; i < arrayLength(&src); i += stride) {
    acc += src[i];
  }
  dst[gid.x] = acc;
}
