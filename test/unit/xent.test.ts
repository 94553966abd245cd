// xent.wgsl: SRGen's fused log-sum-exp cross-entropy (Kernels.xentForward / xentBackward) against
// the float64 reference of test/support/xent-reference.ts, and that reference's analytic gradient
// against finite differences.
//
//  (a) forward: per-position LSE, target logit and nll, CE, the last position's LSE and entropy at
//      T_s, the loss; dim 288 × vocab 32000 (stories15M's classifier) at T = 1, 2, 17 and awkward
//      sizes (vocab not a multiple of 4, an odd number of vec4 columns so the last column pair has
//      no partner, more column pairs than invocations, T across the 8-position blocks).
//  (b) the CPU gradient against central differences of the CPU loss.
//  (c) the GPU dδ against the CPU gradient, and against an unfused GPU path: logits by
//      Kernels.matmul into a [T][vocab] buffer, Kernels.softmax, then the coefficients
//      c = Σ_t w(p_t − onehot) + λg by a test-only WGSL (no existing kernel forms c or the entropy
//      term) and dδ = Wᵀc by Kernels.matmul over W itself (row-major W is Wᵀ's transposed layout).
//  (d) λ = 0, λ = 1, and T = 1 (no targets: CE = 0 by definition, loss = λ·Ent, dδ = λ·Wᵀg).
//
// Tolerances are error bounds derived from the kernels' float32 operation order (U = 2^-24; WGSL:
// exp good to 3 + 2|x| ulp, log to 2^-21 absolute on [0.5, 2] and 3 ulp elsewhere), computed per
// element from the float64 data; see `logitErrors`, `forwardTolerance` and `gradTolerance`. Each
// check reports (t.diagnostic) its worst error as a fraction of the tolerance and as a relative error.
//
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { XENT_INVOCATIONS, xentParams, xentPartialsBytes, xentStatsBytes } from '../../src/gpu/kernels.ts';
import { type KernelCall, type StepShape, bindGroupFor } from '../../src/gpu/pipelines.ts';
import { transposeConcat } from '../../src/model/weights.ts';
import { GpuTest, U, dyadic, mulberry32, randInt, randn } from '../support/gpu.ts';
import {
  type XentForwardRef, type XentGradRef, type XentProblem, xentGradRef, xentLogits, xentLossRef,
} from '../support/xent-reference.ts';

let gpu: GpuTest;
before(async () => {
  gpu = await GpuTest.create();
});
afterEach(() => gpu.release());
after(() => gpu.destroy());

/** GpuTest.run takes StepShape calls: bind an xent shape into the grids. */
function bound<S>(calls: readonly KernelCall<S>[], shape: S): KernelCall<StepShape>[] {
  return calls.map((c) => ({ ...c, grid: () => c.grid(shape) }));
}
const NO_STEP: StepShape = { nTokens: 1, statsRows: 1 };

// ---------------------------------------------------------------------------------------------
// Problems

interface Case {
  dim: number;
  vocab: number;
  T: number;
  lambda: number;
  temperature: number;
  seed: number;
  /** Dyadic data: the GPU's float32 logits are then exact (see `problem`). */
  dyadic?: boolean;
  /** Standard deviations of δ's entries (0.1 unless given) and of the hidden states' (1). */
  deltaScale?: number;
  hiddenScale?: number;
}

interface Problem {
  p: XentProblem;
  /** δ as the GPU sees it (float32). */
  delta: Float32Array;
  hidden: Float32Array;
  W: Float32Array;
  exactLogits: boolean;
}

/**
 * Random h ~ N(0, 1), δ ~ N(0, 0.1²), W ~ N(0, 16/dim): logits with a standard deviation of about
 * 4, so the softmax is peaked like a language model's (top probabilities 0.1–0.9 at vocab 32000).
 * Dyadic: h = i/8, δ = j/64, W = k/16 (|i|, |k| ≤ 8, |j| ≤ 4), so h + δ is exact in float32 and every
 * partial sum of a logit is a multiple of 2^-10 below 2^8 (dim ≤ 288): the GPU's logits are exact,
 * the logit-error terms of the tolerances vanish, and what remains are the reductions' roundings.
 * Targets: the argmax of every other position (p ≈ 1: the p − 1 cancellation), random ids, and two
 * planted ids at the edges of the kernel's column pairs (the last id; the first id of column 0's
 * partner column).
 */
function problem(c: Case): Problem {
  const rng = mulberry32(c.seed);
  const { dim, vocab, T } = c;
  const W = c.dyadic ? dyadic(rng, vocab * dim, 8, 16) : randn(rng, vocab * dim, 4 / Math.sqrt(dim));
  const hidden = c.dyadic ? dyadic(rng, T * dim, 8, 8) : randn(rng, T * dim, c.hiddenScale ?? 1);
  const delta = c.dyadic ? dyadic(rng, dim, 4, 64) : randn(rng, dim, c.deltaScale ?? 0.1);
  const p: XentProblem = { dim, vocab, positions: T, hidden, W, targets: [], lambda: c.lambda, temperature: c.temperature };
  const z = xentLogits(p, delta);
  const half = Math.ceil(Math.ceil(vocab / 4) / 2);
  const targets = Array.from({ length: T - 1 }, (_, t) => {
    if (t === 1) return vocab - 1;
    if (t === 3 && 4 * half < vocab) return 4 * half;
    if (t % 2 === 0) {
      let best = 0;
      for (let v = 1; v < vocab; v++) if (z[t * vocab + v] > z[t * vocab + best]) best = v;
      return best;
    }
    return randInt(rng, vocab);
  });
  return { p: { ...p, targets }, delta, hidden, W, exactLogits: c.dyadic ?? false };
}

