// The OpenAI-shaped API (src/openai) on a scripted engine, without a GPU: parameter checks before
// any generation, stop strings across tokens (never emitted, held back while streaming), the
// token records (logprob = z/T − lse at the decoder's statistics temperature), n choices with
// seeds seed, seed + 1, …, and a consumer that stops early stopping the generation.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type GenerateOptions, Generation, type GenerationResult, type GenerationStep, type Prompt } from '../../src/engine.ts';
import { InvalidArgumentError } from '../../src/errors.ts';
import type { Engine } from '../../src/engine.ts';
import type { WorkerEngine } from '../../src/worker/client.ts';
import {
  type ChatCompletionChunk, type Completion, type GenerateEngine, InvalidParamError, StopBuffer, UNLISTED_LOGPROB, createOpenAI,
} from '../../src/openai/index.ts';

interface Call {
  prompt: Prompt;
  options: GenerateOptions;
  /** Steps the consumer took. */
  taken: number;
  closed: boolean;
}

/** Steps whose texts are `texts` (then `finish`); candidates: the token (logit 3), then ids 900.. (logits 2, 1, …). */
function scripted(texts: string[], finish: GenerationResult['finish'] = 'eos'): GenerateEngine & { calls: Call[] } {
  const calls: Call[] = [];
  return {
    calls,
    model: {} as GenerateEngine['model'],
    generate(prompt: Prompt, options: GenerateOptions = {}) {
      const call: Call = { prompt, options, taken: 0, closed: false };
      calls.push(call);
      const max = Math.min(options.maxTokens ?? texts.length, texts.length);
      async function* run(): AsyncGenerator<GenerationStep, GenerationResult> {
        const steps: GenerationStep[] = [];
        try {
          for (let i = 0; i < max; i++) {
            if (options.signal?.aborted) throw new InvalidArgumentError('aborted in the fake');
            const step: GenerationStep = {
              index: i, pos: 6 + i, inputToken: 0, tokenId: 100 + i, text: texts[i], lse: 4, entropy: 1 + i, varentropy: 0.5, maxLogit: 3,
              topK: [{ id: 100 + i, text: texts[i], logit: 3, prob: 0 }, ...[2, 1, 0].map((logit, j) => ({ id: 900 + j, text: `c${j}`, logit, prob: 0 }))],
            };
            steps.push(step);
            call.taken++;
            yield step;
          }
        } finally {
          call.closed = true;
        }
        const completion = texts.slice(0, max).join('');
        return {
          prompt: '', tokens: [], promptTokenCount: 7, text: completion, completion, finish: max < texts.length ? 'max_tokens' : finish,
          steps, events: [], summary: { decoder: 'greedy', fullVocabularySteps: 0 }, timing: {} as GenerationResult['timing'],
        } as GenerationResult;
      }
      return new Generation(run());
    },
  };
}

const messages = [{ role: 'user' as const, content: 'hi' }];

// The in-page Engine and the WorkerEngine both fit the OpenAI layer (checked by tsc).
const fits: GenerateEngine[] = [] as (Engine | WorkerEngine)[];
void fits;

describe('StopBuffer', () => {
  test('holds a possible prefix, releases it once it cannot match, never emits the stop', () => {
    const b = new StopBuffer(['lo w']);
    assert.deepEqual(b.push('Hel'), { emit: 'He', stopped: false });
    assert.deepEqual(b.push('lo wo'), { emit: 'l', stopped: true });
    assert.deepEqual(b.push('more'), { emit: '', stopped: true });
    const c = new StopBuffer(['xyz']);
    assert.deepEqual(c.push('abx'), { emit: 'ab', stopped: false });
    assert.deepEqual(c.push('yq'), { emit: 'xyq', stopped: false });
    assert.equal(c.push('x').emit, '');
    assert.equal(c.flush(), 'x');
  });

  test('the first match to complete wins; ties go to the earlier start', () => {
    assert.deepEqual(new StopBuffer(['bcdef', 'de']).push('abcdef'), { emit: 'abc', stopped: true });
    assert.deepEqual(new StopBuffer(['cd', 'abcd']).push('xabcd'), { emit: 'x', stopped: true });
    assert.deepEqual(new StopBuffer([]).push('anything'), { emit: 'anything', stopped: false });
  });
});

