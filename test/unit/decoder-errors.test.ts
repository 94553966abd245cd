// Every decoder and sampler entry point (src/decode/*, src/runtime/adamw.ts) rejects bad arguments
// with a typed ForkwiseError and its `code`, never a RangeError, TypeError or plain Error.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CntpDecoder, trialCount, warpedEntropy } from '../../src/decode/cntp.ts';
import { checkDecodeContext } from '../../src/decode/decoder.ts';
import { EadDecoder } from '../../src/decode/ead.ts';
import {
  type Distribution, type SampledToken, applyMinP, applyRepetitionPenalty, applyTemperature, applyTopH, applyTopK, applyTopP,
  applyTypical, candidateProbabilities, checkDistribution, closedDistribution, createSampler, drawIndex, entropyOf, fromStepStats,
  greedy, knownLeaders, logProbOf, needsFullVocabulary, normaliser, samplerParams, truncate, truncates, warp,
} from '../../src/decode/samplers.ts';
import { SamplingDecoder } from '../../src/decode/sampling-decoder.ts';
import { SRGEN_DEFAULTS, SrgenDecoder, srgenThreshold } from '../../src/decode/srgen.ts';
import { ForkwiseError, type ForkwiseErrorCode } from '../../src/errors.ts';
import { AdamW } from '../../src/runtime/adamw.ts';
import type { StepStats } from '../../src/runtime/stats.ts';
import { FakeRuntime } from '../support/fake-runtime.ts';

type Case = [what: string, call: () => unknown, code?: ForkwiseErrorCode];

/** Runs each call (sync or async) and checks it fails with a ForkwiseError of the expected code. */
function rejectAll(cases: Case[]): void {
  for (const [what, call, code = 'invalid-argument'] of cases) {
    test(what, async () => {
      let error: unknown = null;
      try {
        await call();
      } catch (e) {
        error = e;
      }
      assert.ok(error !== null, `${what}: no error`);
      assert.ok(error instanceof ForkwiseError, `${what}: ${String(error)} is a ${(error as Error)?.constructor?.name}, not a ForkwiseError`);
      assert.equal(error.code, code, `${what}: code`);
    });
  }
}

const bad = <T>(x: unknown) => x as T;
const S: StepStats = {
  lse: Math.log(1 + Math.E + Math.exp(2)), entropy: 0.83, varentropy: 0, maxLogit: 2, argmax: 2, sampled: 2,
  topK: [{ id: 2, logit: 2 }, { id: 1, logit: 1 }],
};
const open = fromStepStats(S);
const closed = closedDistribution([{ id: 0, logit: 0 }, { id: 1, logit: 1 }]);
const params = samplerParams({ topK: 2 });
const key = { seed: 1, row: 0, pos: 0 };
const model = { vocabSize: 8, candidates: 8, scale: 1, salt: 0 };

async function context(runtime = new FakeRuntime(model)) {
  const stats = await runtime.feed([1, 2], { temperature: 0, seed: 0 });
  return { stats, pos: 1, tokens: [1, 2], budget: 4, runtime };
}

/** A runtime whose full rows leave entries out (a broken DecodeRuntime). */
class PartialRuntime extends FakeRuntime {
  override async fullStats(row: number, temperature: number): Promise<StepStats> {
    const full = await super.fullStats(row, temperature);
    return { ...full, topK: full.topK.slice(0, 3) };
  }
}