// ---------------------------------------------------------------------------------------------
// The fused kernels on the GPU

interface GpuXent {
  /** [T+1] records of 4 floats (xentForward's `stats`). */
  stats: Float32Array;
  grad: Float32Array;
}

/** Runs xentForward + xentBackward in one pass; checks nothing past the outputs was written. */
async function runFused(pr: Problem): Promise<GpuXent> {
  const { dim, vocab, positions: T } = pr.p;
  const b = {
    params: await gpu.uniform(xentParams(T, pr.p.lambda, pr.p.temperature), 'params'),
    hidden: await gpu.upload(pr.hidden, 'hidden'),
    delta: await gpu.upload(pr.delta, 'delta'),
    wcls: await gpu.upload(transposeConcat([pr.W], dim), 'wcls'),
    targets: await gpu.upload(new Uint32Array(Math.max(1, T - 1)).map((_, t) => pr.p.targets[t] ?? 0), 'targets'),
    partials: await gpu.alloc(xentPartialsBytes(dim, T) / 4, Number.NaN, 'partials'),
    // One record and one vec4 more than written, left NaN.
    stats: await gpu.alloc(xentStatsBytes(T + 1) / 4, Number.NaN, 'stats'),
    grad: await gpu.alloc(dim + 4, Number.NaN, 'grad'),
  };
  const calls = [
    ...(await gpu.kernels.xentForward('xent', { dim, vocab }, b)),
    ...(await gpu.kernels.xentBackward('xent', { dim, vocab }, b)),
  ];
  const [s, g] = await gpu.run(bound(calls, { positions: T }), NO_STEP, [b.stats, b.grad]);
  const stats = new Float32Array(s);
  const grad = new Float32Array(g);
  for (let i = 4 * (T + 1); i < stats.length; i++) assert.ok(Number.isNaN(stats[i]), `stats written past record ${T}`);
  for (let i = dim; i < grad.length; i++) assert.ok(Number.isNaN(grad[i]), 'grad written past dim');
  assert.deepEqual(gpu.ctx.uncapturedErrors, []);
  return { stats: stats.subarray(0, 4 * (T + 1)), grad: grad.subarray(0, dim) };
}

// ---------------------------------------------------------------------------------------------
// Error bounds

interface LogitErrors {
  /** e[t][v]: bound on |GPU logit − exact logit|. */
  e: Float64Array;
  /** max_v e[t][v] */
  max: Float64Array;
}

/**
 * The GPU computes x̂ = fl(h + δ) (relative error ≤ U) and each logit as a serial float32 sum of
 * DIM products: |ẑ − z| ≤ (DIM + 1)·U·Σ_k|x_k·W_vk| to first order (Higham §3.1); we allow DIM + 2.
 */
function logitErrors(p: XentProblem, delta: ArrayLike<number>, exact: boolean): LogitErrors {
  const { dim, vocab, positions: T } = p;
  const e = new Float64Array(T * vocab);
  const max = new Float64Array(T);
  if (exact) return { e, max };
  const x = new Float64Array(dim);
  for (let t = 0; t < T; t++) {
    for (let k = 0; k < dim; k++) x[k] = Math.abs(p.hidden[t * dim + k] + delta[k]);
    for (let v = 0; v < vocab; v++) {
      let a = 0;
      for (let k = 0; k < dim; k++) a += x[k] * Math.abs(p.W[v * dim + k]);
      e[t * vocab + v] = (dim + 2) * U * a;
      max[t] = Math.max(max[t], e[t * vocab + v]);
    }
  }
  return { e, max };
}

/** max s − min s over a row (s = z·scale). */
function range(z: Float64Array, from: number, n: number, scale = 1): number {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < n; i++) {
    lo = Math.min(lo, z[from + i] * scale);
    hi = Math.max(hi, z[from + i] * scale);
  }
  return hi - lo;
}

/** Column pairs per invocation of forward/backward (the first level of their reductions). */
const pairsPerInvocation = (vocab: number) => Math.ceil(Math.ceil(Math.ceil(vocab / 4) / 2) / XENT_INVOCATIONS);

/**
 * Relative error bound of Z = Σ e^(s−m) as the forward's online reduction computes it from its own
 * logits, R the row's range. A term's argument s − m rounds once (≤ U·R absolute) and its exp is off
 * by ≤ (6 + 4R)U; fold8 sums 8 terms (≤ 8U). Then three levels of merge_sums — n1 pairs in an
 * invocation, 32 partials per merge invocation, 32 merge invocations — each rescale by w = e^d costs
 * ≤ (6 + 4|d| + |d| + 2)U (exp, d's rounding, product, add); a term is rescaled once as the incoming
 * partial and again each time the running max rises, and the rises' |d| add up to ≤ R per level.
 * A level of n items so costs ≤ (9n + 8 + 10R)U, and all together
 *   ε_Z ≤ U·(R + 6 + 4R + 8 + Σ_levels(9n + 8 + 10R)) = U·(9·(n1 + 32 + 32) + 38 + 35R).
 */
const MERGE_LEVELS = XENT_INVOCATIONS / 32 + 32; // merge/reduce: 32 invocations × NINV/32 partials, then 32
const epsZ = (n1: number, R: number) => U * (9 * (n1 + MERGE_LEVELS) + 38 + 35 * R);
/** The same for softmax.wgsl's normaliser: 64 invocations, each an online sum over ⌈V/64⌉ logits. */
const epsSoftmax = (vocab: number, R: number) => U * (9 * Math.ceil(vocab / 64) + 9 * 64 + 22 + 25 * R);
/** WGSL log(Z) for Z ≥ 1: 2^-21 absolute on [1, 2], 3 ulp (≤ 6U relative) above. */
const logErr = (lnZ: number) => 2 ** -21 + 6 * U * Math.abs(lnZ);

