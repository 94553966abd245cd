// Samplers (algorithms.md §4): repetition penalty → temperature → top-k → top-p → min-p →
// typical, as HF transformers applies them, then one draw from what is left, renormalised, with
// the counter-based RNG of rng.ts keyed by (seed, KV row, position, counter). Top-H, when on, runs
// first after temperature, on the full distribution at T (its authors pass it as a custom logits
// processor, which HF applies before its warpers); the other stages then act on what it kept.
//
// The CPU never sees logits. It sees a StepStats record: the K (≤ 64) largest raw logits with
// their ids, and the exact full-vocabulary log-sum-exp and entropy. A stage is computed *exactly*
// (as if over the full vocabulary) whenever those numbers decide it; when they do not, it returns
// a typed NeedsFullVocabulary instead of guessing.
//
// ── What the GPU step must provide (Sampler.sampling() builds these SamplingParams) ──────────────
// * stats at statsTemperature = T (the sampler's temperature): `lse` = log Σ_v exp(z_v/T) and
//   `entropy` of softmax(z/T), over the whole vocabulary. log Σ exp(z/T) cannot be derived from
//   log Σ exp(z) for T ≠ 1, so a step whose stats ran at another temperature leaves every stage that
//   needs the normaliser (top-H; top-p and typical without an earlier truncation) undecidable; pass
//   that temperature as `statsTemperature` in the context and those stages say so. Top-k, min-p and
//   greedy never need the normaliser. (T = 0: stats at 1, unused.)
// * `topK` sorted by (logit descending, id ascending): every token not listed comes after the K-th.
// * `sampled`, only when no truncating stage is enabled: the GPU's full-vocabulary Gumbel-max draw
//   at SamplingParams.temperature = T with the same seed and counter (the CPU cannot draw a token it
//   has never seen). With a truncating stage the GPU need not sample (temperature 0 saves its work).
//
// ── When K candidates are enough (proofs in each stage's comment) ─────────────────────────────────
// Write s_i = z_i/T (after the penalty), p_i = exp(s_i − LSE_T), and s_K for the K-th candidate;
// every tail token j (not among the candidates) has s_j ≤ s_K, so p_j ≤ p_K.
// * top-k, k ≤ K: exact. k > K: undecidable (some kept tokens are unknown).
// * top-p: exact iff the candidates' cumulative mass reaches p (p = 0: always; argmax only).
// * min-p: exact iff p_K < min_p · p_max (then every kept token is a candidate).
// * typical: tail tokens have surprisal −ln p_j ≥ −ln p_K, so their distance to H is at least
//   d_tail = max(0, −ln p_K − H). Exact iff the candidates with d_i < d_tail, taken in order of d,
//   already reach mass τ. If −ln p_K ≤ H (the K-th candidate is more probable than typical) a tail
//   token could be perfectly typical and the stage is never exact.
// * top-H (n = 100 > K): S_n is known only within [S_K, S_K + g], g the largest entropy the n − K
//   unknown tokens can carry (each q ≤ p_K, together ≤ 1 − Σ_K q). Exact iff the kept count m is the
//   same at both ends and the first excluded token is a candidate; α = 1 (keep n) never is. It runs
//   first, so it always sees the open full-vocabulary distribution (q not renormalised).
// * After any exact truncation the support is closed (a few known tokens) and every later stage is
//   exact. With no truncating stage the token is the GPU's `sampled` (exact by construction).
// * Repetition penalty: exact on the candidates. A penalised token outside the candidates changes
//   the tail by an unknown amount: then every stage that needs the normaliser is undecidable, and
//   so is sampling without truncation (the GPU's draw is of the unpenalised logits). Penalty < 1
//   can also lift such a token above candidates, which the order bound accounts for.
// "Exact" is with respect to the stats as given: they carry float32 rounding (lse within ~1e-5,
// see test/support/engine.ts), so a decision that sits within that of its threshold can differ
// from a float64 reference.
//
// Ties: tokens are ordered by (scaled logit descending, id ascending), the GPU's order, so top-k
// keeps exactly k tokens (HF's torch.topk keeps ties at the k-th value; exact float ties are rare).
// Dividing distinct float32 logits by T in float64 keeps them distinct, so the order is the GPU's.
//
// Determinism across Node and Chromium: the RNG is integer-only (rng.ts); the draw uses +, *, /,
// Math.exp and Math.log in float64. ECMAScript does not pin Math.exp/Math.log to the last bit, but
// both runtimes here are V8, whose fdlibm ports give the same bits on every platform.
import { InvalidArgumentError, checkInteger, checkNumber } from '../errors.ts';
import type { SamplingParams } from '../runtime/session.ts';
import type { StepStats } from '../runtime/stats.ts';
import { uniform01 } from './rng.ts';

// ---------------------------------------------------------------------------------------------
// Types

export type Stage = 'stats' | 'repetition-penalty' | 'entropy-top-k' | 'temperature' | 'top-k' | 'top-p' | 'min-p' | 'typical' | 'top-H' | 'sample';

/**
 * A position in the token order (scaled logit descending, id ascending). Every token outside the
 * candidates comes strictly after it: logit < bound.logit, or logit = bound.logit and id > bound.id.
 * id −1 means a tail token may tie with a candidate at exactly this logit in either order.
 */
export interface OrderBound {
  readonly logit: number;
  readonly id: number;
}

/**
 * Sums over the tail tokens at a given temperature, in units of s = z/temperature:
 * z = Σ_tail e^(s − ref), a = Σ_tail e^(s − ref)·(s − ref). With ref = the full LSE, z is the tail's
 * probability mass and a = Σ_tail p ln p. Valid only for a distribution at that same temperature.
 */
