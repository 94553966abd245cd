// One error type everywhere: every bad argument to the public API — createEngine, loadModel
// (sources, options, readers and folders of the caller's), generate (prompts, options of every
// decoder), score, the tokenizers' methods (llama2.c, tokenizer.json, GGUF vocabulary) and the
// same calls on a WorkerEngine over a MessageChannel — fails with a ForkwiseError whose `code`
// is a documented one, the same code for the same condition everywhere; errors that cross the
// worker keep their class, code and message. A tiny random-weight model keeps it fast.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Engine, type GenerateOptions, createEngine } from '../../src/engine.ts';
import { ForkwiseError, type ForkwiseErrorCode, ModelFetchError } from '../../src/errors.ts';
import { bytesReader } from '../../src/model/readers.ts';
import { createNodeEngine } from '../../src/node/index.ts';
import { buildTokenizer } from '../../src/tokenizer/load.ts';
import type { TextTokenizer } from '../../src/tokenizer/types.ts';
import { type WorkerEngine, createWorkerEngine } from '../../src/worker/client.ts';
import { serveEngine } from '../../src/worker/serve.ts';
import { GT, LLAMA2C_SHAPE, ggufModelSpec, llama2cCheckpoint, tinyModels, tokenizerJson, writeGguf } from '../fuzz/build.ts';
import { mulberry32 } from '../support/random.ts';

const CODES: readonly ForkwiseErrorCode[] = [
  'invalid-argument', 'model-format', 'tokenizer-format', 'model-fetch', 'context-overflow', 'webgpu-unavailable',
  'device-lost', 'gpu-allocation', 'aborted',
];

/** The error `call` fails with (thrown or rejected), or null. */
async function failure(call: () => unknown): Promise<unknown> {
  try {
    const value = await call();
    // a Generation fails when it runs
    if (value && typeof (value as { complete?: unknown }).complete === 'function') await (value as { complete(): Promise<unknown> }).complete();
    return null;
  } catch (e) {
    return e;
  }
}

function assertTyped(what: string, error: unknown, code: ForkwiseErrorCode): asserts error is ForkwiseError {
  assert.ok(error !== null, `${what}: no error`);
  assert.ok(error instanceof ForkwiseError, `${what}: ${(error as Error)?.name}: ${(error as Error)?.message} is not a ForkwiseError`);
  assert.ok(CODES.includes(error.code), `${what}: undocumented code ${error.code}`);
  assert.equal(error.code, code, `${what}: ${error.message}`);
}

type Case = [what: string, call: () => unknown, code?: ForkwiseErrorCode];

const bad = <T>(x: unknown) => x as T;
const noProto = () => Object.create(null) as never;
const deep = (n: number) => {
  let v: unknown = 0;
  for (let i = 0; i < n; i++) v = [v];
  return v as never;
};
const aborted = () => {
  const c = new AbortController();
  c.abort();
  return c.signal;
};

const tiny = tinyModels();
const load = { model: tiny.model, tokenizer: tiny.tokenizer, smallModel: tiny.smallModel };

