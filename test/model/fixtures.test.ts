// Every model fixture (test/fixtures: HF folders, GGUF files of several block types) against its
// golden from an independent float64 reference: teacher-forced statistics at every position of
// the golden sequence (argmax exact; lse and entropy within statBound, test/support/fixtures.ts) and greedy generation from
// the prompt text (the tokenizer's ids and the first generated ids exact).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Engine } from '../../src/engine.ts';
import { createNodeEngine, modelFromPath } from '../../src/node/index.ts';
import { MODEL_FIXTURES, fixtureGoldens, fixturePath, statBound } from '../support/fixtures.ts';

/** Tokens generated from the first golden's prompt (the rest of its positions are teacher-forced). */
const DECODED = 8;

let engine: Engine;
before(async () => {
  engine = await createNodeEngine();
});
after(() => engine.dispose());

for (const f of MODEL_FIXTURES) {
  describe(`fixture ${f.name}`, () => {
    const goldens = fixtureGoldens(f.golden);
    before(async () => {
      const info = await engine.loadModel({ model: await modelFromPath(fixturePath(f.model)) });
      assert.equal(info.dtype, f.dtype, 'dominant weight type');
    });

    test('teacher-forced statistics equal the float64 reference', async () => {
      let worst = 0;
      for (const g of goldens) {
        const stats = await engine.score(g.tokens);
        for (const p of g.per_position) {
          const s = stats[p.pos];
          // A top-2 gap below float32's resolution of the logits cannot decide the argmax.
          if (p.top2_gap > 2e-3) assert.equal(s.argmax, p.argmax, `${JSON.stringify(g.prompt)} position ${p.pos}: argmax`);
          const scale = Math.max(20, Math.abs(p.lse));
          worst = Math.max(worst, Math.abs(s.lse - p.lse) / scale, Math.abs(s.entropy - p.entropy_nats) / scale);
          assert.ok(Math.abs(s.lse - p.lse) <= statBound(p.lse), `position ${p.pos}: lse ${s.lse} vs ${p.lse}`);
          assert.ok(Math.abs(s.entropy - p.entropy_nats) <= statBound(p.lse), `position ${p.pos}: entropy ${s.entropy} vs ${p.entropy_nats}`);
        }
      }
      console.log(`# ${f.name}: max |Δ lse|, |Δ entropy| / max(20, |lse|) = ${worst.toExponential(2)}`);
    });

    // The first golden's first DECODED tokens (the prefill's argmax, then decode steps through the
    // format's GEMV kernels); the others only their first token (their prompt ids and the prefill's
    // argmax): the teacher-forced test above already covers every position (the GEMM kernels).
    test('greedy generation from the prompt text gives the golden tokens', async () => {
      for (const [i, g] of goldens.entries()) {
        const budget = Math.min(i === 0 ? DECODED : 1, g.tokens.length - g.prompt_token_count);
        const r = await engine.generate(g.prompt, { maxTokens: budget }).complete();
        assert.deepEqual(r.tokens.slice(0, g.prompt_token_count), g.tokens.slice(0, g.prompt_token_count), `${JSON.stringify(g.prompt)}: prompt ids`);
        assert.deepEqual(r.tokens, g.tokens.slice(0, g.prompt_token_count + budget), `${JSON.stringify(g.prompt)}: greedy tokens`);
      }
    });
  });
}
