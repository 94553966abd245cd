// SwiGLU: out = silu(a) * b, where each token row of `hb` holds [a (HIDDEN) | b (HIDDEN)], the
// outputs of the fused w1|w3 matmul.
override HIDDEN: u32;


@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> hb: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  let t = gid.y;
  if (i >= HIDDEN || t >= step.n_tokens) { return; }
  let a = hb[t * 2u * HIDDEN + i];
  let b = hb[t * 2u * HIDDEN + HIDDEN + i];
  out[t * HIDDEN + i] = a * (1.0 / (1.0 + exp(-a))) * b;
}