/** Bad loadModel options: the same for Engine and WorkerEngine (where they can cross). */
function loadCases(loadModel: (o: never) => Promise<unknown>, local: boolean): Case[] {
  const l = (o: unknown) => () => loadModel(o as never);
  const cases: Case[] = [
    ['loadModel()', l(undefined)],
    ['loadModel(null)', l(null)],
    ['loadModel(5)', l(5)],
    ['loadModel({}) (no model)', l({})],
    ['model: 5', l({ model: 5 })],
    ['model: null', l({ model: null })],
    ['model: {}', l({ model: {} })],
    ['model: [null] (not files)', l({ model: [null] })],
    ['model: "" (empty URL)', l({ model: '' }), 'model-fetch'],
    ['model: "hf:" (no repo)', l({ model: 'hf:' })],
    ['model: unreachable URL', l({ model: 'http://127.0.0.1:1/model.bin', tokenizer: tiny.tokenizer }), 'model-fetch'],
    ['model: bytes that are no model', l({ model: new Uint8Array(100), tokenizer: tiny.tokenizer }), 'model-format'],
    ['model: truncated checkpoint', l({ ...load, model: tiny.model.slice(0, 500) }), 'model-format'],
    ['tokenizer: 5', l({ ...load, tokenizer: 5 })],
    ['tokenizer: null', l({ ...load, tokenizer: null })],
    ['tokenizer: {}', l({ ...load, tokenizer: {} })],
    ['no tokenizer for a llama2.c model', l({ model: tiny.model })],
    ['tokenizer: truncated', l({ ...load, tokenizer: tiny.tokenizer.slice(0, 100) }), 'tokenizer-format'],
    ['smallModel: 5', l({ ...load, smallModel: 5 })],
    ['smallModel: a different vocabulary', l({ ...load, smallModel: llama2cCheckpoint(mulberry32(1), { ...LLAMA2C_SHAPE, vocab: 280 }).bytes }), 'model-format'],
    ['topK: 0', l({ ...load, topK: 0 })],
    ['topK: 65', l({ ...load, topK: 65 })],
    ['topK: "5"', l({ ...load, topK: '5' })],
    ['contextLength: 0', l({ ...load, contextLength: 0 })],
    ['contextLength: 1.5', l({ ...load, contextLength: 1.5 })],
    ['contextLength: null-prototype object', l({ ...load, contextLength: noProto() })],
    ['maxBindingBytes: NaN', l({ ...load, maxBindingBytes: Number.NaN })],
    ['maxBindingBytes: -1', l({ ...load, maxBindingBytes: -1 })],
    ['hubUrl: 5', l({ model: 'hf:a/b', hubUrl: 5 })],
    ['revision: {}', l({ model: 'hf:a/b', revision: {} })],
    ['cache: 5', l({ ...load, cache: 5 })],
    ['signal: already aborted', l({ ...load, signal: aborted() }), 'aborted'],
  ];
  if (local) {
    // Callbacks, signals and readers do not cross to a worker (WorkerEngine strips or refuses them).
    const throwing = { name: 'x.bin', size: 1000, read: async () => { throw new Error('disk on fire'); } };
    cases.push(
      ['onProgress: 5', l({ ...load, onProgress: 5 })],
      ['signal: 5', l({ ...load, signal: 5 })],
      ['model: a reader whose size is NaN', l({ model: { name: 'x', size: Number.NaN, read: async () => new Uint8Array(0) } })],
      ['model: a reader that throws a plain Error', l({ model: throwing, tokenizer: tiny.tokenizer }), 'model-fetch'],
      ['model: a reader that returns too few bytes', l({ model: { name: 'x.bin', size: 1000, read: async () => new Uint8Array(3) }, tokenizer: tiny.tokenizer }), 'model-fetch'],
      ['model: a folder whose get() throws', l({ model: { get: async () => { throw new TypeError('nope'); } } }), 'model-fetch'],
      ['model: a folder whose get() gives 5', l({ model: { get: async () => 5 } })],
      ['model: a folder without config.json', l({ model: { get: async () => null } }), 'model-fetch'],
    );
  }
  return cases;
}

