// KvCache.compact (a streaming memory's eviction): the kept positions of row 0 move to 0.. with
// their values as they were and their keys turned back by the shift, for both RoPE pairings
// (llama2.c's interleaved pairs, HF Llama's rotate-half). Checked against a float64 rotation of
// the cache read back before, and in layer 0 (whose keys depend on the token and position only)
// against the keys a fresh prefill of the kept tokens writes.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MAP_MODE_READ, READBACK } from '../../src/gpu/buffers.ts';
import { ropeTable } from '../../src/model/weights.ts';
import { fixturePath } from '../support/fixtures.ts';
import { modelSession } from '../support/engine.ts';

const MODELS = [
  { name: 'stories15M (interleaved pairs)', path: undefined },
  { name: 'tiny-llama3 (rotate-half)', path: fixturePath('tiny-llama3') },
];

async function read(device: GPUDevice, buffer: GPUBuffer, bytes: number): Promise<Float32Array> {
  const staging = device.createBuffer({ size: bytes, usage: READBACK });
  const encoder = device.createCommandEncoder();
  encoder.copyBufferToBuffer(buffer, 0, staging, 0, bytes);
  device.queue.submit([encoder.finish()]);
  await staging.mapAsync(MAP_MODE_READ);
  const out = new Float32Array(staging.getMappedRange().slice(0));
  staging.destroy();
  return out;
}

for (const m of MODELS) {
  describe(`compact on ${m.name}`, () => {
    test('kept values move, kept keys turn back by their shift; layer 0 equals a fresh prefill', async () => {
      const { ctx, session, destroy } = await modelSession(2, 8, m.path);
      try {
        const c = session.config;
        const { context } = session;
        const ids = Array.from({ length: 40 }, (_, i) => (i === 0 ? 1 : 300 + ((i * 7919) % 20000)));
        const feed = (tokens: number[]) => session.step(tokens.map((id, i) => ({ id, pos: session.kv.lengths[0] + i, row: 0 })));
        await feed(ids);
        session.fork(0, [1]);
        const bytes = c.nKvHeads * context * c.headDim * 4;
        const layers = [...session.kv.keys, ...session.kv.values];
        const before = await Promise.all(layers.map((b) => read(ctx.device, b, bytes)));
        const keep = [0, 1, 2, 3, ...Array.from({ length: 14 }, (_, i) => 22 + i), 39];
        await session.compact(keep);
        assert.equal(session.kv.lengths[0], keep.length);
        assert.equal(session.kv.lengths[1], 0, 'other rows are emptied');
        assert.deepEqual(session.kv.tokens(0), keep.map((p) => ids[p]), 'the row knows which tokens it holds');
        const after = await Promise.all(layers.map((b) => read(ctx.device, b, bytes)));

        const table = ropeTable(c, context);
        const half = c.headDim / 2;
        const pair = (j: number) => (c.ropeLayout === 'half' ? [j, j + half] : [2 * j, 2 * j + 1]);
        let worst = 0;
        for (let l = 0; l < 2 * c.nLayers; l++) {
          const isKey = l < c.nLayers;
          for (let h = 0; h < c.nKvHeads; h++) {
            keep.forEach((old, i) => {
              const from = (h * context + old) * c.headDim;
              const to = (h * context + i) * c.headDim;
              for (let j = 0; j < half; j++) {
                const [a, b] = pair(j);
                const [x, y] = [before[l][from + a], before[l][from + b]];
                const d = old - i;
                const [cos, sin] = isKey ? [table[d * c.headDim + 2 * j], table[d * c.headDim + 2 * j + 1]] : [1, 0];
                const want = [x * cos + y * sin, y * cos - x * sin];
                const got = [after[l][to + a], after[l][to + b]];
                for (const k of [0, 1]) {
                  const err = Math.abs(got[k] - want[k]);
                  worst = Math.max(worst, err);
                  assert.ok(err <= 4e-7 * (Math.abs(x) + Math.abs(y)) + 1e-30, `layer buffer ${l} head ${h} kept ${old}→${i} pair ${j}: ${got[k]} vs ${want[k]}`);
                }
              }
            });
          }
        }
        // Layer 0's keys and values depend only on the token and its position: a fresh prefill of
        // the kept tokens writes what the compacted cache holds (up to one rotation's rounding).
        session.reset();
        await feed(keep.map((p) => ids[p]));
        const freshKeys = await read(ctx.device, session.kv.keys[0], bytes);
        let moved = 0;
        for (let h = 0; h < c.nKvHeads; h++) {
          for (let i = 0; i < keep.length; i++) {
            const base = (h * context + i) * c.headDim;
            // float32 rotations of the key vector: errors scale with its largest feature
            const scale = Math.max(...freshKeys.subarray(base, base + c.headDim).map(Math.abs));
            for (let d = 0; d < c.headDim; d++) {
              const at = base + d;
              assert.ok(Math.abs(after[0][at] - freshKeys[at]) <= 1e-5 * scale, `layer 0 key head ${h} pos ${i}[${d}]: ${after[0][at]} vs fresh ${freshKeys[at]}`);
              moved = Math.max(moved, Math.abs(before[0][at] - freshKeys[at]));
            }
          }
        }
        assert.ok(moved > 1e-2, 'the kept keys did have to move (the test can fail)');
        console.log(`# ${m.name}: worst |Δ| against the float64 rotation ${worst.toExponential(2)}`);
        await assert.rejects(session.compact([3, 2]), /ascending/);
      } finally {
        destroy();
      }
    });
  });
}