interface ForwardTolerance {
  lse: Float64Array;
  target: Float64Array;
  nll: Float64Array;
  ce: number;
  lseTemp: number;
  entropy: number;
  loss: number;
}

/**
 * LSE is 1-Lipschitz in the max norm of the logits, so the logit errors add max_v e[t][v]; the
 * reduction adds ε_Z + log's error + U·|LSE| (m + ln Z). nll = LSE − z_y: both errors + U|nll|.
 * CE: a serial sum of T−1 nll (≤ T·U·Σ|nll|) and a division (U). At T_s, s = fl(z·inv) adds U|s|.
 * Entropy H = ln Z − A/Z (algorithms.md §2), as the LM-head test bounds it (kernels-stats.test.ts): A's
 * terms e^x·x carry Z's ε and their own x's error (2S + R)U, and the merges' d·z and (a + d·z)
 * terms a few roundings more: |Δμ| ≤ (3ε_Z + 5U)·G + (2S + R)U with G = E_q[m − s]; logit errors
 * δ_s propagate with |∂H/∂s_j| = q_j|s_j − s̄|, i.e. ≤ δ_s·E_q|s − s̄| (+ δ_s²·(1 + Var) for the
 * second order). loss = (1−λ)·CE + λ·H: both errors plus 3U for its products and sum.
 */
function forwardTolerance(p: XentProblem, ref: XentForwardRef, le: LogitErrors): ForwardTolerance {
  const { vocab, positions: T, lambda } = p;
  const inv = 1 / p.temperature;
  const n1 = pairsPerInvocation(vocab);
  const lse = new Float64Array(T);
  for (let t = 0; t < T; t++) {
    const R = range(ref.logits, t * vocab, vocab) + 1;
    let m = -Infinity;
    for (let v = 0; v < vocab; v++) m = Math.max(m, ref.logits[t * vocab + v]);
    lse[t] = le.max[t] + epsZ(n1, R) + logErr(ref.lse[t] - m) + U * Math.abs(ref.lse[t]);
  }
  const target = new Float64Array(T - 1);
  const nll = new Float64Array(T - 1);
  let ceTol = 0;
  let nllAbs = 0;
  for (let t = 0; t + 1 < T; t++) {
    target[t] = le.e[t * vocab + p.targets[t]];
    nll[t] = lse[t] + target[t] + U * Math.abs(ref.nll[t]);
    ceTol += nll[t] / (T - 1);
    nllAbs += Math.abs(ref.nll[t]);
  }
  const ce = T > 1 ? ceTol + (T * U * nllAbs) / (T - 1) + U * Math.abs(ref.ce) : 0;

  // The last position at T_s.
  const last = (T - 1) * vocab;
  let S = 0;
  let m = -Infinity;
  let deltaS = 0;
  for (let v = 0; v < vocab; v++) {
    const s = ref.logits[last + v] * inv;
    S = Math.max(S, Math.abs(s));
    m = Math.max(m, s);
    deltaS = Math.max(deltaS, inv * le.e[last + v] + U * Math.abs(s));
  }
  const R = range(ref.logits, last, vocab, inv) + 1;
  let mean = 0;
  for (let v = 0; v < vocab; v++) mean += ref.q[v] * ref.logits[last + v] * inv;
  let G = 0;
  let absDev = 0;
  let variance = 0;
  for (let v = 0; v < vocab; v++) {
    const s = ref.logits[last + v] * inv;
    G += ref.q[v] * (m - s);
    absDev += ref.q[v] * Math.abs(s - mean);
    variance += ref.q[v] * (s - mean) ** 2;
  }
  const eps = epsZ(n1, R);
  const dLnZ = eps + logErr(ref.lseTemp - m);
  const lseTemp = deltaS + dLnZ + U * Math.abs(ref.lseTemp);
  const dMu = (3 * eps + 5 * U) * G + (2 * S + R) * U;
  const entropy = dLnZ + dMu + U * ref.entropy + deltaS * absDev + deltaS ** 2 * (1 + variance);
  const loss = (1 - lambda) * ce + lambda * entropy + 3 * U * (Math.abs((1 - lambda) * ref.ce) + Math.abs(lambda * ref.entropy));
  return { lse, target, nll, ce, lseTemp, entropy, loss };
}

interface GradBoundInput {
  p: XentProblem;
  ref: XentGradRef;
  le: LogitErrors;
  tol: ForwardTolerance;
}

