// Rotary position embedding of q and k (in place in the fused qkv rows), then k and v appended to
// the KV cache at each token's (row, pos). One invocation per (pair of features, token).
// cos/sin come from a table computed on the CPU in float32 exactly as llama2.c computes them, so
// positions rotate bit-for-bit like the reference.
override DIM: u32;
override KV_DIM: u32;
override HEAD_SIZE: u32;
override N_KV_HEADS: u32;
override SEQ_LEN: u32;

struct Step { n_tokens: u32, stats_row_start: u32, stats_rows: u32, seed: u32, counter: u32, inv_stats_temp: f32, inv_sample_temp: f32, _pad: u32 }
struct TokenSlot { id: u32, pos: u32, row: u32, _pad: u32 }

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> tokens: array<TokenSlot>;
@group(0) @binding(2) var<storage, read_write> qkv: array<f32>;
@group(0) @binding(3) var<storage, read> rope: array<vec2<f32>>;  // [SEQ_LEN][HEAD_SIZE/2] (cos, sin)
@group(0) @binding(4) var<storage, read_write> k_cache: array<f32>;
@group(0) @binding(5) var<storage, read_write> v_cache: array<f32>;

fn rotate(v: vec2<f32>, cs: vec2<f32>) -> vec2<f32> {
  return vec2<f32>(v.x * cs.x - v.y * cs.y, v.x * cs.y + v.y * cs.x);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x * 2u;
  let t = gid.y;
  if (i >= DIM || t >= step.n_tokens) { return; }
  let slot = tokens[t];
  let stride = DIM + 2u * KV_DIM;
  let hd = i % HEAD_SIZE;
  let cs = rope[slot.pos * (HEAD_SIZE / 2u) + hd / 2u];
  let q = t * stride + i;
  let q_rot = rotate(vec2<f32>(qkv[q], qkv[q + 1u]), cs);
  qkv[q] = q_rot.x;
  qkv[q + 1u] = q_rot.y;
  if (i < KV_DIM) {
    let k = t * stride + DIM + i;
    let v = k + KV_DIM;
    let k_rot = rotate(vec2<f32>(qkv[k], qkv[k + 1u]), cs);
    let head = i / HEAD_SIZE;
    let c = ((slot.row * N_KV_HEADS + head) * SEQ_LEN + slot.pos) * HEAD_SIZE + hd;
    k_cache[c] = k_rot.x;
    k_cache[c + 1u] = k_rot.y;
    v_cache[c] = qkv[v];
    v_cache[c + 1u] = qkv[v + 1u];
  }
}
