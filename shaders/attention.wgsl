// Causal multi-head attention over the KV cache, one invocation per (head, token): the token
// attends to positions 0..pos of its own KV row. Two passes over the keys (max, then exp-weighted
// sum of values) instead of a scores array, so any context length fits in registers.
//
// Attention statistics (entropix's, algorithms.md §4) for one layer's stats rows: `main_stats` is
// `main` (the same output, bit for bit) that also, for the tokens of the step's stats rows, keeps
// per query head (max score m, Σe^(s−m), Σe^(s−m)(s−m), Σ|s|) and the scaled scores s of
// positions 0..pos; `agree` (one workgroup per stats row) then forms head agreement, which needs
// every head's softmax at each position, and writes the row's record (AttentionRecord below).
// Only the chosen layer runs them, and only stats rows pay for the scores' stores.
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
// main_stats and agree only: [stats row][N_HEADS] of (m, Σe^(s−m), Σe^(s−m)(s−m), Σ|s|) …
@group(0) @binding(6) var<storage, read_write> head_stats: array<vec4<f32>>;
// … [stats row][N_HEADS][SEQ_LEN] scaled scores (positions 0..pos written) …
@group(0) @binding(7) var<storage, read_write> scores: array<f32>;
// … and [stats row][4 + N_HEADS] records: (mean entropy, variance of the entropies, agreement,
// interaction, then each head's entropy), entropies in bits, variance over heads with divisor N_HEADS.
@group(0) @binding(8) var<storage, read_write> records: array<f32>;

@compute @workgroup_size(32)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let h = gid.x;
  let t = gid.y;
  if (h >= N_HEADS || t >= step.n_tokens) { return; }
  let slot = tokens[t];
  let h4 = HEAD_DIM / 4u;
  var q: array<vec4<f32>, MAX_HEAD4>;
  load_q(t, h, &q);
  let cache_base = cache_base_of(slot, h);
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
  store(t, h, &acc, sum);
}

// Query head h of token row t, from the rotated qkv row.
fn load_q(t: u32, h: u32, q: ptr<function, array<vec4<f32>, MAX_HEAD4>>) {
  let q_base = t * (Q_DIM + 2u * KV_DIM) + h * HEAD_DIM;
  for (var d = 0u; d < HEAD_DIM / 4u; d++) {
    let j = q_base + 4u * d;
    (*q)[d] = vec4<f32>(qkv[j], qkv[j + 1u], qkv[j + 2u], qkv[j + 3u]);
  }
}

// First vec4 of query head h's KV head in the token's row of the cache.
fn cache_base_of(slot: TokenSlot, h: u32) -> u32 {
  let kv_head = h / (N_HEADS / N_KV_HEADS);
  return (slot.row * N_KV_HEADS + kv_head) * SEQ_LEN * (HEAD_DIM / 4u);
}

// out[t][head h] = acc / sum.
fn store(t: u32, h: u32, acc: ptr<function, array<vec4<f32>, MAX_HEAD4>>, sum: f32) {
  let o = t * Q_DIM + h * HEAD_DIM;
  for (var d = 0u; d < HEAD_DIM / 4u; d++) {
    let a = (*acc)[d] / sum;
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

@compute @workgroup_size(32)
fn main_stats(@builtin(global_invocation_id) gid: vec3<u32>) {
  let h = gid.x;
  let t = gid.y;
  if (h >= N_HEADS || t >= step.n_tokens) { return; }
  let slot = tokens[t];
  let h4 = HEAD_DIM / 4u;
  var q: array<vec4<f32>, MAX_HEAD4>;
  load_q(t, h, &q);
  let cache_base = cache_base_of(slot, h);
  let scale = 1.0 / sqrt(f32(HEAD_DIM));
  let r = t - step.stats_row_start;
  let keep = t >= step.stats_row_start && r < step.stats_rows;
  let score_base = (r * N_HEADS + h) * SEQ_LEN;

  var max_score = -3.0e38;
  var abs_sum = 0.0;
  for (var p = 0u; p <= slot.pos; p++) {
    let s = score(&q, cache_base + p * h4, h4) * scale;
    max_score = max(max_score, s);
    if (keep) {
      abs_sum += abs(s);
      scores[score_base + p] = s;
    }
  }
  var acc: array<vec4<f32>, MAX_HEAD4>;
  var sum = 0.0;
  var moment = 0.0;
  for (var p = 0u; p <= slot.pos; p++) {
    let x = score(&q, cache_base + p * h4, h4) * scale - max_score;
    let e = exp(x);
    sum += e;
    moment += e * x;
    for (var d = 0u; d < h4; d++) {
      acc[d] += e * v_cache[cache_base + p * h4 + d];
    }
  }
  if (keep) { head_stats[r * N_HEADS + h] = vec4<f32>(max_score, sum, moment, abs_sum); }
  store(t, h, &acc, sum);
}

const AW: u32 = 64u;
var<workgroup> wg_dev: array<f32, AW>;

// Stats row r = workgroup: agreement = mean over heads h and positions p ≤ pos of |P_h(p) − P̄(p)|
// with P̄ the mean over heads; interaction = mean of |s|; entropies H_h = ln Z − A/Z (algorithms.md
// §2), in bits.
@compute @workgroup_size(AW)
fn agree(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let r = wid.x;
  if (r >= step.stats_rows) { return; }
  let positions = tokens[step.stats_row_start + r].pos + 1u;
  let hs = r * N_HEADS;
  var dev = 0.0;
  for (var p = lid.x; p < positions; p += AW) {
    var mean = 0.0;
    for (var h = 0u; h < N_HEADS; h++) {
      let a = head_stats[hs + h];
      mean += exp(scores[(hs + h) * SEQ_LEN + p] - a.x) / a.y;
    }
    mean /= f32(N_HEADS);
    for (var h = 0u; h < N_HEADS; h++) {
      let a = head_stats[hs + h];
      dev += abs(exp(scores[(hs + h) * SEQ_LEN + p] - a.x) / a.y - mean);
    }
  }
  wg_dev[lid.x] = dev;
  workgroupBarrier();
  if (lid.x != 0u) { return; }
  for (var l = 1u; l < AW; l++) { dev += wg_dev[l]; }
  let o = r * (4u + N_HEADS);
  let inv_ln2 = 1.4426950408889634;
  var ent = 0.0;
  var abs_sum = 0.0;
  for (var h = 0u; h < N_HEADS; h++) {
    let a = head_stats[hs + h];
    let e = (log(a.y) - a.z / a.y) * inv_ln2;
    records[o + 4u + h] = e;
    ent += e;
    abs_sum += a.w;
  }
  ent /= f32(N_HEADS);
  var vent = 0.0;
  for (var h = 0u; h < N_HEADS; h++) {
    let d = records[o + 4u + h] - ent;
    vent += d * d;
  }
  let n = f32(N_HEADS) * f32(positions);
  records[o] = ent;
  records[o + 1u] = vent / f32(N_HEADS);
  records[o + 2u] = dev / n;
  records[o + 3u] = abs_sum / n;
}