/**
 * Bound on |GPU dδ_k − ∇_k|: Σ_v |W_vk|·Δc_v (the coefficients' errors) plus the rounding of the
 * sum Σ_v W_vk·c_v, ≤ D·U·Σ_v |W_vk·c_v| where D is the longest chain of roundings a product
 * goes through. To first order (second-order terms are below 10^-3 of these; × 1.001 covers them):
 *
 * fused: p̂ = exp(fl(ẑ − LSÊ)) has relative error ρ ≤ e + ΔLSE + (6 + 5|z − LSE|)U (argument and
 *   exp); w·p̂ and the serial sum into c_v (T positions, count_v onehots, λg) add
 *   ≤ (T + count_v + 4)U, also on the onehots' w (which itself rounds twice). The entropy term k·exp(ℓ)·(ℓ + H), ℓ = fl(fl(z·inv) − LSE_Ts):
 *   Δℓ ≤ inv·e + U|s| + ΔLSE_Ts + U|ℓ|; q's relative error Δℓ + (6 + 4|ℓ|)U; (ℓ + H)'s absolute
 *   error Δℓ + ΔH + U|ℓ + H|; the products 4U. D = 8 (a pair's two dots) + n1 (its invocation's
 *   pairs) + 64 (reduce: 32 strided sums, then 32).
 * unfused: logits as above (matmul), p from softmax.wgsl: relative ρ ≤ e + max_t e (the
 *   normaliser) + ε_softmax + (7 + 5|z − m|)U; H by a serial sum over V (the test kernel);
 *   D = V + 2 (the GEMV's serial sum over the vocabulary).
 */
function gradTolerance(g: GradBoundInput, mode: 'fused' | 'unfused'): Float64Array {
  const { p, ref, le, tol } = g;
  const { dim, vocab, positions: T, lambda } = p;
  const f = ref.forward;
  const inv = 1 / p.temperature;
  const w = T > 1 ? (1 - lambda) / (T - 1) : 0;
  const dc = new Float64Array(vocab);
  const count = new Float64Array(vocab);
  for (let t = 0; t + 1 < T; t++) count[p.targets[t]]++;
  const lastRow = (T - 1) * vocab;
  let mLast = -Infinity;
  for (let v = 0; v < vocab; v++) mLast = Math.max(mLast, f.logits[lastRow + v] * inv);
  const rLast = range(f.logits, lastRow, vocab, inv) + 1;

  // The entropy of the unfused path: −Σ q̂ ln q̂ over V, serially.
  let dHUnfused = 0;
  const rhoQ = new Float64Array(vocab);
  for (let v = 0; v < vocab; v++) {
    const s = f.logits[lastRow + v] * inv;
    rhoQ[v] = inv * (le.e[lastRow + v] + le.max[T - 1]) + 2 * U * Math.abs(s) + epsSoftmax(vocab, rLast) + (7 + 5 * (mLast - s)) * U;
  }
  if (mode === 'unfused') {
    let sumAbs = 0;
    for (let v = 0; v < vocab; v++) {
      const lnq = Math.log(f.q[v]);
      const qlnq = Number.isFinite(lnq) ? f.q[v] * Math.abs(lnq) : 0;
      dHUnfused += f.q[v] * (Math.abs(lnq + 1) * rhoQ[v] + 6 * U * Math.abs(lnq) + 2 ** -21) + 2 * U * qlnq;
      sumAbs += qlnq;
    }
    dHUnfused += (vocab + 2) * U * sumAbs + 1e-30;
  }

  for (let t = 0; t + 1 < T; t++) {
    const R = range(f.logits, t * vocab, vocab) + 1;
    let m = -Infinity;
    for (let v = 0; v < vocab; v++) m = Math.max(m, f.logits[t * vocab + v]);
    for (let v = 0; v < vocab; v++) {
      const z = f.logits[t * vocab + v];
      const pv = Math.exp(z - f.lse[t]);
      const rho = mode === 'fused'
        ? le.e[t * vocab + v] + tol.lse[t] + (6 + 5 * Math.abs(z - f.lse[t])) * U
        : le.e[t * vocab + v] + le.max[t] + epsSoftmax(vocab, R) + (7 + 5 * (m - z)) * U;
      dc[v] += w * pv * (rho + (T + count[v] + 4) * U);
    }
  }
  for (let v = 0; v < vocab; v++) {
    const chain = (T + count[v] + 4) * U; // the adds into c_v: T positions' p, count_v onehots, λg
    dc[v] += w * count[v] * chain;
    const s = f.logits[lastRow + v] * inv;
    const l = s - f.lseTemp; // ln q
    const q = f.q[v];
    let dg: number;
    if (mode === 'fused') {
      const dl = inv * le.e[lastRow + v] + U * Math.abs(s) + tol.lseTemp + U * Math.abs(l);
      dg = inv * q * ((dl + (6 + 4 * Math.abs(l)) * U + 4 * U) * Math.abs(l + f.entropy) + dl + tol.entropy + U * Math.abs(l + f.entropy));
    } else {
      const dl = rhoQ[v] + 6 * U * Math.abs(l) + 2 ** -21;
      dg = inv * q * ((rhoQ[v] + 4 * U) * Math.abs(l + f.entropy) + dl + dHUnfused + U * Math.abs(l + f.entropy));
    }
    dc[v] += lambda * dg + chain * lambda * inv * q * Math.abs(l + f.entropy);
  }
  const D = mode === 'fused' ? 8 + pairsPerInvocation(vocab) + MERGE_LEVELS : vocab + 2;
  const out = new Float64Array(dim);
  for (let k = 0; k < dim; k++) {
    let a = 0;
    let r = 0;
    for (let v = 0; v < vocab; v++) {
      const wv = Math.abs(p.W[v * dim + k]);
      a += wv * dc[v];
      r += wv * Math.abs(ref.coefficients[v]);
    }
    out[k] = 1.001 * (a + D * U * r);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Checks

interface Worst {
  ratio: number;
  rel: number;
}

/** Asserts |got − want| ≤ tol elementwise; returns the worst error/tolerance and max-norm relative error. */
function close(got: ArrayLike<number>, want: ArrayLike<number>, tol: ArrayLike<number>, what: string): Worst {
  assert.equal(got.length, want.length, `${what}: length`);
  let ratio = 0;
  let err = 0;
  let scale = 0;
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i] - want[i]);
    if (!(e <= tol[i])) {
      assert.fail(`${what}[${i}]: ${got[i]}, expected ${want[i]} ± ${tol[i].toExponential(2)} (error ${e.toExponential(2)})`);
    }
    ratio = Math.max(ratio, tol[i] > 0 ? e / tol[i] : 0);
    err = Math.max(err, e);
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return { ratio, rel: scale > 0 ? err / scale : err };
}

