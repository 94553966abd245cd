// The fused log-sum-exp cross-entropy of SRGen (algorithms.md §4), forward and backward, without ever
// storing the T×V logits. With x_t = h_t + δ (h_t the final-normed hidden state of position t,
// δ one vector added at the LM-head input), z_t = W·x_t, targets y_t = x_{t+1} for t < T−1:
//
//   CE   = 1/(T−1) · Σ_{t<T−1} (LSE(z_t) − z_t[y_t])          (CE = 0 when T = 1: no targets)
//   Ent  = H(q),  q = softmax(z_{T−1}/T_s)                      (the last position only)
//   loss = (1−λ)·CE + λ·Ent
//   dloss/dδ = Wᵀc,  c = (1−λ)/(T−1) · Σ_{t<T−1} (p_t − onehot(y_t)) + λ·g,  p_t = softmax(z_t)
//   g_v = ∂H/∂z_v = −(q_v/T_s)·(ln q_v + H)
//     (H = −Σ q ln q; ∂q_i/∂s_j = q_i(δ_ij − q_j) with s = z/T_s gives
//      ∂H/∂s_j = −q_j(ln q_j + 1) + q_j·Σ_i q_i(ln q_i + 1) = −q_j(ln q_j + H); then ∂s_j/∂z_j = 1/T_s.)
//
// Entry points (one launch each; src/gpu/kernels.ts `xentForward`, `xentBackward`):
//   forward:  each invocation owns vocabulary column pairs (vec4 columns c and c + HALF, as the
//             LM head) and, for each pair, runs over ALL positions in blocks of eight: 8 × 8 logits
//             in registers per block, folded into that position's running (max m, Σe^(z−m)) and the
//             target's logit; the last position is folded a second time at 1/T_s with A = Σe^(s−m)(s−m)
//             for its entropy (algorithms.md §2). Partials: one per (position, invocation).
//   merge:    one workgroup per position row merges the partials: LSE, target logit, nll; and for the
//             extra row T the last position's LSE and entropy at T_s.
//   loss:     one invocation: CE (mean nll) and the loss.
//   backward: the same ownership of columns; for each pair it recomputes the logits of every position
//             (same code, so the same float32 values as the forward), forms the 8 coefficients c_v in
//             registers from the forward's LSEs, then adds c_v·W[v][:] into its own dδ partial.
//   reduce:   one workgroup per vec4 of δ sums the partials: dδ.
//
// Why this split on SwiftShader (2 CPU cores, storage loads are the cost, barriers are costly):
// an invocation keeps its columns and walks the positions, so every weight vec4 it loads serves
// eight positions (17 vec4 loads per 256 multiply-adds, against 9 per 32 in the LM head) and a
// column pair's weights (2 × DIM vec4) stay in cache across the position blocks, while the hidden
// states (T×DIM floats) are shared by all. Each pass costs T·V·DIM multiply-adds, and there are two
// (the backward needs every LSE before its first probability); the backward's Wᵀc is only one GEMV's
// worth more. Logits and probabilities live only in registers; the partials are O((T+1)·NINV) and
// O(NINV·DIM) floats. The only barriers are one per workgroup in merge and reduce, which make those
// sums two-level (32 strided partial sums, then 32 in order): shorter chains of float32 roundings
// than one serial pass over NINV partials. Measured (dim 288, vocab 32000, SwiftShader, 2 cores):
// forward + backward ≈ 0.5 LM-head launches per position (T = 256: 133 LM heads in all).
//
// Inputs: targets must be < VOCAB; T ≥ 1 (T = 1: no CE term, loss = λ·Ent).
override DIM: u32;           // hidden features, a multiple of 4
override V4: u32;            // ⌈VOCAB / 4⌉: vec4 columns of wcls
override VOCAB: u32;
override XW: u32 = 64u;      // workgroup size of forward and backward
override XGROUPS: u32 = 16u; // their workgroups
override NINV: u32 = XW * XGROUPS;  // invocations owning columns = partials per position

const MW: u32 = 32u;         // workgroup size of merge and reduce
const NEG_INF: f32 = -3.0e38;

