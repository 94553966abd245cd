// The OpenAI-compatible server (src/server) end to end, with the official `openai` npm client as
// an independent client, on tiny-qwen3 (a chat template; random weights): plain and streamed
// chat completions, completions, logprobs against the engine's own step statistics, stop strings
// across tokens, a client abort mid-stream, concurrent requests, OpenAI-shaped errors, and the
// SSE framing as raw bytes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI, { APIUserAbortError, BadRequestError, NotFoundError } from 'openai';
import type { Engine, GenerateOptions, GenerationResult, Prompt } from '../../src/engine.ts';
import { AbortedError } from '../../src/errors.ts';
import { createNodeEngine, modelFromPath, startServer } from '../../src/node/index.ts';
import type { GenerateEngine } from '../../src/openai/index.ts';
import type { RunningServer } from '../../src/server/server.ts';
import { fixturePath } from '../support/fixtures.ts';

const TOP_K = 20;
const MODEL = 'tiny-qwen3';
const messages = [{ role: 'user' as const, content: 'Hello there' }];

/** The engine as the server sees it, recording how each generation ended. */
function recording(engine: Engine) {
  const ends: { prompt: Prompt; options: GenerateOptions; outcome: Promise<'done' | 'aborted' | 'failed'> }[] = [];
  const wrapped: GenerateEngine = {
    get model() {
      return engine.model;
    },
    generate(prompt, options = {}) {
      const g = engine.generate(prompt, options);
      const outcome = g.result.then(() => 'done' as const, (e) => (e instanceof AbortedError ? 'aborted' as const : 'failed' as const));
      ends.push({ prompt, options, outcome });
      return g;
    },
    generateBatch(prompt, options, n) {
      const gens = engine.generateBatch(prompt, options, n);
      for (const g of gens) {
        const outcome = g.result.then(() => 'done' as const, (e) => (e instanceof AbortedError ? 'aborted' as const : 'failed' as const));
        ends.push({ prompt, options, outcome });
      }
      return gens;
    },
  };
  return { wrapped, ends };
}