/** Bad generate() calls for every decoder (the model has no chat template; EAD has its small model). */
function generateCases(generate: (prompt: never, o?: never) => unknown, opts: { hasSmall: boolean }): Case[] {
  const g = (prompt: unknown, o?: GenerateOptions | unknown) => () => generate(prompt as never, o as never);
  const each = (decoder: string, options: Record<string, unknown>[]): Case[] =>
    options.map((o) => [`${decoder} ${JSON.stringify(o, (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v))}`, g('Hi', { decoder, ...o })]);
  return [
    ['prompt 5', g(5)],
    ['prompt null', g(null)],
    ['prompt {messages: 5}', g({ messages: 5 })],
    ['prompt {messages: [{role: 1}]}', g({ messages: [{ role: 1, content: 'x' }] })],
    ['messages without a chat template', g({ messages: [{ role: 'user', content: 'x' }] })],
    ['chat: true without a chat template', g('Hi', { chat: true })],
    ['chat: "yes"', g('Hi', { chat: 'yes' })],
    ['options null', g('Hi', null)],
    ['options 5', g('Hi', 5)],
    ['options "greedy"', g('Hi', 'greedy')],
    ['decoder "nucleus"', g('Hi', { decoder: 'nucleus' })],
    ['decoder 5', g('Hi', { decoder: 5 })],
    ['a prompt longer than the context', g('Once upon a time '.repeat(100)), 'context-overflow'],
    ['already aborted', g('Hi', { signal: aborted() }), 'aborted'],
    ...each('greedy', [{ maxTokens: 0 }, { maxTokens: 1.5 }, { maxTokens: Number.NaN }, { maxTokens: '3' }, { maxTokens: 2 ** 60 }, { seed: -1 }]),
    ...each('sample', [{ temperature: -1 }, { temperature: Number.NaN }, { temperature: Infinity }, { topK: -1 }, { topK: 1.5 }, { topP: -0.1 },
      { topP: 1.5 }, { minP: -0.1 }, { minP: Number.NaN }, { typical: 2 }, { topH: -1 }, { repetitionPenalty: 0 },
      { repetitionPenalty: Number.NaN }, { seed: 1.5 }, { seed: 'x' }]),
    ...each('cntp', [{ hLo: -1 }, { hHi: 'x' }, { hLo: 2, hHi: 1 }, { maxTrials: 0 }, { maxTrials: 1.5 }, { trialsInSequence: 'yes' }, { temperature: -1 }]),
    ...(opts.hasSmall ? each('ead', [{ tau: Number.NaN }, { tau: 'x' }, { window: 0 }, { window: 1.5 }, { minStay: -1 }, { temperature: -2 }]) : []),
    ...each('srgen', [{ lambda: -1 }, { lambda: Number.NaN }, { lr: -1 }, { optSteps: -1 }, { optSteps: 1.5 }, { maxReflections: -1 },
      { k: Number.NaN }, { sigmaMin: -1 }, { thetaMin: 'x' }, { theta0: Number.NaN }, { window: 0 }, { temperature: -1 }]),
    ['a null-prototype object as temperature', g('Hi', { decoder: 'sample', temperature: noProto() })],
    ['a null-prototype object as tau', g('Hi', { decoder: 'ead', tau: noProto() })],
    ['an array nested 10k deep as topK', g('Hi', { decoder: 'sample', topK: deep(10_000) })],
  ];
}

function scoreCases(score: (tokens: never) => unknown, vocab: number, context: number): Case[] {
  const s = (t: unknown) => () => score(t as never);
  return [
    ['score()', s(undefined)],
    ['score(null)', s(null)],
    ['score("abc")', s('abc')],
    ['score([])', s([])],
    ['score([1.5])', s([1, 1.5])],
    ['score([-1])', s([1, -1])],
    ['score([vocabSize])', s([1, vocab])],
    ['score(["a"])', s([1, 'a'])],
    ['score([NaN])', s([1, Number.NaN])],
    ['score(longer than the context)', s(new Array(context + 1).fill(1)), 'context-overflow'],
  ];
}

/** Every TextTokenizer method with bad arguments (each kind of tokenizer the same codes). */
function tokenizerCases(name: string, t: () => TextTokenizer): Case[] {
  const c = (what: string, call: (t: TextTokenizer) => unknown): Case => [`${name}: ${what}`, () => call(t())];
  return [
    c('encode(5)', (t) => t.encode(bad(5))),
    c('encode(null)', (t) => t.encode(bad(null))),
    c('encode("x", null)', (t) => t.encode('x', bad(null))),
    c('encode("x", {special: "yes"})', (t) => t.encode('x', bad({ special: 'yes' }))),
    c('decode(5)', (t) => t.decode(bad(5))),
    c('decode([1.5])', (t) => t.decode([1, 1.5])),
    c('decode([-1])', (t) => t.decode([1, -1])),
    c('decode(["a"])', (t) => t.decode(bad([1, 'a']))),
    c('decode([null-prototype object])', (t) => t.decode(bad([noProto()]))),
    c('stream(5)', (t) => t.stream(bad(5))),
    c('stream([1.5])', (t) => t.stream([1, 1.5])),
    c('stream().push(1.5)', (t) => t.stream([]).push(1.5)),
    c('stream().push("a")', (t) => t.stream([]).push(bad('a'))),
    c('stream().push(-1)', (t) => t.stream([]).push(-1)),
    c('tokenIdOf(5)', (t) => t.tokenIdOf(bad(5))),
    c('firstTokenMidText(null)', (t) => t.firstTokenMidText(bad(null))),
    c('applyChatTemplate(5)', (t) => t.applyChatTemplate(bad(5))),
    c('applyChatTemplate([{role: 1}])', (t) => t.applyChatTemplate(bad([{ role: 1, content: 'x' }]))),
    c('applyChatTemplate([], {addGenerationPrompt: "x"})', (t) => t.applyChatTemplate([{ role: 'user', content: 'x' }], bad({ addGenerationPrompt: 'x' }))),
  ];
}

