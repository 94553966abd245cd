// CNTP on stories15M: the trial-count rule, equality with plain sampling when it never branches,
// trials that stop at punctuation, the perplexity winner, and batched = sequential trials.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { trialCount } from '../../src/decode/cntp.ts';
import { eventsOf } from '../../src/decode/registry.ts';
import type { Engine, GenerateOptions } from '../../src/engine.ts';
import { loadedEngine } from '../support/engine.ts';

test('trial count follows algorithms.md §4 (H → N with H_lo 0.01, H_hi 1.5, N_max 10)', () => {
  const table: [number, number][] = [[0, 1], [0.01, 1], [0.17, 1], [0.18, 2], [0.5, 3], [1.0, 6], [1.49, 9], [1.5, 10], [4, 10]];
  for (const [h, n] of table) assert.equal(trialCount(h, 0.01, 1.5, 10), n, `H = ${h}`);
});

describe('CNTP on stories15M', () => {
  let engine: Engine;
  const base: GenerateOptions = { temperature: 1, topP: 0.9, seed: 11, maxTokens: 24 };
  before(async () => {
    engine = await loadedEngine();
  });
  after(() => engine.dispose());

  test('thresholds that never trigger give exactly plain sampling with the same seed', async () => {
    const plain = await engine.generate('Once upon a time', { ...base, decoder: 'sample', topK: 50 }).complete();
    const cntp = await engine.generate('Once upon a time', { ...base, decoder: 'cntp', hLo: 50, hHi: 60 }).complete();
    assert.deepEqual(cntp.tokens, plain.tokens);
    assert.deepEqual(cntp.events, []);
  });

  test('branches where the model hesitates; trials stop at punctuation; the lowest perplexity wins', async () => {
    const r = await engine.generate('Once upon a time', { ...base, decoder: 'cntp' }).complete();
    const tok = engine.tokenizer;
    const stops = new Set(['.', ',', '\n', '?', '!', ':', ';', ')', ']', '}'].map((p) => tok.tokenIdOf(p)));
    assert.ok(r.events.length > 0, 'at least one branch point in 24 sampled tokens');
    // A trial's tokens each count as a decode forward, as single tokens do.
    assert.equal(r.timing.decodeTokens, r.steps.length - 1 + (r.finish === 'bos' ? 1 : 0));
    // Each branch rides on the first token of its committed trial, as it streams.
    assert.deepEqual(r.steps.filter((s) => s.event).map((s) => [s.pos, s.event]), r.events.map((e) => [e.pos, e]));
    for (const e of r.events as unknown as { pos: number; entropy: number; trials: number; ppl: number[]; chosen: number; committed: number[]; tokens: number[][] }[]) {
      assert.equal(e.trials, trialCount(e.entropy, 0.01, 1.5, 10));
      assert.ok(e.trials >= 2);
      assert.equal(e.ppl.length, e.trials);
      assert.equal(e.chosen, e.ppl.indexOf(Math.min(...e.ppl)));
      assert.deepEqual(e.committed, e.tokens[e.chosen]);
      assert.deepEqual((e as unknown as { texts: string[] }).texts, e.tokens.map((t) => tok.decode(t)));
      for (const trial of e.tokens) {
        const last = trial.at(-1)!;
        const stopped = stops.has(last) || last === tok.bosId || tok.eosIds.includes(last) || last === 2;
        assert.ok(stopped || e.pos + trial.length >= r.promptTokenCount - 1 + base.maxTokens!, `trial ${trial} ends at a stop token or the budget`);
        trial.slice(0, -1).forEach((t) => assert.ok(!stops.has(t), 'no stop token inside a trial'));
      }
      // The committed trial is what the text continues with.
      assert.deepEqual(r.tokens.slice(e.pos + 1, e.pos + 1 + e.committed.length), e.committed.filter((t) => t !== tok.bosId));
    }
  });

  test('batched trials equal trials run one after another (same RNG streams)', async () => {
    const o = { ...base, maxTokens: 14 };
    const batched = await engine.generate('Lily and Ben', { ...o, decoder: 'cntp' }).complete();
    const sequential = await engine.generate('Lily and Ben', { ...o, decoder: 'cntp', cntp: { sequential: true } }).complete();
    assert.deepEqual(sequential.tokens, batched.tokens);
    assert.deepEqual(eventsOf(sequential.events, 'cntp').map((e) => e.committed), eventsOf(batched.events, 'cntp').map((e) => e.committed));
    assert.ok(batched.events.length > 0);
  });

  test('no truncating stage (top-k 0, top-p 1): the full softmax at T decides N, so it still branches', async () => {
    const r = await engine.generate('Once upon a time', { ...base, topK: 0, topP: 1, maxTokens: 12, decoder: 'cntp' }).complete();
    assert.ok(r.events.length > 0, 'branches without truncation');
    for (const e of r.events as unknown as { pos: number; entropy: number; trials: number; ppl: number[]; tokens: number[][] }[]) {
      const step = r.steps.find((s) => s.pos === e.pos)!;
      // H is the step record's full-vocabulary entropy at T = 1.
      assert.ok(Math.abs(e.entropy - step.entropy) < 1e-6, `H at ${e.pos}: ${e.entropy} vs ${step.entropy}`);
      assert.equal(e.trials, trialCount(e.entropy, 0.01, 1.5, 10));
      assert.ok(e.ppl.every((p) => Number.isFinite(p) && p >= 1), `perplexities ${e.ppl}`);
    }
  });

  test('bad CNTP parameters are rejected before any work', () => {
    // KV rows are allocated on demand, so N_max is bounded by CNTP's own limit (64), not by rows.
    assert.throws(() => engine.generate('x', { decoder: 'cntp', maxTrials: 65 }), /maxTrials must be an integer in \[1, 64\]/);
    assert.throws(() => engine.generate('x', { decoder: 'cntp', maxTrials: 0 }), /maxTrials/);
    assert.throws(() => engine.generate('x', { decoder: 'cntp', hLo: Number.NaN }), /hLo/);
    assert.throws(() => engine.generate('x', { decoder: 'cntp', hLo: 1, hHi: 0.5 }), /hHi/);
  });
});
