// Every model fixture (test/fixtures: HF folders, GGUF files of several block types) against its
// golden from an independent float64 reference: teacher-forced statistics at every position of
// the golden sequence (argmax exact; lse and entropy within STAT_BOUND) and greedy generation from
// the prompt text (the tokenizer's ids and every generated id exact).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Engine } from '../../src/engine.ts';
import { createNodeEngine, modelFromPath } from '../../src/node/index.ts';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');

/** Folder or file, and its golden file, relative to test/fixtures. */
export const MODEL_FIXTURES = [
  { name: 'stories15M-hf-bf16', model: 'stories15M-hf-bf16', golden: 'stories15M-hf-bf16/golden.json', dtype: 'BF16' },
  { name: 'tiny-llama3', model: 'tiny-llama3', golden: 'tiny-llama3/golden.json', dtype: 'BF16' },
  { name: 'tiny-qwen2', model: 'tiny-qwen2', golden: 'tiny-qwen2/golden.json', dtype: 'F16' },
  { name: 'tiny-qwen3', model: 'tiny-qwen3', golden: 'tiny-qwen3/golden.json', dtype: 'BF16' },
  { name: 'stories15M Q8_0', model: 'stories15M-gguf/stories15M-Q8_0.gguf', golden: 'stories15M-gguf/golden-Q8_0.json', dtype: 'Q8_0' },
  { name: 'stories15M Q4_0', model: 'stories15M-gguf/stories15M-Q4_0.gguf', golden: 'stories15M-gguf/golden-Q4_0.json', dtype: 'Q4_0' },
  { name: 'tiny-kquant Q4_K_M', model: 'tiny-kquant/tiny-kquant-Q4_K_M.gguf', golden: 'tiny-kquant/golden.json', dtype: 'Q4_K' },
  { name: 'tiny-llama3 F16 GGUF', model: 'tiny-llama3-gguf/tiny-llama3-F16.gguf', golden: 'tiny-llama3-gguf/golden-F16.json', dtype: 'F16' },
];

export interface FixtureGolden {
  prompt: string;
  tokens: number[];
  prompt_token_count: number;
  per_position: { pos: number; input_token: number; argmax: number; lse: number; entropy_nats: number; top2_gap: number }[];
}

export function fixtureGoldens(file: string): FixtureGolden[] {
  return JSON.parse(readFileSync(join(FIXTURES, file), 'utf8')).goldens;
}

export const fixturePath = (p: string) => join(FIXTURES, p);

/**
 * |Δ| bound for lse and entropy (nats) against the float64 reference, relative to the logits'
 * scale (taken as max(20, |lse|)). The engine's logits are float32 sums over dim ≤ 288 products
 * after a few float32 layers: relative error ~1e-6 of |z|, so lse and entropy move by ~1e-6·|z|;
 * the float32 online softmax over up to 152k terms adds ~√V·2^-24 ≈ 2e-5 relative. 1e-5 of the
 * scale (2e-4 nats for stories15M, whose |lse| ≈ 20; 3e-3 for tiny-kquant's random weights with
 * |lse| ≈ 330) holds with margin and still catches a wrong RoPE frequency, norm epsilon or bias
 * (errors ≳ 1e-2 of the scale).
 */
const statBound = (lse: number) => 1e-5 * Math.max(20, Math.abs(lse));

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

    test('greedy generation from the prompt text gives the golden tokens', async () => {
      for (const g of goldens) {
        const r = await engine.generate(g.prompt, { maxTokens: g.tokens.length - g.prompt_token_count }).complete();
        assert.deepEqual(r.tokens.slice(0, g.prompt_token_count), g.tokens.slice(0, g.prompt_token_count), `${JSON.stringify(g.prompt)}: prompt ids`);
        assert.deepEqual(r.tokens, g.tokens, `${JSON.stringify(g.prompt)}: greedy tokens`);
      }
    });
  });
}
