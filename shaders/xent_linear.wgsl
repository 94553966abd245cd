// SRGen's loss and gradient (algorithms.md §4) from kept logits. The loss depends on δ only through
// the LM head's input, and W(h_t + δ) = W·h_t + W·δ = z_t + u: with the context's logits z_t kept
// (one GEMM over the kept hidden states, once per new position, not once per AdamW step), an AdamW
// step needs one GEMV for u = W·δ (V·DIM), two passes over the T×V kept logits, and one GEMVᵀ for
// dδ = Wᵀc (V·DIM): O(T·V + V·DIM) instead of xent.wgsl's O(T·V·DIM) per pass.
//
//   forward:      one workgroup per row (T + 1 rows: every position, then the last one again at
//                 1/T_s): s = z_t + u folded in one pass into an online (max, Σe^(s−m), Σe^(s−m)(s−m))
//                 per invocation, merged in order by invocation 0 into xent.wgsl's records (LSE_t,
//                 target logit, nll; entropy and LSE at T_s), so xent.wgsl's `loss` finishes them.
//   coefficients: one invocation per two vec4 columns: c_v = (1−λ)/(T−1)·Σ_{t<T−1}(p_t[v] − [v = y_t])
//                 + λ·g_v, p_t = exp(s − LSE_t), g_v = −(q_v/T_s)(ln q_v + H) (the forms of xent.wgsl).
//   last_row:     z_{T−1} + u = W(h_{T−1} + δ) up to rounding, for the LM-head statistics after the
//                 last AdamW step (no classifier pass).
//   grad:         dδ_k = Σ_v W[v][k]·c_v: one workgroup per four features, MW strided partial dot
//                 products over the vec4 columns of W's rows k (transposed layout), then in order.
//
// Inputs: targets < VOCAB; T ≥ 1; `logits` rows are V4 vec4s wide (lanes past VOCAB are ignored).
override DIM: u32;
override V4: u32;
override VOCAB: u32;
override XW: u32 = 64u;   // workgroup size of forward

const MW: u32 = 32u;
const NEG_INF: f32 = -3.0e38;

