// EAD with the real pair: stories15M (large) and the distilled stories-student (small), greedy.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { eventsOf, summaryOf } from '../../src/decode/registry.ts';
import type { Engine, GenerationResult } from '../../src/engine.ts';
import { bundledModel, createNodeEngine } from '../../src/node/index.ts';
import { STAT_TOLERANCE, goldens } from '../support/engine.ts';

const golden = goldens().find((g) => g.prompt === 'Once upon a time')!;
const MAX = 40;

describe('EAD: small/large pair sharing the vocabulary', () => {
  let pair: Engine;
  let smallOnly: Engine;
  before(async () => {
    const bytes = (path: string) => new Uint8Array(readFileSync(path));
    pair = await createNodeEngine();
    await pair.loadModel({ model: bytes(bundledModel.model), tokenizer: bytes(bundledModel.tokenizer), smallModel: bytes(bundledModel.smallModel) });
    smallOnly = await createNodeEngine();
    await smallOnly.loadModel({ model: bytes(bundledModel.smallModel), tokenizer: bytes(bundledModel.tokenizer) });
  });
  after(() => {
    pair.dispose();
    smallOnly.dispose();
  });

  const ead = (tau: number): Promise<GenerationResult> =>
    pair.generate(golden.prompt, { decoder: 'ead', ead: { tau }, maxTokens: MAX }).complete();

  test('τ = +∞ is exactly small-only greedy', async () => {
    const r = await ead(Infinity);
    const small = await smallOnly.generate(golden.prompt, { maxTokens: MAX }).complete();
    assert.deepEqual(r.tokens, small.tokens);
    assert.ok(r.steps.every((s) => s.model === 'small'));
    assert.equal(summaryOf(r.summary, 'ead').largeShare, 0);
    assert.ok(Math.abs(summaryOf(r.summary, 'ead').costRatio - 4522624 / 15191712) < 1e-12);
  });

  test('τ = −∞ is exactly large-only greedy, which is the golden reference', async () => {
    const r = await ead(-Infinity);
    assert.deepEqual(r.tokens, golden.tokens.slice(0, golden.prompt_token_count + MAX));
    assert.ok(r.steps.every((s) => s.model === 'large'));
    assert.equal(summaryOf(r.summary, 'ead').largeShare, 1);
    assert.equal(summaryOf(r.summary, 'ead').costRatio, 1);
    assert.equal(summaryOf(r.summary, 'ead').catchUpTokens, golden.prompt_token_count, 'the large model read the prompt once');
  });

  test('a middle τ switches both ways; the large model’s stats after a switch equal a fresh large-only run', async () => {
    const r = await ead(1.0);
    const models = r.steps.map((s) => s.model);
    assert.ok(models.includes('small') && models.includes('large'), models.join(','));
    assert.ok(r.events.length >= 2, 'switches are reported');
    // Each switch happened only after the previous model produced d_min = 4 tokens.
    let run = 0;
    for (let i = 1; i < models.length; i++) {
      run++;
      if (models[i] !== models[i - 1]) {
        assert.ok(run >= 4, `switch at step ${i} after ${run} tokens`);
        run = 0;
      }
    }
    // Every large-model step saw the same logits a large-only run has on these tokens.
    const scored = await pair.score(r.tokens.slice(0, -1));
    for (const s of r.steps.filter((x) => x.model === 'large')) {
      assert.equal(s.tokenId, scored[s.pos].argmax, `argmax at ${s.pos}`);
      assert.ok(Math.abs(s.lse - scored[s.pos].lse) < STAT_TOLERANCE, `lse at ${s.pos}`);
      assert.ok(Math.abs(s.entropy - scored[s.pos].entropy) < STAT_TOLERANCE, `entropy at ${s.pos}`);
    }
    const large = models.filter((m) => m === 'large').length / models.length;
    assert.equal(summaryOf(r.summary, 'ead').largeShare, large);
    assert.ok(Math.abs(summaryOf(r.summary, 'ead').costRatio - (large + (1 - large) * (4522624 / 15191712))) < 1e-12);
    const catchUp = eventsOf(r.events, 'ead').reduce((n, e) => n + e.catchUpTokens, 0);
    assert.ok(summaryOf(r.summary, 'ead').catchUpTokens >= catchUp);
    // Each step's gauge is the rolling mean (w = 5) of the active model's entropies against τ, in
    // nats. (At a switch the window holds the previous model's entropy, which the step lacks.)
    r.steps.forEach((s, i) => {
      assert.equal(s.gauge!.threshold, Math.LN2);
      const window = r.steps.slice(Math.max(0, i - 4), i + 1);
      const event = s.event?.type === 'ead' ? s.event : undefined;
      if (event) {
        assert.ok(Math.abs(s.gauge!.value - event.meanEntropyBits * Math.LN2) < 1e-9);
        assert.equal(event.to === 'large', s.gauge!.value > s.gauge!.threshold, `switch at ${i}`);
      } else if (!window.some((x) => x.event)) {
        const mean = window.reduce((a, x) => a + x.entropy, 0) / window.length;
        assert.ok(Math.abs(s.gauge!.value - mean) < 1e-9, `gauge at ${i}`);
      }
    });
    assert.deepEqual(r.steps.filter((s) => s.event).map((s) => s.event), r.events);
  });

  test('sampling at T ≠ 1: the entropy is of the raw logits, the draw at T', async () => {
    // T = 0.7 with top-k 40: each step's stats (what the gauge averages) are a raw-logit pass's.
    const r = await pair.generate(golden.prompt, { decoder: 'ead', tau: 1.0, temperature: 0.7, topK: 40, seed: 5, maxTokens: 24 }).complete();
    const models = r.steps.map((s) => s.model);
    assert.ok(models.includes('large'), models.join(','));
    const scored = await pair.score(r.tokens.slice(0, -1));
    for (const s of r.steps.filter((x) => x.model === 'large')) {
      assert.ok(Math.abs(s.entropy - scored[s.pos].entropy) < STAT_TOLERANCE, `raw entropy at ${s.pos}: ${s.entropy} vs ${scored[s.pos].entropy}`);
      assert.ok(Math.abs(s.lse - scored[s.pos].lse) < STAT_TOLERANCE, `raw lse at ${s.pos}`);
    }
    // Sampled, not greedy: some token is not the argmax.
    assert.ok(r.steps.some((s) => s.tokenId !== s.topK[0].id), 'drawn at T = 0.7');
  });

  test('ead without a small model, or with NaN τ, is rejected up front', async () => {
    assert.throws(() => smallOnly.generate('x', { decoder: 'ead' }), /needs a small model/);
    assert.throws(() => pair.generate('x', { decoder: 'ead', tau: Number.NaN }), /tau/);
    assert.throws(() => pair.generate('x', { decoder: 'ead', window: 0 }), /window/);
  });
});
