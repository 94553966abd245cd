// Session options that change how a step runs but not what it computes, on stories15M:
//   head: 'split' (the classifier GEMV writes the logits, a second kernel reduces them; the
//     default) and 'fused' (one kernel, logits in registers) compute the same float32 sums in the
//     same order: the same tokens, top-K and Gumbel-max samples, statistics within rounding.
//   maxStepTokens (the prefill chunk): a step longer than the activations runs in chunks; the
//     statistics of its last rows, the KV cache it leaves (checked by decoding on) and the hidden
//     row a runtime reads afterwards (fullStats) equal one unchunked step's.
//   statsUnder (the last step's statistics again at other sampling parameters) equals the step run
//     with those parameters, from kept logits or by running the head again.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SessionRuntime } from '../../src/runtime/decode-runtime.ts';
import type { Session } from '../../src/runtime/session.ts';
import type { StepStats } from '../../src/runtime/stats.ts';
import { goldens, modelSession } from '../support/engine.ts';

const CHUNK = 16;
const PROMPT = goldens().find((g) => g.prompt === 'Once upon a time')!.tokens;

function assertClose(a: StepStats, b: StepStats, what: string) {
  assert.equal(a.argmax, b.argmax, `${what}: argmax`);
  assert.equal(a.sampled, b.sampled, `${what}: sampled`);
  assert.deepEqual(a.topK.map((c) => c.id), b.topK.map((c) => c.id), `${what}: top-K`);
  for (const k of ['lse', 'entropy', 'varentropy', 'nextLogit'] as const) {
    assert.ok(Math.abs(a[k]! - b[k]!) < 1e-5, `${what}: ${k} ${a[k]} vs ${b[k]}`);
  }
}

const s: Record<'split' | 'fused' | 'chunked', { session: Session; destroy: () => void }> = {} as never;
before(async () => {
  s.split = await modelSession(1, 5);
  s.fused = await modelSession(1, 5, undefined, { head: 'fused' });
  s.chunked = await modelSession(1, 5, undefined, { maxStepTokens: CHUNK });
});
after(() => Object.values(s).forEach((x) => x?.destroy()));

/** `prompt` in one step (stats of its last `statsRows`), then `steps` one-row steps feeding each pick. */
async function run(session: Session, prompt: number[], statsRows: number, steps: number, temperature: number) {
  session.reset();
  const stats = await session.step(prompt.map((id, pos) => ({ id, pos, row: 0 })), statsRows);
  let last = stats[stats.length - 1];
  const decoded: StepStats[] = [];
  for (let i = 0; i < steps; i++) {
    const id = temperature > 0 ? last.sampled : last.argmax;
    [last] = await session.step([{ id, pos: prompt.length + i, row: 0 }], 1, { temperature, seed: 11 });
    decoded.push(last);
  }
  return { stats, decoded };
}

describe('LM head: split and fused agree', () => {
  for (const temperature of [0, 1]) {
    test(`${temperature ? 'sampled (T 1, seed 11)' : 'greedy'}: 12 decode steps`, async () => {
      const a = await run(s.split.session, PROMPT.slice(0, 5), 1, 12, temperature);
      const b = await run(s.fused.session, PROMPT.slice(0, 5), 1, 12, temperature);
      a.decoded.forEach((x, i) => assertClose(x, b.decoded[i], `step ${i}`));
      if (temperature) assert.ok(a.decoded.some((x) => x.sampled !== x.argmax), 'some draws differ from the argmax');
    });
  }
});

