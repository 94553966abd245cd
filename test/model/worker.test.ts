// The engine-in-a-worker protocol (src/worker): serveEngine on one end of a MessageChannel,
// WorkerEngine on the other — the same messages a Web Worker carries (test/browser/demo.test.ts
// runs the real Worker). Greedy output through it matches llama2.c's golden tokens, errors come
// back as the same typed classes, and Stop ends a generation without wedging the engine.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AbortedError, ContextOverflowError, InvalidArgumentError } from '../../src/errors.ts';
import { bundledModel, createNodeEngine, readLocal } from '../../src/node/index.ts';
import { type WorkerEngine, createWorkerEngine } from '../../src/worker/client.ts';
import { serveEngine } from '../../src/worker/serve.ts';
import { STAT_TOLERANCE, goldens } from '../support/engine.ts';

describe('engine behind the worker protocol (MessageChannel)', () => {
  const channel = new MessageChannel();
  let engine: WorkerEngine;
  const phases = new Set<string>();
  let lastFraction = 0;
  const golden = goldens().find((g) => g.prompt === 'Once upon a time')!;

  before(async () => {
    serveEngine(channel.port1, createNodeEngine);
    engine = await createWorkerEngine(channel.port2);
    await engine.loadModel({
      model: await readLocal(bundledModel.model),
      tokenizer: await readLocal(bundledModel.tokenizer),
      onProgress: (p) => {
        phases.add(p.phase);
        lastFraction = p.fraction;
      },
    });
  });
  after(() => {
    engine?.dispose();
    channel.port1.close();
    channel.port2.close();
  });

  test('load reports progress to 1 and the model info', () => {
    assert.equal(lastFraction, 1);
    assert.ok(phases.has('upload') && phases.has('ready'), [...phases].join(','));
    assert.equal(engine.model?.config.vocabSize, 32000);
    assert.match(engine.adapter.description + engine.adapter.vendor, /\S/);
  });

  test('greedy steps stream through the worker and match the golden tokens and entropies', async () => {
    const steps = [];
    const generation = engine.generate(golden.prompt, { maxTokens: 12 });
    for await (const step of generation) steps.push(step);
    const r = await generation.result;
    assert.deepEqual(r.tokens, golden.tokens.slice(0, golden.prompt_token_count + 12));
    assert.equal(steps.length, 12);
    for (const s of steps) {
      assert.ok(Math.abs(s.entropy - golden.per_position[s.pos].entropy_nats) < STAT_TOLERANCE, `entropy at ${s.pos}`);
    }
    assert.equal(r.text, steps.reduce((t, s) => t + s.text, golden.prompt));
    // Teacher-forced scoring through the worker: the reference's log-sum-exp at every position.
    const scored = await engine.score(r.tokens);
    assert.equal(scored.length, r.tokens.length);
    scored.forEach((s, pos) => assert.ok(Math.abs(s.lse - golden.per_position[pos].lse) < STAT_TOLERANCE, `lse at ${pos}`));
  });

  test('errors come back as the same typed classes', async () => {
    await assert.rejects(engine.generate('x', { decoder: 'sample', temperature: Number.NaN }).complete(), InvalidArgumentError);
    await assert.rejects(engine.generate('the end '.repeat(200)).complete(), ContextOverflowError);
  });

  test('an abort ends the generation at once; the next one runs in full', async () => {
    const controller = new AbortController();
    const seen: number[] = [];
    await assert.rejects(async () => {
      for await (const step of engine.generate(golden.prompt, { maxTokens: 100, signal: controller.signal })) {
        seen.push(step.tokenId);
        if (seen.length === 3) controller.abort();
      }
    }, AbortedError);
    assert.equal(seen.length, 3);
    const r = await engine.generate(golden.prompt, { maxTokens: 5 }).complete();
    assert.deepEqual(r.tokens, golden.tokens.slice(0, golden.prompt_token_count + 5));
  });
});
