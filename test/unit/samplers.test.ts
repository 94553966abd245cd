// Samplers (src/decode/samplers.ts) and the counter-based RNG (src/decode/rng.ts).
//
//  - hand-computed distributions for every stage and its edges, composition order, the repetition
//    penalty, keep ≥ 1;
//  - the exactness conditions: K candidates that suffice, and ones that do not (typed result);
//  - a randomized cross-check against a plain full-vocabulary implementation of HF's semantics:
//    whenever the sampler answers from K candidates, its answer is the full-vocabulary one;
//  - validation errors;
//  - the RNG: known values (from an independent Python transcription of the shader's hash), the
//    shader's own `pcg`/`uniform01` run on the GPU, and draw frequencies;
//  - end to end: stats from the real LM-head statistics kernel at statsTemperature = T feed the
//    sampler, which agrees with a float64 reference over the whole logits row.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { create } from 'webgpu';
import { pcgHash, rngBits, uniform01 } from '../../src/decode/rng.ts';
import { mulberry32 } from '../support/random.ts';
import {
  CPU_DRAW_INDEX, type Distribution, type SamplerOptions, type StageResult, applyMinP, applyRepetitionPenalty,
  applyTopH, applyTopK, applyTopP, applyTypical, candidateProbabilities, closedDistribution, createSampler, drawIndex,
  entropyOf, fromStepStats, logProbOf, needsFullVocabulary, samplerParams, warp,
} from '../../src/decode/samplers.ts';
import { InvalidArgumentError } from '../../src/errors.ts';
import { READBACK, STORAGE, UNIFORM } from '../../src/gpu/buffers.ts';
import { type GpuContext, acquireGpu } from '../../src/gpu/device.ts';
import { Kernels, LM_PARTIALS_PER_ROW, LM_PARTIAL_BYTES, STEP_UNIFORM_BYTES, statsRecordWords } from '../../src/gpu/kernels.ts';
import { encodeCalls } from '../../src/gpu/pipelines.ts';
import { type StepStats, parseStats } from '../../src/runtime/stats.ts';

// ---------------------------------------------------------------------------------------------
// Helpers


function gaussian(rng: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
}

/** A StepStats record of a whole logits row `z` (ids = indices), in float64: what an ideal GPU returns. */
function statsOf(z: readonly number[], o: { k?: number; statsTemperature?: number; sampled?: number } = {}): StepStats {
  const t = o.statsTemperature ?? 1;
  const s = z.map((v) => v / t);
  const m = Math.max(...s);
  const lse = m + Math.log(s.reduce((acc, v) => acc + Math.exp(v - m), 0));
  const entropy = -s.reduce((acc, v) => acc + Math.exp(v - lse) * (v - lse), 0);
  const order = z.map((_, i) => i).sort((a, b) => z[b] - z[a] || a - b);
  const topK = order.slice(0, o.k ?? z.length).map((id) => ({ id, logit: z[id] }));
  return { lse, entropy, varentropy: 0, maxLogit: z[order[0]], argmax: order[0], sampled: o.sampled ?? order[0], topK };
}

/** The kept ids (most probable first) and renormalised probabilities of an exact result. */
function kept(r: StageResult): { ids: number[]; probs: number[] } {
  if (needsFullVocabulary(r)) assert.fail(`expected an exact result, got needsFullVocabulary at ${r.stage}: ${r.reason}`);
  return { ids: [...r.ids], probs: candidateProbabilities(r)! };
}

function assertKept(r: StageResult, ids: number[], what: string): void {
  assert.deepEqual(kept(r).ids, ids, what);
}

function assertNeedsFull(r: StageResult | ReturnType<ReturnType<typeof createSampler>['sample']>, stage: string, what: string): void {
  assert.ok(needsFullVocabulary(r), `${what}: expected needsFullVocabulary, got an answer`);
  assert.equal(r.stage, stage, `${what}: stage (${r.reason})`);
}

function assertProbs(got: number[], want: number[], what: string, tol = 1e-12): void {
  assert.equal(got.length, want.length, `${what}: length`);
  got.forEach((g, i) => assert.ok(Math.abs(g - want[i]) <= tol, `${what}: p[${i}] = ${g}, expected ${want[i]}`));
}

const warpWith = (stats: StepStats, options: SamplerOptions, history: number[] = [], statsTemperature?: number) =>
  warp(stats, samplerParams(options), { history, statsTemperature });

// Six tokens with round probabilities, ids scrambled (id → p): in probability order the ids are
// 2 (0.4), 1 (0.25), 4 (0.15), 5 (0.1), 0 (0.06), 3 (0.04).
const P6 = [0.06, 0.25, 0.4, 0.04, 0.15, 0.1];
const Z6 = P6.map(Math.log);
const ORDER6 = [2, 1, 4, 5, 0, 3];
const S6 = statsOf(Z6);
const V6 = { vocabSize: 6 };

// ---------------------------------------------------------------------------------------------

