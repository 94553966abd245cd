// Plain vec4 copy: the memory-bandwidth roofline the benchmarks compare matmul kernels with.
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