export interface TailSums {
  readonly temperature: number;
  readonly ref: number;
  readonly z: number;
  readonly a: number;
}

export interface Tail {
  readonly bound: OrderBound;
  /** null: unknown (the repetition penalty changed tokens the CPU cannot see). */
  readonly sums: TailSums | null;
}

/**
 * A next-token distribution as the CPU knows it: candidates with their scaled logits (after the
 * penalty, s = z/temperature), sorted by (s desc, id asc), plus what is known of the other tokens.
 * Probabilities are exp(s − LSE) over the whole support; `tail` null means the candidates are the
 * whole support (after a truncation: the distribution renormalised over them).
 */
export interface Distribution {
  readonly ids: readonly number[];
  readonly logits: readonly number[];
  readonly temperature: number;
  readonly tail: Tail | null;
  /** The repetition penalty changed the distribution (so the GPU's draw is not of it). */
  readonly penalized: boolean;
}

export interface NeedsFullVocabulary {
  readonly needsFullVocabulary: true;
  readonly stage: Stage;
  readonly reason: string;
}

export type StageResult = Distribution | NeedsFullVocabulary;

export function needsFullVocabulary(r: StageResult | SampleResult): r is NeedsFullVocabulary {
  if (typeof r !== 'object' || r === null) throw new InvalidArgumentError('needsFullVocabulary() needs a stage or sample result');
  return (r as NeedsFullVocabulary).needsFullVocabulary === true;
}

/**
 * Throws InvalidArgumentError unless `d` has the shape of a Distribution (shallow: the arrays and
 * the temperature, not every logit). Every public function taking a distribution calls it.
 */
export function checkDistribution(d: Distribution): Distribution {
  if (typeof d !== 'object' || d === null) throw new InvalidArgumentError('a Distribution must be an object');
  if (!Array.isArray(d.ids) || !Array.isArray(d.logits) || d.ids.length === 0 || d.ids.length !== d.logits.length) {
    throw new InvalidArgumentError('a Distribution needs ids and logits: arrays of the same non-zero length');
  }
  checkPositiveTemperature('distribution temperature', d.temperature);
  if (d.tail !== null && (typeof d.tail !== 'object' || typeof d.tail.bound !== 'object' || d.tail.bound === null)) {
    throw new InvalidArgumentError('a Distribution\'s tail must be null or { bound, sums }');
  }
  return d;
}

const inexact = (stage: Stage, reason: string): NeedsFullVocabulary => ({ needsFullVocabulary: true, stage, reason });

// ---------------------------------------------------------------------------------------------
// Building distributions

const MAX_U32 = 0xffffffff;
const MAX_COUNT = 0x7fffffff;

/** Candidates sorted by (logit desc, id asc), the GPU's order. */
function sortedCandidates(ids: readonly number[], logits: readonly number[]) {
  // Records usually come sorted (the GPU's top-K, a full row): check before sorting.
  let sorted = true;
  for (let i = 1; i < ids.length && sorted; i++) sorted = logits[i - 1] > logits[i] || (logits[i - 1] === logits[i] && ids[i - 1] < ids[i]);
  if (sorted) return { ids: [...ids], logits: [...logits] };
  const order = ids.map((_, i) => i).sort((a, b) => logits[b] - logits[a] || ids[a] - ids[b]);
  return { ids: order.map((i) => ids[i]), logits: order.map((i) => logits[i]) };
}

/** Each candidate is { id: u32, logit: finite }; the message names the first that is not. */
function checkCandidates(name: string, candidates: readonly { id: number; logit: number }[]): void {
  for (let i = 0; i < candidates.length; i++) {
    const c = candidates[i];
    // The common case without building a name per entry (a full row has 32k of them).
    if (typeof c === 'object' && c !== null && Number.isInteger(c.id) && c.id >= 0 && c.id <= MAX_U32 && Number.isFinite(c.logit)) continue;
    if (typeof c !== 'object' || c === null) throw new InvalidArgumentError(`${name}[${i}] must be { id, logit }`);
    checkInteger(`${name}[${i}].id`, c.id, 0, MAX_U32);
    checkNumber(`${name}[${i}].logit`, c.logit, -Number.MAX_VALUE, Number.MAX_VALUE);
  }
}

/** A distribution over exactly these tokens (renormalised over them), at temperature 1. */
export function closedDistribution(candidates: readonly { id: number; logit: number }[]): Distribution {
  if (!Array.isArray(candidates) || candidates.length === 0) throw new InvalidArgumentError('a distribution needs at least one candidate');
  checkCandidates('candidates', candidates);
  const sorted = sortedCandidates(candidates.map((c) => c.id), candidates.map((c) => c.logit));
  return { ...sorted, temperature: 1, tail: null, penalized: false };
}

export interface FromStatsOptions {
  /** The temperature the step's lse and entropy were computed at (SamplingParams.statsTemperature). */
  statsTemperature?: number;
  /** Vocabulary size: when the candidates cover it, nothing lies beyond them. */
  vocabSize?: number | null;
}

/**
 * The raw distribution (temperature 1, no penalty) of one StepStats record. The tail's mass and
 * Σ p ln p are derived from the full-vocabulary lse and entropy, at the stats temperature:
 * tail mass = 1 − Σ_K p_i, tail Σ p ln p = −H − Σ_K p_i ln p_i.
 */