describe('stages on a hand-computed distribution (K = V = 6)', () => {
  test('no truncation: all six tokens, probabilities as given', () => {
    const r = kept(warpWith(S6, { ...V6 }));
    assert.deepEqual(r.ids, ORDER6);
    assertProbs(r.probs, ORDER6.map((id) => P6[id]), 'p');
    assert.ok(Math.abs(entropyOf(warpWith(S6, V6) as Distribution)! - 1.5254760660622515) < 1e-12, 'entropy');
  });

  test('top-k: k tokens renormalised; 0 and k ≥ vocabulary are off', () => {
    const r = kept(warpWith(S6, { ...V6, topK: 2 }));
    assert.deepEqual(r.ids, [2, 1]);
    assertProbs(r.probs, [0.4 / 0.65, 0.25 / 0.65], 'top-k 2');
    assertKept(warpWith(S6, { ...V6, topK: 1 }), [2], 'top-k 1');
    assertKept(warpWith(S6, { ...V6, topK: 0 }), ORDER6, 'top-k 0');
    assertKept(warpWith(S6, { ...V6, topK: 10 }), ORDER6, 'top-k 10 > V');
  });

  test('top-p: smallest prefix reaching p; 1 keeps all, 0 keeps the argmax', () => {
    // cumulative 0.4, 0.65, 0.8, 0.9, …
    assertKept(warpWith(S6, { ...V6, topP: 0.6 }), [2, 1], 'top-p 0.6');
    const r = kept(warpWith(S6, { ...V6, topP: 0.7 }));
    assert.deepEqual(r.ids, [2, 1, 4]);
    assertProbs(r.probs, [0.5, 0.3125, 0.1875], 'top-p 0.7');
    assertKept(warpWith(S6, { ...V6, topP: 0.3 }), [2], 'top-p 0.3 < p_max');
    assertKept(warpWith(S6, { ...V6, topP: 1 }), ORDER6, 'top-p 1');
    assertKept(warpWith(S6, { ...V6, topP: 0 }), [2], 'top-p 0');
  });

  test('min-p: keep p ≥ min_p·p_max; 0 keeps all, 1 keeps the maximum', () => {
    assertKept(warpWith(S6, { ...V6, minP: 0.3 }), [2, 1, 4], 'min-p 0.3 (threshold 0.12)');
    assertKept(warpWith(S6, { ...V6, minP: 0.5 }), [2, 1], 'min-p 0.5 (threshold 0.2)');
    assertKept(warpWith(S6, { ...V6, minP: 0 }), ORDER6, 'min-p 0');
    assertKept(warpWith(S6, { ...V6, minP: 1 }), [2], 'min-p 1');
  });

  test('typical: most typical first (|−ln p − H|, H = 1.5255), until the mass reaches τ', () => {
    // d: 0.25 → 0.139, 0.15 → 0.372, 0.4 → 0.609, 0.1 → 0.777, 0.06 → 1.288, 0.04 → 1.693;
    // cumulative in that order: 0.25, 0.40, 0.80, 0.90, 0.96, 1.
    assertKept(warpWith(S6, { ...V6, typical: 0.3 }), [1, 4], 'typical 0.3');
    assertKept(warpWith(S6, { ...V6, typical: 0.5 }), [2, 1, 4], 'typical 0.5');
    assertKept(warpWith(S6, { ...V6, typical: 0.85 }), [2, 1, 4, 5], 'typical 0.85');
    assertKept(warpWith(S6, { ...V6, typical: 0 }), [1], 'typical 0: the most typical token');
    assertKept(warpWith(S6, { ...V6, typical: 1 }), ORDER6, 'typical 1');
  });

  test('top-H: largest m with S_m ≤ α·S_n; α near 0 keeps 1, α = 1 keeps n', () => {
    // S_m = 0.3665, 0.7131, 0.9977, 1.2279, 1.3967, 1.5255 (= H, all six within n = 100).
    assertKept(warpWith(S6, { ...V6, topH: {} }), [2], 'α 0.4 (default): 0.610 < S_2');
    assertKept(warpWith(S6, { ...V6, topH: { alpha: 0.6 } }), [2, 1], 'α 0.6: 0.915');
    assertKept(warpWith(S6, { ...V6, topH: { alpha: 0.8 } }), [2, 1, 4], 'α 0.8: 1.220');
    assertKept(warpWith(S6, { ...V6, topH: { alpha: 0.01 } }), [2], 'α 0.01');
    assertKept(warpWith(S6, { ...V6, topH: { alpha: 0 } }), [2], 'α 0');
    assertKept(warpWith(S6, { ...V6, topH: { alpha: 1 } }), ORDER6, 'α 1, n 100 ≥ V');
    assertKept(warpWith(S6, { ...V6, topH: { alpha: 1, n: 3 } }), [2, 1, 4], 'α 1, n 3');
    assertKept(warpWith(S6, { ...V6, topH: { alpha: 0.5, n: 3 } }), [2], 'α 0.5, n 3: 0.499 < S_2');
  });

  test('temperature comes before truncation (stats at statsTemperature = T)', () => {
    // At T = 2: p ∝ √P: 0.277, 0.219, 0.170, … cumulative 0.277, 0.496, 0.666: top-p 0.6 keeps 3.
    const s2 = statsOf(Z6, { statsTemperature: 2 });
    const r = kept(warpWith(s2, { ...V6, temperature: 2, topP: 0.6 }));
    assert.deepEqual(r.ids, [2, 1, 4]);
    const w = [0.4, 0.25, 0.15].map(Math.sqrt);
    assertProbs(r.probs, w.map((x) => x / (w[0] + w[1] + w[2])), 'T 2', 1e-12);
    assertKept(warpWith(S6, { ...V6, temperature: 1, topP: 0.6 }), [2, 1], 'T 1');
  });

  test('temperature 0 is greedy whatever else is set', () => {
    assertKept(warpWith(S6, { temperature: 0, topP: 0.9, typical: 0.2 }), [2], 'argmax');
    const out = createSampler({ temperature: 0, topK: 3 }).sample(S6, { seed: 1, row: 0, pos: 5 });
    assert.ok(!needsFullVocabulary(out));
    assert.equal(out.tokenId, 2);
    assert.equal(out.source, 'argmax');
  });

  test('composition order: top-H (on the full distribution) → top-k → top-p → min-p → typical, each on the renormalised result', () => {
    // top-k 3 → (0.5, 0.3125, 0.1875); top-p 0.7 then stops at 0.8125: 2 tokens (top-p alone: 3).
    assertKept(warpWith(S6, { ...V6, topK: 3, topP: 0.7 }), [2, 1], 'top-k 3 → top-p 0.7');
    assertKept(warpWith(S6, { ...V6, topP: 0.7 }), [2, 1, 4], 'top-p 0.7 alone');
    // top-k 3 → H' = 1.0239; d: 0.3125 → 0.139, 0.5 → 0.331, 0.1875 → 0.650; τ 0.5 keeps 2
    // (typical alone keeps 3, and top-k after typical would keep those 3).
    assertKept(warpWith(S6, { ...V6, topK: 3, typical: 0.5 }), [2, 1], 'top-k 3 → typical 0.5');
    // top-p 0.9 → 4 tokens (0.9 total); min-p 0.5 of 0.4/0.9 keeps 0.25/0.9 but not 0.15/0.9.
    assertKept(warpWith(S6, { ...V6, topP: 0.85, minP: 0.5 }), [2, 1], 'top-p → min-p');
    // Top-H runs first, on the full distribution (algorithms.md §4): α 0.8 keeps 3 (S_3 = 0.998 ≤
    // 0.8·1.5255 = 1.220 < S_4 = 1.228); min-p 0.5 of the renormalised (0.5, 0.3125, 0.1875) then
    // drops the third. (Min-p first would keep 2, 1 and top-H over those two, renormalised, only 2.)
    assertKept(warpWith(S6, { ...V6, minP: 0.5, topH: { alpha: 0.8 } }), [2, 1], 'top-H → min-p');
    // Top-H's q are the full softmax, not top-k's renormalised set: top-k 3 after top-H α 0.8 keeps
    // all three; top-H over top-k's (0.5, 0.3125, 0.1875) would cut at S_2 = 0.710 ≤ 0.8·1.024.
    assertKept(warpWith(S6, { ...V6, topK: 3, topH: { alpha: 0.8 } }), [2, 1, 4], 'top-H → top-k');
    // Each stage keeps ≥ 1 even when every threshold bites.
    assertKept(warpWith(S6, { ...V6, topK: 2, topP: 0, minP: 1, typical: 0, topH: { alpha: 0 } }), [2], 'all stages at their tightest');
  });

  test('repetition penalty (HF): negative logits ×θ, positive ÷θ, before temperature', () => {
    // Token 2 (ln 0.4 < 0) ×2 → ln 0.16: the order becomes 1 (0.25), 2 (0.16), 4 (0.15), …
    const r = kept(warpWith(S6, { ...V6, repetitionPenalty: 2, topK: 2 }, [2]));
    assert.deepEqual(r.ids, [1, 2]);
    assertProbs(r.probs, [0.25 / 0.41, 0.16 / 0.41], 'negative logit ×θ', 1e-12);
    assertKept(warpWith(S6, { ...V6, repetitionPenalty: 2, temperature: 0 }, [2, 2, 2]), [1], 'greedy after the penalty');
    // Positive logits (all shifted by +3) are divided: token 2 goes from 3 + ln 0.4 = 2.084 to 1.042.
    const zp = Z6.map((z) => z + 3);
    const rp = kept(warpWith(statsOf(zp), { ...V6, repetitionPenalty: 2, topK: 3 }, [2, 1]));
    const pen = [zp[4], zp[2] / 2, zp[1] / 2]; // 1.103, 1.042, 0.807: id 4 first, then 2, then 1
    assert.deepEqual(rp.ids, [4, 2, 1]);
    const w = pen.map(Math.exp);
    assertProbs(rp.probs, w.map((x) => x / (w[0] + w[1] + w[2])), 'positive logits ÷θ', 1e-12);
    // θ < 1 favours seen tokens: 0.04^0.25 = 0.447 > 0.4.
    assertKept(warpWith(S6, { ...V6, repetitionPenalty: 0.25, topK: 1 }, [3]), [3], 'θ 0.25');
    assertKept(warpWith(S6, { ...V6, repetitionPenalty: 1, topK: 1 }, [2]), [2], 'θ 1 is off');
  });

  test('frequency and presence penalties (OpenAI): logit − count·f − p for tokens seen, before temperature', () => {
    // history 2, 2, 1 with f 0.5, p 0.2: token 2 loses 1.2, token 1 loses 0.7 → order 4, 1, 2, 5, 0, 3.
    const w = P6.map((p, id) => p * Math.exp(-(id === 2 ? 1.2 : id === 1 ? 0.7 : 0)));
    const total = w.reduce((a, b) => a + b, 0);
    const r = kept(warpWith(S6, { ...V6, frequencyPenalty: 0.5, presencePenalty: 0.2 }, [2, 2, 1]));
    assert.deepEqual(r.ids, [4, 1, 2, 5, 0, 3]);
    assertProbs(r.probs, r.ids.map((id) => w[id] / total), 'penalised softmax', 1e-12);
    assertKept(warpWith(S6, { ...V6, frequencyPenalty: 0.5, presencePenalty: 0.2, temperature: 0 }, [2, 2, 1]), [4], 'greedy after the penalties');
    // At temperature 2 the penalty applies to the raw logits first: p ∝ w^(1/2).
    const half = kept(warpWith(S6, { ...V6, frequencyPenalty: 0.5, presencePenalty: 0.2, temperature: 2 }, [2, 2, 1]));
    const w2 = w.map(Math.sqrt);
    const total2 = w2.reduce((a, b) => a + b, 0);
    assertProbs(half.probs, half.ids.map((id) => w2[id] / total2), 'penalty before temperature', 1e-12);
    // Negative values favour seen tokens; 0 is off.
    assertKept(warpWith(S6, { ...V6, presencePenalty: -1, topK: 1 }, [4]), [4], 'presence −1: 0.15·e = 0.408 > 0.4');
    assertKept(warpWith(S6, { ...V6, frequencyPenalty: 0, presencePenalty: 0, topK: 1 }, [2]), [2], '0 is off');
    assert.throws(() => samplerParams({ frequencyPenalty: 2.5 }), { code: 'invalid-argument' });
    assert.throws(() => samplerParams({ presencePenalty: -3 }), { code: 'invalid-argument' });
  });
});

