// entropix (algorithms.md §4): the five branches as a pure function with hand-computed numbers,
// the draw pipeline (min-p → top-k → top-p over the descending order), and the decoder on
// hand-made StepStats — the first token's argmax, the clarifying token once, five adaptive
// draws, attention metrics from StepStats.attention, seeded reproducibility.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { DecodeContext } from '../../src/decode/decoder.ts';
import {
  ENTROPIX_DEFAULTS, type EntropixAttention, EntropixDecoder, type EntropixEvent, attentionOf, entropixBranch, entropixWarp,
} from '../../src/decode/entropix.ts';
import { closedDistribution, fromStepStats } from '../../src/decode/samplers.ts';
import type { StepStats } from '../../src/runtime/stats.ts';
import { FakeRuntime } from '../support/fake-runtime.ts';

const base = { temperature: 0.666, topK: 27, topP: 0.9, minP: 0.03 };
const att = (entropy: number, varentropy: number, agreement: number, interaction: number): EntropixAttention =>
  ({ entropy, varentropy, agreement, interaction });
const none = att(0, 0, 0, 0);
const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);

describe('entropix branches (hand-computed)', () => {
  test('1. ent < 0.1 and vent < 0.1: argmax', () => {
    assert.deepEqual(entropixBranch({ ent: 0.05, vent: 0.05, attention: none }, base, 7, 2564), { branch: 'argmax', token: 7 });
  });

  test('2. ent > 5 and vent < 0.1: the clarifying token, else T = min(1.5, 0.666·(1.3 + 0.2·attn_ent))', () => {
    assert.deepEqual(entropixBranch({ ent: 6, vent: 0.05, attention: att(2, 0, 0, 0) }, base, 7, 2564), { branch: 'clarify', token: 2564 });
    const d = entropixBranch({ ent: 6, vent: 0.05, attention: att(2, 0, 0, 0) }, base, 7, null);
    assert.equal(d.branch, 'clarify');
    close(d.draw!.temperature, 0.666 * 1.7, 'T');
    assert.deepEqual([d.draw!.topK, d.draw!.topP, d.draw!.minP, d.draw!.samples], [27, 0.9, 0.03, 1]);
    // capped at 1.5
    close(entropixBranch({ ent: 6, vent: 0, attention: att(10, 0, 0, 0) }, base, 7, null).draw!.temperature, 1.5, 'T cap');
  });

  test('3. ent < 5 and vent > 5: T = min(1.5, 0.666·(1.2 + 0.3·interaction)), top-k = max(5, int(27·(1 + 0.5·(1 − agreement))))', () => {
    const d = entropixBranch({ ent: 4, vent: 6, attention: att(0, 0, 0.2, 1) }, base, 7, 2564);
    assert.equal(d.branch, 'explore', 'tested before branch 4, which ent 4 / vent 6 also meets');
    close(d.draw!.temperature, 0.666 * 1.5, 'T');
    assert.equal(d.draw!.topK, 37); // int(27 · 1.4 = 37.8)
    assert.equal(entropixBranch({ ent: 4, vent: 6, attention: att(0, 0, 2, 0) }, base, 7, 2564).draw!.topK, 13); // int(27·0.5 = 13.5)
    assert.equal(entropixBranch({ ent: 4, vent: 6, attention: att(0, 0, 3, 0) }, { ...base, topK: 5 }, 7, 2564).draw!.topK, 5); // floor 5
  });

  test('4. ent > 3 and vent > 5 (ent ≥ 5 here): T = max(2, 0.666·(2 + 0.5·attn_vent)), top-p = max(0.5, 0.9 − 0.2·attn_ent)', () => {
    const d = entropixBranch({ ent: 6, vent: 6, attention: att(1, 1, 0, 0) }, base, 7, 2564);
    assert.equal(d.branch, 'resample');
    close(d.draw!.temperature, 2, 'T: 0.666·2.5 = 1.665 → 2');
    close(d.draw!.topP, 0.7, 'top-p');
    const hot = entropixBranch({ ent: 6, vent: 6, attention: att(3, 4, 0, 0) }, base, 7, 2564).draw!;
    close(hot.temperature, 0.666 * 4, 'T above 2');
    close(hot.topP, 0.5, 'top-p floor');
  });

  test('5. otherwise adaptive: T, top-p, top-k (round half to even), min-p from the metrics; 5 draws', () => {
    const d = entropixBranch({ ent: 2, vent: 1, attention: att(1.5, 0.5, 0.3, 0.8) }, base, 7, 2564);
    assert.equal(d.branch, 'adaptive');
    close(d.draw!.temperature, 0.666 * (1 + 0.3 * 3 + 0.2 * 2 - 0.2 * 0.3), 'T');
    close(d.draw!.topP, 0.9 * 1.05, 'top-p');
    assert.equal(d.draw!.topK, 32); // round(27 · 1.18 = 31.86)
    close(d.draw!.minP, 0.01, 'min-p: 0.03·(1 − 1.5) clipped to 0.01');
    assert.equal(d.draw!.samples, 5);
    // ent < 0.1 but vent ≥ 0.1 is not branch 1
    assert.equal(entropixBranch({ ent: 0.05, vent: 0.2, attention: none }, base, 7, 2564).branch, 'adaptive');
    // top-k: 27·(1 + 0.3·(1/6) ... ) chosen so that 27·x = 40.5 exactly → 40 (even); clip to 100
    const x = 40.5 / 27; // 1.5 = 1 + 0.3·i − 0.2·a with a = 0, i = 5/3
    assert.equal(entropixBranch({ ent: 1, vent: 1, attention: att(0, 0, 0, (x - 1) / 0.3) }, base, 7, 2564).draw!.topK, 40);
    assert.equal(entropixBranch({ ent: 1, vent: 1, attention: att(0, 0, 0, 100) }, base, 7, 2564).draw!.topK, 100);
    // min-p: 0.03·(1 − 0.5·0.4) = 0.024
    close(entropixBranch({ ent: 0.2, vent: 0.2, attention: none }, base, 7, 2564).draw!.minP, 0.024, 'min-p');
  });
});