function run(cases: Case[]) {
  for (const [what, call, code = 'invalid-argument'] of cases) {
    test(what, async () => assertTyped(what, await failure(call), code));
  }
}

/** One engine for the whole file (its kernels compile once), also the one served to the WorkerEngine. */
let engine: Engine;
before(async () => {
  engine = await createNodeEngine();
});
after(() => engine?.dispose());

describe('public API: every bad argument is a ForkwiseError with a documented code', () => {
  describe('createEngine', () => run([
    ['createEngine(null)', () => createEngine(bad(null))],
    ['createEngine("x")', () => createEngine(bad('x'))],
    ['createEngine({ device: 5 })', () => createEngine(bad({ device: 5 }))],
    ['createEngine({ mapWait: "sleep" })', () => createEngine(bad({ mapWait: 'sleep' }))],
    ['createEngine({ gpu: null })', () => createEngine({ gpu: null }), 'webgpu-unavailable'],
    ['createEngine({ gpu: {} })', () => createEngine({ gpu: bad({}) }), 'webgpu-unavailable'],
    ['createEngine({ gpu: no adapter })', () => createEngine({ gpu: bad({ requestAdapter: async () => null }) }), 'webgpu-unavailable'],
  ]));

  describe('before a model is loaded', () => run([
    ['generate', () => engine.generate('Hi')],
    ['score', () => engine.score([1])],
    ['tokenizer', () => engine.tokenizer],
  ]));

  describe('loadModel', () => {
    run(loadCases((o) => engine.loadModel(o), true));
    test('a failed load keeps no model and no GPU memory', () => {
      assert.equal(engine.model, null);
      assert.equal(engine.memory().total, 0, JSON.stringify(engine.memory()));
    });
  });

  describe('with the tiny model loaded', () => {
    before(async () => {
      await engine.loadModel(load);
    });
    run(generateCases((p, o) => engine.generate(p, o), { hasSmall: true }));
    run(scoreCases((t) => engine.score(t), 300, 64));
    test('a Generation iterated twice', async () => {
      const g = engine.generate('Hi', { maxTokens: 1 });
      await g.complete();
      assertTyped('second iteration', await failure(async () => {
        for await (const _ of g) break;
      }), 'invalid-argument');
    });
    run(tokenizerCases('llama2.c', () => engine.tokenizer));
    test('the engine still generates after all of them', async () => {
      const r = await engine.generate('Once upon a time', { maxTokens: 3 }).complete();
      assert.equal(r.steps.length, 3);
    });
    test('ead without a small model', async () => {
      await engine.loadModel({ model: tiny.model, tokenizer: tiny.tokenizer });
      assertTyped('ead', await failure(() => engine.generate('Hi', { decoder: 'ead' })), 'invalid-argument');
    });
  });

  describe('tokenizers without a model', () => {
    const json = tokenizerJson(mulberry32(3));
    const hf = buildTokenizer({ kind: 'hf', tokenizer: json.tokenizer, config: json.config }, { modelVocabSize: 300 });
    const spec = ggufModelSpec(mulberry32(3), { tokenizer: 'llama' });
    const gguf = buildTokenizer({
      kind: 'gguf',
      metadata: Object.fromEntries(spec.kvs.filter(([k]) => String(k).startsWith('tokenizer.')).map(([k, v]) => [k, (v as { items?: unknown; value?: unknown }).items ?? (v as { value: unknown }).value])),
    }, { modelVocabSize: 300 });
    run([
      ...tokenizerCases('tokenizer.json', () => hf),
      ...tokenizerCases('GGUF vocabulary', () => gguf),
      ['buildTokenizer(null)', () => buildTokenizer(bad(null), { modelVocabSize: 300 })],
      ['buildTokenizer({kind: "x"})', () => buildTokenizer(bad({ kind: 'x' }), { modelVocabSize: 300 })],
      ['buildTokenizer(..., {modelVocabSize: 0})', () => buildTokenizer({ kind: 'hf', tokenizer: json.tokenizer, config: json.config }, { modelVocabSize: 0 })],
      ['buildTokenizer(..., {eosIds: 5})', () => buildTokenizer({ kind: 'hf', tokenizer: json.tokenizer, config: json.config }, bad({ modelVocabSize: 300, eosIds: 5 }))],
      ['a tokenizer.json vocabulary larger than the model', () => buildTokenizer({ kind: 'hf', tokenizer: json.tokenizer, config: json.config }, { modelVocabSize: 100 }), 'tokenizer-format'],
      ['a GGUF model read from bytes whose vocabulary is a number', async () => {
        const s = ggufModelSpec(mulberry32(3));
        s.kvs.find(([k]) => k === 'tokenizer.ggml.tokens')![1] = { type: GT.U32, value: 5 };
        await engine.loadModel({ model: bytesReader('m.gguf', writeGguf(s).bytes) });
      }, 'tokenizer-format'],
    ]);
  });
});

