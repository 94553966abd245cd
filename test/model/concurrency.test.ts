// The engine's one FIFO lock, pair by pair, on real models (tiny-llama3 as A, tiny-qwen2 as B:
// different vocabularies, so a token of one in the other shows): two generations, a generation
// during a load and a load during a generation, two loads, a score during a generation,
// dispose() during each, and an abort at every phase (download, parse, upload, compile, prefill,
// decode, SRGen's reflection, CNTP's trials). Each ends in its documented state: queued and run
// in call order with exactly the tokens it gets alone, or a typed error with the previous model
// (or none, after dispose) in place — never a half-loaded model. The last test prints the matrix.
import assert from 'node:assert/strict';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Engine, GenerateOptions, LoadModelOptions, LoadPhase } from '../../src/engine.ts';
import { AbortedError, InvalidArgumentError } from '../../src/errors.ts';
import type { ModelSource } from '../../src/model/load.ts';
import { createNodeEngine, modelFromPath } from '../../src/node/index.ts';
import { fixturePath } from '../support/fixtures.ts';

const N = 4;
const PA = 'Once upon a time';
const PB = 'The quick brown fox';
const matrix: [string, string][] = [];
const note = (pair: string, outcome: string) => matrix.push([pair, outcome]);
const disposed = (e: unknown) => e instanceof AbortedError && /disposed/.test(e.message);
const aborted = (e: unknown) => e instanceof AbortedError;