describe('samplers', () => {
  rejectAll([
    ['createSampler(null)', () => createSampler(bad(null))],
    ['createSampler: NaN temperature', () => createSampler({ temperature: NaN })],
    ['createSampler: topK −1', () => createSampler({ topK: -1 })],
    ['createSampler: topP 2', () => createSampler({ topP: 2 })],
    ['createSampler: minP NaN', () => createSampler({ minP: NaN })],
    ['createSampler: typical −1', () => createSampler({ typical: -1 })],
    ['createSampler: topH 0.4', () => createSampler({ topH: bad(0.4) })],
    ['createSampler: topH.n 0', () => createSampler({ topH: { n: 0 } })],
    ['createSampler: repetitionPenalty 0', () => createSampler({ repetitionPenalty: 0 })],
    ['createSampler: vocabSize 0', () => createSampler({ vocabSize: 0 })],
    ['createSampler: unknown option', () => createSampler(bad({ top_k: 5 }))],
    ['samplerParams("x")', () => samplerParams(bad('x'))],
    ['sampler.sampling(−1)', () => createSampler().sampling(-1)],
    ['sampler.sampling(0, 1.5)', () => createSampler().sampling(0, 1.5)],
    ['sample(null stats)', () => createSampler().sample(bad(null), key)],
    ['sample(stats, null)', () => createSampler().sample(S, bad(null))],
    ['sample: seed −1', () => createSampler().sample(S, { ...key, seed: -1 })],
    ['sample: row 1.5', () => createSampler().sample(S, { ...key, row: 1.5 })],
    ['sample: pos NaN', () => createSampler().sample(S, { ...key, pos: NaN })],
    ['sample: counter −1', () => createSampler().sample(S, { ...key, counter: -1 })],
    ['sample: history not an array', () => createSampler().sample(S, { ...key, history: bad('abc') })],
    ['sample: history id −1', () => createSampler().sample(S, { ...key, history: [-1] })],
    ['sample: statsTemperature 0', () => createSampler().sample(S, { ...key, statsTemperature: 0 })],
    ['sample: context vocabSize 0', () => createSampler().sample(S, { ...key, vocabSize: 0 })],
    ['sample: empty topK', () => createSampler().sample({ ...S, topK: [] }, key)],
    ['sample: null candidate', () => createSampler().sample({ ...S, topK: [bad(null)] }, key)],
    ['sample: candidate id −1', () => createSampler().sample({ ...S, topK: [{ id: -1, logit: 0 }] }, key)],
    ['sample: candidate logit NaN', () => createSampler().sample({ ...S, topK: [{ id: 0, logit: NaN }] }, key)],
    ['sample: lse NaN', () => createSampler().sample({ ...S, lse: NaN }, key)],
    ['closedDistribution([])', () => closedDistribution([])],
    ['closedDistribution(null)', () => closedDistribution(bad(null))],
    ['closedDistribution([null])', () => closedDistribution([bad(null)])],
    ['closedDistribution: id 1.5', () => closedDistribution([{ id: 1.5, logit: 0 }])],
    ['fromStepStats(null)', () => fromStepStats(bad(null))],
    ['fromStepStats(S, null)', () => fromStepStats(S, bad(null))],
    ['fromStepStats: statsTemperature −1', () => fromStepStats(S, { statsTemperature: -1 })],
    ['fromStepStats: vocabSize 0', () => fromStepStats(S, { vocabSize: 0 })],
    ['fromStepStats: entropy "x"', () => fromStepStats({ ...S, entropy: bad('x') })],
    ['checkDistribution(null)', () => checkDistribution(bad(null))],
    ['checkDistribution: ids and logits of different lengths', () => checkDistribution({ ...closed, logits: [] })],
    ['checkDistribution: temperature 0', () => checkDistribution({ ...closed, temperature: 0 })],
    ['checkDistribution: tail 5', () => checkDistribution({ ...open, tail: bad(5) })],
    ['needsFullVocabulary(null)', () => needsFullVocabulary(bad(null))],
    ['knownLeaders(null)', () => knownLeaders(bad(null))],
    ['normaliser({})', () => normaliser(bad({}))],
    ['candidateProbabilities(undefined)', () => candidateProbabilities(bad(undefined))],
    ['logProbOf(d, −1)', () => logProbOf(closed, -1)],
    ['logProbOf(null, 0)', () => logProbOf(bad(null), 0)],
    ['entropyOf(d, 2)', () => entropyOf(closed, 2)],
    ['entropyOf(null)', () => entropyOf(bad(null))],
    ['applyRepetitionPenalty: θ 0', () => applyRepetitionPenalty(closed, 0, [1])],
    ['applyRepetitionPenalty: history null', () => applyRepetitionPenalty(closed, 2, bad(null))],
    ['applyRepetitionPenalty: history [1.5]', () => applyRepetitionPenalty(closed, 2, [1.5])],
    ['applyRepetitionPenalty(null)', () => applyRepetitionPenalty(bad(null), 2, [1])],
    ['applyTemperature: 0', () => applyTemperature(closed, 0)],
    ['applyTemperature: NaN', () => applyTemperature(closed, NaN)],
    ['applyTemperature(null)', () => applyTemperature(bad(null), 1)],
    ['greedy(null)', () => greedy(bad(null))],
    ['applyTopK: −1', () => applyTopK(closed, -1)],
    ['applyTopK(null)', () => applyTopK(bad(null), 1)],
    ['applyTopP: 2', () => applyTopP(closed, 2)],
    ['applyMinP: −1', () => applyMinP(closed, -1)],
    ['applyTypical: NaN', () => applyTypical(closed, NaN)],
    ['applyTopH: α 2', () => applyTopH(closed, 2)],
    ['applyTopH: n 0', () => applyTopH(closed, 0.4, 0)],
    ['applyTopH(null)', () => applyTopH(bad(null), 0.4)],
    ['truncates(null)', () => truncates(bad(null))],
    ['truncate(d, null)', () => truncate(closed, bad(null))],
    ['truncate(null, params)', () => truncate(bad(null), params)],
    ['warp(S, null)', () => warp(S, bad(null))],
    ['warp(S, params, null)', () => warp(S, params, bad(null))],
    ['warp: statsTemperature 1e9', () => warp(S, params, { statsTemperature: 1e9 })],
    ['drawIndex: open distribution', () => drawIndex(open, 0.5)],
    ['drawIndex: u 2', () => drawIndex(closed, 2)],
    ['drawIndex(null)', () => drawIndex(bad(null), 0.5)],
  ]);
});