export function fromStepStats(stats: StepStats, options: FromStatsOptions = {}): Distribution {
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('fromStepStats options must be an object');
  const statsTemperature = checkPositiveTemperature('statsTemperature', options.statsTemperature ?? 1);
  if (typeof stats !== 'object' || stats === null || !Array.isArray(stats.topK) || stats.topK.length === 0) {
    throw new InvalidArgumentError('stats.topK must hold at least one candidate');
  }
  checkNumber('stats.lse', stats.lse, -Number.MAX_VALUE, Number.MAX_VALUE);
  checkNumber('stats.entropy', stats.entropy, -Number.MAX_VALUE, Number.MAX_VALUE);
  checkCandidates('stats.topK', stats.topK);
  const sorted = sortedCandidates(stats.topK.map((c) => c.id), stats.topK.map((c) => c.logit));
  const vocabSize = options.vocabSize == null ? null : checkInteger('vocabSize', options.vocabSize, 1, MAX_COUNT);
  const covered = vocabSize !== null && sorted.ids.length >= vocabSize;
  const last = sorted.ids.length - 1;
  const tail: Tail | null = covered ? null : {
    bound: { logit: sorted.logits[last], id: sorted.ids[last] },
    sums: tailSums(sorted.logits, stats.lse, stats.entropy, statsTemperature),
  };
  return { ...sorted, temperature: 1, tail, penalized: false };
}

/** Tail sums from the full lse and entropy at temperature t (raw logits, sorted descending). */
function tailSums(logits: readonly number[], lse: number, entropy: number, t: number): TailSums {
  let mass = 0;
  let plogp = 0;
  for (const z of logits) {
    const lp = z / t - lse;
    mass += Math.exp(lp);
    plogp += Math.exp(lp) * lp;
  }
  const z = Math.max(0, 1 - mass);
  // Each tail token has ln p ≤ ln p_K, so Σ_tail p ln p ≤ z·ln p_K; float32 stats can break that.
  const lnPK = logits[logits.length - 1] / t - lse;
  const a = z === 0 ? 0 : Math.min(-entropy - plogp, z * lnPK, 0);
  return { temperature: t, ref: lse, z, a };
}

function checkPositiveTemperature(name: string, t: number): number {
  checkNumber(name, t, MIN_TEMPERATURE, MAX_TEMPERATURE);
  return t;
}

// ---------------------------------------------------------------------------------------------
// What is known about a distribution

/** Does candidate (s, id) come before every tail token? */
function leads(s: number, id: number, bound: OrderBound): boolean {
  return s > bound.logit || (s === bound.logit && id <= bound.id);
}

/** How many leading candidates are certainly the most probable tokens of the whole support. */
export function knownLeaders(d: Distribution): number {
  checkDistribution(d);
  if (!d.tail) return d.ids.length;
  let n = 0;
  while (n < d.ids.length && leads(d.logits[n], d.ids[n], d.tail.bound)) n++;
  return n;
}

export interface Normaliser {
  /** log Σ e^s over the whole support. */
  lse: number;
  /** Entropy of the distribution, nats. */
  entropy: number;
}

/** LSE and entropy of the whole support, or null when the tail is unknown at this temperature. */
export function normaliser(d: Distribution): Normaliser | null {
  checkDistribution(d);
  if (!d.tail) return logSumExpEntropy(d.logits, null);
  const sums = d.tail.sums;
  if (!sums || sums.temperature !== d.temperature) return null;
  return logSumExpEntropy(d.logits, sums);
}

/** algorithms.md §2's (m, Z, A) reduction over the candidates plus the tail sums. */
function logSumExpEntropy(logits: readonly number[], tail: TailSums | null): Normaliser {
  const withTail = tail !== null && tail.z > 0;
  const m = withTail ? Math.max(logits[0], tail.ref) : logits[0];
  let z = 0;
  let a = 0;
  for (const s of logits) {
    const w = Math.exp(s - m);
    z += w;
    a += w * (s - m);
  }
  if (withTail) {
    const w = Math.exp(tail.ref - m);
    z += w * tail.z;
    a += w * (tail.a + tail.z * (tail.ref - m));
  }
  return { lse: m + Math.log(z), entropy: Math.max(0, Math.log(z) - a / z) };
}

function whyUnknown(d: Distribution): string {
  const sums = d.tail?.sums;
  if (!sums) return 'the repetition penalty changed tokens outside the candidates, so the full-vocabulary normaliser is unknown';
  return `the stats were computed at temperature ${sums.temperature}, not the sampling temperature ${d.temperature}, so the full-vocabulary normaliser is unknown`;
}

/** Probabilities of the candidates (aligned with d.ids), or null when the normaliser is unknown. */
export function candidateProbabilities(d: Distribution): number[] | null {
  checkDistribution(d);
  const norm = normaliser(d);
  return norm && d.logits.map((s) => Math.exp(s - norm.lse));
}

/** ln p of `id`, −∞ if a closed distribution excludes it, null if unknown. */
export function logProbOf(d: Distribution, id: number): number | null {
  checkDistribution(d);
  checkInteger('id', id, 0, MAX_U32);
  const i = d.ids.indexOf(id);
  if (i < 0) return d.tail ? null : -Infinity;
  const norm = normaliser(d);
  return norm && d.logits[i] - norm.lse;
}

/**
 * Entropy in nats, −Σ p ln(p + ε). ε = 0 (default): the exact entropy, also of an open distribution
 * when its normaliser is known. ε > 0 (CNTP uses 1e-10): closed distributions only. null if unknown.
 */
export function entropyOf(d: Distribution, epsilon = 0): number | null {
  checkDistribution(d);
  checkNumber('epsilon', epsilon, 0, 1);
  if (epsilon === 0) return normaliser(d)?.entropy ?? null;
  if (d.tail) return null;
  const { lse } = logSumExpEntropy(d.logits, null);
  return d.logits.reduce((h, s) => h - Math.exp(s - lse) * Math.log(Math.exp(s - lse) + epsilon), 0);
}