describe('entropix draw pipeline', () => {
  // p = 0.5, 0.2, 0.15, 0.1, 0.05 at T = 1
  const d = closedDistribution([0.5, 0.2, 0.15, 0.1, 0.05].map((p, id) => ({ id, logit: Math.log(p) })));

  test('min-p → top-k → top-p over the descending order (the published code keeps the top-p tail instead)', () => {
    // min-p 0.15: p ≥ 0.075 keeps 4, renormalised over 0.95; top-k 3; top-p 0.7 on the min-p
    // set's mass: 0 ≤ 0.7 keep, 0.526 ≤ 0.7 keep, 0.737 > 0.7 stop → 2 tokens.
    const w = entropixWarp(d, { temperature: 1, minP: 0.15, topK: 3, topP: 0.7, samples: 1 })!;
    assert.deepEqual(w.ids, [0, 1]);
    assert.equal(w.tail, null);
    // min-p on: without it (the published `_sample`) top-k 5 / top-p 1 would keep all 5.
    assert.deepEqual(entropixWarp(d, { temperature: 1, minP: 0.15, topK: 5, topP: 1, samples: 1 })!.ids, [0, 1, 2, 3]);
    // temperature before min-p: at T = 2 p ∝ √p, and 0.05 → √0.05/√0.5 = 0.316 ≥ 0.3
    assert.deepEqual(entropixWarp(d, { temperature: 2, minP: 0.3, topK: 5, topP: 1, samples: 1 })!.ids, [0, 1, 2, 3, 4]);
  });

  test('an open distribution whose min-p the candidates cannot decide asks for the full row', () => {
    const stats: StepStats = { lse: 10, entropy: 8, varentropy: 1, maxLogit: 1, argmax: 0, sampled: 0, topK: [{ id: 0, logit: 1 }, { id: 1, logit: 0.9 }] };
    assert.equal(entropixWarp(fromStepStats(stats), { temperature: 1, minP: 0.03, topK: 27, topP: 0.9, samples: 1 }), null);
  });
});

/** StepStats of logits `z` (float64), every id a candidate, with entropix's attention record. */
function statsOf(z: number[], attention?: EntropixAttention): StepStats {
  const m = Math.max(...z);
  const lse = m + Math.log(z.reduce((s, v) => s + Math.exp(v - m), 0));
  const lp = z.map((v) => v - lse);
  const entropy = -lp.reduce((s, l) => s + Math.exp(l) * l, 0);
  const varentropy = lp.reduce((s, l) => s + Math.exp(l) * (l + entropy) ** 2, 0);
  const order = z.map((_, i) => i).sort((a, b) => z[b] - z[a] || a - b);
  return {
    lse, entropy, varentropy, maxLogit: z[order[0]], argmax: order[0], sampled: order[0],
    topK: order.map((id) => ({ id, logit: z[id] })), ...(attention ? { attention: { layer: 0, heads: [], ...attention } } : {}),
  };
}

const V = 64;
const runtime = () => new FakeRuntime({ vocabSize: V, candidates: V, scale: 1, salt: 0 });
const ctx = (stats: StepStats, pos: number, r = runtime()): DecodeContext => ({ stats, pos, tokens: Array.from({ length: pos + 1 }, (_, i) => i % V), budget: 100, runtime: r });
const uniform = () => statsOf(new Array(V).fill(0)); // 6 bits, varentropy 0
// two groups: 1 token at p ≈ 0.5, 63 sharing the rest — mid entropy, high varentropy (bits²)
const twoLevel = () => statsOf(Array.from({ length: V }, (_, i) => (i === 3 ? 6 : 0)));