describe('SamplingDecoder', () => {
  rejectAll([
    ['new SamplingDecoder(null)', () => new SamplingDecoder(bad(null))],
    ['new SamplingDecoder: seed −1', () => new SamplingDecoder({ seed: -1 })],
    ['new SamplingDecoder: seed 2^32', () => new SamplingDecoder({ seed: 2 ** 32 })],
    ['new SamplingDecoder: temperature NaN', () => new SamplingDecoder({ temperature: NaN })],
    ['new SamplingDecoder: statsTemperature 0', () => new SamplingDecoder({}, 0)],
    ['new SamplingDecoder: statsTemperature NaN', () => new SamplingDecoder({}, NaN)],
    ['next(null)', () => new SamplingDecoder().next(bad(null))],
    ['next: stats null', async () => new SamplingDecoder().next({ ...(await context()), stats: bad(null) })],
    ['next: pos −1', async () => new SamplingDecoder().next({ ...(await context()), pos: -1 })],
    ['next: tokens []', async () => new SamplingDecoder().next({ ...(await context()), tokens: [] })],
    ['next: budget 0', async () => new SamplingDecoder().next({ ...(await context()), budget: 0 })],
    ['next: runtime {}', async () => new SamplingDecoder().next({ ...(await context()), runtime: bad({}) })],
    ['next: stats with no candidates', async () => new SamplingDecoder().next({ ...(await context()), stats: { ...S, topK: [] } })],
    ['draw(null ctx)', () => new SamplingDecoder().draw(bad(null), S, 0, 0, [])],
    ['draw: row −1', async () => new SamplingDecoder().draw(await context(), S, -1, 0, [])],
    ['draw: statsRow 1.5', async () => new SamplingDecoder().draw(await context(), S, 0, 0, [], 1.5)],
    ['draw: the runtime\'s full row leaves entries out', async () => {
      const ctx = await context(new PartialRuntime({ ...model, candidates: 2 }));
      return new SamplingDecoder({ topP: 0.999 }).draw(ctx, ctx.stats, 0, ctx.pos, ctx.tokens);
    }],
    ['logProb(ctx, null)', async () => new SamplingDecoder().logProb(await context(), bad(null), 0)],
    ['logProb: statsRow −1', async () => {
      const drawn: SampledToken = { needsFullVocabulary: false, tokenId: 3, source: 'gpu', keptCount: null, logProb: null, distribution: open };
      return new SamplingDecoder().logProb(await context(), drawn, -1);
    }],
    ['logProb: a token the full row lacks', async () => {
      const drawn: SampledToken = { needsFullVocabulary: false, tokenId: 7, source: 'gpu', keptCount: null, logProb: null, distribution: open };
      return new SamplingDecoder().logProb(await context(new PartialRuntime(model)), drawn, 0);
    }],
    ['logProb: tokenId "x"', async () => {
      const drawn = { needsFullVocabulary: false, tokenId: bad<number>('x'), source: 'cpu', keptCount: 1, logProb: 0, distribution: closed } as const;
      return new SamplingDecoder().logProb(await context(), drawn, 0);
    }],
    ['checkDecodeContext(undefined)', () => checkDecodeContext(bad(undefined))],
  ]);
});