// positions = T ≥ 1; lambda = λ; inv_temp = 1/T_s (the entropy term's temperature).
struct Params { positions: u32, lambda: f32, inv_temp: f32, _pad: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> hidden: array<vec4<f32>>;   // [T][DIM/4]
@group(0) @binding(2) var<storage, read> delta: array<vec4<f32>>;    // [DIM/4]
@group(0) @binding(3) var<storage, read> wcls: array<vec4<f32>>;     // W transposed: [DIM][V4]
@group(0) @binding(4) var<storage, read> targets: array<u32>;        // [T−1]: y_t = x_{t+1}
// forward: [(T+1)][NINV] of (m, Σe^(s−m), Σe^(s−m)(s−m), target logit or NEG_INF);
// backward: [NINV][DIM/4] dδ partials. One buffer serves both (the forward's are merged first).
@group(0) @binding(5) var<storage, read_write> partials: array<vec4<f32>>;
// [T+1] records: [0] = (loss, CE, entropy at T_s, LSE at T_s) of the last position;
// [1 + t] = (LSE_t, target logit, nll = LSE_t − target logit, 0); target and nll are 0 at t = T−1.
@group(0) @binding(6) var<storage, read_write> stats: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> grad: array<vec4<f32>>;  // [DIM/4]: dloss/dδ

fn half() -> u32 { return (V4 + 1u) / 2u; }

// Logits of eight positions t0..t0+7 for vec4 columns c and d (a_i: column c of position t0+i).
struct Block {
  a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>, a4: vec4<f32>, a5: vec4<f32>, a6: vec4<f32>, a7: vec4<f32>,
  b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>, b4: vec4<f32>, b5: vec4<f32>, b6: vec4<f32>, b7: vec4<f32>,
}

// Offset of position t0 + i's hidden row; positions past T re-read row t0 (always valid) and their
// logits are ignored by the caller.
fn row(t0: u32, i: u32) -> u32 { return select(t0, t0 + i, t0 + i < params.positions) * (DIM / 4u); }

// The shared inner loop of forward and backward: each weight vec4 loaded feeds eight positions.
// Written out by hand: with a loop over the four features of a vec4 (x[j]) or a private array
// of accumulators, SwiftShader ran it 2× slower (dynamic indexing goes through memory); eight
// positions ran 1.5× faster than four, twelve or sixteen no faster than eight (register spills).
// Each logit is a serial float32 sum over k of (h + δ)·w, as in the LM head.
fn block_logits(t0: u32, c: u32, d: u32) -> Block {
  let q = DIM / 4u;
  let r0 = t0 * q;
  let r1 = row(t0, 1u); let r2 = row(t0, 2u); let r3 = row(t0, 3u);
  let r4 = row(t0, 4u); let r5 = row(t0, 5u); let r6 = row(t0, 6u); let r7 = row(t0, 7u);
  var a0 = vec4<f32>(0.0); var a1 = vec4<f32>(0.0); var a2 = vec4<f32>(0.0); var a3 = vec4<f32>(0.0);
  var a4 = vec4<f32>(0.0); var a5 = vec4<f32>(0.0); var a6 = vec4<f32>(0.0); var a7 = vec4<f32>(0.0);
  var b0 = vec4<f32>(0.0); var b1 = vec4<f32>(0.0); var b2 = vec4<f32>(0.0); var b3 = vec4<f32>(0.0);
  var b4 = vec4<f32>(0.0); var b5 = vec4<f32>(0.0); var b6 = vec4<f32>(0.0); var b7 = vec4<f32>(0.0);
  for (var k4 = 0u; k4 < q; k4++) {
    let dv = delta[k4];
    let x0 = hidden[r0 + k4] + dv; let x1 = hidden[r1 + k4] + dv;
    let x2 = hidden[r2 + k4] + dv; let x3 = hidden[r3 + k4] + dv;
    let x4 = hidden[r4 + k4] + dv; let x5 = hidden[r5 + k4] + dv;
    let x6 = hidden[r6 + k4] + dv; let x7 = hidden[r7 + k4] + dv;
    let r = 4u * k4 * V4;
    var wa = wcls[r + c];
    var wb = wcls[r + d];
    a0 += x0.x * wa; b0 += x0.x * wb; a1 += x1.x * wa; b1 += x1.x * wb;
    a2 += x2.x * wa; b2 += x2.x * wb; a3 += x3.x * wa; b3 += x3.x * wb;
    a4 += x4.x * wa; b4 += x4.x * wb; a5 += x5.x * wa; b5 += x5.x * wb;
    a6 += x6.x * wa; b6 += x6.x * wb; a7 += x7.x * wa; b7 += x7.x * wb;
    wa = wcls[r + V4 + c];
    wb = wcls[r + V4 + d];
    a0 += x0.y * wa; b0 += x0.y * wb; a1 += x1.y * wa; b1 += x1.y * wb;
    a2 += x2.y * wa; b2 += x2.y * wb; a3 += x3.y * wa; b3 += x3.y * wb;
    a4 += x4.y * wa; b4 += x4.y * wb; a5 += x5.y * wa; b5 += x5.y * wb;
    a6 += x6.y * wa; b6 += x6.y * wb; a7 += x7.y * wa; b7 += x7.y * wb;
    wa = wcls[r + 2u * V4 + c];
    wb = wcls[r + 2u * V4 + d];
    a0 += x0.z * wa; b0 += x0.z * wb; a1 += x1.z * wa; b1 += x1.z * wb;
    a2 += x2.z * wa; b2 += x2.z * wb; a3 += x3.z * wa; b3 += x3.z * wb;
    a4 += x4.z * wa; b4 += x4.z * wb; a5 += x5.z * wa; b5 += x5.z * wb;
    a6 += x6.z * wa; b6 += x6.z * wb; a7 += x7.z * wa; b7 += x7.z * wb;
    wa = wcls[r + 3u * V4 + c];
    wb = wcls[r + 3u * V4 + d];
    a0 += x0.w * wa; b0 += x0.w * wb; a1 += x1.w * wa; b1 += x1.w * wb;
    a2 += x2.w * wa; b2 += x2.w * wb; a3 += x3.w * wa; b3 += x3.w * wb;
    a4 += x4.w * wa; b4 += x4.w * wb; a5 += x5.w * wa; b5 += x5.w * wb;
    a6 += x6.w * wa; b6 += x6.w * wb; a7 += x7.w * wa; b7 += x7.w * wb;
  }
  return Block(a0, a1, a2, a3, a4, a5, a6, a7, b0, b1, b2, b3, b4, b5, b6, b7);
}

// A column pair: vec4 column c, its partner d = c + HALF (clamped in range for the loads; the
// partner does not exist when c + HALF ≥ V4), and which of the 8 lanes are real vocabulary ids.
struct Pair { c: u32, d: u32, va: vec4<bool>, vb: vec4<bool> }

fn pair(c: u32) -> Pair {
  let lanes = vec4<u32>(0u, 1u, 2u, 3u);
  let dd = c + half();
  let va = 4u * c + lanes < vec4<u32>(VOCAB);
  let vb = (4u * dd + lanes < vec4<u32>(VOCAB)) & vec4<bool>(dd < V4);
  return Pair(c, min(dd, V4 - 1u), va, vb);
}

// ---------------------------------------------------------------------------------------------
// Forward

// merge_sums: xent_common.wgsl.

// Folds 8 values (masked lanes NEG_INF; lane 0 of column c is always real, so the max is a real
// value) and a target logit (NEG_INF when the target is not here) into partial `o`.
fn fold8(o: u32, first: bool, sa: vec4<f32>, sb: vec4<f32>, target_logit: f32) {
  let m = max(max(max(sa.x, sa.y), max(sa.z, sa.w)), max(max(sb.x, sb.y), max(sb.z, sb.w)));
  let ea = exp(sa - m);
  let eb = exp(sb - m);
  let z = dot(ea, vec4<f32>(1.0)) + dot(eb, vec4<f32>(1.0));
  let a = dot(ea, sa - m) + dot(eb, sb - m);
  if (first) {
    partials[o] = vec4<f32>(m, z, a, target_logit);
    return;
  }
  let p = partials[o];
  let r = merge_sums(p, m, z, a);
  partials[o] = vec4<f32>(r.xyz, max(p.w, target_logit));
}

fn fold_position(t: u32, i: u32, first: bool, pr: Pair, za: vec4<f32>, zb: vec4<f32>) {
  let n = params.positions;
  let sa = select(vec4<f32>(NEG_INF), za, pr.va);
  let sb = select(vec4<f32>(NEG_INF), zb, pr.vb);
  var target_logit = NEG_INF;
  if (t + 1u < n) {
    let y = targets[t];
    if (y / 4u == pr.c) { target_logit = za[y % 4u]; }
    if (pr.vb.x && y / 4u == pr.c + half()) { target_logit = zb[y % 4u]; }
  }
  fold8(t * NINV + i, first, sa, sb, target_logit);
  if (t + 1u == n) {
    // The last position again at temperature T_s, for the entropy term (row T of the partials).
    let inv = params.inv_temp;
    fold8(n * NINV + i, first, select(vec4<f32>(NEG_INF), za * inv, pr.va),
          select(vec4<f32>(NEG_INF), zb * inv, pr.vb), NEG_INF);
  }
}

@compute @workgroup_size(XW)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  let n = params.positions;
  if (i >= half()) {
    // Owns no columns (small vocabularies): its partials are empty.
    for (var t = 0u; t <= n; t++) { partials[t * NINV + i] = vec4<f32>(NEG_INF, 0.0, 0.0, NEG_INF); }
    return;
  }
  for (var c = i; c < half(); c += NINV) {
    let pr = pair(c);
    let first = c == i;
    for (var t0 = 0u; t0 < n; t0 += 8u) {
      let z = block_logits(t0, pr.c, pr.d);
      fold_position(t0, i, first, pr, z.a0, z.b0);
      if (t0 + 1u < n) { fold_position(t0 + 1u, i, first, pr, z.a1, z.b1); }
      if (t0 + 2u < n) { fold_position(t0 + 2u, i, first, pr, z.a2, z.b2); }
      if (t0 + 3u < n) { fold_position(t0 + 3u, i, first, pr, z.a3, z.b3); }
      if (t0 + 4u < n) { fold_position(t0 + 4u, i, first, pr, z.a4, z.b4); }
      if (t0 + 5u < n) { fold_position(t0 + 5u, i, first, pr, z.a5, z.b5); }
      if (t0 + 6u < n) { fold_position(t0 + 6u, i, first, pr, z.a6, z.b6); }
      if (t0 + 7u < n) { fold_position(t0 + 7u, i, first, pr, z.a7, z.b7); }
    }
  }
}