describe('one lock, FIFO: every pair of calls ends in its documented state', () => {
  let engine: Engine;
  let A: ModelSource;
  let B: ModelSource;
  const ref: Record<string, number[]> = {};
  let server: Server;
  let hangingUrl = '';

  const greedy = (prompt: string, o: GenerateOptions = {}) => engine.generate(prompt, { maxTokens: N, ...o });
  const load = (model: ModelSource, o: Partial<LoadModelOptions> = {}) => engine.loadModel({ model, ...o });
  const isA = () => engine.model?.config.vocabSize === 128256;
  const useA = async () => {
    if (!isA()) await load(A);
  };
  /** The model in place still gives its reference tokens. */
  const stillA = async () => assert.deepEqual((await greedy(PA).complete()).tokens, ref.A);

  before(async () => {
    engine = await createNodeEngine();
    A = await modelFromPath(fixturePath('tiny-llama3'));
    B = await modelFromPath(fixturePath('tiny-qwen2'));
    await load(B);
    ref.B = (await greedy(PB).complete()).tokens;
    await load(A);
    ref.A = (await greedy(PA).complete()).tokens;
    ref.A2 = (await greedy(PB).complete()).tokens;
    // a server that takes requests and never answers: a download in flight
    server = createServer(() => {});
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    hangingUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/model.gguf`;
  });
  after(() => {
    engine?.dispose();
    server?.closeAllConnections();
    server?.close();
  });

  test('generate ∥ generate: run one after the other in call order, each with its own tokens', async () => {
    const log: string[] = [];
    const run = async (name: string, prompt: string) => {
      const g = greedy(prompt);
      for await (const _ of g) log.push(name);
      return (await g.result).tokens;
    };
    const [a, b] = await Promise.all([run('1', PA), run('2', PB)]);
    assert.deepEqual(a, ref.A);
    assert.deepEqual(b, ref.A2);
    assert.equal(log.join(''), '1'.repeat(N) + '2'.repeat(N), 'no interleaving');
    note('generate ∥ generate', 'FIFO: all steps of the first, then of the second; tokens equal each alone');
  });

  test('generate during loadModel: waits for the load, runs on the new model', async () => {
    await useA();
    const order: string[] = [];
    const loading = load(B).then(() => order.push('load'));
    const tokens = greedy(PB).complete().then((r) => (order.push('generate'), r.tokens));
    assert.deepEqual(await tokens, ref.B, "B's tokens, none of A's");
    await loading;
    assert.deepEqual(order, ['load', 'generate']);
    note('generate during loadModel', 'queued; runs after the load on the new model (B tokens exact)');
  });

  test('loadModel during generate: the generation finishes on its model, then the load runs', async () => {
    await useA();
    const order: string[] = [];
    let loading: Promise<unknown> | null = null;
    const g = greedy(PA);
    for await (const s of g) {
      if (s.index === 0) loading = load(B).then(() => order.push('load'));
    }
    order.push('generate');
    assert.deepEqual((await g.result).tokens, ref.A, "A's tokens in full");
    await loading;
    assert.deepEqual(order, ['generate', 'load']);
    assert.equal(isA(), false);
    note('loadModel during generate', 'queued; the generation ends on A (exact), then B is loaded');
  });

  test('a generation made before a load but started after it runs on the new model', async () => {
    await useA();
    const g = greedy(PB); // planned on A
    const loading = load(B);
    assert.deepEqual((await g.complete()).tokens, ref.B, 'planned again at its turn, on B');
    await loading;
    note('generate() made before loadModel(), iterated after', 'runs at its turn on the model then loaded (B exact)');
  });

  test('loadModel ∥ loadModel: in call order, the last one stays', async () => {
    const order: string[] = [];
    await Promise.all([load(B).then(() => order.push('B')), load(A).then(() => order.push('A'))]);
    assert.deepEqual(order, ['B', 'A']);
    await stillA();
    note('loadModel ∥ loadModel', 'FIFO; the second replaces the first');
  });

  test('score during generate: queued behind it, same statistics as alone', async () => {
    await useA();
    const alone = await engine.score(ref.A);
    const g = greedy(PA);
    let scored: Promise<unknown> | null = null;
    for await (const s of g) if (s.index === 0) scored = engine.score(ref.A);
    assert.deepEqual((await g.result).tokens, ref.A);
    assert.deepEqual(await scored, alone);
    note('score during generate', 'queued; identical statistics');
  });

  test('dispose during generate: the generation rejects (AbortedError), the memory is freed', async () => {
    await useA();
    let freed: Promise<void> | null = null;
    const steps: number[] = [];
    await assert.rejects(async () => {
      for await (const s of greedy(PA, { maxTokens: 20 })) {
        steps.push(s.tokenId);
        if (steps.length === 2) freed = engine.dispose();
      }
    }, disposed);
    assert.equal(steps.length, 2, 'no step after dispose()');
    await freed;
    assert.equal(engine.model, null);
    assert.equal(engine.memory().total, 0);
    note('dispose during generate', 'AbortedError (disposed) at once; memory 0 once the step in flight ends; model null');
  });

  test('dispose during loadModel: the load rejects, nothing of it stays', async () => {
    let freed: Promise<void> | null = null;
    await assert.rejects(load(A, { onProgress: (p) => void (p.phase === 'upload' && p.loaded > 0 && !freed && (freed = engine.dispose())) }), disposed);
    await freed;
    assert.equal(engine.model, null);
    assert.equal(engine.memory().total, 0);
    note('dispose during loadModel', 'AbortedError (disposed); model null, memory 0');
  });

  test('generate while the first model loads: queued, not "no model is loaded"', async () => {
    assert.equal(engine.model, null);
    assert.throws(() => greedy(PA), InvalidArgumentError, 'no model and no load pending: an error at once');
    const loading = load(A);
    assert.deepEqual((await greedy(PA).complete()).tokens, ref.A);
    await loading;
    note('generate during the first load (no model yet)', 'queued; runs on the model once loaded (exact)');
  });

  test('dispose with work queued: the running and every queued call reject', async () => {
    await useA();
    const queued: Promise<unknown>[] = [];
    let freed: Promise<void> | null = null;
    await assert.rejects(async () => {
      for await (const s of greedy(PA, { maxTokens: 20 })) {
        if (s.index > 0) continue;
        queued.push(greedy(PB).complete(), engine.score(ref.A), load(B));
        queued.forEach((p) => p.catch(() => {}));
        freed = engine.dispose();
      }
    }, disposed);
    for (const p of queued) await assert.rejects(p, disposed);
    await freed;
    assert.equal(engine.memory().total, 0);
    await load(A); // usable again
    await stillA();
    note('dispose with a generation, a score and a load queued', 'all reject AbortedError (disposed); the engine loads again');
  });

  /** An abort in `phase` of a load: AbortedError, the previous model and its memory unchanged. */
  async function abortLoad(phase: LoadPhase | 'download') {
    await useA();
    const before = { info: engine.model, memory: engine.memory() };
    const controller = new AbortController();
    const options: Partial<LoadModelOptions> = { signal: controller.signal, onProgress: (p) => (p.phase === phase && (p.phase !== 'upload' || p.loaded > 0) ? controller.abort() : undefined) };
    let loading: Promise<unknown>;
    if (phase === 'download') {
      loading = load(hangingUrl, options);
      setTimeout(() => controller.abort(), 100);
    } else {
      loading = load(B, options);
    }
    await assert.rejects(loading, aborted);
    assert.equal(engine.model, before.info, 'the previous model stays');
    assert.deepEqual(engine.memory(), before.memory, 'no buffer of the aborted load remains');
    await stillA();
    note(`abort during load: ${phase}`, 'AbortedError; previous model and its GPU memory unchanged');
  }
  for (const phase of ['download', 'parse', 'upload', 'compile'] as const) {
    test(`abort during ${phase}`, () => abortLoad(phase));
  }

  /**
   * Aborts a generation while the step after its step `at` runs (at -1: `delayMs` after the first
   * next(), in the prefill or the step after it): AbortedError at once and no step after it; the
   * next generation with the same options gives its reference tokens (`expected`).
   */
  async function abortGeneration(what: string, o: GenerateOptions, at: number, expected: number[], delayMs = 0) {
    await useA();
    const controller = new AbortController();
    const steps: number[] = [];
    const iterator = greedy(PA, { ...o, maxTokens: N + 2, signal: controller.signal })[Symbol.asyncIterator]();
    await assert.rejects(async () => {
      let next = iterator.next();
      if (at < 0) setTimeout(() => controller.abort(), delayMs);
      for (;;) {
        const r = await next;
        if (r.done) break;
        steps.push(r.value.tokenId);
        if (r.value.index === at) setTimeout(() => controller.abort(), 0); // while the next step runs
        next = iterator.next();
      }
    }, aborted);
    assert.ok(steps.length <= Math.max(0, at + 1), `${steps.length} steps: none after the abort`);
    assert.deepEqual((await greedy(PA, o).complete()).tokens, expected, 'the next generation is exact');
    note(`abort during ${what}`, `AbortedError after ${steps.length} step(s); the lock waits for the step in flight; the next run is exact`);
  }

  test('abort during prefill', () => abortGeneration('prefill', {}, -1, ref.A));
  test('abort during decode', () => abortGeneration('decode', {}, 1, ref.A));
  test("abort during SRGen's reflection", async () => {
    await useA();
    // θ at 0: a reflection at every monitored token; two tokens (the second reflects) are enough
    const srgen: GenerateOptions = { decoder: 'srgen', thetaMin: 0, theta0: 0, optSteps: 1, maxTokens: 2 };
    const r = await greedy(PA, srgen).complete();
    assert.ok(r.events.length > 0, 'it reflects');
    await abortGeneration("SRGen's reflection", srgen, 0, r.tokens); // from the second token on, every step reflects
  });
  test("abort during CNTP's trials", async () => {
    await useA();
    const cntp: GenerateOptions = { decoder: 'cntp', hLo: 0, hHi: 1e-3, maxTrials: 3, maxTokens: 2 };
    const r = await greedy(PA, cntp).complete();
    assert.ok(r.events.length > 0, 'it runs trials');
    // A trial's tokens come out together after one step: abort once the prefill is done, while the
    // first trials run (on a slow machine possibly still in the prefill: the same outcome).
    await abortGeneration("CNTP's trials", cntp, -1, r.tokens, Math.ceil(r.timing.prefillMs * 1.2));
  });

  test('the matrix', (t) => {
    for (const [pair, outcome] of matrix) t.diagnostic(`${pair.padEnd(52)} → ${outcome}`);
    assert.ok(matrix.length >= 18);
  });
});