/** The first n candidates, renormalised over themselves. */
function keepFirst(d: Distribution, n: number): Distribution {
  if (!d.tail && n === d.ids.length) return d;
  return { ...d, ids: d.ids.slice(0, n), logits: d.logits.slice(0, n), tail: null };
}

// ---------------------------------------------------------------------------------------------
// Stages. Each takes a distribution and returns the next one, or why it cannot be decided.

/**
 * HF's repetition penalty: a token of `history` has its logit divided by θ when positive and
 * multiplied by θ when negative (θ > 1 makes it less likely). Exact on the candidates; a penalised
 * tail token makes the tail sums unknown, and for θ < 1 it may rise to pen(bound) (in any id order).
 */
export function applyRepetitionPenalty(d: Distribution, penalty: number, history: readonly number[]): Distribution {
  checkDistribution(d);
  checkNumber('repetitionPenalty', penalty, MIN_PENALTY, MAX_PENALTY);
  checkHistory(history);
  if (penalty === 1 || history.length === 0) return d;
  const seen = new Set(history);
  const pen = (s: number) => (s < 0 ? s * penalty : s / penalty);
  const logits = d.logits.map((s, i) => (seen.has(d.ids[i]) ? pen(s) : s));
  const sorted = sortedCandidates(d.ids, logits);
  let tail = d.tail;
  if (tail) {
    const listed = new Set(d.ids);
    const hidden = [...seen].some((id) => !listed.has(id));
    if (hidden) {
      const bound = penalty < 1 ? { logit: pen(tail.bound.logit), id: -1 } : tail.bound;
      tail = { bound, sums: null };
    }
  }
  return { ...d, ...sorted, tail, penalized: true };
}

/**
 * OpenAI's additive penalties: a token seen c > 0 times in `history` has its logit lowered by
 * c·frequency + presence (negative values raise it). Exact on the candidates; a penalised tail
 * token makes the tail sums unknown, and a raised one may pass the bound (in any id order).
 */
export function applyAdditivePenalties(d: Distribution, frequency: number, presence: number, history: readonly number[]): Distribution {
  checkDistribution(d);
  checkNumber('frequencyPenalty', frequency, -MAX_ADDITIVE_PENALTY, MAX_ADDITIVE_PENALTY);
  checkNumber('presencePenalty', presence, -MAX_ADDITIVE_PENALTY, MAX_ADDITIVE_PENALTY);
  checkHistory(history);
  if ((frequency === 0 && presence === 0) || history.length === 0) return d;
  const counts = new Map<number, number>();
  for (const id of history) counts.set(id, (counts.get(id) ?? 0) + 1);
  const cut = (id: number) => {
    const c = counts.get(id) ?? 0;
    return c === 0 ? 0 : c * frequency + presence;
  };
  const sorted = sortedCandidates(d.ids, d.logits.map((s, i) => s - cut(d.ids[i])));
  let tail = d.tail;
  if (tail) {
    const listed = new Set(d.ids);
    const hidden = [...counts.keys()].filter((id) => !listed.has(id));
    if (hidden.length > 0) {
      const rise = Math.max(0, ...hidden.map((id) => -cut(id)));
      tail = { bound: rise > 0 ? { logit: tail.bound.logit + rise, id: -1 } : tail.bound, sums: null };
    }
  }
  return { ...d, ...sorted, tail, penalized: true };
}

/** Divides the scaled logits by T / d.temperature (so z/T exactly from a raw distribution). */
export function applyTemperature(d: Distribution, temperature: number): Distribution {
  checkDistribution(d);
  checkPositiveTemperature('temperature', temperature);
  if (temperature === d.temperature) return d;
  const scale = temperature / d.temperature;
  const tail = d.tail && { ...d.tail, bound: { ...d.tail.bound, logit: d.tail.bound.logit / scale } };
  return { ...d, logits: d.logits.map((s) => s / scale), temperature, tail };
}

/** Temperature 0: the most probable token, if it is certainly a candidate. */
export function greedy(d: Distribution): StageResult {
  checkDistribution(d);
  if (knownLeaders(d) === 0) {
    return inexact('temperature', 'greedy: a penalised token outside the candidates may now have the largest logit');
  }
  return keepFirst(d, 1);
}

/** Keeps the k most probable tokens (0 = off). Exact iff the k are known candidates. */
export function applyTopK(d: Distribution, k: number): StageResult {
  checkDistribution(d);
  checkInteger('topK', k, 0, MAX_COUNT);
  if (k === 0) return d;
  if (!d.tail) return keepFirst(d, Math.min(k, d.ids.length));
  const leaders = knownLeaders(d);
  if (k <= leaders) return keepFirst(d, k);
  return inexact('top-k', `top-k ${k} needs tokens beyond the ${leaders} candidates known to lead the vocabulary`);
}

/**
 * Keeps the smallest prefix (by probability) whose mass reaches p: token i stays iff the mass
 * before it is < p, as HF (p = 1: off; p = 0: the argmax). Tail tokens come after every candidate
 * that leads, so once the leaders' mass reaches p no tail token can stay: exact iff it does.
 */
export function applyTopP(d: Distribution, p: number): StageResult {
  checkDistribution(d);
  checkNumber('topP', p, 0, 1);
  if (p === 1) return d;
  const leaders = knownLeaders(d);
  if (p === 0) return leaders > 0 ? keepFirst(d, 1) : inexact('top-p', 'the most probable token is not known');
  const norm = normaliser(d);
  if (!norm) return inexact('top-p', whyUnknown(d));
  let mass = 0;
  for (let i = 0; i < leaders; i++) {
    mass += Math.exp(d.logits[i] - norm.lse);
    if (mass >= p) return keepFirst(d, i + 1);
  }
  if (!d.tail) return d; // rounding left a closed support's total a hair below p: keep it all
  return inexact('top-p', `the ${leaders} leading candidates hold mass ${mass.toPrecision(6)} < top-p ${p}`);
}

