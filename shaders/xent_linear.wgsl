// SRGen's loss and gradient (algorithms.md §4) from kept logits. The loss depends on δ only through
// the LM head's input, and W(h_t + δ) = W·h_t + W·δ = z_t + u: with the context's logits kept (one
// GEMM over the kept hidden states, once per new position, not once per AdamW step), an AdamW step
// needs one GEMV for u = W·δ (V·DIM), two passes over the T×V kept values, and one GEMVᵀ for
// dδ = Wᵀc (V·DIM): O(T·V + V·DIM) instead of xent.wgsl's O(T·V·DIM) per pass.
//
// What is kept is not z_t but E_t = exp(max(z_t − m_t, −87)) with m_t = max z_t (and m_t), so the
// passes over T×V are multiply-adds with no exp (exps dominated them on SwiftShader). With
// U = max u and w = exp(u − U):
//   Z_t = Σ_v E_t[v]·w[v],  LSE_t = m_t + U + ln Z_t,  p_t[v] = E_t[v]·w[v]·r_t with r_t = 1/Z_t.
// The floor at −87 (above float32's smallest normal) keeps ln E_t = z_t − m_t recoverable (the
// target logit, the last row); a logit more than 87 nats below its row's max reads as 87 below.
// A row whose Z_t falls below TINY_Z (a δ that moves logits by tens of nats) takes the exp path
// over s = m_t + ln E_t + u, in both passes.
//
//   keep:         one workgroup per new kept row: m_t and E_t from the fill GEMM's z_t.
//   shift_exp:    one workgroup: U = max u and w = exp(u − U) into `shift` (w, then U at [V4]).
//   forward:      one workgroup per RB = 4 rows, then one for the last position again at 1/T_s:
//                 Z_t by multiply-adds summed in order, or (the last one, an underflowed row) an
//                 online (max, Σe^(s−m), Σe^(s−m)(s−m)) per invocation merged in order, into
//                 xent.wgsl's records (LSE_t, target logit, nll, r_t; entropy and LSE at T_s), so
//                 xent.wgsl's `loss` finishes them.
//   coefficients: one invocation per two vec4 columns: c_v = (1−λ)/(T−1)·Σ_{t<T−1} p_t[v] + λ·g_v,
//                 g_v = −(q_v/T_s)(ln q_v + H) (the forms of xent.wgsl).
//   onehot:       one invocation: c_{y_t} −= (1−λ)/(T−1) for each target, in position order.
//   last_row:     z_{T−1} + u = W(h_{T−1} + δ) up to rounding, for the LM-head statistics after the
//                 last AdamW step (no classifier pass).
//   grad_reduce:  dδ_k = Σ_v W[v][k]·c_v: one workgroup per four features, MW strided partial dot
//                 products over the vec4 columns of W's rows k (transposed layout), then in order.
//
// Inputs: targets < VOCAB; T ≥ 1; kept rows are V4 vec4s wide (lanes past VOCAB hold 0).
override DIM: u32;
override V4: u32;
override VOCAB: u32;
override XW: u32 = 64u;   // workgroup size of keep, shift_exp and forward

const MW: u32 = 32u;
const NEG_INF: f32 = -3.0e38;
const FLOOR: f32 = -87.0;       // ln of the smallest kept E (above float32's smallest normal)
const TINY_Z: f32 = 1.0e-24;    // Z_t below this: the exp path (above it, a term that underflows is < 10^−14 of Z_t)

