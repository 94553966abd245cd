// Adaptive temperature (HAPO) and entropy top-k (PURE) — algorithms.md §4 — with hand-computed
// numbers: the calibration and its sign, the k table, the stage (ties kept, undecidable beyond
// the candidates), and both decoders driven on the fake runtime, seeded.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  AdaptiveTemperatureDecoder, adaptedTemperature, calibrate, normalisedEntropy,
} from '../../src/decode/adaptive-temperature.ts';
import { applyEntropyTopK, closedDistribution, entropyTopKCount, fromStepStats, needsFullVocabulary } from '../../src/decode/samplers.ts';
import { SamplingDecoder } from '../../src/decode/sampling-decoder.ts';
import { roundHalfEven } from '../../src/decode/spec.ts';
import type { StepStats } from '../../src/runtime/stats.ts';
import { FakeRuntime, drive, fakeLogits, fakeStats } from '../support/fake-runtime.ts';

const close = (a: number, b: number, what: string, tol = 1e-9) => assert.ok(Math.abs(a - b) < tol, `${what}: ${a} vs ${b}`);

describe('adaptive temperature (HAPO)', () => {
  // ℓ = ln [1, 2, 4, 8, 16] = k·ln 2; pivot at index round(0.8·4) = 3 → ln 8; σ = ln 2·√mean(9, 4, 1, 0, 1) = ln 2·√3;
  // z = (k − 3)/√3 → P = 1/√3, Q = −3/√3.
  const c = calibrate([1, 2, 4, 8, 16]);

  test('calibration: pivot at the 80th percentile index, σ about the pivot, extreme z on each side', () => {
    close(c.pivot, Math.log(8), 'pivot');
    close(c.sigma, Math.LN2 * Math.sqrt(3), 'σ');
    close(c.p, 1 / Math.sqrt(3), 'P');
    close(c.q, -3 / Math.sqrt(3), 'Q');
    // Python's round: index round(0.8·(N − 1)) for N = 3 is round(1.6) = 2; for N = 6 round(4.0) = 4
    close(calibrate([3, 1, 2]).pivot, Math.log(3), 'N = 3');
    // a single entropy: σ = 1e-4, P and Q at their floors
    const one = calibrate([2]);
    assert.deepEqual([one.p, one.q], [1e-8, -1e-8]);
  });

  test('ĥ divides the negative side by |Q| (the paper), so low-entropy steps cool', () => {
    const sigma = Math.LN2 * Math.sqrt(3) + 1e-6;
    close(normalisedEntropy(16, c), Math.LN2 / sigma * Math.sqrt(3), 'H 16: h/P ≈ 1');
    close(normalisedEntropy(2, c), (-2 * Math.LN2 / sigma) / Math.sqrt(3), 'H 2: h/|Q| ≈ −2/3');
    close(normalisedEntropy(1, c), -1, 'H 1: clamped at −1', 1e-5);
    assert.equal(normalisedEntropy(1e6, c), 1, 'clamped at 1');
    close(adaptedTemperature(1, 0.05, normalisedEntropy(2, c)), 1 - 0.05 * 2 * Math.LN2 / sigma / Math.sqrt(3), 'T′ at H 2');
    assert.ok(adaptedTemperature(0.8, 0.05, normalisedEntropy(1, c)) < 0.8, 'below the pivot: cooler (the published h/Q would warm it)');
    assert.ok(adaptedTemperature(0.8, 0.05, normalisedEntropy(16, c)) > 0.8);
    // ε floors: H = 0 is ln 1e-6 per step
    assert.equal(normalisedEntropy(0, c), -1, 'H 0');
  });

  test('the decoder: T until the warm-up, then T′ from the window before the step; seeded', async () => {
    const model = { vocabSize: 40, candidates: 40, scale: 1.5, salt: 3 };
    const run = async (seed: number) => {
      const dec = new AdaptiveTemperatureDecoder({ seed, warmup: 4, window: 6, topK: 20 });
      const runtime = new FakeRuntime(model);
      const { tokens } = await drive(dec, runtime, [1, 2, 3], 12);
      return { dec, tokens, runtime };
    };
    const { dec, tokens, runtime } = await run(5);
    assert.equal(dec.history.length, 12);
    assert.ok(runtime.statsTemperatures.every((t) => t === 1), 'raw statistics');
    const s = dec.summary();
    assert.equal(s.decoder, 'adaptive-temperature');
    assert.equal(s.adaptedSteps, 8);
    assert.ok(s.minTemperature >= 0.95 && s.maxTemperature <= 1.05 && s.minTemperature < s.maxTemperature, JSON.stringify(s));
    // replay the temperature of the last step from the window before it
    const window = dec.history.slice(12 - 1 - 6, 11);
    close(dec.temperatures[11], 1 + 0.05 * normalisedEntropy(dec.history[11], calibrate(window)), 'T′');
    assert.deepEqual(dec.temperatures.slice(0, 4), [1, 1, 1, 1], 'T during the warm-up');
    assert.deepEqual((await run(5)).tokens, tokens);
    assert.notDeepEqual((await run(6)).tokens, tokens);
  });

  test('without a truncating stage: the step\'s GPU draw while T′ = T, then the GPU\'s draw at T′, no full row', async () => {
    const model = { vocabSize: 16, candidates: 4, scale: 1, salt: 1 };
    const runtime = new FakeRuntime(model);
    const dec = new AdaptiveTemperatureDecoder({ seed: 1, warmup: 2, temperature: 0.9 });
    const { tokens } = await drive(dec, runtime, [1], 6);
    assert.equal(runtime.calls.fullStats, 0);
    const adapted = dec.temperatures.slice(2);
    assert.ok(adapted.every((t) => t !== 0.9), `T′ ≠ T after the warm-up: ${adapted}`);
    // one redraw per adapted step, at T′ for the statistics and the draw, keyed as the step's
    assert.deepEqual(runtime.calls.statsUnder.map((x) => [x.temperature, x.statsTemperature, x.seed]), adapted.map((t) => [t, t, 1]));
    assert.equal(dec.summary().redrawnSteps, 4);
    // each token is the Gumbel-max draw at its temperature (the step's at T, the redraw's at T′)
    dec.temperatures.forEach((t, i) => {
      const pos = i; // prompt [1]: step i's input token sits at position i
      const history = tokens.slice(0, i + 1);
      const drawn = fakeStats(fakeLogits(model, history), model.candidates, { temperature: t, seed: 1 }, 0, pos).sampled;
      assert.equal(tokens[i + 1], drawn, `token ${i} at T ${t}`);
    });
  });

  test('τ = 0 draws what sample at T draws, from the steps alone', async () => {
    const model = { vocabSize: 50, candidates: 8, scale: 1.2, salt: 4 };
    const adaptive = new FakeRuntime(model);
    const a = await drive(new AdaptiveTemperatureDecoder({ seed: 7, tau: 0, warmup: 2, temperature: 0.8 }), adaptive, [3, 4], 10);
    const b = await drive(new SamplingDecoder({ seed: 7, temperature: 0.8 }), new FakeRuntime(model), [3, 4], 10);
    assert.deepEqual(a.tokens, b.tokens);
    assert.equal(adaptive.calls.statsUnder.length + adaptive.calls.fullStats, 0);
  });

  test('at T 0 the penalties still apply (greedy over the penalised logits, as sample at T 0)', async () => {
    const model = { vocabSize: 12, candidates: 12, scale: 0.3, salt: 2 };
    const o = { seed: 1, temperature: 0, repetitionPenalty: 50 };
    const a = await drive(new AdaptiveTemperatureDecoder(o), new FakeRuntime(model), [3, 4], 8);
    const b = await drive(new SamplingDecoder(o), new FakeRuntime(model), [3, 4], 8);
    assert.deepEqual(a.tokens, b.tokens);
    const plain = await drive(new SamplingDecoder({ seed: 1, temperature: 0 }), new FakeRuntime(model), [3, 4], 8);
    assert.notDeepEqual(a.tokens, plain.tokens, 'the penalty changed the text');
  });
});