/**
 * Keeps p_i ≥ min_p · p_max, i.e. s_i ≥ s_max + ln min_p (0 = off; the argmax always stays).
 * Tail tokens have s ≤ bound, so if bound < s_max + ln min_p none of them stays: exact iff so.
 */
export function applyMinP(d: Distribution, minP: number): StageResult {
  checkDistribution(d);
  checkNumber('minP', minP, 0, 1);
  if (minP === 0) return d;
  if (knownLeaders(d) === 0) return inexact('min-p', 'the most probable token is not known');
  const threshold = d.logits[0] + Math.log(minP);
  if (d.tail && !(d.tail.bound.logit < threshold)) {
    return inexact('min-p', `the last candidate's probability reaches min-p ${minP} × p_max, so tokens beyond the candidates may stay`);
  }
  let n = 1;
  while (n < d.ids.length && d.logits[n] >= threshold) n++;
  return keepFirst(d, n);
}

/**
 * Locally typical sampling (mass τ; 1 = off): d_i = |−ln p_i − H|, sorted ascending; keep every
 * token with d ≤ d_ℓ, ℓ the first index where the cumulative mass reaches τ (HF's rule: ties at
 * d_ℓ stay). A tail token has −ln p ≥ −ln p_bound, so d ≥ d_tail = max(0, −ln p_bound − H): the
 * candidates with d < d_tail precede all of the tail in the d order, and if their mass reaches τ
 * the cut falls among them. Exact iff so.
 */
export function applyTypical(d: Distribution, tau: number): StageResult {
  checkDistribution(d);
  checkNumber('typical', tau, 0, 1);
  if (tau === 1) return d;
  const norm = normaliser(d);
  if (!norm) return inexact('typical', whyUnknown(d));
  const dev = d.logits.map((s) => Math.abs(norm.lse - s - norm.entropy));
  const tailDev = d.tail ? Math.max(0, norm.lse - d.tail.bound.logit - norm.entropy) : Infinity;
  const order = dev.map((_, i) => i).sort((a, b) => dev[a] - dev[b] || a - b);
  let mass = 0;
  let cutoff: number | null = null;
  for (const i of order) {
    if (!(dev[i] < tailDev)) break;
    mass += Math.exp(d.logits[i] - norm.lse);
    if (mass >= tau) {
      cutoff = dev[i];
      break;
    }
  }
  if (cutoff === null) {
    if (!d.tail) return d; // rounding: a closed support's total fell a hair short of τ
    return inexact('typical', `the candidates closer to the entropy than any other token can be hold mass ${mass.toPrecision(6)} < typical ${tau}`);
  }
  const keep = d.ids.map((_, i) => i).filter((i) => dev[i] <= cutoff);
  return { ...d, ids: keep.map((i) => d.ids[i]), logits: keep.map((i) => d.logits[i]), tail: null };
}

/**
 * Top-H (algorithms.md §4): q = the top-n probabilities, descending; S_m = −Σ_{i≤m} q_i ln q_i;
 * keep the largest m ≥ 1 with S_m ≤ α·S_n (α near 0 keeps 1, α = 1 keeps n). When fewer than n
 * tokens are known (n = 100 > K = 64), S_n ∈ [S_L, S_L + g] with L the leading candidates and g the
 * most the r = n − L unknown tokens can add: each q ≤ q_bound, together ≤ 1 − Σ_L q, and −x ln x is
 * concave and increasing below 1/e, so g = r·φ(x), x = min(q_bound, (1 − Σ_L q)/r, 1/e). Exact iff
 * the count found at S_L is also the count at S_L + g and the first token cut is a candidate.
 */
export function applyTopH(d: Distribution, alpha: number, n: number = TOP_H_DEFAULTS.n): StageResult {
  checkDistribution(d);
  checkNumber('topH.alpha', alpha, 0, 1);
  checkInteger('topH.n', n, 1, MAX_COUNT);
  const norm = normaliser(d);
  if (!norm) return inexact('top-H', whyUnknown(d));
  const leaders = knownLeaders(d);
  const known = Math.min(n, leaders);
  const S = [0];
  for (let i = 0; i < known; i++) {
    const lq = d.logits[i] - norm.lse;
    S.push(S[i] - Math.exp(lq) * lq);
  }
  const largestWithin = (limit: number, bound: number) => {
    let m = limit;
    while (m > 0 && !(S[m] <= bound)) m--;
    return m;
  };
  if (!d.tail || leaders >= n) return keepFirst(d, Math.max(1, largestWithin(known, alpha * S[known])));
  const r = n - leaders;
  const leadMass = d.logits.slice(0, leaders).reduce((sum, s) => sum + Math.exp(s - norm.lse), 0);
  const x = Math.min(Math.exp(d.tail.bound.logit - norm.lse), Math.max(0, 1 - leadMass) / r, 1 / Math.E);
  const g = x > 0 ? -r * x * Math.log(x) : 0;
  const m = largestWithin(leaders, alpha * S[leaders]);
  if (m < leaders && S[m + 1] > alpha * (S[leaders] + g)) return keepFirst(d, Math.max(1, m));
  return inexact('top-H', `top-H over n = ${n} depends on the ${r} tokens beyond the ${leaders} leading candidates`);
}