struct Params { positions: u32, lambda: f32, inv_temp: f32, _pad: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> kept: array<vec4<f32>>;     // [T][V4]: E_t
@group(0) @binding(2) var<storage, read> u: array<vec4<f32>>;        // [V4]: W·δ (matmul.wgsl's GEMV)
@group(0) @binding(3) var<storage, read> wcls: array<vec4<f32>>;     // W transposed: [DIM][V4]
@group(0) @binding(4) var<storage, read> targets: array<u32>;        // [T−1]
@group(0) @binding(5) var<storage, read> row_max: array<f32>;        // [T]: m_t
@group(0) @binding(6) var<storage, read_write> stats: array<vec4<f32>>;  // xent.wgsl's records
@group(0) @binding(7) var<storage, read_write> coef: array<vec4<f32>>;  // [V4]: c
@group(0) @binding(8) var<storage, read_write> grad: array<vec4<f32>>;  // [DIM/4]: dloss/dδ
@group(0) @binding(9) var<storage, read> shift: array<vec4<f32>>;    // [V4 + 1]: w, then (U, ·, ·, ·)
@group(0) @binding(10) var<storage, read_write> row_out: array<vec4<f32>>;  // [V4]: z_{T−1} + u

// keep's and shift's own views of their outputs (one entry point uses each).
@group(0) @binding(0) var<uniform> fill_step: Step;                  // stats_row_start: first row, stats_rows: rows
@group(0) @binding(1) var<storage, read_write> kept_out: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> fill_in: array<vec4<f32>>;  // [rows][V4]: z of the new rows
@group(0) @binding(5) var<storage, read_write> row_max_out: array<f32>;
@group(0) @binding(9) var<storage, read_write> shift_out: array<vec4<f32>>;

fn lanes_valid(c: u32) -> vec4<bool> {
  if (VOCAB % 4u == 0u) { return vec4<bool>(true); }
  return 4u * c + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(VOCAB);
}

// merge_sums: xent_common.wgsl.

const RB: u32 = 4u;  // rows per forward workgroup (kernels.ts XENT_LINEAR_ROWS; forward unrolls four)

var<workgroup> wg_part: array<vec4<f32>, XW>;
var<workgroup> wg_rows: array<vec4<f32>, RB * XW>;  // RB rows of partial sums
var<workgroup> wg_z: f32;
var<workgroup> wg_z4: vec4<f32>;
var<workgroup> wg_sums4: vec4<f32>;

// The max of the XW invocations' vec4 maxima, in every invocation.
fn workgroup_max(l: u32, m: vec4<f32>) -> f32 {
  wg_part[l] = m;
  workgroupBarrier();
  if (l == 0u) {
    var r = NEG_INF;
    for (var j = 0u; j < XW; j++) { let q = wg_part[j]; r = max(r, max(max(q.x, q.y), max(q.z, q.w))); }
    wg_z = r;
  }
  return workgroupUniformLoad(&wg_z);
}

@compute @workgroup_size(XW)
fn keep(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let r = wid.x;
  if (r >= fill_step.stats_rows) { return; }  // uniform per workgroup
  let l = lid.x;
  let src = r * V4;
  var m = vec4<f32>(NEG_INF);
  for (var c = l; c < V4; c += XW) { m = max(m, select(vec4<f32>(NEG_INF), fill_in[src + c], lanes_valid(c))); }
  let mx = workgroup_max(l, m);
  let t = fill_step.stats_row_start + r;
  for (var c = l; c < V4; c += XW) {
    let e = exp(max(fill_in[src + c] - mx, vec4<f32>(FLOOR)));
    kept_out[t * V4 + c] = select(vec4<f32>(0.0), e, lanes_valid(c));
  }
  if (l == 0u) { row_max_out[t] = mx; }
}

@compute @workgroup_size(XW)
fn shift_exp(@builtin(local_invocation_id) lid: vec3<u32>) {
  let l = lid.x;
  var m = vec4<f32>(NEG_INF);
  for (var c = l; c < V4; c += XW) { m = max(m, select(vec4<f32>(NEG_INF), u[c], lanes_valid(c))); }
  let big = workgroup_max(l, m);
  for (var c = l; c < V4; c += XW) { shift_out[c] = select(vec4<f32>(0.0), exp(u[c] - big), lanes_valid(c)); }
  if (l == 0u) { shift_out[V4] = vec4<f32>(big, 0.0, 0.0, 0.0); }
}

// z_t + u of row t's column c (valid lanes): m_t + ln E_t + u.
fn shifted_logits(t: u32, c: u32) -> vec4<f32> {
  return row_max[t] + log(kept[t * V4 + c]) + u[c];
}

// One invocation's online sums over s = (z_t + u)·scale (valid lanes of its strided columns),
// merged across its lanes: (max, Σe^(s−max), Σe^(s−max)(s−max), ·). Each invocation rescales only
// when its max grows (a few times per row), so one exp per logit.
fn online_partial(t: u32, scale: f32, l: u32) -> vec4<f32> {
  var m = vec4<f32>(NEG_INF);
  var z = vec4<f32>(0.0);
  var a = vec4<f32>(0.0);
  for (var c = l; c < V4; c += XW) {
    let valid = lanes_valid(c);
    let s = select(vec4<f32>(NEG_INF), shifted_logits(t, c) * scale, valid);
    if (any(s > m)) {
      // Σe^(s−m')(s−m') = w·(A + (m − m')·Z) with w = e^(m−m') (merge_sums per lane).
      let m2 = max(m, s);
      let w = exp(m - m2);
      a = w * (a + (m - m2) * z);
      z = w * z;
      m = m2;
    }
    // A masked lane's d is NEG_INF (its m may still be NEG_INF: s − m would be 0).
    let d = select(vec4<f32>(NEG_INF), s - m, valid);
    let e = exp(d);
    z += e;
    a += e * d;
  }
  // Lanes that saw no logit have z = 0: merge_sums skips them.
  var p = vec4<f32>(NEG_INF, 0.0, 0.0, 0.0);
  p = merge_sums(p, m.x, z.x, a.x);
  p = merge_sums(p, m.y, z.y, a.y);
  p = merge_sums(p, m.z, z.z, a.z);
  p = merge_sums(p, m.w, z.w, a.w);
  return p;
}

// Workgroups 0 .. ⌈T/RB⌉ − 1 take RB rows each, their XW invocations strided over the rows' V4
// columns (each w loaded once for the RB rows): Z_t = Σ E_t·w, partial sums per invocation added in
// order by invocation 0; r_t = 1/Z_t. A row whose Z_t underflowed takes the online sums of
// online_partial merged in order (r_t = −1 marks the exp path for `coefficients`); so does the
// last workgroup, the last position at 1/T_s. Invocation 0 writes xent.wgsl's records:
// [1 + t] = (LSE_t, target logit, nll, r_t), and [0] = (·, ·, entropy, LSE at T_s) (`loss` fills x, y).
// Rows past T in the last block re-read row T − 1 and are not written.
@compute @workgroup_size(XW)
fn forward(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let n = params.positions;
  let l = lid.x;
  let t0 = wid.x * RB;
  if (t0 >= n) {
    let p = online_sums(n - 1u, params.inv_temp, l);
    if (l == 0u) { stats[0] = vec4<f32>(0.0, 0.0, log(p.y) - p.z / p.y, p.x + log(p.y)); }
    return;
  }
  let t1 = min(t0 + 1u, n - 1u);
  let t2 = min(t0 + 2u, n - 1u);
  let t3 = min(t0 + 3u, n - 1u);
  var a0 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  for (var c = l; c < V4; c += XW) {
    let w = shift[c];
    a0 += kept[t0 * V4 + c] * w;
    a1 += kept[t1 * V4 + c] * w;
    a2 += kept[t2 * V4 + c] * w;
    a3 += kept[t3 * V4 + c] * w;
  }
  wg_rows[l] = a0;
  wg_rows[XW + l] = a1;
  wg_rows[2u * XW + l] = a2;
  wg_rows[3u * XW + l] = a3;
  workgroupBarrier();
  if (l == 0u) {
    var z = vec4<f32>(0.0);
    for (var j = 0u; j < XW; j++) {
      let q = vec4<f32>(hsum(wg_rows[j]), hsum(wg_rows[XW + j]), hsum(wg_rows[2u * XW + j]), hsum(wg_rows[3u * XW + j]));
      z += q;
    }
    wg_z4 = z;
  }
  let zs = workgroupUniformLoad(&wg_z4);
  for (var i = 0u; i < RB; i++) {
    let t = t0 + i;
    if (t >= n) { break; }
    let z = zs[i];
    var lse = row_max[t] + shift[V4].x + log(z);
    var rt = 1.0 / z;
    // A loop, not an if (see `coefficients`): rows on the multiply-add path skip it whole.
    for (var slow = z < TINY_Z; slow; slow = false) {
      let p = online_sums(t, 1.0, l);
      lse = p.x + log(p.y);
      rt = -1.0;
    }
    if (l == 0u) {
      if (t + 1u < n) {
        let y = targets[t];
        let zy = row_max[t] + log(kept[t * V4 + y / 4u][y % 4u]) + u[y / 4u][y % 4u];
        stats[1u + t] = vec4<f32>(lse, zy, lse - zy, rt);
      } else {
        stats[1u + t] = vec4<f32>(lse, 0.0, 0.0, rt);  // the last position has no target
      }
    }
  }
}

fn hsum(v: vec4<f32>) -> f32 { return (v.x + v.y) + (v.z + v.w); }

// online_partial of every invocation merged in order, in every invocation: (max, Σe, Σe·d, ·).
fn online_sums(t: u32, scale: f32, l: u32) -> vec4<f32> {
  wg_part[l] = online_partial(t, scale, l);
  workgroupBarrier();
  if (l == 0u) {
    var p = wg_part[0];
    for (var j = 1u; j < XW; j++) {
      let q = wg_part[j];
      p = merge_sums(p, q.x, q.y, q.z);
    }
    wg_sums4 = p;
  }
  return workgroupUniformLoad(&wg_sums4);
}

// λ·g at the last position for column c, g = −(q/T_s)(ln q + H), ln q = s/T_s − LSE_Ts.
fn entropy_coefficients(c: u32) -> vec4<f32> {
  let inv = params.inv_temp;
  let r = stats[0];
  let l = shifted_logits(params.positions - 1u, c) * inv - r.w;
  return (-params.lambda * inv) * exp(l) * (l + r.z);
}

// Two columns per invocation, c and c + ⌈V4/2⌉ (clamped; the copy is not written), so each
// position's record is loaded once for both. Σ_t p_t = w·Σ_t E_t·r_t over the rows of the
// multiply-add path (r_t ≥ 0), plus Σ_t exp(s − LSE_t) over the rows of the exp path (r_t = −1),
// in a second loop that runs only if some row took it. `onehot` then subtracts the targets' counts.
@compute @workgroup_size(64)
fn coefficients(@builtin(global_invocation_id) gid: vec3<u32>) {
  let h = (V4 + 1u) / 2u;
  let c = gid.x;
  if (c >= h) { return; }
  let d = min(c + h, V4 - 1u);
  let n = params.positions;
  var fc = vec4<f32>(0.0);
  var fd = vec4<f32>(0.0);
  var slow = false;
  for (var t = 0u; t + 1u < n; t++) {
    let rt = stats[1u + t].w;
    slow = slow || rt < 0.0;
    fc += kept[t * V4 + c] * max(rt, 0.0);
    fd += kept[t * V4 + d] * max(rt, 0.0);
  }
  var pc = fc * shift[c];
  var pd = fd * shift[d];
  // A loop, not an if: lanes that all skip it cost nothing on SIMD backends that mask branches.
  for (var t = 0u; slow && t + 1u < n; t++) {
    let rec = stats[1u + t];
    if (rec.w < 0.0) {
      pc += exp(shifted_logits(t, c) - rec.x);
      pd += exp(shifted_logits(t, d) - rec.x);
    }
  }
  let w = select(0.0, (1.0 - params.lambda) / f32(n - 1u), n > 1u);
  coef[c] = select(vec4<f32>(0.0), w * pc + entropy_coefficients(c), lanes_valid(c));
  if (c + h < V4) { coef[d] = select(vec4<f32>(0.0), w * pd + entropy_coefficients(d), lanes_valid(d)); }
}

// −(1−λ)/(T−1) at each target's coefficient, once per occurrence, in position order (one
// invocation: T − 1 read-modify-writes).
@compute @workgroup_size(1)
fn onehot() {
  let n = params.positions;
  if (n < 2u) { return; }
  let w = (1.0 - params.lambda) / f32(n - 1u);
  for (var t = 0u; t + 1u < n; t++) {
    let y = targets[t];
    coef[y / 4u][y % 4u] -= w;
  }
}

var<workgroup> wg_sums: array<vec4<f32>, MW>;

// One workgroup per four features k = 4·k4 .. 4·k4 + 3: each coefficient vec4 loaded serves the
// four rows of W.
@compute @workgroup_size(MW)
fn grad_reduce(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let r = 4u * wid.x * V4;
  var s = vec4<f32>(0.0);
  for (var c = lid.x; c < V4; c += MW) {
    let cv = coef[c];
    s += vec4<f32>(dot(wcls[r + c], cv), dot(wcls[r + V4 + c], cv), dot(wcls[r + 2u * V4 + c], cv), dot(wcls[r + 3u * V4 + c], cv));
  }
  wg_sums[lid.x] = s;
  workgroupBarrier();
  if (lid.x != 0u) { return; }
  for (var l = 1u; l < MW; l++) { s += wg_sums[l]; }
  grad[wid.x] = s;
}

@compute @workgroup_size(64)
fn last_row(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= V4) { return; }
  row_out[c] = select(vec4<f32>(0.0), shifted_logits(params.positions - 1u, c), lanes_valid(c));
}