const fmt = (w: Worst) => `${w.ratio.toFixed(3)}× tol, rel ${w.rel.toExponential(1)}`;

type Diag = (message: string) => void;

/** (a) + (c, vs CPU): the fused kernels against the float64 reference; returns what it computed. */
async function checkFused(c: Case, diag: Diag) {
  const pr = problem(c);
  const { p } = pr;
  const T = p.positions;
  const ref = xentGradRef(p, pr.delta);
  const f = ref.forward;
  const le = logitErrors(p, pr.delta, pr.exactLogits);
  const tol = forwardTolerance(p, f, le);
  const got = await runFused(pr);
  const rec = (t: number, i: number) => got.stats[4 * (1 + t) + i];
  const range_ = Array.from({ length: T }, (_, t) => t);
  const what = `dim ${p.dim} vocab ${p.vocab} T ${T} λ ${p.lambda}${pr.exactLogits ? ' dyadic' : ''}`;

  const lse = close(range_.map((t) => rec(t, 0)), f.lse, tol.lse, `${what}: LSE`);
  const targets = range_.slice(0, T - 1);
  const tl = close(targets.map((t) => rec(t, 1)), f.targetLogit, tol.target, `${what}: target logit`);
  const nll = close(targets.map((t) => rec(t, 2)), f.nll, tol.nll, `${what}: nll`);
  assert.deepEqual([rec(T - 1, 1), rec(T - 1, 2)], [0, 0], `${what}: the last position has no target`);
  assert.deepEqual(range_.map((t) => rec(t, 3)), range_.map(() => 0), `${what}: record padding`);
  const [loss, ce, entropy, lseTemp] = got.stats;
  const summary = close([loss, ce, entropy, lseTemp], [f.loss, f.ce, f.entropy, f.lseTemp],
    [tol.loss, tol.ce, tol.entropy, tol.lseTemp], `${what}: (loss, CE, entropy, LSE at T_s)`);
  if (T === 1) assert.equal(ce, 0, `${what}: CE with no targets`);

  const gradTol = gradTolerance({ p, ref, le, tol }, 'fused');
  const grad = close(got.grad, ref.grad, gradTol, `${what}: dδ`);
  diag(`${what}: LSE ${fmt(lse)}; target ${fmt(tl)}; nll ${fmt(nll)}; summary ${fmt(summary)}; dδ ${fmt(grad)}`);
  return { pr, ref, le, tol, got };
}

// ---------------------------------------------------------------------------------------------
// (c) the unfused GPU path

const UNFUSED_WGSL = /* wgsl */ `
// Test-only: the coefficients c_v = (1−λ)/(T−1)·Σ_{t<T−1}(p_t[v] − [v = y_t]) + λ·g_v from
// stored probabilities, g_v = −(q_v/T_s)(ln q_v + H), and H = −Σ q ln q by one invocation.
override VOCAB: u32;
struct Params { positions: u32, lambda: f32, inv_temp: f32, _pad: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> probs: array<f32>;  // [T][VOCAB]
@group(0) @binding(2) var<storage, read> q: array<f32>;      // [VOCAB]
@group(0) @binding(3) var<storage, read> targets: array<u32>;
@group(0) @binding(4) var<storage, read_write> ent: array<f32>;
@group(0) @binding(5) var<storage, read_write> coef: array<f32>;

@compute @workgroup_size(1)
fn entropy() {
  var h = 0.0;
  for (var v = 0u; v < VOCAB; v++) {
    let qv = q[v];
    if (qv > 0.0) { h -= qv * log(qv); }
  }
  ent[0] = h;
}

@compute @workgroup_size(64)
fn coefficients(@builtin(global_invocation_id) gid: vec3<u32>) {
  let v = gid.x;
  if (v >= VOCAB) { return; }
  let n = params.positions;
  var c = 0.0;
  if (n > 1u) {
    let w = (1.0 - params.lambda) / f32(n - 1u);
    for (var t = 0u; t + 1u < n; t++) {
      c += w * (probs[t * VOCAB + v] - select(0.0, 1.0, targets[t] == v));
    }
  }
  let qv = q[v];
  if (qv > 0.0) { c += params.lambda * (-(qv * params.inv_temp) * (log(qv) + ent[0])); }
  coef[v] = c;
}
`;