/**
 * Entropy top-k (PURE's rule, algorithms.md §4): k = clamp(round(k_min + (k_max − k_min)·
 * σ(clamp(H, 0, 10) − 5)), k_min, k_max), H in nats; round is Python's (halves to even), so
 * H 0 → 14, 1 → 37, 2 → 96, 5 → 1000, 10 → 1987 at the defaults 1..2000.
 */
export function entropyTopKCount(entropy: number, kMin: number = ENTROPY_TOP_K_DEFAULTS.kMin, kMax: number = ENTROPY_TOP_K_DEFAULTS.kMax): number {
  checkNumber('entropy', entropy, -Number.MAX_VALUE, Number.MAX_VALUE);
  checkInteger('entropyTopK.kMin', kMin, 1, MAX_COUNT);
  checkInteger('entropyTopK.kMax', kMax, kMin, MAX_COUNT);
  const h = Math.min(10, Math.max(0, entropy));
  const k = roundHalfEven(kMin + (kMax - kMin) / (1 + Math.exp(-(h - 5))));
  return Math.min(kMax, Math.max(kMin, k));
}

/** Python's round(): the nearest integer, halves to the even one. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Entropy top-k on a raw (temperature 1) distribution: H = −Σ p ln(p + 1e-10) of it, k from
 * entropyTopKCount, then every token whose logit is ≥ the k-th largest (ties kept). On an open
 * distribution H is the exact entropy of the step's statistics (without the 1e-10, which moves
 * H by at most V·1e-10 nats); exact iff the k-th largest is a leading candidate strictly above
 * every token beyond the candidates.
 */
export function applyEntropyTopK(d: Distribution, kMin: number, kMax: number): StageResult {
  checkDistribution(d);
  if (d.temperature !== 1) throw new InvalidArgumentError(`entropy top-k acts on the raw logits (temperature 1), got a distribution at ${d.temperature}`);
  const entropy = d.tail ? entropyOf(d) : entropyOf(d, 1e-10);
  if (entropy === null) return inexact('entropy-top-k', whyUnknown(d));
  const k = entropyTopKCount(entropy, kMin, kMax);
  const leaders = knownLeaders(d);
  if (d.tail && !(k <= leaders && d.logits[k - 1] > d.tail.bound.logit)) {
    return inexact('entropy-top-k', `entropy top-k keeps k = ${k} (H ${entropy.toFixed(3)} nats), beyond the ${leaders} candidates known to lead`);
  }
  const threshold = d.logits[Math.min(k, d.ids.length) - 1];
  let n = 0;
  while (n < d.ids.length && d.logits[n] >= threshold) n++;
  return keepFirst(d, n);
}

// ---------------------------------------------------------------------------------------------
// Options and the pipeline

/** Largest temperature accepted (beyond it every distribution is practically uniform). */
export const MAX_TEMPERATURE = 100;
export const TYPICAL_DEFAULT = 0.9;
export const TOP_H_DEFAULTS = { alpha: 0.4, n: 100 } as const;
export const ENTROPY_TOP_K_DEFAULTS = { kMin: 1, kMax: 2000 } as const;
/** Smallest positive temperature: keeps z/T and 1/T finite in float32 on the GPU. */
export const MIN_TEMPERATURE = 1e-6;
export const MIN_PENALTY = 0.01;
export const MAX_PENALTY = 100;
/** OpenAI's range for frequency and presence penalties: [−2, 2]. */
export const MAX_ADDITIVE_PENALTY = 2;
/** RNG index of the CPU's draw: no token id, so it is independent of the GPU's per-token noise. */
export const CPU_DRAW_INDEX = MAX_U32;

export interface SamplerOptions {
  /** 0 = greedy; default 1. */
  temperature?: number;
  /** Keep the k most probable tokens; 0 (default) = off. */
  topK?: number;
  /** Nucleus mass in [0, 1]; 1 (default) = off, 0 = argmax only. */
  topP?: number;
  /** Keep p ≥ minP · p_max; 0 (default) = off. */
  minP?: number;
  /** Locally typical mass τ in [0, 1]; 1 (default) = off (0.9 is algorithms.md's when enabled). */
  typical?: number;
  /** Top-H; off unless given. Defaults α = 0.4, n = 100. */
  topH?: { alpha?: number; n?: number };
  /** HF repetition penalty θ in [0.01, 100]; 1 (default) = off. */
  repetitionPenalty?: number;
  /** OpenAI's frequency penalty in [−2, 2]: logit − count·this for tokens of the text so far; 0 (default) = off. */
  frequencyPenalty?: number;
  /** OpenAI's presence penalty in [−2, 2]: logit − this for tokens of the text so far; 0 (default) = off. */
  presencePenalty?: number;
  /**
   * Entropy top-k (PURE's rule): k from the raw entropy, before temperature; off unless given.
   * Defaults k_min 1, k_max 2000. The step's statistics are then at temperature 1.
   */
  entropyTopK?: { kMin?: number; kMax?: number };
  /** The model's vocabulary size (lets top-k ≥ it be a no-op and K ≥ it close the support). */
  vocabSize?: number;
}

export interface SamplerParams {
  readonly temperature: number;
  readonly topK: number;
  readonly topP: number;
  readonly minP: number;
  readonly typical: number;
  readonly topH: { readonly alpha: number; readonly n: number } | null;
  readonly repetitionPenalty: number;
  readonly frequencyPenalty: number;
  readonly presencePenalty: number;
  readonly entropyTopK: { readonly kMin: number; readonly kMax: number } | null;
  readonly vocabSize: number | null;
}