describe('forkwise serve (openai client against startServer)', () => {
  let engine: Engine;
  let server: RunningServer;
  let client: OpenAI;
  let ends: ReturnType<typeof recording>['ends'];
  const log: string[] = [];
  /** Greedy reference from the engine itself: 6 tokens of the chat. */
  let reference: GenerationResult;

  before(async () => {
    engine = await createNodeEngine();
    await engine.loadModel({ model: await modelFromPath(fixturePath('tiny-qwen3')), topK: TOP_K });
    const r = recording(engine);
    ends = r.ends;
    server = await startServer({ engine: r.wrapped, port: 0, host: '127.0.0.1', model: MODEL, topK: TOP_K, log: (line) => log.push(line) });
    client = new OpenAI({ apiKey: 'unused', baseURL: `${server.url}/v1`, maxRetries: 0 });
    reference = await engine.generate({ messages }, { maxTokens: 6 }).complete();
  });

  after(async () => {
    await server?.close();
    await engine?.dispose();
  });

  test('models.list names the loaded model', async () => {
    const models = await client.models.list();
    assert.deepEqual(models.data.map((m) => [m.id, m.object, m.owned_by]), [[MODEL, 'model', 'forkwise']]);
    assert.equal((await client.models.retrieve(MODEL)).id, MODEL);
    await assert.rejects(client.models.retrieve('other'), NotFoundError);
  });

  test('chat completion, plain and streamed: the same greedy text, logprobs = the step statistics (z − lse at T = 1)', async () => {
    const params = { model: 'anything', messages, max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 5 };
    const r = await client.chat.completions.create(params);
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.model, MODEL);
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.equal(r.choices[0].message.content, reference.completion);
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.deepEqual(r.usage, { prompt_tokens: reference.promptTokenCount, completion_tokens: 6, total_tokens: reference.promptTokenCount + 6 });
    const content = r.choices[0].logprobs!.content!;
    assert.equal(content.length, 6);
    content.forEach((t, i) => {
      const step = reference.steps[i];
      assert.equal(t.token, step.topK[0].text, 'greedy: the argmax');
      assert.ok(Math.abs(t.logprob - (step.topK[0].logit - step.lse)) < 1e-5, `token ${i}: ${t.logprob}`);
      assert.deepEqual(t.bytes, [...Buffer.from(t.token, 'utf8')]);
      assert.equal(t.top_logprobs.length, 5);
      t.top_logprobs.forEach((c, j) => assert.ok(Math.abs(c.logprob - (step.topK[j].logit - step.lse)) < 1e-5));
      const stats = (r.choices[0] as unknown as { forkwise: { tokens: { entropy: number; lse: number; varentropy: number }[] } }).forkwise.tokens[i];
      assert.deepEqual([stats.entropy, stats.lse, stats.varentropy], [step.entropy, step.lse, step.varentropy]);
    });

    const stream = await client.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0].id && c.model === MODEL));
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    assert.equal(chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), r.choices[0].message.content);
    assert.deepEqual(chunks.flatMap((c) => c.choices[0]?.logprobs?.content ?? []), content);
    assert.equal(chunks.at(-2)!.choices[0].finish_reason, 'length');
    assert.deepEqual(chunks.at(-1)!.choices, []);
    assert.deepEqual(chunks.at(-1)!.usage, r.usage);
  });

  test('sampled logprobs are at the sampling temperature: z/T − lse, the engine\'s own draw', async () => {
    const T = 0.7;
    const ref = await engine.generate({ messages }, { decoder: 'sample', temperature: T, seed: 3, maxTokens: 4 }).complete();
    const r = await client.chat.completions.create({ model: MODEL, messages, temperature: T, seed: 3, max_tokens: 4, logprobs: true, top_logprobs: 5 });
    assert.equal(r.choices[0].message.content, ref.completion);
    r.choices[0].logprobs!.content!.forEach((t, i) => {
      const step = ref.steps[i];
      const chosen = step.topK.find((c) => c.id === step.tokenId);
      const expected = chosen ? chosen.logit / T - step.lse : -9999;
      assert.ok(Math.abs(t.logprob - expected) < 1e-5, `token ${i}: ${t.logprob} vs ${expected}`);
      t.top_logprobs.forEach((c, j) => assert.ok(Math.abs(c.logprob - (step.topK[j].logit / T - step.lse)) < 1e-5));
      const mass = t.top_logprobs.reduce((s, c) => s + Math.exp(c.logprob), 0);
      assert.ok(mass <= 1 + 1e-5, `candidates' mass ${mass} at T`);
    });
  });

  test('completions: a raw prompt, as generate() gives it', async () => {
    const ref = await engine.generate('Once upon a time', { maxTokens: 4 }).complete();
    const r = await client.completions.create({ model: MODEL, prompt: 'Once upon a time', max_tokens: 4, temperature: 0, logprobs: 2 });
    assert.equal(r.object, 'text_completion');
    assert.equal(r.choices[0].text, ref.completion);
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.equal(r.choices[0].logprobs!.tokens!.length, 4);
    assert.deepEqual(r.usage, { prompt_tokens: ref.promptTokenCount, completion_tokens: 4, total_tokens: ref.promptTokenCount + 4 });
  });

  test('n choices run as batched rows: distinct, seeded, the first as n = 1', async () => {
    const params = { model: MODEL, prompt: 'Once upon a time', max_tokens: 6, temperature: 1, seed: 3 };
    const before = ends.length;
    const r = await client.completions.create({ ...params, n: 3 });
    assert.equal(r.choices.length, 3);
    assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2]);
    assert.equal(new Set(r.choices.map((c) => c.text)).size, 3, `distinct: ${r.choices.map((c) => JSON.stringify(c.text)).join(' | ')}`);
    assert.ok(ends.slice(before).every((e) => e.options.seed === 3), 'one seed for the rows (they differ by row)');
    const again = await client.completions.create({ ...params, n: 3 });
    assert.deepEqual(again.choices.map((c) => c.text), r.choices.map((c) => c.text), 'seeded');
    const one = await client.completions.create({ ...params, n: 1 });
    assert.equal(one.choices[0].text, r.choices[0].text, 'row 0 is the n = 1 answer');
    assert.equal(r.usage!.completion_tokens, 18);
  });

  test('a stop string that spans two tokens ends the text before it, plain and streamed', async () => {
    const texts = reference.steps.map((s) => s.text);
    const full = texts.join('');
    let stop = '';
    for (let i = 0; i + 1 < texts.length && !stop; i++) {
      if (texts[i].length < 2 || texts[i + 1].length < 2) continue;
      const s = texts[i].slice(-2) + texts[i + 1].slice(0, 2);
      const at = full.indexOf(s);
      const boundaries = texts.map((_, k) => texts.slice(0, k + 1).join('').length);
      if (boundaries.some((b) => b > at && b < at + s.length)) stop = s;
    }
    assert.ok(stop, `a stop string across two tokens of ${JSON.stringify(texts)}`);
    const expected = full.slice(0, full.indexOf(stop));
    const params = { model: MODEL, messages, max_tokens: 6, temperature: 0, stop: [stop] };
    const r = await client.chat.completions.create(params);
    assert.equal(r.choices[0].message.content, expected);
    assert.equal(r.choices[0].finish_reason, 'stop');
    const deltas: string[] = [];
    for await (const c of await client.chat.completions.create({ ...params, stream: true })) deltas.push(c.choices[0]?.delta.content ?? '');
    assert.equal(deltas.join(''), expected, 'the stop string, and nothing after it, was ever sent');
  });

  test('a client abort mid-stream aborts the generation; the server keeps serving', async () => {
    const controller = new AbortController();
    const before = ends.length;
    const stream = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 500, temperature: 0, stream: true }, { signal: controller.signal });
    let contentChunks = 0;
    try {
      for await (const c of stream) if (c.choices[0]?.delta.content && ++contentChunks === 2) controller.abort();
    } catch (error) {
      assert.ok(error instanceof APIUserAbortError, String(error)); // the client ends the stream or throws this
    }
    assert.ok(contentChunks < 10, `${contentChunks} chunks after the abort`);
    assert.equal(ends.length, before + 1);
    assert.equal(await ends[before].outcome, 'aborted', 'the server aborted the generation');
    assert.ok(ends[before].options.signal?.aborted);
    const r = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 2, temperature: 0 });
    assert.equal(r.choices[0].message.content, reference.steps.slice(0, 2).map((s) => s.text).join(''));
  });

  test('4 concurrent requests give the texts they give one at a time', async () => {
    const prompts = ['One', 'Two two', 'Three three three', 'Four'].map((content) => [{ role: 'user' as const, content }]);
    const ask = (m: typeof messages, stream: boolean) => stream
      ? (async () => {
        let text = '';
        for await (const c of await client.chat.completions.create({ model: MODEL, messages: m, max_tokens: 3, temperature: 1, seed: 7, stream: true })) text += c.choices[0]?.delta.content ?? '';
        return text;
      })()
      : client.chat.completions.create({ model: MODEL, messages: m, max_tokens: 3, temperature: 1, seed: 7 }).then((r) => r.choices[0].message.content!);
    const sequential: string[] = [];
    for (const m of prompts) sequential.push(await ask(m, false));
    const concurrent = await Promise.all(prompts.map((m, i) => ask(m, i % 2 === 1)));
    assert.deepEqual(concurrent, sequential);
  });

  test('bad parameters: 400 in OpenAI\'s shape (BadRequestError), and the server stays up', async () => {
    const cases: [Record<string, unknown>, string | null, string | null][] = [
      [{ messages, frequency_penalty: 2.5 }, 'frequency_penalty', null],
      [{ messages, logprobs: true, top_logprobs: 21 }, 'top_logprobs', null],
      [{ messages, temperature: -1 }, 'temperature', null],
      [{ messages, bogus: true }, 'bogus', 'unknown_parameter'],
      [{ messages: 'hi' }, 'messages', null],
      [{ messages, forkwise: { decoder: 'ead', ead: { tau: 'high' } } }, 'forkwise.ead.tau', null],
      [{ messages, forkwise: { decoder: 'ead' } }, null, 'invalid-argument'], // no small model loaded
    ];
    for (const [params, param, code] of cases) {
      await assert.rejects(client.chat.completions.create({ model: MODEL, ...params } as never), (e: unknown) => {
        assert.ok(e instanceof BadRequestError, `${JSON.stringify(params)}: ${e}`);
        assert.equal(e.status, 400);
        assert.equal(e.type, 'invalid_request_error');
        assert.equal(e.param, param, e.message);
        if (code) assert.equal(e.code, code);
        assert.ok(e.message.length > 10);
        return true;
      });
    }
    await assert.rejects(client.completions.create({ model: MODEL, prompt: 'a '.repeat(5000), max_tokens: 1 }), (e: unknown) => {
      assert.ok(e instanceof BadRequestError);
      assert.deepEqual([e.param, e.code], ['prompt', 'context_length_exceeded']);
      return true;
    });
    const raw = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', body: '{"messages": [', headers: { 'Content-Type': 'application/json' } });
    assert.equal(raw.status, 400);
    const body = await raw.json();
    assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(body.error.code, 'invalid_json');
    const missing = await fetch(`${server.url}/v1/nothing`);
    assert.equal(missing.status, 404);
    assert.equal((await missing.json()).error.type, 'invalid_request_error');
    assert.equal((await fetch(`${server.url}/v1/chat/completions`)).status, 405);
    assert.equal((await client.chat.completions.create({ model: MODEL, messages, max_tokens: 1, temperature: 0 })).choices.length, 1);
  });

  test('SSE framing as bytes: data: {json}\\n\\n … data: [DONE]\\n\\n', async () => {
    const res = await fetch(`${server.url}/v1/completions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: MODEL, prompt: 'Once', max_tokens: 3, temperature: 0, stream: true }),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/event-stream/);
    const text = await res.text();
    assert.ok(text.endsWith('data: [DONE]\n\n'), JSON.stringify(text.slice(-40)));
    const frames = text.split('\n\n');
    assert.equal(frames.pop(), '');
    assert.equal(frames.pop(), 'data: [DONE]');
    const chunks = frames.map((f) => {
      assert.match(f, /^data: \{[^\n]*\}$/, 'one data line per event');
      return JSON.parse(f.slice(6));
    });
    assert.ok(chunks.every((c) => c.object === 'text_completion'));
    assert.equal(chunks.at(-1).choices[0].finish_reason, 'length');
    const ref = await engine.generate('Once', { maxTokens: 3 }).complete();
    assert.equal(chunks.map((c) => c.choices[0].text).join(''), ref.completion);
    assert.ok(log.some((line) => /^POST \/v1\/completions 200 /.test(line)), log.join('\n'));
  });
});