describe('entropy top-k (PURE)', () => {
  test('k table at k 1..2000: H 0 → 14, 1 → 37, 2 → 96, 5 → 1000, 10 → 1987 (halves to even)', () => {
    assert.deepEqual([0, 1, 2, 5, 10].map((h) => entropyTopKCount(h)), [14, 37, 96, 1000, 1987]);
    assert.equal(entropyTopKCount(-3), 14, 'H clamped at 0');
    assert.equal(entropyTopKCount(50), 1987, 'H clamped at 10');
    assert.equal(entropyTopKCount(5, 1, 3), 2, 'round(2) = 2');
    assert.equal(entropyTopKCount(5, 2, 5), 4, 'round(3.5) = 4');
    assert.equal(entropyTopKCount(5, 1, 4), 2, 'round(2.5) = 2, not 3');
    assert.deepEqual([0.5, 1.5, 2.5, -0.5, -1.5, 3.2].map(roundHalfEven), [0, 2, 2, -0, -2, 3]);
  });

  test('keeps every logit ≥ the k-th largest (ties kept); beyond the candidates it is undecidable', () => {
    // H of a uniform 3-token distribution is ln 3 ≈ 1.1: k = round(1 + 9·σ(−3.9)) = 1 at 1..10
    const d = closedDistribution([{ id: 0, logit: 1 }, { id: 1, logit: 1 }, { id: 2, logit: 1 }, { id: 3, logit: -30 }]);
    const r = applyEntropyTopK(d, 1, 10);
    assert.ok(!needsFullVocabulary(r));
    assert.deepEqual(r.ids, [0, 1, 2], 'the two ties at the first logit stay');
    const stats: StepStats = { lse: 8, entropy: 7, varentropy: 1, maxLogit: 1, argmax: 0, sampled: 0, topK: [{ id: 0, logit: 1 }, { id: 1, logit: 0.5 }] };
    const open = applyEntropyTopK(fromStepStats(stats), 1, 2000);
    assert.ok(needsFullVocabulary(open) && open.stage === 'entropy-top-k');
  });

  test('the decoder reads raw statistics, and the full row when k exceeds the candidates; seeded', async () => {
    const model = { vocabSize: 300, candidates: 8, scale: 0.5, salt: 2 };
    const run = async (seed: number) => {
      const runtime = new FakeRuntime(model);
      const dec = new SamplingDecoder({ seed, temperature: 0.8, entropyTopK: { kMin: 1, kMax: 2000 } }, undefined, 'entropy-top-k');
      const { tokens } = await drive(dec, runtime, [1, 2], 6);
      return { tokens, runtime, dec };
    };
    const { tokens, runtime, dec } = await run(3);
    assert.ok(runtime.statsTemperatures.every((t) => t === 1));
    assert.ok(runtime.calls.fullStats > 0 && dec.fullVocabularySteps === runtime.calls.fullStats, 'a flat 300-token vocabulary needs k > 8');
    assert.equal(dec.summary().decoder, 'entropy-top-k');
    assert.deepEqual((await run(3)).tokens, tokens);
  });
});