var<workgroup> wg_sums: array<vec4<f32>, MW>;

// Row r < T: position r; row T: the last position at T_s. Each of MW invocations merges a strided
// subset of the row's NINV partials, then invocation 0 merges the MW results in order.
@compute @workgroup_size(MW)
fn merge(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let r = wid.x;
  let n = params.positions;
  if (r > n) { return; }
  var p = vec4<f32>(NEG_INF, 0.0, 0.0, NEG_INF);
  for (var i = lid.x; i < NINV; i += MW) {
    let q = partials[r * NINV + i];
    p = merge_sums(p, q.x, q.y, q.z);
    p.w = max(p.w, q.w);
  }
  wg_sums[lid.x] = p;
  workgroupBarrier();
  if (lid.x != 0u) { return; }
  for (var l = 1u; l < MW; l++) {
    let q = wg_sums[l];
    p = merge_sums(p, q.x, q.y, q.z);
    p.w = max(p.w, q.w);
  }
  let ln_z = log(p.y);
  let lse = p.x + ln_z;
  if (r == n) {
    stats[0] = vec4<f32>(0.0, 0.0, ln_z - p.z / p.y, lse);  // entropy = ln Z − A/Z; `loss` fills x, y
  } else if (r + 1u < n) {
    stats[1u + r] = vec4<f32>(lse, p.w, lse - p.w, 0.0);
  } else {
    stats[1u + r] = vec4<f32>(lse, 0.0, 0.0, 0.0);  // the last position has no target
  }
}