describe('WorkerEngine over a MessageChannel: the same codes, and errors keep class, code and message', () => {
  const channel = new MessageChannel();
  let worker: WorkerEngine;
  before(async () => {
    engine.dispose();
    serveEngine(channel.port1, async () => engine);
    worker = await createWorkerEngine(channel.port2);
  });
  after(() => {
    channel.port1.close();
    channel.port2.close();
  });

  test('adapter before the worker is ready', async () => {
    const other = new MessageChannel();
    const { WorkerEngine } = await import('../../src/worker/client.ts');
    assertTyped('adapter', await failure(() => new WorkerEngine(other.port2).adapter), 'invalid-argument');
    other.port1.close();
    other.port2.close();
  });

  test('before a model is loaded', async () => {
    assertTyped('generate', await failure(() => worker.generate('Hi')), 'invalid-argument');
    assertTyped('score', await failure(() => worker.score([1])), 'invalid-argument');
  });

  describe('loadModel', () => run([
    ...loadCases((o) => worker.loadModel(o), false),
    ['a reader (functions cannot cross)', () => worker.loadModel(bad({ model: { name: 'x', size: 1, read: async () => new Uint8Array(1) } }))],
    ['onProgress: 5', () => worker.loadModel(bad({ ...load, onProgress: 5 }))],
    ['signal: 5', () => worker.loadModel(bad({ ...load, signal: 5 }))],
  ]));

  describe('with the tiny model loaded', () => {
    before(async () => {
      await worker.loadModel(load);
    });
    run(generateCases((p, o) => worker.generate(p, o), { hasSmall: true }));
    run(scoreCases((t) => worker.score(t), 300, 64));
    run([
      ['a prompt nested too deep to clone', () => worker.generate(bad({ messages: deep(100_000) }))],
      ['options with a function', () => worker.generate('Hi', bad({ onStep: () => {} }))],
      ['signal: 5', () => worker.generate('Hi', bad({ signal: 5 }))],
    ]);

    test('class, code, message and status are the same as the engine in the page', async () => {
      const pairs: [string, () => unknown, () => unknown][] = [
        ['NaN temperature', () => engine.generate('x', { decoder: 'sample', temperature: Number.NaN }), () => worker.generate('x', { decoder: 'sample', temperature: Number.NaN })],
        ['context overflow', () => engine.generate('the end '.repeat(100)), () => worker.generate('the end '.repeat(100))],
        ['bad score', () => engine.score([1, 1.5]), () => worker.score([1, 1.5])],
        ['truncated model', () => engine.loadModel({ ...load, model: tiny.model.slice(0, 500) }), () => worker.loadModel({ ...load, model: tiny.model.slice(0, 500) })],
        ['missing URL', () => engine.loadModel({ model: 'http://127.0.0.1:1/x.bin' }), () => worker.loadModel({ model: 'http://127.0.0.1:1/x.bin' })],
      ];
      for (const [what, page, inWorker] of pairs) {
        const a = await failure(page);
        const b = await failure(inWorker);
        assert.ok(a instanceof ForkwiseError && b instanceof ForkwiseError, what);
        assert.equal(b.constructor, a.constructor, what);
        assert.equal(b.code, a.code, what);
        assert.equal(b.message, a.message, what);
        assert.equal((b as ModelFetchError).status, (a as ModelFetchError).status, what);
      }
    });

    test('after dispose, calls fail with invalid-argument', async () => {
      worker.dispose();
      assertTyped('generate after dispose', await failure(() => worker.generate('Hi')), 'invalid-argument');
    });
  });
});
