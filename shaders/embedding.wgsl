// Embedding gather: x[t] = table[token_t], one invocation per (feature, token).
override DIM: u32;


@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> tokens: array<TokenSlot>;
@group(0) @binding(2) var<storage, read> table: array<f32>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  let t = gid.y;
  if (i >= DIM || t >= step.n_tokens) { return; }
  x[t * DIM + i] = table[tokens[t].id * DIM + i];
}