@compute @workgroup_size(1)
fn loss() {
  let n = params.positions;
  var sum = 0.0;
  for (var t = 0u; t + 1u < n; t++) { sum += stats[1u + t].z; }
  let ce = select(0.0, sum / f32(n - 1u), n > 1u);
  let s = stats[0];
  let lambda = params.lambda;
  stats[0] = vec4<f32>((1.0 - lambda) * ce + lambda * s.z, ce, s.z, s.w);
}

// ---------------------------------------------------------------------------------------------
// Backward

// Adds position t's share of the coefficients of the pair's 8 ids to (ca, cb). Lanes that are not
// vocabulary ids may pick up anything; the caller zeroes them.
fn add_coefficients(t: u32, pr: Pair, za: vec4<f32>, zb: vec4<f32>, ca: ptr<function, vec4<f32>>, cb: ptr<function, vec4<f32>>) {
  let n = params.positions;
  if (t + 1u == n) {
    // λ·g with g = −(q/T_s)(ln q + H), ln q = z/T_s − LSE_Ts (exact form, no log of an underflowed q).
    let inv = params.inv_temp;
    let s = stats[0];
    let la = za * inv - s.w;
    let lb = zb * inv - s.w;
    let k = -params.lambda * inv;
    *ca += k * exp(la) * (la + s.z);
    *cb += k * exp(lb) * (lb + s.z);
    return;
  }
  // (1−λ)/(T−1)·(p_t − onehot(y_t)), p_t = exp(z − LSE_t) with the forward's LSE_t.
  let w = (1.0 - params.lambda) / f32(n - 1u);
  let lse = stats[1u + t].x;
  *ca += w * exp(za - lse);
  *cb += w * exp(zb - lse);
  let y = targets[t];
  if (y / 4u == pr.c) { (*ca)[y % 4u] -= w; }
  if (pr.vb.x && y / 4u == pr.c + half()) { (*cb)[y % 4u] -= w; }
}