describe(`prefill in chunks of ${CHUNK}`, () => {
  test('the last 20 rows of a 40-token step (three chunks), then 6 decode steps', async () => {
    assert.equal(s.split.session.maxStepTokens, 256);
    assert.equal(s.chunked.session.maxStepTokens, CHUNK);
    // Token 32 (the first of the last chunk) is not the model's pick, so row 31's nextLogit is
    // the logit of a token the next chunk carries, not of the argmax.
    const text = PROMPT.slice(0, 40).map((id, i) => (i === 32 ? 1000 : id));
    const whole = await run(s.split.session, text, 20, 6, 0);
    const chunked = await run(s.chunked.session, text, 20, 6, 0);
    assert.notEqual(whole.stats[11].argmax, 1000);
    assert.ok(whole.stats[11].nextLogit! < whole.stats[11].maxLogit, 'row 31: the next token is not the argmax');
    assert.equal(chunked.stats.length, 20);
    assert.equal(whole.stats.length, 20);
    whole.stats.forEach((x, i) => assertClose(chunked.stats[i], x, `prompt row ${20 + i}`));
    whole.decoded.forEach((x, i) => assertClose(chunked.decoded[i], x, `decode step ${i}`));
  });

  test("a runtime reads the last token's hidden row after a chunked feed", async () => {
    const [whole, chunked] = await Promise.all((['split', 'chunked'] as const).map(async (k) => {
      s[k].session.reset();
      const runtime = new SessionRuntime(s[k].session);
      const fed = await runtime.feed(PROMPT.slice(0, 40), { temperature: 0, seed: 0 });
      return { fed, full: await runtime.fullStats(0, 1) };
    }));
    assertClose(chunked.fed, whole.fed, 'feed');
    assert.equal(chunked.full.argmax, whole.full.argmax);
    assert.ok(Math.abs(chunked.full.lse - whole.full.lse) < 1e-5 && Math.abs(chunked.full.entropy - whole.full.entropy) < 1e-5, 'fullStats');
    assert.ok(Math.abs(chunked.full.lse - chunked.fed.lse) < 1e-4, 'fullStats is of the last token');
  });
});

describe('statsUnder: the last step\'s statistics again, under other sampling', () => {
  // A prompt step with 2 stats rows at (T 1, stats T 1), then statsUnder at (T 0.6, stats T 0.6) of
  // each row must equal the same step run at (T 0.6, stats T 0.6): the first stats row from the
  // logits the batched head left (the statistics kernels alone), the second by running the head
  // again (its logits were not kept), then the first again after that head replaced them. A decode
  // step's row: from its logits (split head) or the fused head again (it keeps none).
  const text = PROMPT.slice(0, 9);
  const first = { temperature: 1, seed: 11, statsTemperature: 1 };
  const later = { temperature: 0.6, seed: 11, statsTemperature: 0.6, candidates: 64 };
  for (const kind of ['split', 'fused'] as const) {
    test(`${kind} head: both stats rows of a 9-token step, then a decode step's`, async () => {
      const { session } = s[kind];
      session.reset();
      const want = await session.step(text.map((id, pos) => ({ id, pos, row: 0 })), 2, later);
      session.reset();
      const had = await session.step(text.map((id, pos) => ({ id, pos, row: 0 })), 2, first);
      const again = [await session.statsUnder(7, later), await session.statsUnder(8, later)];
      again.forEach((x, i) => assertClose(x, want[i], `row ${7 + i}`));
      assertClose(await session.statsUnder(7, later), want[0], 'row 7 after row 8 replaced the logits');
      await session.logits(8);
      assertClose(await session.statsUnder(7, later), want[0], 'row 7 after logits(8)');
      assert.equal(again[0].topK.length, 64);
      assert.ok(Math.abs(had[1].lse - again[1].lse) > 1e-3, 'the statistics temperature changed the lse');
      assertClose(await session.statsUnder(8, first), had[1], 'row 8 at the first sampling');
      // a decode step at T 1, then at T 0.6 keyed as that step: the same as the step run at T 0.6
      const next = { id: had[1].argmax, pos: text.length, row: 0 };
      const [direct] = await session.step([next], 1, later);
      session.kv.rollback(0, text.length);
      await session.step([next], 1, first);
      assertClose(await session.statsUnder(0, later), direct, 'decode step');
      await assert.rejects(session.statsUnder(1, later), /not one of the last step's 1/);
    });
  }
});
