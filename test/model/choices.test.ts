// Engine.generateBatch (OpenAI's n as batched rows) on stories15M: n rows stepped together, the
// first equal to generate() with the same options, the others distinct and seeded; closing one
// row early leaves the others running, unread rows do not hold the engine; decoders with rows of
// their own are refused.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Engine, GenerationResult } from '../../src/engine.ts';
import { loadedEngine } from '../support/engine.ts';

let engine: Engine;
before(async () => {
  engine = await loadedEngine();
});
after(() => engine.dispose());

const all = (gens: ReturnType<Engine['generateBatch']>) => Promise.all(gens.map((g) => g.complete()));

describe('generateBatch', () => {
  // The GPU's draw (sample at T 1), the CPU's draw from the candidates (top-p), and adaptive
  // temperature's redraws at T′ all key a row's draws by its batch row.
  const cases = [
    { decoder: 'sample' as const, temperature: 1, seed: 7, maxTokens: 16 },
    { decoder: 'sample' as const, temperature: 1, topP: 0.9, seed: 7, maxTokens: 16 },
    { decoder: 'adaptive-temperature' as const, seed: 7, maxTokens: 16, adaptiveTemperature: { warmup: 4 } },
  ];
  for (const o of cases) {
    test(`${JSON.stringify(o)}: row 0 equals generate(), the rows differ, the same seed repeats them`, async () => {
      const single = await engine.generate('Once upon a time', o).complete();
      const rows = await all(engine.generateBatch('Once upon a time', o, 3));
      assert.deepEqual(rows[0].tokens, single.tokens, 'row 0 is generate() itself');
      assert.equal(new Set(rows.map((r) => r.completion)).size, 3, `three different texts: ${rows.map((r) => JSON.stringify(r.completion)).join(' | ')}`);
      rows.forEach((r, i) => r.steps.forEach((s, j) => {
        // each step's statistics are its own row's: the entropy of row 0 equals the single run's
        if (i === 0) assert.ok(Math.abs(s.entropy - single.steps[j].entropy) < 1e-4, `step ${j} entropy`);
      }));
      const again = await all(engine.generateBatch('Once upon a time', o, 3));
      assert.deepEqual(again.map((r) => r.tokens), rows.map((r) => r.tokens), 'seeded');
    });
  }

  test('greedy: row 0 equals generate(); a row closed early stops alone', async () => {
    const gens = engine.generateBatch('Once upon a time', { maxTokens: 12 }, 2);
    let taken = 0;
    for await (const _ of gens[1]) if (++taken === 3) break;
    const r0: GenerationResult = await gens[0].complete();
    const single = await engine.generate('Once upon a time', { maxTokens: 12 }).complete();
    assert.deepEqual(r0.tokens, single.tokens);
    assert.equal(r0.steps.length, 12, 'row 0 ran to its end after row 1 was closed');
  });

  test('rows nobody reads do not hold the engine: the batch runs to its end by itself', async () => {
    const gens = engine.generateBatch('Once upon a time', { maxTokens: 6 }, 3);
    const first = await gens[0].complete();
    const next = await engine.generate('Once upon a time', { maxTokens: 6 }).complete();
    assert.deepEqual(next.tokens, first.tokens, 'the next call ran (rows 1 and 2 were never read)');
    assert.deepEqual((await gens[2].complete()).tokens, first.tokens, 'an unread row still has its result');
  });

  test('decoders with rows or models of their own are refused before any work', () => {
    assert.throws(() => engine.generateBatch('Once', { decoder: 'cntp' }, 2), { code: 'invalid-argument' });
    assert.throws(() => engine.generateBatch('Once', { decoder: 'srgen' }, 2), { code: 'invalid-argument' });
    assert.throws(() => engine.generateBatch('Once', {}, 0), { code: 'invalid-argument' });
    assert.throws(() => engine.generateBatch('Once', {}, 17), { code: 'invalid-argument' });
  });
});