describe('exactness with K < V candidates', () => {
  // Ten tokens, the GPU reports the top 4: p = 0.5, 0.3, 0.1, 0.04 | tail 0.02, 0.01 ×3, 0.005 ×2.
  const P10 = [0.5, 0.3, 0.1, 0.04, 0.02, 0.01, 0.01, 0.01, 0.005, 0.005];
  const Z10 = P10.map(Math.log);
  const S10 = statsOf(Z10, { k: 4, sampled: 7 });

  test('top-k: exact for k ≤ K, needs the vocabulary for k > K', () => {
    const r = kept(warpWith(S10, { topK: 4 }));
    assert.deepEqual(r.ids, [0, 1, 2, 3]);
    assertProbs(r.probs, [0.5, 0.3, 0.1, 0.04].map((p) => p / 0.94), 'top-k 4');
    assertNeedsFull(warpWith(S10, { topK: 5 }), 'top-k', 'top-k 5');
  });

  test('top-p: exact iff the candidates reach p (0.94 here)', () => {
    const r = kept(warpWith(S10, { topP: 0.85 }));
    assert.deepEqual(r.ids, [0, 1, 2]);
    assertProbs(r.probs, [0.5 / 0.9, 0.3 / 0.9, 0.1 / 0.9], 'top-p 0.85', 1e-12);
    assertNeedsFull(warpWith(S10, { topP: 0.95 }), 'top-p', 'top-p 0.95');
    assertKept(warpWith(S10, { topP: 0 }), [0], 'top-p 0 needs no normaliser');
  });

  test('min-p: exact iff p_K < min_p·p_max', () => {
    assertKept(warpWith(S10, { minP: 0.1 }), [0, 1, 2], 'min-p 0.1: 0.04 < 0.05');
    assertNeedsFull(warpWith(S10, { minP: 0.05 }), 'min-p', 'min-p 0.05: 0.04 ≥ 0.025');
  });

  test('typical: exact iff the candidates closer to H than any tail token can be reach τ', () => {
    // H = 1.3362; d_tail = −ln 0.04 − H = 1.8827. Candidates with d below it, in d order:
    // 0.3 (0.132), 0.5 (0.643), 0.1 (0.966): mass 0.9.
    assertKept(warpWith(S10, { typical: 0.85 }), [0, 1, 2], 'typical 0.85');
    assertNeedsFull(warpWith(S10, { typical: 0.95 }), 'typical', 'typical 0.95');
    // When the K-th candidate is more probable than typical (−ln p_K ≤ H) a tail token could be
    // perfectly typical: never exact. Flat logits: H = ln 10 > −ln p_K.
    const flat = statsOf([0.3, 0.2, 0.1, 0, 0, 0, 0, 0, 0, 0], { k: 4 });
    assertNeedsFull(warpWith(flat, { typical: 0.2 }), 'typical', 'flat');
  });

  test('top-H with n > K: exact when the tail cannot move the cut (S_n within [S_K, S_K + g])', () => {
    // n = 8: S_K = 1.0668, g = 0.2520 (4 unknown tokens of at most 0.015 each), S_1 = 0.347,
    // S_2 = 0.708. α 0.4: the cut lies after token 1 for every S_n in the interval.
    assertKept(warpWith(S10, { topH: { alpha: 0.4, n: 8 } }), [0], 'α 0.4');
    // α 0.6: S_2 ≤ α·S_n iff S_n ≥ 1.180 — inside the interval (the true S_8 = 1.283 keeps 2).
    assertNeedsFull(warpWith(S10, { topH: { alpha: 0.6, n: 8 } }), 'top-H', 'α 0.6');
    assertNeedsFull(warpWith(S10, { topH: { alpha: 1, n: 8 } }), 'top-H', 'α 1 keeps n > K');
    assertKept(warpWith(S10, { topH: { alpha: 0.9, n: 4 } }), [0, 1, 2], 'n ≤ K is always exact');
  });

  test('no truncation: the GPU\'s full-vocabulary sample', () => {
    const s = createSampler({ temperature: 1 });
    assert.deepEqual(s.sampling(9, 2), { temperature: 1, seed: 9, counter: 2, statsTemperature: 1 });
    const out = s.sample(S10, { seed: 9, row: 0, pos: 3, counter: 2 });
    assert.ok(!needsFullVocabulary(out));
    assert.equal(out.tokenId, 7);
    assert.equal(out.source, 'gpu');
    assert.equal(out.keptCount, null);
    assert.equal(out.logProb, null, 'a tail token has no known probability');
    // With a truncating stage the GPU need not draw, only report stats at T.
    assert.deepEqual(createSampler({ temperature: 0.7, topP: 0.9 }).sampling(9), { temperature: 0, seed: 9, counter: 0, statsTemperature: 0.7 });
    assert.deepEqual(createSampler({ temperature: 0 }).sampling(9), { temperature: 0, seed: 9, counter: 0, statsTemperature: 1 });
  });

  test('stats at another temperature: stages that need the normaliser say so; top-k and min-p do not need it', () => {
    assertNeedsFull(warpWith(S10, { temperature: 0.7, topP: 0.9 }, [], 1), 'top-p', 'top-p');
    assertNeedsFull(warpWith(S10, { temperature: 0.7, typical: 0.9 }, [], 1), 'typical', 'typical');
    assertKept(warpWith(S10, { temperature: 0.7, topK: 3, topP: 0.9 }, [], 1), [0, 1], 'top-k then top-p on the closed set');
    assertKept(warpWith(S10, { temperature: 0.5, minP: 0.2 }, [], 1), [0, 1], 'min-p: (0.3/0.5)² = 0.36 ≥ 0.2 > (0.1/0.5)²');
  });

  test('repetition penalty: exact on candidates; a penalised tail token blocks what needs the normaliser', () => {
    // Token 0 (ln 0.5) ×2 → ln 0.25: p ∝ 0.25, 0.3, 0.1, … (total 0.75); order 1, 0, 2.
    const r = kept(warpWith(S10, { repetitionPenalty: 2, topP: 0.85 }, [0]));
    assert.deepEqual(r.ids, [1, 0, 2], 'cumulative 0.4, 0.733, 0.867');
    assertProbs(r.probs, [0.3 / 0.65, 0.25 / 0.65, 0.1 / 0.65], 'renormalised', 1e-12);
    assertNeedsFull(warpWith(S10, { repetitionPenalty: 2, topP: 0.85 }, [7]), 'top-p', 'tail token 7 seen');
    assertKept(warpWith(S10, { repetitionPenalty: 2, topK: 3 }, [7]), [0, 1, 2], 'top-k needs no normaliser');
    // θ < 1 lifts a seen tail token up to at most pen(ln 0.04): 0.25·(−3.22) = −0.80 stays below
    // ln 0.5 = −0.69, so the argmax is still known; 0.1·(−3.22) = −0.32 could lead.
    assertKept(warpWith(S10, { repetitionPenalty: 0.25, topK: 1 }, [7]), [0], 'θ 0.25, top-k 1');
    assertNeedsFull(warpWith(S10, { repetitionPenalty: 0.25, topK: 2 }, [7]), 'top-k', 'θ 0.25, top-k 2');
    assertNeedsFull(warpWith(S10, { repetitionPenalty: 0.1, topK: 1 }, [7]), 'top-k', 'θ 0.1, top-k 1');
    assertNeedsFull(warpWith(S10, { repetitionPenalty: 0.1, temperature: 0 }, [7]), 'temperature', 'θ 0.1, greedy');
    // No truncation: the GPU drew from the unpenalised logits.
    const out = createSampler({ repetitionPenalty: 1.3 }).sample(S10, { seed: 1, row: 0, pos: 0, history: [0] });
    assertNeedsFull(out, 'sample', 'penalty without truncation');
    const plain = createSampler({ repetitionPenalty: 1.3 }).sample(S10, { seed: 1, row: 0, pos: 0, history: [] });
    assert.ok(!needsFullVocabulary(plain) && plain.source === 'gpu', 'empty history: nothing penalised');
  });

  test('frequency and presence penalties: exact on candidates; a seen tail token is handled as the repetition penalty', () => {
    // f 1 on history [0]: token 0 (0.5) → 0.5/e = 0.184; order 1 (0.3), 0, 2.
    const r = kept(warpWith(S10, { frequencyPenalty: 1, topK: 3 }, [0]));
    assert.deepEqual(r.ids, [1, 0, 2]);
    assertProbs(r.probs, [0.3, 0.5 / Math.E, 0.1].map((x, _, a) => x / (a[0] + a[1] + a[2])), 'renormalised', 1e-12);
    assertNeedsFull(warpWith(S10, { frequencyPenalty: 1, topP: 0.85 }, [7]), 'top-p', 'tail token 7 seen');
    assertKept(warpWith(S10, { frequencyPenalty: 1, topK: 3 }, [7]), [0, 1, 2], 'top-k needs no normaliser');
    // A negative presence penalty lifts a seen tail token to at most ln 0.04 + 2 = −1.22: below
    // ln 0.3 = −1.20, so the two leaders are known, not the third (ln 0.1 = −2.30).
    assertKept(warpWith(S10, { presencePenalty: -2, topK: 2 }, [7]), [0, 1], 'presence −2, top-k 2');
    assertNeedsFull(warpWith(S10, { presencePenalty: -2, topK: 3 }, [7]), 'top-k', 'presence −2, top-k 3');
    const out = createSampler({ frequencyPenalty: 0.3 }).sample(S10, { seed: 1, row: 0, pos: 0, history: [1] });
    assertNeedsFull(out, 'sample', 'a penalty without truncation: the GPU drew from the unpenalised logits');
  });

  test('stage functions compose on their own', () => {
    const d = fromStepStats(S10);
    const r = applyTopP(d, 0.85) as Distribution;
    assert.equal(r.tail, null);
    assertKept(applyTopK(r, 2), [0, 1], 'top-k after top-p');
    assertKept(applyMinP(closedDistribution([{ id: 5, logit: 0 }, { id: 6, logit: -3 }]), 0.1), [5], 'min-p on a closed set');
    assertKept(applyTypical(d, 0.85), [0, 1, 2], 'typical');
    assertKept(applyTopH(d, 0.4, 8), [0], 'top-H');
    assertKept(applyRepetitionPenalty(closedDistribution([{ id: 1, logit: 2 }, { id: 2, logit: 1.5 }]), 2, [1]), [2, 1], 'penalty');
    assert.ok(Math.abs(logProbOf(r, 0)! - Math.log(0.5 / 0.9)) < 1e-12);
    assert.equal(logProbOf(r, 9), -Infinity, 'excluded token of a closed set');
    // CNTP's entropy: −Σ p ln(p + 1e-10) over the warped set.
    const q = [0.5, 0.3, 0.1].map((p) => p / 0.9);
    const h = -q.reduce((a, p) => a + p * Math.log(p + 1e-10), 0);
    assert.ok(Math.abs(entropyOf(r, 1e-10)! - h) < 1e-12, 'entropyOf with ε');
    assert.ok(Math.abs(entropyOf(d)! - 1.3361577132255722) < 1e-12, 'full-vocabulary entropy of an open distribution');
    assert.equal(entropyOf(d, 1e-10), null, 'ε needs a closed set');
  });

  test('candidates covering the vocabulary close it (vocabSize)', () => {
    const all = statsOf(Z10, { k: 10 });
    const options = { vocabSize: 10, topK: 10, topP: 0.999, minP: 0.001, typical: 0.99, topH: { alpha: 1 } };
    assert.deepEqual(kept(warpWith(all, options)).ids, referenceWarp(Z10, samplerParams(options), []).ids);
    // Without vocabSize the same K = 10 leave a (massless) tail open: min-p cannot rule it out.
    assertNeedsFull(warpWith(all, { minP: 0.001 }), 'min-p', 'no vocabSize');
    assertKept(warpWith(all, { vocabSize: 10, minP: 0.001 }), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'vocabSize');
  });
});

