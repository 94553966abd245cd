// Causal multi-head attention over the KV cache, one invocation per (head, token): the token
// attends to positions 0..pos of its own KV row. Two passes over the keys (max, then exp-weighted
// sum of values) instead of a scores array, so any context length fits in registers.
override Q_DIM: u32;
override KV_DIM: u32;
override HEAD_DIM: u32;
override N_HEADS: u32;
override N_KV_HEADS: u32;
override SEQ_LEN: u32;

const MAX_HEAD4: u32 = 64u;  // head dim up to 256


@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> tokens: array<TokenSlot>;
@group(0) @binding(2) var<storage, read> qkv: array<f32>;
@group(0) @binding(3) var<storage, read> k_cache: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> v_cache: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(32)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let h = gid.x;
  let t = gid.y;
  if (h >= N_HEADS || t >= step.n_tokens) { return; }
  let slot = tokens[t];
  let h4 = HEAD_DIM / 4u;
  let q_base = t * (Q_DIM + 2u * KV_DIM) + h * HEAD_DIM;
  var q: array<vec4<f32>, MAX_HEAD4>;
  for (var d = 0u; d < h4; d++) {
    let j = q_base + 4u * d;
    q[d] = vec4<f32>(qkv[j], qkv[j + 1u], qkv[j + 2u], qkv[j + 3u]);
  }
  let kv_head = h / (N_HEADS / N_KV_HEADS);
  let cache_base = (slot.row * N_KV_HEADS + kv_head) * SEQ_LEN * h4;
  let scale = 1.0 / sqrt(f32(HEAD_DIM));

  var max_score = -3.0e38;
  for (var p = 0u; p <= slot.pos; p++) {
    max_score = max(max_score, score(&q, cache_base + p * h4, h4) * scale);
  }
  var acc: array<vec4<f32>, MAX_HEAD4>;
  var sum = 0.0;
  for (var p = 0u; p <= slot.pos; p++) {
    let e = exp(score(&q, cache_base + p * h4, h4) * scale - max_score);
    sum += e;
    for (var d = 0u; d < h4; d++) {
      acc[d] += e * v_cache[cache_base + p * h4 + d];
    }
  }
  let o = t * Q_DIM + h * HEAD_DIM;
  for (var d = 0u; d < h4; d++) {
    let a = acc[d] / sum;
    out[o + 4u * d] = a.x;
    out[o + 4u * d + 1u] = a.y;
    out[o + 4u * d + 2u] = a.z;
    out[o + 4u * d + 3u] = a.w;
  }
}

fn score(q: ptr<function, array<vec4<f32>, MAX_HEAD4>>, k_base: u32, h4: u32) -> f32 {
  var s = 0.0;
  for (var d = 0u; d < h4; d++) {
    s += dot((*q)[d], k_cache[k_base + d]);
  }
  return s;
}
