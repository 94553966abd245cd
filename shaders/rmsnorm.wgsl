// RMSNorm, one invocation per token row. The sum runs serially over the row, in the order
// llama2.c uses, and the row is short (the model width): a parallel reduction would cost more in
// workgroup barriers than it saves on SwiftShader.
override DIM: u32;
override EPS: f32 = 1e-5;


@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x;
  if (t >= step.n_tokens) { return; }
  let base = t * DIM;
  var ss = 0.0;
  for (var j = 0u; j < DIM; j++) {
    ss += x[base + j] * x[base + j];
  }
  let scale = 1.0 / sqrt(ss / f32(DIM) + EPS);
  for (var j = 0u; j < DIM; j++) {
    out[base + j] = weight[j] * (scale * x[base + j]);
  }
}
