// The one-row LM head both ways (SessionOptions.head): 'split' (the classifier GEMV writes the
// logits, a second kernel reduces them; the default) and 'fused' (one kernel, logits in
// registers) compute the same float32 sums in the same order, so a decode run gives the same
// tokens, top-K and Gumbel-max samples, and statistics within float32 rounding.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Session } from '../../src/runtime/session.ts';
import type { StepStats } from '../../src/runtime/stats.ts';
import { goldens, modelSession } from '../support/engine.ts';

describe('LM head: split and fused agree (stories15M)', () => {
  const sessions: Record<'split' | 'fused', { session: Session; destroy: () => void }> = {} as never;
  before(async () => {
    sessions.split = await modelSession(1, 5, undefined, { head: 'split' });
    sessions.fused = await modelSession(1, 5, undefined, { head: 'fused' });
  });
  after(() => Object.values(sessions).forEach((s) => s?.destroy()));

  /** Prefill, then `steps` one-row steps feeding each step's pick (greedy, or sampled at T 1). */
  async function run(session: Session, steps: number, temperature: number): Promise<StepStats[]> {
    const prompt = goldens().find((g) => g.prompt === 'Once upon a time')!.tokens.slice(0, 5);
    session.reset();
    let [last] = (await session.step(prompt.map((id, pos) => ({ id, pos, row: 0 })))).slice(-1);
    const out: StepStats[] = [];
    for (let i = 0; i < steps; i++) {
      const id = temperature > 0 ? last.sampled : last.argmax;
      [last] = await session.step([{ id, pos: prompt.length + i, row: 0 }], 1, { temperature, seed: 11 });
      out.push(last);
    }
    return out;
  }

  for (const temperature of [0, 1]) {
    test(`${temperature ? 'sampled (T 1, seed 11)' : 'greedy'}: same picks and top-K, statistics within 1e-5`, async () => {
      const a = await run(sessions.split.session, 12, temperature);
      const b = await run(sessions.fused.session, 12, temperature);
      a.forEach((s, i) => {
        const f = b[i];
        assert.equal(s.argmax, f.argmax, `step ${i}: argmax`);
        assert.equal(s.sampled, f.sampled, `step ${i}: sampled`);
        assert.deepEqual(s.topK.map((c) => c.id), f.topK.map((c) => c.id), `step ${i}: top-K`);
        for (const k of ['lse', 'entropy', 'varentropy', 'nextLogit'] as const) {
          assert.ok(Math.abs(s[k]! - f[k]!) < 1e-5, `step ${i}: ${k} ${s[k]} vs ${f[k]}`);
        }
      });
      if (temperature) assert.ok(a.some((s) => s.sampled !== s.argmax), 'some draws differ from the argmax');
    });
  }
});