const OPTION_KEYS = new Set([
  'temperature', 'topK', 'topP', 'minP', 'typical', 'topH', 'repetitionPenalty', 'frequencyPenalty', 'presencePenalty', 'entropyTopK', 'vocabSize',
]);

/** Validates options (InvalidArgumentError naming the parameter) and fills the defaults. */
export function samplerParams(options: SamplerOptions = {}): SamplerParams {
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('sampler options must be an object');
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) throw new InvalidArgumentError(`unknown sampler option ${key}`);
  }
  const temperature = checkNumber('temperature', options.temperature ?? 1, 0, MAX_TEMPERATURE);
  if (temperature > 0 && temperature < MIN_TEMPERATURE) {
    throw new InvalidArgumentError(`temperature must be 0 (greedy) or at least ${MIN_TEMPERATURE}, got ${temperature}`);
  }
  const vocabSize = options.vocabSize === undefined ? null : checkInteger('vocabSize', options.vocabSize, 1, MAX_COUNT);
  const topK = checkInteger('topK', options.topK ?? 0, 0, MAX_COUNT);
  const topH = options.topH;
  if (topH !== undefined && (typeof topH !== 'object' || topH === null)) throw new InvalidArgumentError('topH must be an object { alpha?, n? }');
  const etk = options.entropyTopK;
  if (etk !== undefined && (typeof etk !== 'object' || etk === null)) throw new InvalidArgumentError('entropyTopK must be an object { kMin?, kMax? }');
  const kMin = etk === undefined ? 0 : checkInteger('entropyTopK.kMin', etk.kMin ?? ENTROPY_TOP_K_DEFAULTS.kMin, 1, MAX_COUNT);
  return Object.freeze({
    temperature,
    topK: vocabSize !== null && topK >= vocabSize ? 0 : topK,
    topP: checkNumber('topP', options.topP ?? 1, 0, 1),
    minP: checkNumber('minP', options.minP ?? 0, 0, 1),
    typical: checkNumber('typical', options.typical ?? 1, 0, 1),
    topH: topH === undefined ? null : Object.freeze({
      alpha: checkNumber('topH.alpha', topH.alpha ?? TOP_H_DEFAULTS.alpha, 0, 1),
      n: checkInteger('topH.n', topH.n ?? TOP_H_DEFAULTS.n, 1, MAX_COUNT),
    }),
    repetitionPenalty: checkNumber('repetitionPenalty', options.repetitionPenalty ?? 1, MIN_PENALTY, MAX_PENALTY),
    frequencyPenalty: checkNumber('frequencyPenalty', options.frequencyPenalty ?? 0, -MAX_ADDITIVE_PENALTY, MAX_ADDITIVE_PENALTY),
    presencePenalty: checkNumber('presencePenalty', options.presencePenalty ?? 0, -MAX_ADDITIVE_PENALTY, MAX_ADDITIVE_PENALTY),
    entropyTopK: etk === undefined ? null : Object.freeze({
      kMin, kMax: checkInteger('entropyTopK.kMax', etk.kMax ?? Math.max(kMin, ENTROPY_TOP_K_DEFAULTS.kMax), kMin, MAX_COUNT),
    }),
    vocabSize,
  });
}

/** Whether any stage can cut the vocabulary (else the GPU's full-vocabulary draw is the sample). */
export function truncates(p: SamplerParams): boolean {
  checkParams(p);
  return p.topK > 0 || p.topP < 1 || p.minP > 0 || p.typical < 1 || p.topH !== null || p.entropyTopK !== null;
}

/**
 * The temperature a step's statistics must be at for this sampler: its own (1 for greedy), or 1
 * when entropy top-k reads the raw entropy.
 */
export function statsTemperatureOf(p: SamplerParams): number {
  checkParams(p);
  return p.entropyTopK || p.temperature === 0 ? 1 : p.temperature;
}

/**
 * top-H → top-k → top-p → min-p → typical on a distribution already penalised and scaled. Top-H
 * runs first, on the full distribution at T (algorithms.md §4: the authors' logits processor
 * precedes HF's warpers); each later stage acts on what the previous one kept, renormalised.
 */
export function truncate(d: Distribution, p: SamplerParams): StageResult {
  checkDistribution(d);
  checkParams(p);
  const stages: ((x: Distribution) => StageResult)[] = [
    (x) => (p.topH ? applyTopH(x, p.topH.alpha, p.topH.n) : x),
    (x) => applyTopK(x, p.topK),
    (x) => applyTopP(x, p.topP),
    (x) => applyMinP(x, p.minP),
    (x) => applyTypical(x, p.typical),
  ];
  let r: StageResult = d;
  for (const stage of stages) {
    r = stage(r as Distribution);
    if (needsFullVocabulary(r)) return r;
  }
  return r;
}

export interface WarpContext {
  /** Tokens seen so far (prompt included, as HF), for the repetition, frequency and presence penalties. */
  history?: readonly number[];
  /** Temperature of the step's stats; defaults to the sampler's (what sampling() asks for). */
  statsTemperature?: number;
  /**
   * The model's vocabulary size, when the sampler's params lack it: candidates that cover it (a
   * full logits row) close the support, so every stage is exact on them.
   */
  vocabSize?: number;
}

/**
 * The whole pipeline up to the draw: penalty → temperature (0: greedy) → truncation (top-H first,
 * then top-k → top-p → min-p → typical). Decoders use it for the warped distribution (CNTP:
 * temperature → top-k → top-p) and entropyOf() of it.
 */
