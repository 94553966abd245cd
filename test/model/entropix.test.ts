// entropix on stories15M through the engine: the branch of every token replayed from the step
// stream (the step's raw entropy and varentropy, in bits), argmax branches emit the argmax, the
// clarifying token at most once, the summary's histogram counts the events, and a seed
// reproduces the text. Without attention statistics from the runtime the metrics are 0.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { entropixBranch } from '../../src/decode/entropix.ts';
import { eventsOf, summaryOf } from '../../src/decode/registry.ts';
import type { Engine, GenerationResult } from '../../src/engine.ts';
import { loadedEngine } from '../support/engine.ts';

describe('entropix on stories15M', () => {
  let engine: Engine;
  let first: GenerationResult;
  const run = (seed: number) => engine.generate('Once upon a time', { decoder: 'entropix', seed, maxTokens: 24 }).complete();

  before(async () => {
    engine = await loadedEngine();
    first = await run(3);
  });
  after(() => engine?.dispose());

  test('every token carries its branch, replayed from the step statistics', () => {
    const events = eventsOf(first.events, 'entropix');
    assert.equal(events.length, first.steps.length, 'one event per token');
    assert.equal(events[0].branch, 'first');
    const clarifying = engine.tokenizer.firstTokenMidText(' ...')!;
    let clarified = false;
    first.steps.forEach((s, i) => {
      const e = s.event;
      assert.ok(e?.type === 'entropix');
      const ent = s.entropy / Math.LN2;
      const vent = s.varentropy / Math.LN2 ** 2;
      assert.ok(Math.abs(e.ent - ent) < 1e-9 && Math.abs(e.vent - vent) < 1e-9, `step ${i}: statistics at T = 1`);
      assert.equal(e.token, s.tokenId);
      if (i === 0) {
        assert.equal(s.tokenId, s.topK[0].id, 'the first token is the argmax');
        return;
      }
      const attention = e.attention ?? { entropy: 0, varentropy: 0, agreement: 0, interaction: 0 };
      const expected = entropixBranch({ ent, vent, attention }, { temperature: 0.666, topK: 27, topP: 0.9, minP: 0.03 }, s.topK[0].id, clarified ? null : clarifying);
      assert.equal(e.branch, expected.branch, `step ${i}: ent ${ent.toFixed(3)} vent ${vent.toFixed(3)}`);
      if (expected.token !== undefined) assert.equal(s.tokenId, expected.token, `step ${i}: ${expected.branch}`);
      else assert.deepEqual(e.draw, expected.draw, `step ${i}: the branch's sampler`);
      if (e.branch === 'clarify' && e.draw === undefined) clarified = true;
    });
    const summary = summaryOf(first.summary, 'entropix');
    const counts: Record<string, number> = {};
    for (const e of events) counts[e.branch] = (counts[e.branch] ?? 0) + 1;
    for (const [b, n] of Object.entries(summary.branches)) assert.equal(n, counts[b] ?? 0, b);
    assert.equal(summary.attention, events.some((e) => e.attention) ? 'gpu' : 'unavailable');
  });

  test('the same seed gives the same text; another seed another', async () => {
    assert.deepEqual((await run(3)).tokens, first.tokens);
    assert.notDeepEqual((await run(4)).tokens, first.tokens);
  });
});
