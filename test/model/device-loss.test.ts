// Device loss and recovery, and allocations that cannot fit. The GPU device is destroyed
// (device.destroy() resolves device.lost, as a driver reset or a backgrounded tab does) in the
// middle of a generation and of a load: the call in flight rejects with DeviceLostError and the
// browser's reason, every later call too, until recover() (or autoRecover) acquires a new device
// and loads the model again from the kept load options; greedy tokens then equal those from
// before the loss. The same through the worker protocol. A KV cache or context over the limits
// gives GpuAllocationError (bytes asked, device limits) before any allocation, and the previous
// model keeps working.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { Engine, LoadModelOptions } from '../../src/engine.ts';
import { DeviceLostError, GpuAllocationError } from '../../src/errors.ts';
import { bundledModel, createNodeEngine, modelFromPath } from '../../src/node/index.ts';
import { type WorkerEngine, createWorkerEngine } from '../../src/worker/client.ts';
import { serveEngine } from '../../src/worker/serve.ts';
import { fixturePath } from '../support/fixtures.ts';

const PROMPT = 'Once upon a time';
const TOKENS = 6;
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

describe('autoRecover: the call after a loss runs on a new device', () => {
  let auto: Engine;
  after(() => auto?.dispose());

  test('bytes kept by reference are loaded again; the next generation gives the same tokens', async (t) => {
    auto = await createNodeEngine({ autoRecover: true });
    const engine = auto;
    await engine.loadModel({ model: readFileSync(fixturePath('stories15M-gguf/stories15M-Q4_0.gguf')) });
    const reference = await greedy(engine);
    const { error } = await loseDuringGeneration(engine, () => engine.gpu.device.destroy());
    assert.ok(isLost(error), 'the generation in flight still rejects');
    const t0 = performance.now();
    assert.deepEqual(await greedy(engine), reference, 'recovered by itself before this generation');
    t.diagnostic(`automatic recovery + ${TOKENS}-token generation: ${(performance.now() - t0).toFixed(0)} ms`);
    assert.equal(engine.lost, false);
  });
});

describe('device loss through the worker protocol', () => {
  const channel = new MessageChannel();
  let served: Engine | null = null;
  let engine: WorkerEngine;
  after(() => {
    engine?.dispose();
    channel.port1.close();
    channel.port2.close();
  });

  test('DeviceLostError crosses with its code; recover() in the worker restores the tokens', async () => {
    serveEngine(channel.port1, async (options) => (served = await createNodeEngine(options)));
    engine = await createWorkerEngine(channel.port2);
    await engine.loadModel({ model: new Uint8Array(readFileSync(fixturePath('stories15M-gguf/stories15M-Q4_0.gguf'))) });
    const reference = await greedy(engine);
    const { error } = await loseDuringGeneration(engine, () => served!.gpu.device.destroy());
    assert.ok(isLost(error), String(error));
    await assert.rejects(engine.generate(PROMPT).complete(), isLost);
    assert.equal(engine.lost, true);
    const info = await engine.recover();
    assert.equal(info?.config.vocabSize, 32000);
    assert.equal(engine.lost, false);
    assert.deepEqual(await greedy(engine), reference);
  });
});

describe('allocations over the limits: GpuAllocationError, the previous model stays', () => {
  const binding = 1 << 19;

  test('a context whose KV layer exceeds the binding limit fails the load before any upload', async () => {
    const model = await modelFromPath(fixturePath('tiny-qwen2'));
    await engine.loadModel({ model, maxBindingBytes: binding });
    const reference = await greedy(engine);
    const before = { info: engine.model, memory: engine.memory() };
    const { maxBufferSize, maxStorageBufferBindingSize } = engine.gpu.device.limits;
    // tiny-qwen2: one KV head of 8 dims, 32 B per position: its trained 32768 positions are 1 MiB, 2× the binding.
    const contextLength = 32768;
    await assert.rejects(engine.loadModel({ model, contextLength, maxBindingBytes: binding }), (e: Error) =>
      e instanceof GpuAllocationError && e.message.includes(`needs ${2 * binding} bytes`) &&
      e.message.includes(`maxBufferSize ${maxBufferSize}`) && e.message.includes(`maxStorageBufferBindingSize ${maxStorageBufferBindingSize}`) &&
      e.message.includes(`${binding / 32} positions fit`));
    assert.equal(engine.model, before.info);
    assert.deepEqual(engine.memory(), before.memory, 'nothing was allocated');
    assert.deepEqual(await greedy(engine), reference);
  });

  test('KV rows a decoder asks for beyond the limit: the generation fails, the model keeps working', async () => {
    const reference = await greedy(engine);
    // 4096 positions × 32 B = 128 KiB a row: 10 CNTP trials need 1.25 MiB per layer, over 512 KiB.
    await assert.rejects(engine.generate(PROMPT, { decoder: 'cntp', maxTrials: 10 }).complete(), (e: Error) =>
      e instanceof GpuAllocationError && /10 row\(s\) × 4096 positions needs 1310720 bytes/.test(e.message) && /maxBindingBytes 524288/.test(e.message));
    assert.deepEqual(await greedy(engine), reference);
  });
});
