// float64 reference of SRGen's loss and its gradient (algorithms.md §4; shaders/xent.wgsl):
//
//   x_t = h_t + δ,  z_t = W·x_t,  y_t = x_{t+1} (the targets, t < T−1)
//   CE   = 1/(T−1) · Σ_{t<T−1} (LSE(z_t) − z_t[y_t])     (0 when T = 1)
//   Ent  = H(q),  q = softmax(z_{T−1}/T_s)
//   loss = (1−λ)·CE + λ·Ent
//   ∇_δ loss = Wᵀc,  c = (1−λ)/(T−1)·Σ_{t<T−1} (p_t − onehot(y_t)) + λ·g,
//   p_t = softmax(z_t),  g_v = −(q_v/T_s)(ln q_v + Ent)
//
// Everything is computed straight from the definitions, in float64, with W row-major [vocab][dim]
// as in the checkpoint (not the GPU's transposed layout).

export interface XentProblem {
  dim: number;
  vocab: number;
  /** T ≥ 1. */
  positions: number;
  /** [T][dim] */
  hidden: ArrayLike<number>;
  /** [vocab][dim], row-major */
  W: ArrayLike<number>;
  /** [T−1]: y_t = x_{t+1} */
  targets: ArrayLike<number>;
  lambda: number;
  /** T_s of the entropy term. */
  temperature: number;
}

export interface XentForwardRef {
  /** z_t[v], [T][vocab] */
  logits: Float64Array;
  /** LSE(z_t), [T] */
  lse: Float64Array;
  /** z_t[y_t], [T−1] */
  targetLogit: Float64Array;
  /** LSE(z_t) − z_t[y_t], [T−1] */
  nll: Float64Array;
  ce: number;
  /** q = softmax(z_{T−1}/T_s), [vocab] */
  q: Float64Array;
  /** LSE(z_{T−1}/T_s) */
  lseTemp: number;
  entropy: number;
  loss: number;
}

function logSumExp(s: ArrayLike<number>, from: number, n: number, scale = 1): number {
  let m = -Infinity;
  for (let i = 0; i < n; i++) m = Math.max(m, s[from + i] * scale);
  let z = 0;
  for (let i = 0; i < n; i++) z += Math.exp(s[from + i] * scale - m);
  return m + Math.log(z);
}

/** z_t[v] = Σ_k W[v][k]·(h_t[k] + δ[k]). */
export function xentLogits(p: XentProblem, delta: ArrayLike<number>): Float64Array {
  const { dim, vocab, positions: T } = p;
  const z = new Float64Array(T * vocab);
  const x = new Float64Array(dim);
  for (let t = 0; t < T; t++) {
    for (let k = 0; k < dim; k++) x[k] = p.hidden[t * dim + k] + delta[k];
    for (let v = 0; v < vocab; v++) {
      let s = 0;
      const row = v * dim;
      for (let k = 0; k < dim; k++) s += p.W[row + k] * x[k];
      z[t * vocab + v] = s;
    }
  }
  return z;
}

export function xentForwardRef(p: XentProblem, delta: ArrayLike<number>): XentForwardRef {
  const { vocab, positions: T } = p;
  const logits = xentLogits(p, delta);
  const lse = new Float64Array(T);
  for (let t = 0; t < T; t++) lse[t] = logSumExp(logits, t * vocab, vocab);
  const targetLogit = new Float64Array(T - 1);
  const nll = new Float64Array(T - 1);
  let sum = 0;
  for (let t = 0; t + 1 < T; t++) {
    targetLogit[t] = logits[t * vocab + p.targets[t]];
    nll[t] = lse[t] - targetLogit[t];
    sum += nll[t];
  }
  const ce = T > 1 ? sum / (T - 1) : 0;
  const last = (T - 1) * vocab;
  const inv = 1 / p.temperature;
  const lseTemp = logSumExp(logits, last, vocab, inv);
  const q = new Float64Array(vocab);
  let mean = 0; // E_q[s]
  for (let v = 0; v < vocab; v++) {
    const s = logits[last + v] * inv;
    q[v] = Math.exp(s - lseTemp);
    mean += q[v] * s;
  }
  const entropy = lseTemp - mean;
  return { logits, lse, targetLogit, nll, ce, q, lseTemp, entropy, loss: (1 - p.lambda) * ce + p.lambda * entropy };
}

export function xentLossRef(p: XentProblem, delta: ArrayLike<number>): number {
  return xentForwardRef(p, delta).loss;
}

/** c_v (the gradient with respect to the logits, summed over positions), [vocab]. */
export function xentCoefficientsRef(p: XentProblem, f: XentForwardRef): Float64Array {
  const { vocab, positions: T, lambda } = p;
  const c = new Float64Array(vocab);
  if (T > 1) {
    const w = (1 - lambda) / (T - 1);
    for (let t = 0; t + 1 < T; t++) {
      for (let v = 0; v < vocab; v++) c[v] += w * Math.exp(f.logits[t * vocab + v] - f.lse[t]);
      c[p.targets[t]] -= w;
    }
  }
  const inv = 1 / p.temperature;
  for (let v = 0; v < vocab; v++) {
    const lnq = f.logits[(T - 1) * vocab + v] * inv - f.lseTemp;
    c[v] += lambda * -(f.q[v] * inv) * (lnq + f.entropy);
  }
  return c;
}

export interface XentGradRef {
  forward: XentForwardRef;
  coefficients: Float64Array;
  /** ∇_δ loss, [dim] */
  grad: Float64Array;
}

/** The analytic gradient Wᵀc. */
export function xentGradRef(p: XentProblem, delta: ArrayLike<number>): XentGradRef {
  const forward = xentForwardRef(p, delta);
  const coefficients = xentCoefficientsRef(p, forward);
  const grad = new Float64Array(p.dim);
  for (let v = 0; v < p.vocab; v++) {
    const cv = coefficients[v];
    for (let k = 0; k < p.dim; k++) grad[k] += p.W[v * p.dim + k] * cv;
  }
  return { forward, coefficients, grad };
}
