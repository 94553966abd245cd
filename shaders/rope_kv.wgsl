// q/k/v bias, per-head q/k RMSNorm (Qwen3), rotary position embedding of q and k (in place in the
// fused qkv rows), then k and v appended to the KV cache at each token's (row, pos).
// One invocation per (head, token): heads 0..N_HEADS−1 are query heads, the next N_KV_HEADS are
// key/value heads, so each invocation owns its head's features and the in-place update has no race.
// RoPE pairs features (2i, 2i+1) (ROPE_HALF false: llama2.c, GGUF llama) or (i, i + HEAD_DIM/2)
// (HF, GGUF qwen); cos/sin come from a table made on the CPU ([SEQ_LEN][HEAD_DIM/2]), so llama2.c
// positions rotate bit for bit like the reference. Models without biases bind zeros, which add
// exactly.
override Q_DIM: u32;
override KV_DIM: u32;
override HEAD_DIM: u32;
override N_HEADS: u32;
override N_KV_HEADS: u32;
override SEQ_LEN: u32;       // positions per KV row
override ROPE_HALF: bool = false;
override QK_NORM: bool = false;
override EPS: f32 = 1e-6;

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> tokens: array<TokenSlot>;
@group(0) @binding(2) var<storage, read_write> qkv: array<f32>;
@group(0) @binding(3) var<storage, read> rope: array<vec2<f32>>;  // [SEQ_LEN][HEAD_DIM/2] (cos, sin)
@group(0) @binding(4) var<storage, read_write> k_cache: array<f32>;
@group(0) @binding(5) var<storage, read_write> v_cache: array<f32>;
@group(0) @binding(6) var<storage, read> bias: array<f32>;     // [Q_DIM + 2 KV_DIM]
@group(0) @binding(7) var<storage, read> qk_norm: array<f32>;  // [2][HEAD_DIM]: q's weights, then k's

fn rotate(v: vec2<f32>, cs: vec2<f32>) -> vec2<f32> {
  return vec2<f32>(v.x * cs.x - v.y * cs.y, v.x * cs.y + v.y * cs.x);
}

// Index within the head of pair j's two features.
fn pair(j: u32) -> vec2<u32> {
  if (ROPE_HALF) { return vec2<u32>(j, j + HEAD_DIM / 2u); }
  return vec2<u32>(2u * j, 2u * j + 1u);
}

@compute @workgroup_size(32)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let h = gid.x;
  let t = gid.y;
  if (h >= N_HEADS + N_KV_HEADS || t >= step.n_tokens) { return; }
  let slot = tokens[t];
  let row = t * (Q_DIM + 2u * KV_DIM);
  let is_q = h < N_HEADS;
  // Feature offset of this head within the qkv row: q heads, then k heads; v follows k by KV_DIM.
  let off = select(Q_DIM + (h - N_HEADS) * HEAD_DIM, h * HEAD_DIM, is_q);
  let norm_base = select(HEAD_DIM, 0u, is_q);

  var scale = 1.0;
  if (QK_NORM) {
    var ss = 0.0;
    for (var d = 0u; d < HEAD_DIM; d++) {
      let x = qkv[row + off + d] + bias[off + d];
      ss += x * x;
    }
    scale = 1.0 / sqrt(ss / f32(HEAD_DIM) + EPS);
  }
  let cache = ((slot.row * N_KV_HEADS + (h - select(N_HEADS, 0u, is_q))) * SEQ_LEN + slot.pos) * HEAD_DIM;
  for (var j = 0u; j < HEAD_DIM / 2u; j++) {
    let p = pair(j);
    var v = vec2<f32>(qkv[row + off + p.x] + bias[off + p.x], qkv[row + off + p.y] + bias[off + p.y]);
    if (QK_NORM) {
      v = vec2<f32>(qk_norm[norm_base + p.x] * (scale * v.x), qk_norm[norm_base + p.y] * (scale * v.y));
    }
    let r = rotate(v, rope[slot.pos * (HEAD_DIM / 2u) + j]);
    if (is_q) {
      qkv[row + off + p.x] = r.x;
      qkv[row + off + p.y] = r.y;
    } else {
      k_cache[cache + p.x] = r.x;
      k_cache[cache + p.y] = r.y;
    }
  }
  if (!is_q) {
    for (var d = 0u; d < HEAD_DIM; d++) {
      v_cache[cache + d] = qkv[row + off + KV_DIM + d] + bias[off + KV_DIM + d];
    }
  }
}