describe('entropix decoder', () => {
  test('the first token after the prompt is the argmax; the metrics are bits', async () => {
    const dec = new EntropixDecoder({ clarifyingToken: 2564 % V, seed: 1 });
    const e = await dec.next(ctx(twoLevel(), 5));
    assert.equal(e.event!.branch, 'first');
    assert.deepEqual(e.tokens, [3]);
    const s = twoLevel();
    close(e.event!.ent, s.entropy / Math.LN2, 'ent in bits');
    close(e.event!.vent, s.varentropy / Math.LN2 ** 2, 'vent in bits²');
  });

  test('the clarifying token is inserted once per generation; later such steps sample hotter', async () => {
    const dec = new EntropixDecoder({ clarifyingToken: 42, seed: 1 });
    await dec.next(ctx(uniform(), 5)); // first
    const a = await dec.next(ctx(uniform(), 6));
    assert.deepEqual([a.event!.branch, a.tokens[0], a.event!.draw], ['clarify', 42, undefined]);
    const b = await dec.next(ctx(uniform(), 7));
    assert.equal(b.event!.branch, 'clarify');
    close(b.event!.draw!.temperature, Math.min(1.5, 0.666 * 1.3), 'T without attention');
    const later = await dec.next(ctx(uniform(), 8));
    assert.ok(later.event!.draw, 'still no second insertion');
    assert.deepEqual(dec.summary().branches, { first: 1, argmax: 0, clarify: 3, explore: 0, resample: 0, adaptive: 0 });
    assert.equal(dec.summary().attention, 'unavailable');
  });

  test('adaptive: five seeded draws, the one with the highest raw logit kept (first on ties)', async () => {
    const z = Array.from({ length: V }, (_, i) => Math.log(1 / (i + 2)) * 1.5); // a Zipf-like slope
    const stats = statsOf(z);
    const events: EntropixEvent[] = [];
    const dec = new EntropixDecoder({ clarifyingToken: null, seed: 9 });
    await dec.next(ctx(stats, 3));
    for (let pos = 4; pos < 12; pos++) events.push((await dec.next(ctx(stats, pos))).event!);
    for (const e of events) {
      assert.equal(e.branch, 'adaptive', `ent ${e.ent} vent ${e.vent}`);
      assert.equal(e.samples!.length, 5);
      const best = Math.max(...e.samples!.map((id) => z[id]));
      assert.equal(e.chosen, e.samples!.findIndex((id) => z[id] === best));
      assert.equal(e.token, e.samples![e.chosen!]);
    }
    // the same seed replays, another seed differs somewhere
    const replay = new EntropixDecoder({ clarifyingToken: null, seed: 9 });
    await replay.next(ctx(stats, 3));
    for (let pos = 4; pos < 12; pos++) assert.deepEqual((await replay.next(ctx(stats, pos))).event!.samples, events[pos - 4].samples);
    const other = new EntropixDecoder({ clarifyingToken: null, seed: 10 });
    await other.next(ctx(stats, 3));
    const otherSamples: number[][] = [];
    for (let pos = 4; pos < 12; pos++) otherSamples.push((await other.next(ctx(stats, pos))).event!.samples!);
    assert.notDeepEqual(otherSamples, events.map((e) => e.samples));
  });

  test('attention metrics come from StepStats.attention and shape the branch', async () => {
    const explore = twoLevel();
    const ent = explore.entropy / Math.LN2;
    const vent = explore.varentropy / Math.LN2 ** 2;
    assert.ok(ent < 5 && vent > 5, `a branch-3 step: ent ${ent}, vent ${vent}`);
    const dec = new EntropixDecoder({ clarifyingToken: null, seed: 1 });
    await dec.next(ctx(explore, 2));
    const e = await dec.next(ctx(statsOf(explore.topK.sort((a, b) => a.id - b.id).map((c) => c.logit), att(1, 0.5, 0.4, 0.5)), 3));
    assert.equal(e.event!.branch, 'explore');
    assert.deepEqual(e.event!.attention, att(1, 0.5, 0.4, 0.5));
    close(e.event!.draw!.temperature, Math.min(1.5, 0.666 * (1.2 + 0.3 * 0.5)), 'T from interaction');
    assert.equal(e.event!.draw!.topK, Math.max(5, Math.trunc(27 * (1 + 0.5 * 0.6))));
    assert.equal(dec.summary().attention, 'gpu');
    assert.deepEqual(attentionOf({ ...explore, attention: { layer: 5, heads: [1, 1], entropy: 1, varentropy: 2, agreement: 3, interaction: 4 } }), att(1, 2, 3, 4));
    assert.equal(attentionOf(explore), null);
  });

  test('defaults are the published base sampler', () => {
    const dec = new EntropixDecoder({ clarifyingToken: null });
    assert.deepEqual(dec.base, { temperature: ENTROPIX_DEFAULTS.temperature, topK: 27, topP: 0.9, minP: 0.03 });
    assert.deepEqual({ ...dec.sampling(), seed: undefined }, { temperature: 0, seed: undefined, statsTemperature: 1, candidates: 64 });
  });
});