async function runUnfused(pr: Problem): Promise<Float32Array> {
  const { dim, vocab, positions: T, lambda, temperature } = pr.p;
  assert.equal(vocab % 4, 0, 'the unfused path needs vocab % 4 == 0 (matmul rows are whole vec4s, softmax reads VOCAB columns)');
  const x = new Float32Array(T * dim);
  for (let t = 0; t < T; t++) for (let k = 0; k < dim; k++) x[t * dim + k] = pr.hidden[t * dim + k] + pr.delta[k];
  const softmaxParams = (invTemp: number, rows: number) => {
    const bytes = new ArrayBuffer(16);
    new DataView(bytes).setFloat32(0, invTemp, true);
    new DataView(bytes).setUint32(4, rows, true);
    return gpu.uniform(bytes, 'softmax params');
  };
  const stepT = await gpu.step({ nTokens: T });
  const step1 = await gpu.step({ nTokens: 1 });
  const wcls = await gpu.upload(transposeConcat([pr.W], dim), 'wcls');
  const logits = await gpu.alloc(T * vocab, Number.NaN, 'logits');
  const logitsLast = await gpu.alloc(vocab, Number.NaN, 'logits last');
  const probs = await gpu.alloc(T * vocab, Number.NaN, 'probs');
  const q = await gpu.alloc(vocab, Number.NaN, 'q');
  const ent = await gpu.alloc(4, Number.NaN, 'entropy');
  const coef = await gpu.alloc(vocab, Number.NaN, 'coef');
  const grad = await gpu.alloc(dim, Number.NaN, 'grad');
  const params = await gpu.uniform(xentParams(T, lambda, temperature), 'params');
  const targets = await gpu.upload(new Uint32Array(Math.max(1, T - 1)).map((_, t) => pr.p.targets[t] ?? 0), 'targets');
  const k = gpu.kernels;
  const test = async (entryPoint: string, grid: [number, number, number]): Promise<KernelCall> => {
    const pipeline = await k.pipelines.get({ name: 'xent-unfused-test', code: UNFUSED_WGSL, entryPoint, constants: { VOCAB: vocab } });
    const buffers = entryPoint === 'entropy' ? [null, null, q, null, ent] : [params, probs, q, targets, ent, coef];
    return { label: entryPoint, pipeline, bindGroup: bindGroupFor(gpu.ctx, pipeline, entryPoint, buffers), grid: () => grid };
  };
  const calls = [
    await k.matmul('logits', { k: dim, n: vocab, accumulate: false, rowsPerInvocation: 4 }, { step: stepT, x: await gpu.upload(x), w: wcls, y: logits }),
    await k.matmul('logits last', { k: dim, n: vocab, accumulate: false, rowsPerInvocation: 1 },
      { step: step1, x: await gpu.upload(x.subarray((T - 1) * dim)), w: wcls, y: logitsLast }),
    await k.softmax('p', vocab, { params: await softmaxParams(1, T), logits, probs }),
    await k.softmax('q', vocab, { params: await softmaxParams(1 / temperature, 1), logits: logitsLast, probs: q }),
    await test('entropy', [1, 1, 1]),
    await test('coefficients', [Math.ceil(vocab / 64), 1, 1]),
    // dδ = Wᵀc: x = c (one row of `vocab` features), and W row-major [vocab][dim] is the [k][n] layout.
    await k.matmul('grad', { k: vocab, n: dim, accumulate: false, rowsPerInvocation: 1 }, { step: step1, x: coef, w: await gpu.upload(pr.W), y: grad }),
  ];
  // nTokens = T: the T-row GEMM and softmax; the one-row launches read step1 and skip rows ≥ 1.
  const [g] = await gpu.run(calls, { nTokens: T, statsRows: 0 }, [grad]);
  assert.deepEqual(gpu.ctx.uncapturedErrors, []);
  return new Float32Array(g);
}

// ---------------------------------------------------------------------------------------------
// Tests

const SRGEN = { lambda: 0.05, temperature: 0.6 };

describe('xent: fused forward and backward vs float64', () => {
  for (const T of [1, 2, 17]) {
    test(`dim 288 vocab 32000 T ${T}`, async (t) => {
      await checkFused({ dim: 288, vocab: 32000, T, ...SRGEN, seed: 100 + T }, (m) => t.diagnostic(m));
    });
  }
  // vocab 37: 10 vec4 columns, the last with one real id; T across one and two 8-position blocks.
  for (const T of [5, 8, 9]) {
    test(`dim 8 vocab 37 T ${T}`, async (t) => {
      await checkFused({ dim: 8, vocab: 37, T, ...SRGEN, seed: 200 + T }, (m) => t.diagnostic(m));
    });
  }
  // vocab 9001: V4 = 2251 is odd, so column pair 1125 has no partner, and the last column (the
  // partner of 1124) holds one real id; 1126 pairs over 1024 invocations (two for some);
  // T = 11 leaves a block of three.
  test('dim 12 vocab 9001 T 11, temperature 1.7', async (t) => {
    await checkFused({ dim: 12, vocab: 9001, T: 11, lambda: 0.3, temperature: 1.7, seed: 300 }, (m) => t.diagnostic(m));
  });
  // Exact logits: the target logits must be exact, and the tolerances keep only the reductions'
  // roundings (at dim 288 the logit errors are most of them). At vocab 37 an id missed or counted
  // twice would move LSE by its probability, ≥ 10^-3 here: far outside.
  for (const [dim, vocab, T] of [[288, 32000, 9], [8, 37, 5], [12, 9001, 11]]) {
    test(`dyadic dim ${dim} vocab ${vocab} T ${T}`, async (t) => {
      await checkFused({ dim, vocab, T, ...SRGEN, seed: 350 + T, dyadic: true }, (m) => t.diagnostic(m));
    });
  }
});

