// Device loss and recovery, and allocations that cannot fit. The GPU device is destroyed
// (device.destroy() resolves device.lost, as a driver reset or a backgrounded tab does) in the
// middle of a generation and of a load: the call in flight rejects with DeviceLostError and the
// browser's reason, every later call too, until recover() (or autoRecover) acquires a new device
// and loads the model again from the kept load options; greedy tokens then equal those from
// before the loss. The same through the worker protocol (test/browser/device-loss.test.ts: in
// Chromium). A context over the adapter's real maxBufferSize, a KV cache over maxBindingBytes, and
// KV rows a decoder asks for beyond it give GpuAllocationError (bytes asked, device limits) before
// any allocation, and the previous model keeps working. One engine (one device's compiled kernels)
// serves every test but autoRecover's, the worker's included.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { Engine, LoadModelOptions } from '../../src/engine.ts';
import { DeviceLostError, GpuAllocationError } from '../../src/errors.ts';
import { bundledModel, createNodeEngine, modelFromPath } from '../../src/node/index.ts';
import { type WorkerEngine, createWorkerEngine } from '../../src/worker/client.ts';
import { serveEngine } from '../../src/worker/serve.ts';
import { ggufModelSpec, writeGguf } from '../fuzz/build.ts';
import { fixturePath } from '../support/fixtures.ts';
import { mulberry32 } from '../support/random.ts';

const PROMPT = 'Once upon a time';
const TOKENS = 6;
const STORIES_Q4 = () => new Uint8Array(readFileSync(fixturePath('stories15M-gguf/stories15M-Q4_0.gguf')));
const isLost = (e: unknown) => e instanceof DeviceLostError && e.code === 'device-lost' && /destroyed/.test(e.message);

/** Greedy tokens of PROMPT on `engine`. */
async function greedy(engine: Pick<Engine, 'generate'>): Promise<number[]> {
  return (await engine.generate(PROMPT, { maxTokens: TOKENS }).complete()).tokens;
}

/** Iterates a generation and destroys the device after `after` steps; returns the error it ends with. */
async function loseDuringGeneration(engine: Pick<Engine, 'generate'>, destroy: () => void, after = 2): Promise<{ error: unknown; steps: number }> {
  let steps = 0;
  try {
    for await (const _ of engine.generate(PROMPT, { maxTokens: 40 })) {
      if (++steps === after) destroy();
    }
  } catch (error) {
    return { error, steps };
  }
  return { error: null, steps };
}

/** One engine for the loss and limits tests (each device compiles its kernels once). */
let engine: Engine;
before(async () => {
  engine = await createNodeEngine();
});
after(() => engine?.dispose());

describe('device loss: DeviceLostError, then recover() gives the same tokens', () => {
  let load: LoadModelOptions;
  let reference: number[];

  before(async () => {
    load = { model: await modelFromPath(fixturePath('tiny-qwen2')) }; // a folder read by path: kept, read again
    await engine.loadModel(load);
    reference = await greedy(engine);
  });

  test('lost mid-generation: the generation rejects, every call after it too, recover() restores it', async (t) => {
    const { error, steps } = await loseDuringGeneration(engine, () => engine.gpu.device.destroy());
    assert.ok(isLost(error), String(error));
    assert.equal(steps, 2, 'no step after the loss');
    assert.equal(engine.lost, true);
    assert.throws(() => engine.generate(PROMPT), isLost);
    await assert.rejects(engine.loadModel(load), isLost);
    assert.throws(() => engine.score([1, 2]), isLost);
    const t0 = performance.now();
    const info = await engine.recover();
    const recoverMs = performance.now() - t0;
    assert.equal(engine.lost, false);
    assert.equal(info?.config.vocabSize, 151936);
    assert.deepEqual(await greedy(engine), reference, 'the same greedy tokens as before the loss');
    assert.deepEqual(engine.gpu.uncapturedErrors, []);
    assert.equal(await engine.recover(), engine.model, 'recover() on a live device does nothing');
    t.diagnostic(`recover (new device + reload of tiny-qwen2 from its folder): ${recoverMs.toFixed(0)} ms`);
  });

  test('lost mid-load: the load rejects, the previous model is what recover() restores', async (t) => {
    const before = engine.model;
    const loading = engine.loadModel({
      model: readFileSync(bundledModel.model),
      tokenizer: readFileSync(bundledModel.tokenizer),
      onProgress: (p) => {
        if (p.phase === 'upload' && p.loaded > 0 && !engine.gpu.lost) engine.gpu.device.destroy();
      },
    });
    await assert.rejects(loading, isLost);
    assert.equal(engine.model, before, 'no half-loaded model: the previous one is still the model');
    const t0 = performance.now();
    await engine.recover();
    t.diagnostic(`recover after a loss mid-load: ${(performance.now() - t0).toFixed(0)} ms`);
    assert.deepEqual(await greedy(engine), reference);
  });
});