// ---------------------------------------------------------------------------------------------
// Randomized cross-check against a full-vocabulary implementation of the same semantics

/** HF's processors over the whole row, written plainly: masks over all V tokens, float64. */
function referenceWarp(z: readonly number[], o: ReturnType<typeof samplerParams>, history: readonly number[]) {
  const seen = new Set(history);
  const th = o.repetitionPenalty;
  const pen = z.map((v, id) => (seen.has(id) ? (v < 0 ? v * th : v / th) : v));
  const byOrder = (ids: number[], s: number[]) => ids.sort((a, b) => s[b] - s[a] || a - b);
  if (o.temperature === 0) return { ids: [byOrder(z.map((_, i) => i), pen)[0]], probs: [1] };
  const s = pen.map((v) => v / o.temperature);
  const probsOf = (ids: number[]) => {
    const m = Math.max(...ids.map((i) => s[i]));
    const w = ids.map((i) => Math.exp(s[i] - m));
    const sum = w.reduce((a, b) => a + b, 0);
    return w.map((x) => x / sum);
  };
  let active = byOrder(z.map((_, i) => i), s);
  if (o.topH) {
    // First, on the full distribution at T (q not renormalised by any other stage).
    const q = probsOf(active).slice(0, o.topH.n);
    const S = [0];
    q.forEach((x, i) => S.push(S[i] - x * Math.log(x)));
    let m = q.length;
    while (m > 0 && !(S[m] <= o.topH.alpha * S[q.length])) m--;
    active = active.slice(0, Math.max(1, m));
  }
  if (o.topK > 0) active = active.slice(0, o.topK);
  if (o.topP < 1) {
    const p = probsOf(active);
    let before = 0;
    let n = 0;
    while (n < active.length && (n === 0 || before < o.topP)) before += p[n++];
    active = active.slice(0, n);
  }
  if (o.minP > 0) {
    const p = probsOf(active);
    const threshold = o.minP * Math.max(...p);
    active = active.filter((_, i) => p[i] >= threshold);
  }
  if (o.typical < 1) {
    const p = probsOf(active);
    const H = -p.reduce((a, x) => a + x * Math.log(x), 0);
    const d = p.map((x) => Math.abs(-Math.log(x) - H));
    const byD = d.map((_, i) => i).sort((a, b) => d[a] - d[b] || a - b);
    let cum = 0;
    let last = byD[byD.length - 1];
    for (const i of byD) {
      cum += p[i];
      if (cum >= o.typical) {
        last = i;
        break;
      }
    }
    active = active.filter((_, i) => d[i] <= d[last]);
  }
  return { ids: active, probs: probsOf(active) };
}

