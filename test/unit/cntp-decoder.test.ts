// CntpDecoder against a fake runtime (test/support/fake-runtime.ts): the entropy with no truncating
// stage, the last token of budget, and the trials' exact perplexities (algorithms.md §4, CNTP).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CntpDecoder, trialCount, warpedEntropy } from '../../src/decode/cntp.ts';
import { type Distribution, closedDistribution, fromStepStats, logProbOf, samplerParams, warp } from '../../src/decode/samplers.ts';
import { FakeRuntime, drive, fakeLogits, lseEntropy } from '../support/fake-runtime.ts';

const prompt = [1, 5, 9];
const stopIds = [0];
const endIds = [1];

interface CntpEvent { entropy: number; trials: number; ppl: number[]; chosen: number; committed: number[]; tokens: number[][] }

/** ln p of each trial token under softmax(z/T) of the fake model, continuing `context`. */
function trialLogProbs(runtime: FakeRuntime, context: readonly number[], trial: readonly number[], t: number): number[] {
  return trial.map((id, i) => {
    const z = fakeLogits(runtime.model, [...context, ...trial.slice(0, i)]);
    return z[id] / t - lseEntropy(z, t).lse;
  });
}

describe('CNTP with no truncating stage (top-k 0, top-p 1)', () => {
  // 3 candidates of 16 tokens: the GPU's draw is often a token the CPU has not seen.
  const model = { vocabSize: 16, candidates: 3, scale: 0.8, salt: 11 };

  test('H is the full-vocabulary entropy at T from the step record, so it branches', async () => {
    const runtime = new FakeRuntime(model);
    const cntp = new CntpDecoder({ temperature: 1.2, topK: 0, topP: 1, seed: 2, stopIds, endIds });
    const first = await runtime.feed(prompt, cntp.sampling());
    const e = await cntp.next({ stats: first, pos: prompt.length - 1, tokens: prompt, budget: 6, runtime });
    const h = lseEntropy(fakeLogits(model, prompt), 1.2).entropy;
    assert.ok(Math.abs(first.entropy - h) < 1e-12, 'the fake reports stats at T');
    const event = e.event as unknown as CntpEvent;
    assert.ok(event, 'an event: N > 1');
    assert.ok(Math.abs(event.entropy - h) < 1e-12, `H ${event.entropy} is the full softmax's at T (${h})`);
    assert.equal(event.trials, trialCount(h, 0.01, 1.5, 10));
    assert.ok(event.trials > 1);
    assert.equal(runtime.calls.forks.length, 1);
  });

  test('each trial\'s perplexity is exact, also for GPU-drawn tokens beyond the candidates', async () => {
    const runtime = new FakeRuntime(model);
    const cntp = new CntpDecoder({ temperature: 1.2, topK: 0, topP: 1, seed: 7, stopIds, endIds });
    const { emissions, tokens } = await drive(cntp, runtime, prompt, 12);
    assert.ok(emissions.some((e) => e.event), 'it branched');
    let beyond = 0;
    let context = [...prompt];
    for (const e of emissions) {
      const event = e.event as unknown as CntpEvent | undefined;
      if (event) {
        event.tokens.forEach((trial, i) => {
          const lp = trialLogProbs(runtime, context, trial, 1.2);
          const ppl = Math.exp(-lp.reduce((a, b) => a + b, 0) / trial.length);
          assert.ok(Math.abs(event.ppl[i] - ppl) < 1e-9 * ppl, `trial ${i}: ppl ${event.ppl[i]} vs ${ppl}`);
        });
        assert.equal(event.chosen, event.ppl.indexOf(Math.min(...event.ppl)));
        beyond += event.tokens.flat().filter((id) => !fromStepStats(e.stats[0]).ids.includes(id)).length;
      }
      context = [...context, ...e.tokens];
    }
    assert.deepEqual(context.slice(0, tokens.length), tokens);
    assert.ok(beyond > 0, 'some trial token lay beyond the candidates (its p read from the full row)');
    assert.ok(runtime.calls.fullStats > 0);
  });

  test('warpedEntropy: closed sets use −Σ p ln(p + 1e-10), open ones the exact full entropy', () => {
    const closed = closedDistribution([{ id: 0, logit: 0 }, { id: 1, logit: Math.log(3) }]);
    const h = -(0.25 * Math.log(0.25 + 1e-10) + 0.75 * Math.log(0.75 + 1e-10));
    assert.ok(Math.abs(warpedEntropy(closed) - h) < 1e-15);
    const z = [0.3, -1, 2, 0.5, 0];
    const { lse, entropy } = lseEntropy(z, 1);
    const open = fromStepStats({ lse, entropy, varentropy: 0, maxLogit: 2, argmax: 2, sampled: 2, topK: [{ id: 2, logit: 2 }] });
    assert.ok(Math.abs(warpedEntropy(open) - entropy) < 1e-12);
  });
});

describe('CNTP with one token of budget left', () => {
  const model = { vocabSize: 16, candidates: 16, scale: 0.6, salt: 5 };

  test('N > 1: the N one-token trials run and the most probable wins (no fork, no forward)', async () => {
    const runtime = new FakeRuntime(model);
    const cntp = new CntpDecoder({ temperature: 1, topP: 0.95, seed: 3, stopIds, endIds, vocabSize: 16 });
    const stats = await runtime.feed(prompt, cntp.sampling());
    const e = await cntp.next({ stats, pos: prompt.length - 1, tokens: prompt, budget: 1, runtime });
    const event = e.event as unknown as CntpEvent;
    assert.ok(event, 'the trials ran');
    assert.ok(event.trials > 1);
    assert.equal(event.tokens.length, event.trials);
    assert.ok(event.tokens.every((t) => t.length === 1), 'one token each');
    assert.deepEqual(e.tokens, event.committed);
    assert.equal(e.tokens.length, 1);
    // Lowest perplexity = highest p under the warped distribution (top-k 50 → top-p 0.95 at T 1).
    const warped = warp(stats, samplerParams({ temperature: 1, topK: 50, topP: 0.95, vocabSize: 16 })) as Distribution;
    const lp = event.tokens.map(([id]) => logProbOf(warped, id)!);
    event.ppl.forEach((ppl, i) => assert.ok(Math.abs(ppl - Math.exp(-lp[i])) < 1e-12, `ppl of trial ${i}`));
    assert.equal(e.tokens[0], event.tokens[lp.indexOf(Math.max(...lp))][0]);
    const distinct = new Set(event.tokens.map(([id]) => id));
    assert.ok(distinct.size > 1, `the trials drew different tokens: ${[...distinct]}`);
    assert.deepEqual(runtime.calls.forks, [], 'single draws from row 0\'s logits need no fork');
    assert.equal(runtime.calls.steps, 0);
    assert.deepEqual(runtime.calls.commits, []);
    assert.equal(runtime.length(0), prompt.length, 'row 0 is untouched');
  });
});