describe('xent: λ and T edge cases', () => {
  for (const lambda of [0, 1]) {
    test(`λ = ${lambda}: loss = ${lambda === 0 ? 'CE' : 'entropy'}`, async (t) => {
      for (const [dim, vocab, T] of [[8, 37, 5], [288, 32000, 3]]) {
        const { got } = await checkFused({ dim, vocab, T, lambda, temperature: 0.6, seed: 400 + T }, (m) => t.diagnostic(m));
        // (1−λ)·CE + λ·H is exactly CE at λ = 0 and exactly H at λ = 1 in float32 too.
        assert.equal(got.stats[0], lambda === 0 ? got.stats[1] : got.stats[2], 'loss');
      }
    });
  }
  test('T = 1: CE = 0, loss = λ·Ent, dδ = λ·Wᵀg; λ = 0 gives exactly zero', async (t) => {
    for (const lambda of [0, 0.05, 1]) {
      const { got, ref } = await checkFused({ dim: 8, vocab: 37, T: 1, lambda, temperature: 0.6, seed: 500 }, (m) => t.diagnostic(m));
      assert.equal(got.stats[1], 0, 'CE');
      assert.equal(ref.forward.loss, lambda * ref.forward.entropy);
      if (lambda === 0) {
        assert.equal(got.stats[0], 0, 'loss');
        assert.ok(got.grad.every((g) => g === 0), `dδ = ${Array.from(got.grad)}`);
      }
    }
  });
});

describe('xent: reference gradient vs central differences', () => {
  // (f(δ + h·e_k) − f(δ − h·e_k)) / 2h: truncation h²/6·|f'''| (~1e-10 here: third derivatives
  // are sums of W³ terms of size ≲ 10) plus rounding ~2^-53·|f|/h (~1e-10 at |f| ≈ 10); we allow
  // 1e-6 of the gradient's max norm. h = 1e-5.
  const h = 1e-5;
  const cases: Case[] = [
    { dim: 8, vocab: 37, T: 5, ...SRGEN, seed: 600 },
    { dim: 8, vocab: 37, T: 1, ...SRGEN, seed: 601 },
    { dim: 16, vocab: 203, T: 9, lambda: 0.4, temperature: 1.3, seed: 602 },
    { dim: 16, vocab: 203, T: 9, lambda: 0, temperature: 1.3, seed: 603 },
    { dim: 16, vocab: 203, T: 9, lambda: 1, temperature: 1.3, seed: 604 },
  ];
  for (const c of cases) {
    test(`dim ${c.dim} vocab ${c.vocab} T ${c.T} λ ${c.lambda}: every coordinate`, (t) => {
      const { p, delta } = problem(c);
      const g = xentGradRef(p, delta).grad;
      const d = Float64Array.from(delta);
      const fd = new Float64Array(c.dim);
      for (let k = 0; k < c.dim; k++) {
        const plus = Float64Array.from(d);
        const minus = Float64Array.from(d);
        plus[k] += h;
        minus[k] -= h;
        fd[k] = (xentLossRef(p, plus) - xentLossRef(p, minus)) / (2 * h);
      }
      const scale = Math.max(...Array.from(g, Math.abs));
      const w = close(fd, g, Array.from(g, () => 1e-6 * scale), 'finite differences');
      t.diagnostic(`max |fd − ∇| / max |∇| = ${w.rel.toExponential(2)} (h = ${h})`);
    });
  }
  test('dim 288 vocab 32000 T 4: one random direction', (t) => {
    const { p, delta } = problem({ dim: 288, vocab: 32000, T: 4, ...SRGEN, seed: 605 });
    const g = xentGradRef(p, delta).grad;
    const u = randn(mulberry32(7), p.dim);
    const norm = Math.hypot(...u);
    const shifted = (s: number) => Float64Array.from(delta, (x, k) => x + (s * u[k]) / norm);
    const fd = (xentLossRef(p, shifted(h)) - xentLossRef(p, shifted(-h))) / (2 * h);
    const dir = g.reduce((a, x, k) => a + (x * u[k]) / norm, 0);
    const gNorm = Math.hypot(...g);
    t.diagnostic(`|fd − ∇·u| / |∇| = ${(Math.abs(fd - dir) / gNorm).toExponential(2)} (h = ${h})`);
    assert.ok(Math.abs(fd - dir) <= 1e-6 * gNorm, `directional derivative ${fd} vs ${dir}`);
  });
});

