// EadDecoder against two fake runtimes (test/support/fake-runtime.ts): H_t is the entropy of the
// raw logits even when sampling at T ≠ 1, while the draw itself stays at T (algorithms.md §4, EAD
// step 1).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { EadDecoder, type EadOptions } from '../../src/decode/ead.ts';
import { SamplingDecoder } from '../../src/decode/sampling-decoder.ts';
import { FakeRuntime, drive, fakeLogits, lseEntropy } from '../support/fake-runtime.ts';

const small = { vocabSize: 16, candidates: 16, scale: 0.7, salt: 1 };
const large = { vocabSize: 16, candidates: 16, scale: 1.4, salt: 2 };
const prompt = [1, 5, 9];
const bits = (z: number[], t: number) => lseEntropy(z, t).entropy / Math.LN2;

function pair(options: Omit<EadOptions, 'smallParameters' | 'largeParameters'>, largeModel = large) {
  const s = new FakeRuntime(small);
  const l = new FakeRuntime(largeModel);
  const ead = new EadDecoder({ smallParameters: 1, largeParameters: 3, ...options }).attach(s);
  return { ead, s, l };
}

describe('EAD: entropy of the raw logits at any sampling temperature', () => {
  test('steps report statistics at temperature 1; gauges are the rolling mean of raw entropies', async () => {
    const { ead, s, l } = pair({ temperature: 0.5, topK: 5, tau: Infinity, seed: 3 });
    assert.equal(ead.sampling().statsTemperature, 1);
    const { tokens, emissions } = await drive(ead, l, prompt, 8);
    assert.ok(s.statsTemperatures.every((t) => t === 1), `small model's stats temperatures ${s.statsTemperatures}`);
    assert.equal(l.calls.feeds.length, 0, 'τ = +∞: small only');
    const raw: number[] = [];
    emissions.forEach((e, i) => {
      const z = fakeLogits(small, tokens.slice(0, prompt.length + i));
      raw.push(bits(z, 1));
      const window = raw.slice(-5);
      const mean = window.reduce((a, b) => a + b, 0) / window.length;
      assert.ok(Math.abs(e.gauges![0].value - mean * Math.LN2) < 1e-12, `gauge ${i}: ${e.gauges![0].value} vs ${mean * Math.LN2}`);
      assert.ok(Math.abs(bits(z, 0.5) - raw[i]) > 0.05, 'the test tells raw from tempered entropies');
    });
  });

  test('τ between the tempered and the raw entropy: the raw one decides', async () => {
    // The prompt's last position: raw entropy above τ, entropy at T = 0.5 below it.
    const z = fakeLogits(small, prompt);
    const tau = (bits(z, 1) + bits(z, 0.5)) / 2;
    assert.ok(bits(z, 0.5) < tau && tau < bits(z, 1));
    const { ead, l } = pair({ temperature: 0.5, topK: 5, tau, seed: 3 });
    const { emissions } = await drive(ead, l, prompt, 1);
    assert.deepEqual(emissions[0].models, ['large'], 'the large model caught up and produced the first token');
    assert.deepEqual(l.calls.feeds, [prompt]);
  });

  test('the draw is still at T: large-only EAD gives the plain sampler\'s tokens', async () => {
    // 6 candidates of 16 tokens, so the raw statistics leave the tail open.
    const model = { ...large, candidates: 6 };
    for (const stages of [{ topK: 5 }, { topP: 0.9 }, { minP: 0.1 }, {}]) {
      const options = { temperature: 0.5, seed: 8, vocabSize: 16, ...stages };
      const { ead, l } = pair({ ...options, tau: -Infinity }, model);
      const eadRun = await drive(ead, l, prompt, 10);
      const plain = await drive(new SamplingDecoder(options), new FakeRuntime(model), prompt, 10);
      assert.deepEqual(eadRun.tokens, plain.tokens, JSON.stringify(stages));
      // Top-p needs the normaliser at T, which raw statistics lack: the full row decides it.
      if ('topP' in stages) assert.ok(l.calls.fullStats > 0, 'top-p read the full row');
    }
  });
});