describe('CNTP', () => {
  const ok = { stopIds: [0], endIds: [1] };
  rejectAll([
    ['new CntpDecoder(undefined)', () => new CntpDecoder(bad(undefined))],
    ['new CntpDecoder: stopIds null', () => new CntpDecoder({ ...ok, stopIds: bad(null) })],
    ['new CntpDecoder: stopIds [−1]', () => new CntpDecoder({ ...ok, stopIds: [-1] })],
    ['new CntpDecoder: endIds "x"', () => new CntpDecoder({ ...ok, endIds: bad('x') })],
    ['new CntpDecoder: hLo NaN', () => new CntpDecoder({ ...ok, hLo: NaN })],
    ['new CntpDecoder: hHi below hLo', () => new CntpDecoder({ ...ok, hLo: 1, hHi: 0.5 })],
    ['new CntpDecoder: maxTrials 0', () => new CntpDecoder({ ...ok, maxTrials: 0 })],
    ['new CntpDecoder: maxTrials 65', () => new CntpDecoder({ ...ok, maxTrials: 65 })],
    ['new CntpDecoder: sequential "yes"', () => new CntpDecoder({ ...ok, sequential: bad('yes') })],
    ['new CntpDecoder: topK −1', () => new CntpDecoder({ ...ok, topK: -1 })],
    ['new CntpDecoder: seed 0.5', () => new CntpDecoder({ ...ok, seed: 0.5 })],
    ['next(null)', () => new CntpDecoder(ok).next(bad(null))],
    ['next: budget 0', async () => new CntpDecoder(ok).next({ ...(await context()), budget: 0 })],
    ['trialCount: NaN entropy', () => trialCount(NaN, 0.01, 1.5, 10)],
    ['trialCount: hHi ≤ hLo', () => trialCount(1, 0.5, 0.5, 10)],
    ['trialCount: hLo −1', () => trialCount(1, -1, 1.5, 10)],
    ['trialCount: maxTrials 0', () => trialCount(1, 0.01, 1.5, 0)],
    ['warpedEntropy(null)', () => warpedEntropy(bad(null))],
    ['warpedEntropy: stats at another temperature', () => warpedEntropy(applyTemperature(open, 0.5))],
  ]);
});

describe('EAD', () => {
  const ok = { smallParameters: 1, largeParameters: 2 };
  rejectAll([
    ['new EadDecoder(null)', () => new EadDecoder(bad(null))],
    ['new EadDecoder: tau NaN', () => new EadDecoder({ ...ok, tau: NaN })],
    ['new EadDecoder: tau "1"', () => new EadDecoder({ ...ok, tau: bad('1') })],
    ['new EadDecoder: window 0', () => new EadDecoder({ ...ok, window: 0 })],
    ['new EadDecoder: minStay −1', () => new EadDecoder({ ...ok, minStay: -1 })],
    ['new EadDecoder: smallParameters 0', () => new EadDecoder({ ...ok, smallParameters: 0 })],
    ['new EadDecoder: largeParameters missing', () => new EadDecoder(bad({ smallParameters: 1 }))],
    ['new EadDecoder: endIds "x"', () => new EadDecoder({ ...ok, endIds: bad('x') })],
    ['new EadDecoder: endIds [−1]', () => new EadDecoder({ ...ok, endIds: [-1] })],
    ['new EadDecoder: temperature −1', () => new EadDecoder({ ...ok, temperature: -1 })],
    ['attach(null)', () => new EadDecoder(ok).attach(bad(null))],
    ['attach({})', () => new EadDecoder(ok).attach(bad({}))],
    ['start() before attach()', () => new EadDecoder(ok).start(new FakeRuntime(model), [1])],
    ['start(null, prompt)', () => new EadDecoder(ok).attach(new FakeRuntime(model)).start(bad(null), [1])],
    ['start(runtime, [])', () => new EadDecoder(ok).attach(new FakeRuntime(model)).start(new FakeRuntime(model), [])],
    ['start(runtime, [1.5])', () => new EadDecoder(ok).attach(new FakeRuntime(model)).start(new FakeRuntime(model), [1.5])],
    ['next() before start()', async () => new EadDecoder(ok).attach(new FakeRuntime(model)).next(await context())],
    ['next(null)', () => new EadDecoder(ok).next(bad(null))],
  ]);
});