describe('xent: fused vs unfused GPU gradient', () => {
  for (const c of [{ dim: 288, vocab: 32000, T: 17 }, { dim: 8, vocab: 36, T: 5 }]) {
    test(`dim ${c.dim} vocab ${c.vocab} T ${c.T}`, async (t) => {
      const diag = (m: string) => t.diagnostic(m);
      const { pr, ref, le, tol, got } = await checkFused({ ...c, ...SRGEN, seed: 700 + c.T }, diag);
      const unfused = await runUnfused(pr);
      const tolU = gradTolerance({ p: pr.p, ref, le, tol }, 'unfused');
      const tolF = gradTolerance({ p: pr.p, ref, le, tol }, 'fused');
      const u = close(unfused, ref.grad, tolU, 'unfused dδ vs float64');
      const fu = close(got.grad, unfused, Array.from(tolU, (x, k) => x + tolF[k]), 'fused vs unfused dδ');
      diag(`unfused vs float64: ${fmt(u)}; fused vs unfused: ${fmt(fu)}`);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// xent_linear.wgsl: the same loss and dδ from kept logits z_t = W·h_t (Kernels.xentLinear)

/**
 * Kept logits by Kernels.matmul (the session's fill GEMM) and xentKeep (E_t, max z_t), then
 * xentLinear forward + backward.
 */
async function runLinear(pr: Problem): Promise<GpuXent> {
  const { dim, vocab, positions: T } = pr.p;
  const v4 = Math.ceil(vocab / 4);
  const wcls = await gpu.upload(transposeConcat([pr.W], dim), 'wcls');
  const fillOut = await gpu.alloc(T * 4 * v4, Number.NaN, 'fill out');
  const kept = await gpu.alloc(T * 4 * v4, Number.NaN, 'kept');
  const rowMax = await gpu.alloc(T, Number.NaN, 'row max');
  const step = await gpu.step({ nTokens: T, statsRowStart: 0, statsRows: T });
  const fill = await gpu.kernels.matmul('fill', { k: dim, n: vocab, accumulate: false, rowsPerInvocation: 4, yN: 4 * v4 },
    { step, x: await gpu.upload(pr.hidden, 'hidden'), w: wcls, y: fillOut });
  const keep = await gpu.kernels.xentKeep('keep', { dim, vocab }, { step, fillOut, kept, rowMax });
  await gpu.run([fill, keep], { nTokens: T, statsRows: T }, []);
  const b = {
    params: await gpu.uniform(xentParams(T, pr.p.lambda, pr.p.temperature), 'params'),
    kept, rowMax, wcls,
    shift: await gpu.alloc(4 * v4 + 4, Number.NaN, 'shift'),
    delta: await gpu.upload(pr.delta, 'delta'),
    oneRowStep: await gpu.step({ nTokens: 1 }),
    targets: await gpu.upload(new Uint32Array(Math.max(1, T - 1)).map((_, t) => pr.p.targets[t] ?? 0), 'targets'),
    u: await gpu.alloc(4 * v4, Number.NaN, 'u'),
    coef: await gpu.alloc(4 * v4 + 4, Number.NaN, 'coef'),
    stats: await gpu.alloc(xentStatsBytes(T + 1) / 4, Number.NaN, 'stats'),
    grad: await gpu.alloc(dim + 4, Number.NaN, 'grad'),
  };
  const calls = await gpu.kernels.xentLinear('xent_linear', { dim, vocab, backward: true }, b);
  const [s, g, c] = await gpu.run(bound(calls, { positions: T }), NO_STEP, [b.stats, b.grad, b.coef]);
  const stats = new Float32Array(s);
  const grad = new Float32Array(g);
  const coef = new Float32Array(c);
  for (let i = 4 * (T + 1); i < stats.length; i++) assert.ok(Number.isNaN(stats[i]), `stats written past record ${T}`);
  for (let i = dim; i < grad.length; i++) assert.ok(Number.isNaN(grad[i]), 'grad written past dim');
  for (let i = vocab; i < 4 * v4; i++) assert.equal(coef[i], 0, `coefficient of padding lane ${i}`);
  for (let i = 4 * v4; i < coef.length; i++) assert.ok(Number.isNaN(coef[i]), 'coef written past its columns');
  assert.deepEqual(gpu.ctx.uncapturedErrors, []);
  return { stats: stats.subarray(0, 4 * (T + 1)), grad: grad.subarray(0, dim) };
}

describe('xent_linear: kept logits vs float64', () => {
  // vocab 37: 10 vec4 columns (fewer than a forward workgroup's 64 invocations), the last with one
  // real id; vocab 9001: V4 = 2251 is odd (the coefficients' last column has no partner); T = 1.
  const cases: Case[] = [
    { dim: 8, vocab: 37, T: 5, ...SRGEN, seed: 800 },
    { dim: 8, vocab: 37, T: 1, ...SRGEN, seed: 801 },
    { dim: 12, vocab: 9001, T: 11, lambda: 0.3, temperature: 1.7, seed: 802 },
    { dim: 288, vocab: 32000, T: 17, ...SRGEN, seed: 803 },
    // Logits spread over ~70 nats and u = W·δ over hundreds: rows whose Z_t underflows take the
    // exp path.
    { dim: 8, vocab: 37, T: 6, ...SRGEN, seed: 804, deltaScale: 40, hiddenScale: 4 },
  ];
  for (const c of cases) {
    test(`dim ${c.dim} vocab ${c.vocab} T ${c.T}`, async (t) => {
      const pr = problem(c);
      const ref = xentGradRef(pr.p, pr.delta);
      const f = ref.forward;
      const got = await runLinear(pr);
      // z_t + W·δ rounds differently from W·(h_t + δ): float32 rounding of logits |z| ≲ 30.
      const near = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) <= 2e-5 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);
      const [loss, ce, entropy, lseTemp] = got.stats;
      near(loss, f.loss, 'loss');
      near(ce, f.ce, 'CE');
      near(entropy, f.entropy, 'entropy');
      near(lseTemp, f.lseTemp, 'LSE at T_s');
      for (let p = 0; p < c.T; p++) near(got.stats[4 * (1 + p)], f.lse[p], `LSE_${p}`);
      // r_t = 1/Z_t of the multiply-add path, or −1 where a row took the exp path.
      const paths = Array.from({ length: c.T }, (_, p) => (got.stats[4 * (1 + p) + 3] < 0 ? 'exp' : 'fma'));
      t.diagnostic(`row paths: ${paths.join(' ')}`);
      if (c.deltaScale) assert.ok(paths.includes('exp'), 'a huge δ sends some row down the exp path');
      else assert.ok(!paths.includes('exp'), 'no row needs the exp path');
      const gmax = Math.max(...Array.from(ref.grad, Math.abs));
      let err = 0;
      for (let k = 0; k < c.dim; k++) err = Math.max(err, Math.abs(got.grad[k] - ref.grad[k]));
      t.diagnostic(`loss ${f.loss.toFixed(6)} Δ ${(loss - f.loss).toExponential(1)}; max|Δdδ|/max|dδ| ${(err / gmax).toExponential(2)}`);
      assert.ok(err <= 1e-4 * gmax, `dδ differs by ${err} (max |dδ| ${gmax})`);
    });
  }
});