describe('OpenAIEngine on a scripted engine', () => {
  test('chat: OpenAI fields, logprob = z/T − lse at the decoder temperature, usage, forkwise stats', async () => {
    const engine = scripted(['Hel', 'lo', ' world', '!']);
    const ai = createOpenAI(engine, { model: 'm', topK: 4 });
    const r = await ai.chat.completions.create({ messages, temperature: 0.5, seed: 9, logprobs: true, top_logprobs: 2, max_tokens: 3 });
    assert.equal(r.object, 'chat.completion');
    assert.match(r.id, /^chatcmpl-/);
    assert.equal(r.model, 'm');
    assert.equal(typeof r.created, 'number');
    assert.deepEqual(r.choices[0].message, { role: 'assistant', content: 'Hello world', refusal: null });
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.deepEqual(r.usage, { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 });
    const [first] = r.choices[0].logprobs!.content!;
    assert.deepEqual(first, {
      token: 'Hel', logprob: 3 / 0.5 - 4, bytes: [72, 101, 108],
      top_logprobs: [{ token: 'Hel', logprob: 3 / 0.5 - 4, bytes: [72, 101, 108] }, { token: 'c0', logprob: 2 / 0.5 - 4, bytes: [99, 48] }],
    });
    assert.deepEqual(r.choices[0].forkwise.tokens.map((t) => t.entropy), [1, 2, 3]);
    assert.equal(r.choices[0].forkwise.finish, 'max_tokens');
    assert.deepEqual(engine.calls[0].options, { decoder: 'sample', temperature: 0.5, maxTokens: 3, seed: 9 });
    assert.deepEqual(engine.calls[0].prompt, { messages });
    // Greedy (temperature 0): statistics at T = 1; a finished model is 'stop'.
    const greedy = await ai.chat.completions.create({ messages, temperature: 0, logprobs: true });
    assert.equal(greedy.choices[0].logprobs!.content![0].logprob, 3 - 4);
    assert.equal(greedy.choices[0].finish_reason, 'stop');
    assert.equal(engine.calls[1].options.decoder, 'greedy');
  });

  test('a stop string split across tokens ends the text before it, streamed or not', async () => {
    const engine = scripted(['Hel', 'lo wo', 'rld', '!']);
    const ai = createOpenAI(engine);
    const r = await ai.chat.completions.create({ messages, stop: ['lo w'], logprobs: true });
    assert.equal(r.choices[0].message.content, 'Hel');
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.equal(r.choices[0].forkwise.finish, 'stop_string');
    assert.deepEqual(r.choices[0].logprobs!.content!.map((t) => t.token), ['Hel']);
    assert.equal(r.usage.completion_tokens, 2);
    assert.equal(engine.calls[0].taken, 2);
    assert.ok(engine.calls[0].closed, 'the generation was stopped at the stop string');
    const chunks: ChatCompletionChunk[] = [];
    for await (const c of await ai.chat.completions.create({ messages, stop: 'lo w', stream: true })) chunks.push(c);
    const deltas = chunks.map((c) => c.choices[0]?.delta.content ?? '');
    assert.deepEqual(deltas.filter(Boolean), ['He', 'l'], 'the possible stop prefix "l" was held back');
    assert.equal(chunks.at(-1)!.choices[0].finish_reason, 'stop');
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0].id));
  });

  test('n choices run one after another with seeds seed, seed + 1, …; completions index them per prompt', async () => {
    const engine = scripted(['a', 'b']);
    const ai = createOpenAI(engine);
    const r = await ai.chat.completions.create({ messages, n: 3, seed: 5, temperature: 1 });
    assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2]);
    assert.deepEqual(engine.calls.map((c) => c.options.seed), [5, 6, 7]);
    assert.deepEqual(r.usage, { prompt_tokens: 7, completion_tokens: 6, total_tokens: 13 });
    const c = await ai.completions.create({ prompt: ['x', 'y'], n: 2, max_tokens: 1, logprobs: 1, echo: false });
    assert.equal(c.object, 'text_completion');
    assert.deepEqual(c.choices.map((ch) => [ch.index, ch.text]), [[0, 'a'], [1, 'a'], [2, 'a'], [3, 'a']]);
    assert.deepEqual(engine.calls.slice(3).map((k) => [k.prompt, k.options.seed, k.options.maxTokens]), [['x', 0, 1], ['x', 1, 1], ['y', 0, 1], ['y', 1, 1]]);
    assert.deepEqual(c.choices[0].logprobs, { tokens: ['a'], token_logprobs: [3 - 4], top_logprobs: [{ a: 3 - 4 }], text_offset: [0] });
    assert.deepEqual(c.usage, { prompt_tokens: 14, completion_tokens: 4, total_tokens: 18 });
    const echoed: Completion[] = [];
    for await (const k of await ai.completions.create({ prompt: 'P:', echo: true, stream: true, stream_options: { include_usage: true } })) echoed.push(k);
    assert.equal(echoed.map((k) => k.choices[0]?.text ?? '').join(''), 'P:ab');
    assert.deepEqual(echoed.at(-1)!.usage, { prompt_tokens: 7, completion_tokens: 2, total_tokens: 9 });
    assert.equal(echoed.at(-2)!.choices[0].finish_reason, 'stop');
  });

  test('a consumer that stops iterating a stream stops its generation', async () => {
    const engine = scripted(['a', 'b', 'c', 'd', 'e']);
    const stream = await createOpenAI(engine).chat.completions.create({ messages, stream: true });
    let seen = 0;
    for await (const _ of stream) if (++seen === 3) break;
    assert.equal(engine.calls[0].taken, 2);
    assert.ok(engine.calls[0].closed);
  });

  test('the chosen token outside the candidates has logprob -9999; forkwise parameters pass through', async () => {
    const engine = scripted(['a']);
    engine.generate = ((generate) => (p: Prompt, o?: GenerateOptions) => {
      const g = generate(p, o);
      return new Generation((async function* () {
        for await (const s of g) yield { ...s, topK: s.topK.slice(1) };
        return g.result;
      })());
    })(engine.generate.bind(engine));
    const r = await createOpenAI(engine).chat.completions.create({
      messages, logprobs: true, forkwise: { decoder: 'ead', ead: { tau: 2 }, minP: 0.1 },
    });
    assert.equal(r.choices[0].logprobs!.content![0].logprob, UNLISTED_LOGPROB);
    assert.deepEqual(engine.calls[0].options, { decoder: 'ead', ead: { tau: 2 }, minP: 0.1, seed: 0 });
  });

  test('bad parameters throw InvalidParamError naming them, before any generation', async () => {
    const engine = scripted(['a']);
    const ai = createOpenAI(engine, { topK: 5 });
    const cases: [Record<string, unknown>, string][] = [
      [{ messages, frequency_penalty: 2.5 }, 'frequency_penalty'],
      [{ messages, presence_penalty: -2.5 }, 'presence_penalty'],
      [{ messages, top_logprobs: 2 }, 'top_logprobs'],
      [{ messages, logprobs: true, top_logprobs: 6 }, 'top_logprobs'],
      [{ messages, logprobs: true, top_logprobs: 21 }, 'top_logprobs'],
      [{ messages, temperature: 3 }, 'temperature'],
      [{ messages, top_p: -0.1 }, 'top_p'],
      [{ messages, n: 0 }, 'n'],
      [{ messages, seed: 1.5 }, 'seed'],
      [{ messages, stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop'],
      [{ messages, stop: '' }, 'stop'],
      [{ messages, max_tokens: 0 }, 'max_tokens'],
      [{ messages, max_tokens: 3, max_completion_tokens: 4 }, 'max_tokens'],
      [{ messages, stream_options: { include_usage: true } }, 'stream_options'],
      [{ messages, tools: [] }, 'tools'],
      [{ messages, bogus: 1 }, 'bogus'],
      [{ messages: [] }, 'messages'],
      [{ messages: [{ role: 'tool', content: 'x' }] }, 'messages[0].role'],
      [{ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: {} }] }] }, 'messages[0].content[0]'],
      [{ messages, forkwise: { decoder: 'nope' } }, 'forkwise.decoder'],
      [{ messages, forkwise: { temperature: 1 } }, 'forkwise.temperature'],
      [{ messages, forkwise: { wat: 1 } }, 'forkwise.wat'],
      [{ messages, forkwise: { decoder: 'ead', ead: { tau: 'x' } } }, 'forkwise.ead.tau'],
      [{ messages, forkwise: { decoder: 'ead', ead: { nope: 1 } } }, 'forkwise.ead.nope'],
      [{ messages, logit_bias: { 5: 1 } }, 'logit_bias'],
      [{ messages, response_format: { type: 'json_object' } }, 'response_format'],
    ];
    for (const [params, param] of cases) {
      await assert.rejects(ai.chat.completions.create(params as never), (e: unknown) => {
        assert.ok(e instanceof InvalidParamError && e instanceof InvalidArgumentError, `${JSON.stringify(params)}: ${e}`);
        assert.equal(e.param, param, `${JSON.stringify(params)}: ${e.message}`);
        assert.equal(e.code, 'invalid-argument');
        return true;
      });
    }
    for (const [params, param] of [
      [{ prompt: [1, 2] }, 'prompt'], [{ prompt: 'x', logprobs: 6 }, 'logprobs'], [{ prompt: 'x', best_of: 3 }, 'best_of'],
      [{ prompt: 'x', echo: true, logprobs: 1 }, 'echo'], [{ prompt: 'x', suffix: 'y' }, 'suffix'],
    ] as [Record<string, unknown>, string][]) {
      await assert.rejects(ai.completions.create(params as never), (e: unknown) => e instanceof InvalidParamError && e.param === param);
    }
    assert.equal(engine.calls.length, 0, 'no generation was made');
  });
});