describe('SRGen', () => {
  rejectAll([
    ['new SrgenDecoder(null)', () => new SrgenDecoder(bad(null))],
    ['new SrgenDecoder: lambda 2', () => new SrgenDecoder({ lambda: 2 })],
    ['new SrgenDecoder: lr NaN', () => new SrgenDecoder({ lr: NaN })],
    ['new SrgenDecoder: optSteps −1', () => new SrgenDecoder({ optSteps: -1 })],
    ['new SrgenDecoder: maxReflections 1.5', () => new SrgenDecoder({ maxReflections: 1.5 })],
    ['new SrgenDecoder: window 0', () => new SrgenDecoder({ window: 0 })],
    ['new SrgenDecoder: k −1', () => new SrgenDecoder({ k: -1 })],
    ['new SrgenDecoder: sigmaMin NaN', () => new SrgenDecoder({ sigmaMin: NaN })],
    ['new SrgenDecoder: thetaMin −1', () => new SrgenDecoder({ thetaMin: -1 })],
    ['new SrgenDecoder: theta0 "3"', () => new SrgenDecoder({ theta0: bad('3') })],
    ['new SrgenDecoder: topK −1', () => new SrgenDecoder({ topK: -1 })],
    ['new SrgenDecoder: topP 2', () => new SrgenDecoder({ topP: 2 })],
    ['new SrgenDecoder: temperature NaN', () => new SrgenDecoder({ temperature: NaN })],
    ['start(null, prompt)', () => new SrgenDecoder().start(bad(null), [1])],
    ['start(runtime, "abc")', () => new SrgenDecoder().start(new FakeRuntime(model), bad('abc'))],
    ['next(null)', () => new SrgenDecoder().next(bad(null))],
    ['next: tokens null', async () => new SrgenDecoder().next({ ...(await context()), tokens: bad(null) })],
    ['srgenThreshold(null)', () => srgenThreshold(bad(null))],
    ['srgenThreshold([], null)', () => srgenThreshold([], bad(null))],
    ['srgenThreshold: window 0', () => srgenThreshold([], { ...SRGEN_DEFAULTS, window: 0 })],
    ['srgenThreshold: K NaN', () => srgenThreshold([], { ...SRGEN_DEFAULTS, k: NaN })],
    ['srgenThreshold: a NaN entropy in the window', () => srgenThreshold([...Array(24).fill(1), NaN])],
  ]);
});

describe('AdamW', () => {
  rejectAll([
    ['new AdamW(−1)', () => new AdamW(-1)],
    ['new AdamW(1.5)', () => new AdamW(1.5)],
    ['new AdamW: options null', () => new AdamW(2, bad(null))],
    ['new AdamW: lr NaN', () => new AdamW(2, { lr: NaN })],
    ['new AdamW: eps 0', () => new AdamW(2, { eps: 0 })],
    ['new AdamW: beta1 1', () => new AdamW(2, { beta1: 1 })],
    ['new AdamW: beta2 −0.1', () => new AdamW(2, { beta2: -0.1 })],
    ['new AdamW: weightDecay −1', () => new AdamW(2, { weightDecay: -1 })],
    ['new AdamW: unknown option', () => new AdamW(2, bad({ momentum: 0.9 }))],
    ['new AdamW: 1 initial value for 2', () => new AdamW(2, {}, [1])],
    ['new AdamW: NaN initial value', () => new AdamW(2, {}, [1, NaN])],
    ['new AdamW: initial null-like', () => new AdamW(2, {}, bad(5))],
    ['step: gradient of 1 for 2', () => new AdamW(2).step([1])],
    ['step(null)', () => new AdamW(2).step(bad(null))],
    ['step: NaN in the gradient', () => new AdamW(2).step([NaN, 0])],
    ['step: an object without a prototype in the gradient', () => new AdamW(2).step(bad([Object.create(null), 0]))],
  ]);
});

test('the bad-argument table does not reject good arguments', async () => {
  // The same entry points with valid arguments run (so the rejections above are about the arguments).
  const d: Distribution = closed;
  assert.ok(!needsFullVocabulary(createSampler({ topK: 2 }).sample(S, key)));
  assert.equal(d.ids[drawIndex(d, 0.5)], 1, "the more probable token");
  assert.equal(trialCount(1, 0.01, 1.5, 10), 6);
  assert.ok(warpedEntropy(open) > 0);
  assert.equal(srgenThreshold([]), 3);
  assert.equal(new AdamW(2, {}, [1, 2]).step([1, -1]).length, 2);
  const ctx = await context();
  assert.equal((await new SamplingDecoder({ topP: 0.999 }).next(ctx)).tokens.length, 1);
  assert.equal((await new CntpDecoder({ stopIds: [0], endIds: [1] }).next(await context())).tokens.length >= 1, true);
  const ead = new EadDecoder({ smallParameters: 1, largeParameters: 2 }).attach(new FakeRuntime(model));
  const large = new FakeRuntime(model);
  const stats = await ead.start(large, [1, 2]);
  assert.equal((await ead.next({ stats, pos: 1, tokens: [1, 2], budget: 2, runtime: large })).tokens.length, 1);
  const srgen = new SrgenDecoder();
  const rt = new FakeRuntime(model);
  const s0 = await srgen.start(rt, [1, 2]);
  assert.equal((await srgen.next({ stats: s0, pos: 1, tokens: [1, 2], budget: 2, runtime: rt })).tokens.length, 1);
});
