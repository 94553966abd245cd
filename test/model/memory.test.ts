// Memory that stays flat: one engine runs 10 load/unload cycles of a tiny model with EAD's small
// partner, each followed by one generation of every decoder (greedy, sample, cntp, ead, srgen:
// 50 generations). engine.memory() — every live GPU buffer the engine created, by owner — is the
// same after every cycle as after the first (a cycle's decoders grow the KV rows, CNTP, and
// allocate SRGen's history; nothing more may appear), a failed load changes nothing, and
// dispose() releases all of it (the engine keeps no GPU memory without a model: total 0). The JS
// heap after a forced GC stays within HEAP_SLACK of its size after the second cycle (the first
// warms caches: compiled pipelines, JIT). `npm run soak` runs the same for 1,000 generations and
// 200 load/unload cycles (scripts/soak.mjs).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { DecoderName, Engine } from '../../src/engine.ts';
import { liveBuffers } from '../../src/gpu/buffers.ts';
import { createNodeEngine } from '../../src/node/index.ts';
import { tinyModels } from '../fuzz/build.ts';
import { forceGc } from '../support/gc.ts';

const CYCLES = 10;
const DECODERS: readonly DecoderName[] = ['greedy', 'sample', 'cntp', 'ead', 'srgen'];
/** Heap growth allowed between the second cycle and any later one. */
const HEAP_SLACK = 16 << 20;
const PROMPTS = ['Once upon a time', 'the end', 'Hello <b>world</b>', 'a'];

describe('GPU memory stays flat over generations and load/unload cycles', () => {
  let engine: Engine;
  const tiny = tinyModels();
  const load = { model: tiny.model, tokenizer: tiny.tokenizer, smallModel: tiny.smallModel };
  before(async () => {
    engine = await createNodeEngine();
  });
  after(() => engine?.dispose());

  test(`${CYCLES} cycles of load + ${DECODERS.length} decoders: the same GPU bytes by owner after each; dispose frees all`, async (t) => {
    assert.equal(engine.memory().total, 0, 'a new engine holds no GPU memory');
    const afterLoad: number[] = [];
    const afterCycle: ReturnType<Engine['memory']>[] = [];
    const heap: number[] = [];
    let generations = 0;
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      if (cycle > 0) engine.dispose(); // unload, then load again (loadModel also replaces a model in place)
      if (cycle % 2 === 1) assert.equal(engine.memory().total, 0, `cycle ${cycle}: nothing left after dispose()`);
      await engine.loadModel(load);
      afterLoad.push(engine.memory().total);
      for (const [i, decoder] of DECODERS.entries()) {
        const r = await engine.generate(PROMPTS[(cycle + i) % PROMPTS.length], { decoder, maxTokens: 4, seed: cycle }).complete();
        assert.ok(r.steps.length > 0, `${decoder} generated`);
        generations++;
      }
      if (cycle === 3) {
        // a failed load keeps the model and allocates nothing
        const before = engine.memory();
        await assert.rejects(engine.loadModel({ ...load, model: tiny.model.slice(0, 1000) }));
        await assert.rejects(engine.loadModel({ ...load, tokenizer: tiny.tokenizer.slice(0, 1000) }));
        assert.deepEqual(engine.memory(), before, 'a failed load changes no GPU memory');
      }
      afterCycle.push(engine.memory());
      heap.push(forceGc());
    }
    t.diagnostic(`${generations} generations, ${CYCLES} loads; GPU bytes after each cycle ${afterCycle[0].total} ` +
      `(${JSON.stringify(afterCycle[0].byOwner)}), after each load ${afterLoad[0]}; heap MB ${heap.map((h) => (h / 2 ** 20).toFixed(1)).join(' ')}`);
    for (let c = 1; c < CYCLES; c++) {
      assert.equal(afterLoad[c], afterLoad[0], `cycle ${c}: GPU bytes after the load`);
      assert.deepEqual(afterCycle[c], afterCycle[0], `cycle ${c}: GPU bytes by owner after the decoders`);
    }
    assert.ok(afterCycle[0].byOwner.weights > 0 && afterCycle[0].byOwner.kv > 0 && afterCycle[0].byOwner.srgen > 0, JSON.stringify(afterCycle[0].byOwner));
    for (let c = 2; c < CYCLES; c++) {
      assert.ok(heap[c] <= heap[1] + HEAP_SLACK, `cycle ${c}: heap ${heap[c]} B grew more than ${HEAP_SLACK} B over cycle 1's ${heap[1]} B`);
    }
    engine.dispose();
    assert.deepEqual(engine.memory(), { total: 0, byOwner: {}, buffers: 0 }, JSON.stringify(liveBuffers(engine.gpu).slice(0, 5)));
  });
});
