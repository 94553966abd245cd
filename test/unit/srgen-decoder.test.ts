// SrgenDecoder against a fake runtime (test/support/fake-runtime.ts): which tokens are monitored,
// the reflection budget, and the sampling defaults (algorithms.md §4, SRGen steps 0–2).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SRGEN_DEFAULTS, SrgenDecoder, srgenThreshold } from '../../src/decode/srgen.ts';
import { FakeRuntime, drive, fakeLogits, lseEntropy } from '../support/fake-runtime.ts';

const model = { vocabSize: 12, candidates: 12, scale: 1, salt: 3 };
const prompt = [1, 5, 9];

describe('SRGen monitors from the second generated token', () => {
  test('the prefill forward\'s token is never checked and never enters the history', async () => {
    // θ_0 = 0: every monitored step reflects, so the reflections show which steps were monitored.
    const runtime = new FakeRuntime(model);
    const srgen = new SrgenDecoder({ seed: 4, theta0: 0, maxReflections: 100, vocabSize: 12 });
    const { emissions } = await drive(srgen, runtime, prompt, 6);
    assert.equal(emissions.length, 6);
    assert.equal(emissions[0].event, undefined, 'the first generated token is not checked');
    assert.equal(emissions[0].gauges, undefined, 'nor gauged');
    emissions.slice(1).forEach((e, i) => assert.equal(e.event?.type, 'srgen', `token ${i + 1} reflects`));
    assert.equal(runtime.calls.reflects.length, 5);
    assert.equal(srgen.reflections, 5);
    assert.equal(srgen.history.length, 5, 'the first token\'s entropy is not in the history');
    // The history holds the entropies at T of the steps that produced tokens 1…5, in order.
    const expected = emissions.slice(1).map((e) => e.event!.entropy);
    assert.deepEqual(srgen.history, expected);
    assert.deepEqual(srgen.summary(), { decoder: 'srgen', reflections: 5, monitoredSteps: 5 });
  });

  test('the threshold sees only monitored steps: a replay of the rule from token 1 on', async () => {
    // A short window so the adaptive threshold acts within the run; optSteps 0 as δ = 0 would.
    const t = { window: 3, k: 1, sigmaMin: 0.1, thetaMin: 0.2, theta0: 0 };
    const runtime = new FakeRuntime({ ...model, scale: 1.5 });
    const srgen = new SrgenDecoder({ seed: 9, ...t, optSteps: 0, maxReflections: 100, vocabSize: 12 });
    const { tokens, emissions } = await drive(srgen, runtime, prompt, 14);
    const history: number[] = [];
    const reflected: number[] = [];
    for (let i = 1; i < emissions.length; i++) {
      // Step i's entropy: softmax(z/T) of the logits after tokens[0 .. prompt + i − 1].
      const h = lseEntropy(fakeLogits(runtime.model, tokens.slice(0, prompt.length + i)), 0.6).entropy;
      const theta = srgenThreshold(history, t);
      assert.ok(Math.abs(emissions[i].gauges![0].value - h) < 1e-12, `gauge of token ${i}`);
      assert.equal(emissions[i].gauges![0].threshold, theta);
      if (h > theta) reflected.push(i);
      history.push(h);
    }
    assert.ok(reflected.length > 0 && reflected.length < emissions.length - 1, `some but not all reflect: ${reflected}`);
    assert.deepEqual(emissions.flatMap((e, i) => (e.event ? [i] : [])), reflected);
  });

  test('at most maxReflections, then no monitoring; start() begins a fresh generation', async () => {
    const srgen = new SrgenDecoder({ seed: 4, theta0: 0, maxReflections: 2, vocabSize: 12 });
    const first = await drive(srgen, new FakeRuntime(model), prompt, 6);
    assert.deepEqual(first.emissions.map((e) => e.event !== undefined), [false, true, true, false, false, false]);
    assert.equal(srgen.history.length, 2, 'monitoring stopped with the budget');
    const again = await drive(srgen, new FakeRuntime(model), prompt, 6);
    assert.deepEqual(again.tokens, first.tokens, 'the same decoder reproduces the run');
    assert.equal(srgen.reflections, 2);
  });
});

describe('SRGen sampling defaults', () => {
  test('T 0.6, top-k 50, top-p 0.95 (the authors\' runs), each overridable', () => {
    const p = new SrgenDecoder().base.sampler.params;
    assert.equal(p.temperature, 0.6);
    assert.equal(p.topK, 50);
    assert.equal(p.topP, 0.95);
    assert.equal(SRGEN_DEFAULTS.topK, 50);
    assert.equal(SRGEN_DEFAULTS.topP, 0.95);
    const q = new SrgenDecoder({ temperature: 1, topK: 0, topP: 1 }).base.sampler.params;
    assert.deepEqual([q.temperature, q.topK, q.topP], [1, 0, 1]);
    const s = new SrgenDecoder().sampling();
    assert.equal(s.statsTemperature, 0.6, 'the monitored entropy is of softmax(z/T)');
    assert.equal(s.temperature, 0, 'truncating stages: the CPU draws, not the GPU');
  });
});
