// Bad input: each case gets its typed error, and the engine still works afterwards (it is checked
// against the golden greedy text after every failure).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createEngine, type Engine } from '../../src/engine.ts';
import {
  AbortedError, ContextOverflowError, DeviceLostError, InvalidArgumentError, ModelFetchError, ModelFormatError,
  TokenizerFormatError, WebGPUUnavailableError,
} from '../../src/errors.ts';
import { bundledModel, createNodeEngine } from '../../src/node/index.ts';
import { ggufModelSpec, writeGguf } from '../fuzz/build.ts';
import { goldens, loadedEngine } from '../support/engine.ts';
import { mulberry32 } from '../support/random.ts';

const modelBytes = new Uint8Array(readFileSync(bundledModel.model));
const tokenizerBytes = new Uint8Array(readFileSync(bundledModel.tokenizer));
const golden = goldens().find((g) => g.prompt === 'Once upon a time')!;

describe('bad input gives a typed error and leaves the engine usable', () => {
  let engine: Engine;
  let server: Server;
  let base: string;

  before(async () => {
    engine = await loadedEngine();
    server = createServer((req, res) => {
      if (req.url === '/tokenizer.bin') res.end(tokenizerBytes);
      else res.writeHead(404).end('not here');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    engine.dispose();
    server.close();
  });

  /** The engine still produces the golden greedy text. */
  async function stillWorks() {
    const r = await engine.generate(golden.prompt, { maxTokens: 8 }).complete();
    assert.deepEqual(r.tokens, golden.tokens.slice(0, golden.prompt_token_count + 8));
  }

  async function rejectsLoad(model: Uint8Array | string, tokenizer: Uint8Array | string, kind: Function, pattern: RegExp) {
    const before = engine.model;
    await assert.rejects(engine.loadModel({ model, tokenizer }), (e: Error) => e instanceof kind && pattern.test(e.message));
    assert.equal(engine.model, before, 'the loaded model is unchanged');
    await stillWorks();
  }

  test('truncated model file', () => rejectsLoad(modelBytes.slice(0, modelBytes.length - 1000), tokenizerBytes, ModelFormatError, /truncated/));
  test('model file with trailing bytes', () => rejectsLoad(concat(modelBytes, new Uint8Array(8)), tokenizerBytes, ModelFormatError, /longer/));
  test('model file shorter than its header', () => rejectsLoad(modelBytes.slice(0, 10), tokenizerBytes, ModelFormatError, /header/));
  test('wrong header', () => {
    const bad = modelBytes.slice();
    new Int32Array(bad.buffer, 0, 7).set([288, 768, 6, 7, 7, 32000, 256]); // 288 not divisible by 7 heads
    return rejectsLoad(bad, tokenizerBytes, ModelFormatError, /n_heads/);
  });
  test('garbage header', () => rejectsLoad(new Uint8Array(4096).fill(0xff), tokenizerBytes, ModelFormatError, /out of range/));
  test('truncated tokenizer', () => rejectsLoad(modelBytes, tokenizerBytes.slice(0, 5000), TokenizerFormatError, /./));
  test('tokenizer with more entries than the model vocabulary', () => {
    const extra = new Uint8Array(9);
    new DataView(extra.buffer).setFloat32(0, 0, true);
    new DataView(extra.buffer).setInt32(4, 1, true);
    extra[8] = 0x41;
    return rejectsLoad(modelBytes, concat(tokenizerBytes, extra), TokenizerFormatError, /./);
  });
  test('a model whose logits overflow: generation rejects with ModelFormatError, not a sampler error', async () => {
    // The fuzz builder's mixed-type tiny GGUF (seed 7): random scales overflow float32 in the forward pass.
    const { bytes } = writeGguf(ggufModelSpec(mulberry32(7), { kvHeads: 2, context: 64 }));
    const other = await createNodeEngine();
    try {
      await other.loadModel({ model: bytes });
      await assert.rejects(other.generate('ab', { maxTokens: 2 }).complete(), (e: Error) => e instanceof ModelFormatError && /not finite/.test(e.message));
      await assert.rejects(other.generate('ab', { maxTokens: 2, decoder: 'sample' }).complete(), ModelFormatError);
    } finally {
      await other.dispose();
    }
  });
  test('empty model URL', () => rejectsLoad('', tokenizerBytes, ModelFetchError, /empty/));
  test('model URL answering 404', async () => {
    await rejectsLoad(`${base}/missing.bin`, `${base}/tokenizer.bin`, ModelFetchError, /404/);
    await assert.rejects(engine.loadModel({ model: `${base}/missing.bin`, tokenizer: tokenizerBytes }), (e: ModelFetchError) => e.status === 404 && e.code === 'model-fetch');
  });
  test('unreachable model URL', () => rejectsLoad('http://127.0.0.1:1/model.bin', tokenizerBytes, ModelFetchError, /could not fetch/));

  test('prompt longer than the context', async () => {
    assert.throws(() => engine.generate('Once upon a time '.repeat(80)), (e: Error) => e instanceof ContextOverflowError && /context holds 256/.test(e.message));
    await stillWorks();
  });

  test('max-tokens ≤ 0, fractional or NaN', async () => {
    for (const maxTokens of [0, -1, 1.5, Number.NaN, Infinity]) {
      assert.throws(() => engine.generate('Hi', { maxTokens }), (e: Error) => e instanceof InvalidArgumentError && /maxTokens/.test(e.message), String(maxTokens));
    }
    await stillWorks();
  });

  test('temperature < 0 or NaN, bad seed, unknown decoder', async () => {
    for (const temperature of [-0.5, Number.NaN, Infinity]) {
      assert.throws(() => engine.generate('Hi', { decoder: 'sample', temperature }), (e: Error) => e instanceof InvalidArgumentError && /temperature/.test(e.message));
    }
    assert.throws(() => engine.generate('Hi', { decoder: 'sample', seed: -1 }), InvalidArgumentError);
    assert.throws(() => engine.generate('Hi', { decoder: 'nucleus' as never }), InvalidArgumentError);
    await stillWorks();
  });

  test('abort stops a generation with AbortedError', async () => {
    const controller = new AbortController();
    const seen: number[] = [];
    await assert.rejects(async () => {
      for await (const step of engine.generate(golden.prompt, { signal: controller.signal })) {
        seen.push(step.tokenId);
        if (seen.length === 3) controller.abort();
      }
    }, AbortedError);
    assert.equal(seen.length, 3, 'no step after the abort');
    await stillWorks();
  });

  test('no WebGPU: no GPU object, or no adapter', async () => {
    await assert.rejects(createEngine({ gpu: null }), (e: Error) => e instanceof WebGPUUnavailableError && e.message.includes('navigator.gpu'));
    const noAdapter = { requestAdapter: async () => null } as unknown as GPU;
    await assert.rejects(createEngine({ gpu: noAdapter }), (e: Error) => e instanceof WebGPUUnavailableError && /no GPU adapter/.test(e.message));
    await stillWorks();
  });

  test('a lost device gives DeviceLostError', async () => {
    const other = await createNodeEngine();
    other.gpu.device.destroy();
    await other.gpu.device.lost;
    await assert.rejects(other.loadModel({ model: modelBytes, tokenizer: tokenizerBytes }), DeviceLostError);
    await stillWorks();
  });
});

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
