// The full-logits-row fallback on the CPU (runtime/decode-runtime.ts): its order (a radix sort on
// the float32 bits) against a comparison sort, with ties, ±0 and negatives; its statistics against
// float64 sums written out here; and the samplers' candidate checks that name a bad entry.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fromStepStats } from '../../src/decode/samplers.ts';
import { orderByLogit, statsOfLogits } from '../../src/runtime/decode-runtime.ts';
import { mulberry32 } from '../support/random.ts';

const byComparison = (z: Float32Array) => Array.from(z.keys()).sort((a, b) => z[b] - z[a] || a - b);

describe('the full logits row', () => {
  test('orderByLogit: logits descending, ties by id ascending, as a comparison sort', () => {
    const rng = mulberry32(9);
    const rows = [
      Float32Array.from({ length: 32000 }, () => (rng() - 0.5) * 60), // distinct values, both signs
      Float32Array.from({ length: 5000 }, () => Math.round((rng() - 0.5) * 12) / 4), // many ties
      Float32Array.from([0, -0, 3, -0, 0, -3, 1e-30, -1e-30, 3.4e38, -3.4e38, 3]), // ±0 tie, extremes
      Float32Array.from([7]),
    ];
    for (const z of rows) assert.deepEqual(Array.from(orderByLogit(z)), byComparison(z), `${z.length} logits`);
    assert.deepEqual(Array.from(orderByLogit(rows[2])).slice(0, 3), [8, 2, 10], 'the largest, then the tie at 3 by id');
    // a view into a larger buffer reads its own entries
    const big = new Float32Array([9, 1, 5, 2]);
    assert.deepEqual(Array.from(orderByLogit(big.subarray(1))), [1, 2, 0]);
  });

  test('statsOfLogits: every entry, sorted; lse, entropy and varentropy in float64 at T', () => {
    const rng = mulberry32(4);
    const z = Float32Array.from({ length: 3000 }, () => (rng() - 0.5) * 20);
    for (const t of [1, 0.7]) {
      const s = statsOfLogits(z, t);
      assert.equal(s.topK.length, 3000);
      assert.deepEqual(s.topK.map((c) => c.id), byComparison(z));
      assert.ok(s.topK.every((c) => c.logit === z[c.id]));
      const x = Array.from(z, (v) => v / t);
      const lse = Math.log(x.reduce((a, v) => a + Math.exp(v), 0));
      const p = x.map((v) => Math.exp(v - lse));
      const h = -p.reduce((a, pi, i) => a + pi * (x[i] - lse), 0);
      const v = p.reduce((a, pi, i) => a + pi * (x[i] - lse + h) ** 2, 0);
      assert.ok(Math.abs(s.lse - lse) < 1e-9 && Math.abs(s.entropy - h) < 1e-9 && Math.abs(s.varentropy - v) < 1e-8, `T ${t}`);
      assert.equal(s.argmax, s.topK[0].id);
    }
  });

  test('a bad candidate is named by its index', () => {
    const stats = { lse: 1, entropy: 1, varentropy: 0, maxLogit: 1, argmax: 0, sampled: 0, topK: [{ id: 0, logit: 1 }, { id: 1, logit: 0 }] };
    assert.throws(() => fromStepStats({ ...stats, topK: [...stats.topK, { id: -1, logit: 0 }] }), { code: 'invalid-argument', message: /stats\.topK\[2\]\.id must be an integer/ });
    assert.throws(() => fromStepStats({ ...stats, topK: [stats.topK[0], { id: 1, logit: Number.NaN }] }), { message: /stats\.topK\[1\]\.logit must be a finite number/ });
    assert.throws(() => fromStepStats({ ...stats, topK: [stats.topK[0], null as never] }), { message: /stats\.topK\[1\] must be \{ id, logit \}/ });
    // unsorted candidates are sorted (logit descending, then id)
    const d = fromStepStats({ ...stats, topK: [{ id: 5, logit: 0 }, { id: 2, logit: 3 }, { id: 1, logit: 0 }] });
    assert.deepEqual(d.ids, [2, 1, 5]);
  });
});