describe('randomized: an answer from K candidates is the full-vocabulary answer', () => {
  test('1500 random rows, options and histories', () => {
    const rng = mulberry32(20240611);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rng() * xs.length)];
    let exact = 0;
    let inexact = 0;
    for (let c = 0; c < 1500; c++) {
      const V = pick([5, 12, 40, 200]);
      const K = 1 + Math.floor(rng() * Math.min(V, 64));
      const scale = pick([0.3, 1, 2.5, 6]);
      const z = Array.from({ length: V }, () => Math.fround(scale * gaussian(rng)));
      const on = () => rng() < 0.4;
      const options: SamplerOptions = {
        temperature: pick([0, 0.5, 1, 1.7]),
        ...(on() && { topK: 1 + Math.floor(rng() * Math.min(V + 5, 80)) }),
        ...(on() && { topP: rng() }),
        ...(on() && { minP: 0.5 * rng() }),
        ...(on() && { typical: rng() }),
        ...(on() && { topH: { alpha: rng(), n: 1 + Math.floor(rng() * 120) } }),
        ...(rng() < 0.3 && { repetitionPenalty: pick([0.5, 1.3, 2]) }),
        ...(rng() < 0.5 && { vocabSize: V }),
      };
      const history = Array.from({ length: Math.floor(rng() * 5) }, () => Math.floor(rng() * V));
      const params = samplerParams(options);
      const t = params.temperature > 0 ? params.temperature : 1;
      const stats = statsOf(z, { k: K, statsTemperature: t });
      const r = warp(stats, params, { history });
      const ref = referenceWarp(z, params, history);
      const what = `case ${c}: V ${V}, K ${K}, ${JSON.stringify(options)}, history ${history}`;
      if (K === V && params.vocabSize !== null) assert.ok(!needsFullVocabulary(r), `${what}: a closed vocabulary is always exact`);
      if (needsFullVocabulary(r)) {
        inexact++;
        continue;
      }
      exact++;
      if (r.tail) {
        // No stage cut anything: the reference keeps the whole vocabulary.
        assert.equal(ref.ids.length, V, `${what}: open answer but the reference truncated`);
        continue;
      }
      assert.deepEqual([...r.ids], ref.ids, `${what}: kept ids`);
      assertProbs(candidateProbabilities(r)!, ref.probs, what, 1e-9);
    }
    assert.ok(exact > 900 && inexact > 100, `both outcomes exercised: ${exact} exact, ${inexact} needing the vocabulary`);
  });

  test('single stages: top-k and top-p are exact exactly when their condition holds; min-p as stated', () => {
    const rng = mulberry32(7);
    for (let c = 0; c < 600; c++) {
      const V = 50;
      const K = 1 + Math.floor(rng() * 20);
      const z = Array.from({ length: V }, () => Math.fround(2 * gaussian(rng)));
      const stats = statsOf(z, { k: K });
      const p = stats.topK.map((x) => Math.exp(x.logit - stats.lse));
      const k = 1 + Math.floor(rng() * 30);
      assert.equal(needsFullVocabulary(warpWith(stats, { topK: k })), k > K, `top-k ${k}, K ${K}`);
      const topP = rng();
      const massK = p.reduce((a, b) => a + b, 0);
      assert.equal(needsFullVocabulary(warpWith(stats, { topP })), massK < topP, `top-p ${topP}, candidates' mass ${massK}`);
      const minP = 0.3 * rng();
      assert.equal(needsFullVocabulary(warpWith(stats, { minP })), p[K - 1] >= minP * p[0], `min-p ${minP}`);
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('validation', () => {
  const bad: [SamplerOptions, string][] = [
    [{ temperature: NaN }, 'temperature'], [{ temperature: -1 }, 'temperature'], [{ temperature: 101 }, 'temperature'],
    [{ temperature: 1e-9 }, 'temperature'], [{ topK: -1 }, 'topK'], [{ topK: 2.5 }, 'topK'], [{ topP: 1.01 }, 'topP'],
    [{ topP: NaN }, 'topP'], [{ minP: -0.1 }, 'minP'], [{ minP: Infinity }, 'minP'], [{ typical: 2 }, 'typical'],
    [{ topH: { alpha: 1.5 } }, 'topH.alpha'], [{ topH: { n: 0 } }, 'topH.n'], [{ topH: { alpha: NaN } }, 'topH.alpha'],
    [{ repetitionPenalty: 0 }, 'repetitionPenalty'], [{ repetitionPenalty: NaN }, 'repetitionPenalty'],
    [{ vocabSize: 0 }, 'vocabSize'], [{ topP: '0.9' as unknown as number }, 'topP'], [{ top_p: 0.9 } as SamplerOptions, 'top_p'],
    [{ topH: 0.4 as unknown as SamplerOptions['topH'] }, 'topH'],
  ];
  for (const [options, name] of bad) {
    test(`${JSON.stringify(options) ?? String(options)} → InvalidArgumentError naming ${name}`, () => {
      assert.throws(() => createSampler(options), (e: unknown) => e instanceof InvalidArgumentError && e.message.includes(name));
    });
  }

  test('sample context and stage parameters', () => {
    const s = createSampler({ topK: 2 });
    const ctx = { seed: 1, row: 0, pos: 0 };
    const throwsNaming = (f: () => unknown, name: string) =>
      assert.throws(f, (e: unknown) => e instanceof InvalidArgumentError && e.message.includes(name), name);
    throwsNaming(() => s.sample(S6, { ...ctx, seed: -1 }), 'seed');
    throwsNaming(() => s.sample(S6, { ...ctx, seed: 2 ** 32 }), 'seed');
    throwsNaming(() => s.sample(S6, { ...ctx, row: 1.5 }), 'row');
    throwsNaming(() => s.sample(S6, { ...ctx, pos: NaN }), 'pos');
    throwsNaming(() => s.sample(S6, { ...ctx, counter: -2 }), 'counter');
    throwsNaming(() => s.sample(S6, { ...ctx, history: [1, -1] }), 'history[1]');
    throwsNaming(() => s.sample(S6, { ...ctx, statsTemperature: 0 }), 'statsTemperature');
    throwsNaming(() => s.sample({ ...S6, topK: [] }, ctx), 'stats.topK');
    throwsNaming(() => s.sample({ ...S6, lse: NaN }, ctx), 'stats.lse');
    throwsNaming(() => s.sampling(-1), 'seed');
    const d = fromStepStats(S6);
    throwsNaming(() => applyTopK(d, -1), 'topK');
    throwsNaming(() => applyTopP(d, 2), 'topP');
    throwsNaming(() => applyMinP(d, NaN), 'minP');
    throwsNaming(() => applyTypical(d, -0.5), 'typical');
    throwsNaming(() => applyTopH(d, 0.4, 0), 'topH.n');
    throwsNaming(() => applyRepetitionPenalty(d, -1, []), 'repetitionPenalty');
    throwsNaming(() => drawIndex(d, 0.5), 'closed');
  });
});

// ---------------------------------------------------------------------------------------------

describe('RNG: the CPU mirror of the shader\'s PCG hash', () => {
  test('known values (an independent Python transcription with 32-bit masks)', () => {
    assert.equal(pcgHash(0), 129708002);
    assert.equal(pcgHash(1), 2831084092);
    assert.equal(pcgHash(2), 2055130248);
    assert.equal(pcgHash(42), 1223963391);
    assert.equal(pcgHash(123456789), 4272394698);
    assert.equal(pcgHash(0xffffffff), 3861530882);
    assert.equal(pcgHash(-1), 3861530882, 'arguments are taken mod 2^32');
    assert.equal(rngBits(0, 0, 0, 0, 0), 920646579);
    assert.equal(rngBits(2024, 0, 7, 0, 100), 2951258562);
    assert.equal(rngBits(12345, 3, 17, 2, 31999), 166915352);
    assert.equal(uniform01(2024, 0, 7, 0, 100), (Math.floor(11528353 / 2) + 0.5) / 2 ** 23); // 2951258562 >>> 9
    assert.equal(uniform01(12345, 3, 17, 2, 31999), (Math.floor(166915352 / 512) + 0.5) / 2 ** 23);
  });

  test('uniform01 stays inside (0, 1) and is exact in float32 (the shader computes the same value)', () => {
    const top = [12345, 0, 1031323, 0, 1] as const; // bits >>> 9 = 2^23 − 1
    assert.equal(rngBits(...top) >>> 9, 0x7fffff);
    assert.equal(uniform01(...top), 1 - 2 ** -24);
    const rng = mulberry32(3);
    for (let i = 0; i < 10000; i++) {
      const key = [0, 0, 0, 0, 0].map(() => Math.floor(rng() * 2 ** 32)) as [number, number, number, number, number];
      const u = uniform01(...key);
      assert.ok(u > 0 && u < 1);
      assert.equal(Math.fround(u), u, 'representable in float32');
    }
  });

  test('draws are pure functions of (seed, row, pos, counter): same key, same token', () => {
    const s = createSampler({ ...V6, topP: 0.95 });
    const ctx = { seed: 77, row: 2, pos: 40, counter: 1 };
    const a = s.sample(S6, ctx);
    const b = createSampler({ ...V6, topP: 0.95 }).sample(S6, { ...ctx });
    assert.deepEqual(a, b);
    assert.ok(!needsFullVocabulary(a));
    const d = a.distribution;
    assert.equal(a.tokenId, d.ids[drawIndex(d, uniform01(77, 2, 40, 1, CPU_DRAW_INDEX))]);
  });
});

describe('sampling frequencies', () => {
  // χ² goodness of fit. The draws are fixed by their keys, so each check is deterministic; the
  // thresholds are the 0.999 quantiles, where an ideal sampler would fail one key set in a thousand,
  // while a draw from the wrong distribution (e.g. not renormalised, or off by one token) gives χ²
  // in the hundreds at these N.
  const chi2 = (counts: number[], probs: number[], n: number) =>
    counts.reduce((acc, c, i) => acc + (c - n * probs[i]) ** 2 / (n * probs[i]), 0);

  test('20000 draws over positions match p (6 tokens: χ²₅ < 20.52)', () => {
    const s = createSampler({ ...V6, topP: 1 - 1e-9 });
    const counts = new Array(6).fill(0);
    const N = 20000;
    for (let pos = 0; pos < N; pos++) {
      const out = s.sample(S6, { seed: 2024, row: 0, pos });
      assert.ok(!needsFullVocabulary(out) && out.source === 'cpu');
      counts[out.tokenId]++;
    }
    const x = chi2(counts, P6, N);
    assert.ok(x < 20.52, `χ² ${x.toFixed(2)}, counts ${counts}`);
  });

  test('20000 draws over counters from a truncated set match its renormalised p (χ²₂ < 13.82)', () => {
    const s = createSampler({ ...V6, topP: 0.7 }); // keeps 2, 1, 4 with 0.5, 0.3125, 0.1875
    const counts = new Map<number, number>();
    const N = 20000;
    for (let counter = 0; counter < N; counter++) {
      const out = s.sample(S6, { seed: 5, row: 1, pos: 9, counter });
      assert.ok(!needsFullVocabulary(out));
      counts.set(out.tokenId, (counts.get(out.tokenId) ?? 0) + 1);
    }
    assert.deepEqual([...counts.keys()].sort(), [1, 2, 4]);
    const x = chi2([2, 1, 4].map((id) => counts.get(id)!), [0.5, 0.3125, 0.1875], N);
    assert.ok(x < 13.82, `χ² ${x.toFixed(2)}`);
  });

  test('different seeds give independent streams (agreement ≈ Σp² within 5σ)', () => {
    const s = createSampler({ ...V6, minP: 0.01 });
    const N = 4000;
    let agree = 0;
    for (let pos = 0; pos < N; pos++) {
      const a = s.sample(S6, { seed: 1, row: 0, pos });
      const b = s.sample(S6, { seed: 2, row: 0, pos });
      if (!needsFullVocabulary(a) && !needsFullVocabulary(b) && a.tokenId === b.tokenId) agree++;
    }
    const q = P6.reduce((acc, p) => acc + p * p, 0); // 0.2622
    assert.ok(Math.abs(agree / N - q) < 5 * Math.sqrt((q * (1 - q)) / N), `agreement ${agree / N}, expected ${q}`);
  });
});

// ---------------------------------------------------------------------------------------------
// On the GPU (the `webgpu` package; SwiftShader on a machine without one)

describe('on the GPU', () => {
  let ctx: GpuContext;
  before(async () => {
    process.env.VK_ICD_FILENAMES ??= '/usr/lib/chromium/vk_swiftshader_icd.json';
    process.env.XDG_RUNTIME_DIR ??= tmpdir();
    ctx = await acquireGpu({ gpu: create([]), mapWait: 'paced' });
  });
  after(() => ctx?.device.destroy());

  async function readBuffer(encoder: GPUCommandEncoder, src: GPUBuffer, size: number): Promise<ArrayBuffer> {
    const staging = ctx.device.createBuffer({ size, usage: READBACK });
    encoder.copyBufferToBuffer(src, 0, staging, 0, size);
    ctx.device.queue.submit([encoder.finish()]);
    await staging.mapAsync(1);
    const bytes = staging.getMappedRange().slice(0);
    staging.destroy();
    return bytes;
  }

  function storage(data: Uint32Array | Float32Array | number): GPUBuffer {
    const size = typeof data === 'number' ? data : data.byteLength;
    const b = ctx.device.createBuffer({ size: Math.max(16, size), usage: STORAGE });
    if (typeof data !== 'number') ctx.device.queue.writeBuffer(b, 0, data.buffer, data.byteOffset, data.byteLength);
    return b;
  }

  test('the shader\'s own pcg and uniform01 equal the CPU mirror, bit for bit', async () => {
    // Cut `pcg` and `uniform01` out of lm_head_stats.wgsl, and the structs they use out of the
    // prelude every kernel is compiled with (or the shader itself), so this runs the shipped code,
    // not a copy of it.
    const shader = (name: string) => {
      const path = join(import.meta.dirname, '..', '..', 'shaders', name);
      return existsSync(path) ? readFileSync(path, 'utf8') : '';
    };
    const source = shader('prelude.wgsl') + '\n' + shader('lm_head_stats.wgsl');
    const grab = (re: RegExp) => {
      const m = source.match(re);
      assert.ok(m, `prelude.wgsl or lm_head_stats.wgsl has ${re}`);
      return m[0];
    };
    const code = [
      grab(/struct Step \{[^}]*\}/), grab(/struct TokenSlot \{[^}]*\}/), 'var<private> step: Step;',
      grab(/fn pcg\([\s\S]*?\n\}/), grab(/fn uniform01\([\s\S]*?\n\}/),
      `@group(0) @binding(0) var<storage, read> keys: array<u32>;
       @group(0) @binding(1) var<storage, read_write> out: array<u32>;
       @compute @workgroup_size(64)
       fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
         let i = gid.x;
         if (i >= arrayLength(&out) / 2u) { return; }
         let k = 5u * i;
         step.seed = keys[k];
         step.counter = keys[k + 3u];
         let slot = TokenSlot(0u, keys[k + 2u], keys[k + 1u], 0u);
         out[2u * i] = pcg(keys[k + 4u]);
         out[2u * i + 1u] = bitcast<u32>(uniform01(slot, keys[k + 4u]));
       }`,
    ].join('\n');
    const rng = mulberry32(99);
    const keys: number[][] = [
      [0, 0, 0, 0, 0], [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [12345, 0, 1031323, 0, 1],
      [2024, 0, 7, 0, 100], [1, 2, 3, 4, 5],
    ];
    while (keys.length < 1024) {
      const small = () => Math.floor(rng() * 1000);
      const big = () => Math.floor(rng() * 2 ** 32);
      keys.push([big(), small(), small(), small(), Math.floor(rng() * 32000)], [big(), big(), big(), big(), big()]);
    }
    const module = ctx.device.createShaderModule({ code });
    const pipeline = await ctx.device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } });
    const keyBuf = storage(new Uint32Array(keys.flat()));
    const outBuf = storage(8 * keys.length);
    const encoder = ctx.device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, ctx.device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [{ binding: 0, resource: { buffer: keyBuf } }, { binding: 1, resource: { buffer: outBuf } }],
    }));
    pass.dispatchWorkgroups(Math.ceil(keys.length / 64));
    pass.end();
    const out = new Uint32Array(await readBuffer(encoder, outBuf, 8 * keys.length));
    const f32 = new Float32Array(out.buffer);
    keys.forEach((key, i) => {
      const [seed, row, pos, counter, id] = key;
      assert.equal(out[2 * i], pcgHash(id), `pcg(${id})`);
      assert.equal(f32[2 * i + 1], uniform01(seed, row, pos, counter, id), `uniform01 of key ${key}`);
    });
    keyBuf.destroy();
    outBuf.destroy();
  });

  // Most of this test's time is SwiftShader compiling the two lm_head_stats pipelines (≈15 s on a
  // loaded 2-core machine); the 8 rows themselves take milliseconds.
  test('end to end: the statistics kernel at statsTemperature = T, then the sampler, equals a float64 reference', async () => {
    // 8 rows of 3000 float32 logits, the real logitsStats kernel (K = 64, stats and the Gumbel draw
    // at T = 0.8), then top-p / min-p / top-k / typical on the CPU against referenceWarp over the row.
    const rows = 8;
    const vocab = 3000;
    const topK = 64;
    const T = 0.8;
    const rng = mulberry32(4242);
    const logits = new Float32Array(rows * vocab).map(() => 3 * gaussian(rng));
    const step = new DataView(new ArrayBuffer(STEP_UNIFORM_BYTES));
    [rows, 0, rows, 31337, 4].forEach((v, i) => step.setUint32(4 * i, v, true));
    step.setFloat32(20, 1 / T, true);
    step.setFloat32(24, 1 / T, true);
    const stepBuf = ctx.device.createBuffer({ size: STEP_UNIFORM_BYTES, usage: UNIFORM });
    ctx.device.queue.writeBuffer(stepBuf, 0, step.buffer);
    const slots = new Uint32Array(4 * rows);
    for (let r = 0; r < rows; r++) slots.set([0, 100 + r, r % 3, 0], 4 * r);
    const bufs = {
      step: stepBuf, tokens: storage(slots), logits: storage(logits),
      partials: storage(rows * LM_PARTIALS_PER_ROW * LM_PARTIAL_BYTES),
      partialTopK: storage(rows * LM_PARTIALS_PER_ROW * 2 * topK * 4),
      stats: storage(rows * statsRecordWords(topK) * 4),
    };
    const calls = await new Kernels(ctx).logitsStats('samplers', { vocab, topK }, bufs);
    const encoder = ctx.device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    encodeCalls(pass, calls, { nTokens: rows, statsRows: rows });
    pass.end();
    const stats = parseStats(await readBuffer(encoder, bufs.stats, rows * statsRecordWords(topK) * 4), rows, topK);
    Object.values(bufs).forEach((b) => b.destroy());

    const configs: SamplerOptions[] = [
      { temperature: T, topP: 0.5 }, { temperature: T, minP: 0.05 }, { temperature: T, topK: 40, topP: 0.9 },
      { temperature: T, typical: 0.3 },
    ];
    let checked = 0;
    for (let r = 0; r < rows; r++) {
      const z = Array.from(logits.subarray(r * vocab, (r + 1) * vocab));
      for (const options of configs) {
        const s = createSampler(options);
        const out = s.sample(stats[r], { seed: 31337, row: r % 3, pos: 100 + r, counter: 4 });
        if (needsFullVocabulary(out)) continue;
        const ref = referenceWarp(z, samplerParams(options), []);
        assert.deepEqual([...out.distribution.ids], ref.ids, `row ${r}, ${JSON.stringify(options)}`);
        // Probabilities carry the GPU's float32 lse only through renormalisation: ~1e-6.
        assertProbs(candidateProbabilities(out.distribution)!, ref.probs, `row ${r}`, 1e-5);
        checked++;
      }
      // Without truncation the token is the GPU's Gumbel-max draw, and GPU and CPU agree on the
      // stats the sampler derived the tail from.
      const full = createSampler({ temperature: T }).sample(stats[r], { seed: 31337, row: r % 3, pos: 100 + r, counter: 4 });
      assert.ok(!needsFullVocabulary(full) && full.source === 'gpu' && full.tokenId === stats[r].sampled);
    }
    assert.ok(checked >= rows * 3, `${checked} of ${rows * configs.length} answered from the candidates`);
  });
});