struct Params { positions: u32, lambda: f32, inv_temp: f32, _pad: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<vec4<f32>>;   // [T][V4]: z_t = W·h_t
@group(0) @binding(2) var<storage, read> u: array<vec4<f32>>;        // [V4]: W·δ (matmul.wgsl's GEMV)
@group(0) @binding(3) var<storage, read> wcls: array<vec4<f32>>;     // W transposed: [DIM][V4]
@group(0) @binding(4) var<storage, read> targets: array<u32>;        // [T−1]
@group(0) @binding(6) var<storage, read_write> stats: array<vec4<f32>>;  // xent.wgsl's records
@group(0) @binding(7) var<storage, read_write> coef: array<vec4<f32>>;  // [V4]: c
@group(0) @binding(8) var<storage, read_write> grad: array<vec4<f32>>;  // [DIM/4]: dloss/dδ
@group(0) @binding(10) var<storage, read_write> row_out: array<vec4<f32>>;  // [V4]: z_{T−1} + u

fn lanes_valid(c: u32) -> vec4<bool> {
  if (VOCAB % 4u == 0u) { return vec4<bool>(true); }
  return 4u * c + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(VOCAB);
}

// merge_sums: xent_common.wgsl.

var<workgroup> wg_part: array<vec4<f32>, XW>;

// One workgroup per row r ≤ T (row T: the last position at 1/T_s), its XW invocations strided over
// the row's V4 columns. One pass: each invocation keeps (max m, Σe^(s−m), Σe^(s−m)(s−m)) per lane
// of its vec4s and rescales only when its max grows (a few times per row), so one exp per logit.
// Invocation 0 merges the XW partials in order and writes xent.wgsl's records: [1 + t] = (LSE_t,
// target logit, nll, 0), and for row T [0] = (·, ·, entropy, LSE at T_s) (`loss` fills x, y).
@compute @workgroup_size(XW)
fn forward(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let r = wid.x;
  let n = params.positions;
  let l = lid.x;
  let base = min(r, n - 1u) * V4;
  let scale = select(1.0, params.inv_temp, r == n);
  var m = vec4<f32>(NEG_INF);
  var z = vec4<f32>(0.0);
  var a = vec4<f32>(0.0);
  for (var c = l; c < V4; c += XW) {
    let valid = lanes_valid(c);
    let s = select(vec4<f32>(NEG_INF), (logits[base + c] + u[c]) * scale, valid);
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
  wg_part[l] = p;
  workgroupBarrier();
  if (l != 0u) { return; }
  p = wg_part[0];
  for (var j = 1u; j < XW; j++) {
    let q = wg_part[j];
    p = merge_sums(p, q.x, q.y, q.z);
  }
  let mx = p.x;
  let zs = p.y;
  let as_ = p.z;
  let ln_z = log(zs);
  let lse = mx + ln_z;
  if (r == n) {
    stats[0] = vec4<f32>(0.0, 0.0, ln_z - as_ / zs, lse);  // `loss` fills x, y
  } else if (r + 1u < n) {
    let y = targets[r];
    let zy = logits[r * V4 + y / 4u][y % 4u] + u[y / 4u][y % 4u];
    stats[1u + r] = vec4<f32>(lse, zy, lse - zy, 0.0);
  } else {
    stats[1u + r] = vec4<f32>(lse, 0.0, 0.0, 0.0);  // the last position has no target
  }
}

// λ·g at the last position for column c, g = −(q/T_s)(ln q + H), ln q = s/T_s − LSE_Ts.
fn entropy_coefficients(c: u32, uc: vec4<f32>) -> vec4<f32> {
  let inv = params.inv_temp;
  let r = stats[0];
  let l = (logits[(params.positions - 1u) * V4 + c] + uc) * inv - r.w;
  return (-params.lambda * inv) * exp(l) * (l + r.z);
}

// Two columns per invocation, c and c + ⌈V4/2⌉ (clamped; the copy is not written), so each
// position's LSE and target are loaded once for both.
@compute @workgroup_size(64)
fn coefficients(@builtin(global_invocation_id) gid: vec3<u32>) {
  let h = (V4 + 1u) / 2u;
  let c = gid.x;
  if (c >= h) { return; }
  let d = min(c + h, V4 - 1u);
  let n = params.positions;
  let uc = u[c];
  let ud = u[d];
  var ec = vec4<f32>(0.0);
  var ed = vec4<f32>(0.0);
  var yc = vec4<f32>(0.0);
  var yd = vec4<f32>(0.0);
  // Σ_t p_t and the one-hot counts by lane compare (a dynamic vector index would put them in memory).
  let lanes = vec4<u32>(0u, 1u, 2u, 3u);
  let ic = 4u * c + lanes;
  let id = 4u * d + lanes;
  for (var t = 0u; t + 1u < n; t++) {
    let lse = stats[1u + t].x;
    let y = vec4<u32>(targets[t]);
    ec += exp(logits[t * V4 + c] + uc - lse);
    ed += exp(logits[t * V4 + d] + ud - lse);
    yc += select(vec4<f32>(0.0), vec4<f32>(1.0), ic == y);
    yd += select(vec4<f32>(0.0), vec4<f32>(1.0), id == y);
  }
  let w = select(0.0, (1.0 - params.lambda) / f32(n - 1u), n > 1u);
  coef[c] = select(vec4<f32>(0.0), w * (ec - yc) + entropy_coefficients(c, uc), lanes_valid(c));
  if (c + h < V4) { coef[d] = select(vec4<f32>(0.0), w * (ed - yd) + entropy_coefficients(d, ud), lanes_valid(d)); }
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
  row_out[c] = logits[(params.positions - 1u) * V4 + c] + u[c];
}
