// SRGen's loss and gradient (algorithms.md §4) from kept logits. The loss depends on δ only through
// the LM head's input, and W(h_t + δ) = W·h_t + W·δ = z_t + u: with the context's logits z_t kept
// (one GEMM over the kept hidden states, once per new position, not once per AdamW step), an AdamW
// step needs one GEMV for u = W·δ (V·DIM), two passes over the T×V kept logits, and one GEMVᵀ for
// dδ = Wᵀc (V·DIM): O(T·V + V·DIM) instead of xent.wgsl's O(T·V·DIM) per pass.
//
//   shift:        u = W·δ, one invocation per vec4 column, a serial float32 sum over k.
//   forward:      each invocation owns vocabulary vec4 columns i, i + NINV, …; for every position t
//                 it folds s = z_t + u over its columns into an online (max m, Σe^(s−m), Σe^(s−m)(s−m))
//                 and the target's logit, and the last position a second time at 1/T_s (row T):
//                 partials [(T+1)][NINV] in xent.wgsl's layout, so xent.wgsl's `merge` and `loss`
//                 turn them into the same records (LSE_t, target, nll; loss, CE, entropy, LSE at T_s).
//   coefficients: one invocation per vec4 column: c_v = (1−λ)/(T−1)·Σ_{t<T−1}(p_t[v] − [v = y_t])
//                 + λ·g_v, p_t = exp(s − LSE_t), g_v = −(q_v/T_s)(ln q_v + H) (the forms of xent.wgsl).
//   last_row:     z_{T−1} + u = W(h_{T−1} + δ) up to rounding, for the LM-head statistics after the
//                 last AdamW step (no classifier pass).
//   grad:         dδ_k = Σ_v W[v][k]·c_v: one workgroup per feature k, MW strided partial dot
//                 products over the vec4 columns of W's row k (transposed layout), then one in order.
//
// Inputs: targets < VOCAB; T ≥ 1; `logits` rows are V4 vec4s wide (lanes past VOCAB are ignored).
override DIM: u32;
override V4: u32;
override VOCAB: u32;
override XW: u32 = 64u;
override XGROUPS: u32 = 16u;
override NINV: u32 = XW * XGROUPS;

const MW: u32 = 32u;
const NEG_INF: f32 = -3.0e38;

struct Params { positions: u32, lambda: f32, inv_temp: f32, _pad: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<vec4<f32>>;   // [T][V4]: z_t = W·h_t
@group(0) @binding(2) var<storage, read_write> u: array<vec4<f32>>;  // [V4]: W·δ
@group(0) @binding(3) var<storage, read> wcls: array<vec4<f32>>;     // W transposed: [DIM][V4]
@group(0) @binding(4) var<storage, read> targets: array<u32>;        // [T−1]
@group(0) @binding(5) var<storage, read_write> partials: array<vec4<f32>>;  // [(T+1)][NINV]
@group(0) @binding(6) var<storage, read> stats: array<vec4<f32>>;    // xent.wgsl's records (after merge, loss)
@group(0) @binding(7) var<storage, read_write> coef: array<vec4<f32>>;  // [V4]: c
@group(0) @binding(8) var<storage, read_write> grad: array<f32>;     // [DIM]: dloss/dδ
@group(0) @binding(9) var<storage, read> delta: array<vec4<f32>>;    // [DIM/4]
@group(0) @binding(10) var<storage, read_write> row_out: array<vec4<f32>>;  // [V4]: z_{T−1} + u

fn lanes_valid(c: u32) -> vec4<bool> {
  return 4u * c + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(VOCAB);
}

@compute @workgroup_size(64)
fn shift(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= V4) { return; }
  var acc = vec4<f32>(0.0);
  for (var k4 = 0u; k4 < DIM / 4u; k4++) {
    let d = delta[k4];
    let r = 4u * k4 * V4 + c;
    acc += d.x * wcls[r];
    acc += d.y * wcls[r + V4];
    acc += d.z * wcls[r + 2u * V4];
    acc += d.w * wcls[r + 3u * V4];
  }
  u[c] = acc;
}

// merge_sums: xent_common.wgsl.

// Folds four values (masked lanes NEG_INF, lane 0 always real) into p.
fn fold4(p: vec4<f32>, s: vec4<f32>) -> vec4<f32> {
  let m = max(max(s.x, s.y), max(s.z, s.w));
  let e = exp(s - m);
  return merge_sums(p, m, dot(e, vec4<f32>(1.0)), dot(e, s - m));
}

@compute @workgroup_size(XW)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  let n = params.positions;
  let inv = params.inv_temp;
  for (var t = 0u; t < n; t++) {
    var p = vec4<f32>(NEG_INF, 0.0, 0.0, NEG_INF);
    var q = vec4<f32>(NEG_INF, 0.0, 0.0, NEG_INF);
    var y = 0xffffffffu;
    if (t + 1u < n) { y = targets[t]; }
    for (var c = i; c < V4; c += NINV) {
      let valid = lanes_valid(c);
      let s = select(vec4<f32>(NEG_INF), logits[t * V4 + c] + u[c], valid);
      p = fold4(p, s);
      if (y / 4u == c) { p.w = s[y % 4u]; }
      if (t + 1u == n) { q = fold4(q, select(vec4<f32>(NEG_INF), s * inv, valid)); }
    }
    partials[t * NINV + i] = p;
    if (t + 1u == n) { partials[n * NINV + i] = q; }
  }
}

@compute @workgroup_size(64)
fn coefficients(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= V4) { return; }
  let n = params.positions;
  let uc = u[c];
  var acc = vec4<f32>(0.0);
  if (n > 1u) {
    let w = (1.0 - params.lambda) / f32(n - 1u);
    for (var t = 0u; t + 1u < n; t++) {
      let s = logits[t * V4 + c] + uc;
      acc += w * exp(s - stats[1u + t].x);
      let y = targets[t];
      if (y / 4u == c) { acc[y % 4u] -= w; }
    }
  }
  // λ·g at the last position, g = −(q/T_s)(ln q + H), ln q = s/T_s − LSE_Ts.
  let inv = params.inv_temp;
  let r = stats[0];
  let l = (logits[(n - 1u) * V4 + c] + uc) * inv - r.w;
  acc += (-params.lambda * inv) * exp(l) * (l + r.z);
  coef[c] = select(vec4<f32>(0.0), acc, lanes_valid(c));
}

var<workgroup> wg_sums: array<f32, MW>;

@compute @workgroup_size(MW)
fn grad_reduce(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let k = wid.x;
  var s = 0.0;
  for (var c = lid.x; c < V4; c += MW) { s += dot(wcls[k * V4 + c], coef[c]); }
  wg_sums[lid.x] = s;
  workgroupBarrier();
  if (lid.x != 0u) { return; }
  for (var l = 1u; l < MW; l++) { s += wg_sums[l]; }
  grad[k] = s;
}

@compute @workgroup_size(64)
fn last_row(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= V4) { return; }
  row_out[c] = logits[(params.positions - 1u) * V4 + c] + u[c];
}