describe('allocations over the limits: GpuAllocationError, the previous model stays', () => {
  /** A tiny F32 GGUF (vocabulary 300) declaring `context` trained positions; two KV heads of 16 dims: 128 B a KV position. */
  const tinyGguf = (context: number) => writeGguf(ggufModelSpec(mulberry32(7), { kvHeads: 2, context, dtype: 'F32' })).bytes;
  const POSITION_BYTES = 128;
  const limitsText = () => {
    const { maxBufferSize, maxStorageBufferBindingSize } = engine.gpu.device.limits;
    return `maxBufferSize ${maxBufferSize}, maxStorageBufferBindingSize ${maxStorageBufferBindingSize}`;
  };
  /** `call` fails with GpuAllocationError naming `text`; the model, its GPU memory and its tokens are unchanged. */
  async function rejectsKeepingModel(call: () => Promise<unknown>, ...text: string[]) {
    const tokens = await greedy(engine); // first: a model's first generation allocates its readback ring
    const before = { info: engine.model, memory: engine.memory(), tokens };
    await assert.rejects(call, (e: Error) => {
      assert.ok(e instanceof GpuAllocationError && e.code === 'gpu-allocation', String(e));
      for (const part of text) assert.ok(e.message.includes(part), `${JSON.stringify(part)} in ${JSON.stringify(e.message)}`);
      return true;
    });
    assert.equal(engine.model, before.info, 'the previous model stays');
    assert.deepEqual(engine.memory(), before.memory, 'nothing was allocated');
    assert.deepEqual(await greedy(engine), before.tokens, 'and gives its tokens');
  }

  test("a context whose KV layer cannot fit the adapter's maxBufferSize fails the load before any upload", async (t) => {
    const { maxBufferSize, maxStorageBufferBindingSize } = engine.gpu.device.limits;
    const limit = Math.min(maxBufferSize, maxStorageBufferBindingSize);
    const fit = Math.floor(limit / POSITION_BYTES);
    const contextLength = fit + 1; // SwiftShader: 1 GiB, so 2^23 + 1 positions ask for 2^30 + 128 B
    if (contextLength > 1 << 24) return t.skip(`this device binds ${limit} B: no context up to 2^24 positions exceeds it`);
    t.diagnostic(`limit ${limit} B; context ${contextLength} needs ${contextLength * POSITION_BYTES} B`);
    await rejectsKeepingModel(() => engine.loadModel({ model: tinyGguf(contextLength), contextLength }),
      `1 row(s) × ${contextLength} positions needs ${contextLength * POSITION_BYTES} bytes`, limitsText(), `${fit} positions fit`);
  });

  test('a KV layer over maxBindingBytes fails the load the same way', async () => {
    const binding = 1 << 18; // 4096 positions × 128 B = 512 KiB, twice the binding
    await rejectsKeepingModel(() => engine.loadModel({ model: tinyGguf(4096), contextLength: 4096, maxBindingBytes: binding }),
      `needs ${2 * binding} bytes`, limitsText(), `maxBindingBytes ${binding}`, `${binding / POSITION_BYTES} positions fit`);
  });

  test('KV rows a decoder asks for beyond the limit: the generation fails, the model keeps working', async () => {
    // the model that did not fit at 2^23 + 1 positions fits at 4096 (512 KiB a row); 10 CNTP trials need 5 MiB per layer
    await engine.loadModel({ model: tinyGguf(4096), contextLength: 4096, maxBindingBytes: 1 << 20 });
    await rejectsKeepingModel(() => engine.generate(PROMPT, { decoder: 'cntp', hLo: 0, hHi: 1e-3, maxTrials: 10 }).complete(),
      `10 row(s) × 4096 positions needs ${10 * 4096 * POSITION_BYTES} bytes`, 'maxBindingBytes 1048576');
  });
});

describe('device loss through the worker protocol', () => {
  const channel = new MessageChannel();
  let client: WorkerEngine;
  after(() => {
    channel.port1.close();
    channel.port2.close();
  });

  test('DeviceLostError crosses with its code; recover() in the worker restores the tokens', async () => {
    serveEngine(channel.port1, async () => engine); // the shared engine, served as a worker serves its own
    client = await createWorkerEngine(channel.port2);
    await client.loadModel({ model: STORIES_Q4() });
    const reference = await greedy(client);
    const { error } = await loseDuringGeneration(client, () => engine.gpu.device.destroy());
    assert.ok(isLost(error), String(error));
    await assert.rejects(client.generate(PROMPT).complete(), isLost);
    assert.equal(client.lost, true);
    const info = await client.recover();
    assert.equal(info?.config.vocabSize, 32000);
    assert.equal(client.lost, false);
    assert.deepEqual(await greedy(client), reference);
  });
});

describe('autoRecover: the call after a loss runs on a new device', () => {
  let auto: Engine;
  after(() => auto?.dispose());

  test('bytes kept by reference are loaded again; the next generation gives the same tokens', async (t) => {
    auto = await createNodeEngine({ autoRecover: true });
    await auto.loadModel({ model: STORIES_Q4() });
    const reference = await greedy(auto);
    const { error } = await loseDuringGeneration(auto, () => auto.gpu.device.destroy());
    assert.ok(isLost(error), 'the generation in flight still rejects');
    const t0 = performance.now();
    assert.deepEqual(await greedy(auto), reference, 'recovered by itself before this generation');
    t.diagnostic(`automatic recovery + ${TOKENS}-token generation: ${(performance.now() - t0).toFixed(0)} ms`);
    assert.equal(auto.lost, false);
  });
});