export function warp(stats: StepStats, params: SamplerParams, context: WarpContext = {}): StageResult {
  checkParams(params);
  if (typeof context !== 'object' || context === null) throw new InvalidArgumentError('the warp context must be an object');
  const statsTemperature = context.statsTemperature ?? statsTemperatureOf(params);
  const vocabSize = context.vocabSize === undefined ? params.vocabSize : checkInteger('vocabSize', context.vocabSize, 1, MAX_COUNT);
  const raw = fromStepStats(stats, { statsTemperature, vocabSize });
  const history = checkHistory(context.history ?? []);
  const penalized = applyAdditivePenalties(
    applyRepetitionPenalty(raw, params.repetitionPenalty, history), params.frequencyPenalty, params.presencePenalty, history);
  if (params.temperature === 0) return greedy(penalized);
  let kept: StageResult = penalized;
  if (params.entropyTopK) kept = applyEntropyTopK(penalized, params.entropyTopK.kMin, params.entropyTopK.kMax);
  if (needsFullVocabulary(kept)) return kept;
  return truncate(applyTemperature(kept, params.temperature), params);
}

/** SamplerParams come from samplerParams(); anything else is rejected, not guessed at. */
function checkParams(p: SamplerParams): SamplerParams {
  if (typeof p !== 'object' || p === null || typeof p.temperature !== 'number') {
    throw new InvalidArgumentError('sampler params must be what samplerParams() returns');
  }
  return p;
}

function checkHistory(history: readonly number[]): readonly number[] {
  if (!Array.isArray(history)) throw new InvalidArgumentError('history must be an array of token ids');
  history.forEach((id, i) => checkInteger(`history[${i}]`, id, 0, MAX_U32));
  return history;
}

/**
 * Inverse-CDF draw from a closed distribution with a uniform u in (0, 1): the first candidate whose
 * cumulative weight exceeds u·total (weights e^(s − s_max), in the candidates' order).
 */
export function drawIndex(d: Distribution, u: number): number {
  checkDistribution(d);
  if (d.tail) throw new InvalidArgumentError('drawIndex needs a closed distribution (a truncation must have applied)');
  checkNumber('u', u, 0, 1);
  const weights = d.logits.map((s) => Math.exp(s - d.logits[0]));
  const target = u * weights.reduce((a, b) => a + b, 0);
  let cumulative = 0;
  for (let i = 0; i < weights.length; i++) {
    cumulative += weights[i];
    if (target < cumulative) return i;
  }
  return weights.length - 1; // u·total rounded up to the total
}

// ---------------------------------------------------------------------------------------------
// The sampler

export interface SampleContext extends WarpContext {
  seed: number;
  /** KV row and position of the step's input token: the GPU keys its draw with the same. */
  row: number;
  pos: number;
  /** RNG stream salt (retries, trials); default 0. */
  counter?: number;
}

export interface SampledToken {
  readonly needsFullVocabulary: false;
  readonly tokenId: number;
  /** 'cpu': drawn from the kept set; 'gpu': the GPU's full-vocabulary draw; 'argmax': T = 0. */
  readonly source: 'cpu' | 'gpu' | 'argmax';
  /** Tokens the draw chose among; null for the full vocabulary. */
  readonly keptCount: number | null;
  /** ln p of the token under the distribution it was drawn from; null if unknown. */
  readonly logProb: number | null;
  readonly distribution: Distribution;
}

export type SampleResult = SampledToken | NeedsFullVocabulary;

export interface Sampler {
  readonly params: SamplerParams;
  /** What the GPU step must compute for sample() (stats temperature, and whether to draw). */
  sampling(seed: number, counter?: number): SamplingParams;
  sample(stats: StepStats, context: SampleContext): SampleResult;
}

export function createSampler(options: SamplerOptions = {}): Sampler {
  const params = samplerParams(options);
  const gpuDraws = params.temperature > 0 && !truncates(params);
  return {
    params,
    sampling(seed, counter = 0) {
      checkInteger('seed', seed, 0, MAX_U32);
      checkInteger('counter', counter, 0, MAX_U32);
      const t = params.temperature;
      return { temperature: gpuDraws ? t : 0, seed, counter, statsTemperature: statsTemperatureOf(params) };
    },
    sample: (stats, context) => sampleStep(params, stats, context),
  };
}

function sampleStep(params: SamplerParams, stats: StepStats, ctx: SampleContext): SampleResult {
  const key = checkKey(ctx);
  const d = warp(stats, params, ctx);
  if (needsFullVocabulary(d)) return d;
  if (!d.tail) {
    const i = drawIndex(d, uniform01(key.seed, key.row, key.pos, key.counter, CPU_DRAW_INDEX));
    const source = params.temperature === 0 ? 'argmax' : 'cpu';
    return { needsFullVocabulary: false, tokenId: d.ids[i], source, keptCount: d.ids.length, logProb: logProbOf(d, d.ids[i]), distribution: d };
  }
  // No stage truncated: the support is the whole vocabulary, which only the GPU has drawn from.
  if (d.penalized) {
    return inexact('sample', 'no truncating stage applies and the repetition penalty changed the distribution; the GPU drew from the unpenalised one');
  }
  return { needsFullVocabulary: false, tokenId: stats.sampled, source: 'gpu', keptCount: null, logProb: logProbOf(d, stats.sampled), distribution: d };
}

function checkKey(ctx: SampleContext) {
  if (typeof ctx !== 'object' || ctx === null) throw new InvalidArgumentError('sample() needs a context { seed, row, pos }');
  return {
    seed: checkInteger('seed', ctx.seed, 0, MAX_U32),
    row: checkInteger('row', ctx.row, 0, MAX_U32),
    pos: checkInteger('pos', ctx.pos, 0, MAX_U32),
    counter: checkInteger('counter', ctx.counter ?? 0, 0, MAX_U32),
  };
}