@compute @workgroup_size(XW)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  let n = params.positions;
  let q = DIM / 4u;
  if (i >= half()) {
    for (var k4 = 0u; k4 < q; k4++) { partials[i * q + k4] = vec4<f32>(0.0); }
    return;
  }
  for (var c = i; c < half(); c += NINV) {
    let pr = pair(c);
    var ca = vec4<f32>(0.0);
    var cb = vec4<f32>(0.0);
    for (var t0 = 0u; t0 < n; t0 += 8u) {
      let z = block_logits(t0, pr.c, pr.d);
      add_coefficients(t0, pr, z.a0, z.b0, &ca, &cb);
      if (t0 + 1u < n) { add_coefficients(t0 + 1u, pr, z.a1, z.b1, &ca, &cb); }
      if (t0 + 2u < n) { add_coefficients(t0 + 2u, pr, z.a2, z.b2, &ca, &cb); }
      if (t0 + 3u < n) { add_coefficients(t0 + 3u, pr, z.a3, z.b3, &ca, &cb); }
      if (t0 + 4u < n) { add_coefficients(t0 + 4u, pr, z.a4, z.b4, &ca, &cb); }
      if (t0 + 5u < n) { add_coefficients(t0 + 5u, pr, z.a5, z.b5, &ca, &cb); }
      if (t0 + 6u < n) { add_coefficients(t0 + 6u, pr, z.a6, z.b6, &ca, &cb); }
      if (t0 + 7u < n) { add_coefficients(t0 + 7u, pr, z.a7, z.b7, &ca, &cb); }
    }
    ca = select(vec4<f32>(0.0), ca, pr.va);
    cb = select(vec4<f32>(0.0), cb, pr.vb);
    // dδ[k] += Σ_lanes c·W[id][k] for this pair's 8 ids: W row k holds the columns contiguously.
    let first = c == i;
    for (var k4 = 0u; k4 < q; k4++) {
      let r = 4u * k4 * V4;
      let g = vec4<f32>(
        dot(ca, wcls[r + pr.c]) + dot(cb, wcls[r + pr.d]),
        dot(ca, wcls[r + V4 + pr.c]) + dot(cb, wcls[r + V4 + pr.d]),
        dot(ca, wcls[r + 2u * V4 + pr.c]) + dot(cb, wcls[r + 2u * V4 + pr.d]),
        dot(ca, wcls[r + 3u * V4 + pr.c]) + dot(cb, wcls[r + 3u * V4 + pr.d]));
      let o = i * q + k4;
      if (first) { partials[o] = g; } else { partials[o] += g; }
    }
  }
}

var<workgroup> wg_grad: array<vec4<f32>, MW>;

// One workgroup per vec4 of dδ: MW strided partial sums of the NINV partials, then one in order.
@compute @workgroup_size(MW)
fn reduce(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let k4 = wid.x;
  let q = DIM / 4u;
  var s = vec4<f32>(0.0);
  for (var i = lid.x; i < NINV; i += MW) { s += partials[i * q + k4]; }
  wg_grad[lid.x] = s;
  workgroupBarrier();
  if (lid.x != 0u) { return; }
  for (var l = 1u; l < MW; l++) { s += wg_grad[l]; }
  grad[k4] = s;
}
