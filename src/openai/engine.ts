// The OpenAI-shaped API over an engine: `ai.chat.completions.create(params)` and
// `ai.completions.create(params)` with OpenAI's parameters and response objects (plain, or a
// stream of chunks with `stream: true`), on the in-page Engine, a WorkerEngine or Node's engine.
//
//   const ai = createOpenAI(engine, { model: 'qwen3', topK: 20 });
//   const r = await ai.chat.completions.create({ messages: [{ role: 'user', content: 'Hi' }], max_tokens: 32 });
//   for await (const chunk of await ai.chat.completions.create({ messages, stream: true })) …
//
// n choices of a prompt run as n batched KV rows (Engine.generateBatch: one forward pass per token
// for all of them; row i's draws keyed by (seed, row i, position)) where the engine and the decoder
// allow it; otherwise one generate() each, one after another, with seeds seed, seed + 1, …. The
// engine's lock serialises them with any other caller's generations, first come first served.
import { DEFAULT_TOP_K, type GenerateOptions, type Generation, type GenerationStep, type Prompt, canBatch } from '../engine.ts';
import { checkInteger } from '../errors.ts';
import { type RequestPlan, chatPlan, completionPlan } from './params.ts';
import { StopBuffer } from './stop.ts';
import type {
  ChatCompletion, ChatCompletionChunk, ChatCompletionCreateParams, ChatCompletionCreateParamsNonStreaming,
  ChatCompletionCreateParamsStreaming, ChatCompletionTokenLogprob, Completion, CompletionCreateParams,
  CompletionCreateParamsNonStreaming, CompletionCreateParamsStreaming, CompletionLogprobs, CompletionUsage,
  ForkwiseChoiceExtension, ForkwiseTokenStats, GenerateEngine, ModelList, OpenAIFinishReason, RequestOptions, TopLogprob,
} from './types.ts';

export interface OpenAIEngineOptions {
  /** The id responses carry and models() lists; default 'forkwise'. A request's `model` is not checked against it. */
  model?: string;
  /**
   * The topK the model was loaded with (loadModel's; default 5): the most top_logprobs a request
   * may ask for. Load with a larger topK (up to 64) for OpenAI's 20.
   */
  topK?: number;
}

/** OpenAI's logprob for a token that is not among the step's candidates ("very unlikely"). */
export const UNLISTED_LOGPROB = -9999;

/** A stream of chunks: iterate it; stopping early (break, return) stops the generation. */
export type ChunkStream<T> = AsyncGenerator<T, void, undefined>;

/** One generated token, described for the response. */
interface TokenOut {
  token: string;
  logprob: number;
  top: TopLogprob[];
  stats: ForkwiseTokenStats;
  /** UTF-16 offsets of the token's text in the choice's completion text. */
  start: number;
  end: number;
}

/** Text safe to emit and the tokens whose text it completes. */
interface Piece {
  text: string;
  tokens: TokenOut[];
}

interface ChoiceEnd {
  finishReason: OpenAIFinishReason;
  extension: Omit<ForkwiseChoiceExtension, 'tokens'>;
  promptTokens: number;
  completionTokens: number;
}

const encoder = new TextEncoder();
const bytesOf = (text: string) => Array.from(encoder.encode(text));

function randomId(prefix: string): string {
  const bytes = new Uint8Array(12);
  globalThis.crypto.getRandomValues(bytes);
  return prefix + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

const now = () => Math.floor(Date.now() / 1000);

function describe(step: GenerationStep, plan: RequestPlan): Omit<TokenOut, 'start' | 'end'> {
  // The step's lse is log Σ exp(z/T) at the decoder's statistics temperature T (the sampling
  // temperature, 1 for greedy); the candidates carry raw logits z.
  const logprob = (logit: number) => logit / plan.statsTemperature - step.lse;
  const chosen = step.topK.find((c) => c.id === step.tokenId);
  const token = chosen ? chosen.text : step.text;
  const stats: ForkwiseTokenStats = { lse: step.lse, entropy: step.entropy, varentropy: step.varentropy };
  if (step.event) stats.event = step.event;
  if (step.model) stats.model = step.model;
  return {
    token,
    logprob: chosen ? logprob(chosen.logit) : UNLISTED_LOGPROB,
    top: plan.logprobs ? step.topK.slice(0, plan.logprobs).map((c) => ({ token: c.text, logprob: logprob(c.logit), bytes: bytesOf(c.text) })) : [],
    stats,
  };
}

/**
 * One choice's text as it becomes safe to emit (stop strings held back until they cannot match),
 * with the tokens it completes; returns why it ended. Ends the generation on a stop string.
 */
async function* pieces(generation: Generation, plan: RequestPlan): AsyncGenerator<Piece, ChoiceEnd> {
  const stop = new StopBuffer(plan.stops);
  const waiting: TokenOut[] = [];
  let produced = 0;
  let emitted = 0;
  let count = 0;
  let promptTokens = 0;
  const release = (text: string, stopped: boolean): Piece => {
    emitted += text.length;
    const tokens: TokenOut[] = [];
    // A token is reported with the text that completes it; at a stop string, the tokens that
    // began before it (the one that straddles it included), and none after.
    while (waiting.length && (waiting[0].end <= emitted || (stopped && waiting[0].start < emitted))) tokens.push(waiting.shift()!);
    if (stopped) waiting.length = 0;
    return { text, tokens };
  };
  for await (const step of generation) {
    if (count === 0) promptTokens = step.pos + 1;
    count++;
    const start = produced;
    produced += step.text.length;
    waiting.push({ ...describe(step, plan), start, end: produced });
    const r = stop.push(step.text);
    const piece = release(r.emit, r.stopped);
    if (piece.text || piece.tokens.length) yield piece;
    if (r.stopped) {
      // Leaving the loop stops the generation (the engine ends it after the step in flight).
      return { finishReason: 'stop', extension: { finish: 'stop_string' }, promptTokens, completionTokens: count };
    }
  }
  const result = await generation.result;
  // Text the detokeniser released only at the end (a pending multi-byte character).
  const r = stop.push(result.completion.slice(produced));
  const piece = release(r.emit + (r.stopped ? '' : stop.flush()), r.stopped);
  if (!r.stopped) piece.tokens.push(...waiting.splice(0));
  if (piece.text || piece.tokens.length) yield piece;
  const finishReason: OpenAIFinishReason = r.stopped || result.finish === 'eos' || result.finish === 'bos' ? 'stop' : 'length';
  return {
    finishReason,
    extension: { finish: r.stopped ? 'stop_string' : result.finish, summary: result.summary },
    promptTokens: result.promptTokenCount,
    completionTokens: count,
  };
}

/**
 * Token counts of a request: each prompt once (choice i answers prompt ⌊i / n⌋; a chat has one),
 * every choice's completion.
 */
class Usage {
  private readonly prompts = new Map<number, number>();
  private completion = 0;
  constructor(private readonly n: number) {}

  add(choice: number, end: ChoiceEnd): void {
    this.prompts.set(Math.floor(choice / this.n), end.promptTokens);
    this.completion += end.completionTokens;
  }

  get usage(): CompletionUsage {
    const prompt = [...this.prompts.values()].reduce((a, b) => a + b, 0);
    return { prompt_tokens: prompt, completion_tokens: this.completion, total_tokens: prompt + this.completion };
  }
}

/** A choice run to its end: its text after `prefix`, its tokens, how it ended. */
async function collect(run: AsyncGenerator<Piece, ChoiceEnd>, prefix = ''): Promise<{ text: string; tokens: TokenOut[]; end: ChoiceEnd }> {
  let text = prefix;
  const tokens: TokenOut[] = [];
  let next = await run.next();
  for (; !next.done; next = await run.next()) {
    text += next.value.text;
    tokens.push(...next.value.tokens);
  }
  return { text, tokens, end: next.value };
}

function chatLogprob(t: TokenOut): ChatCompletionTokenLogprob {
  return { token: t.token, logprob: t.logprob, bytes: bytesOf(t.token), top_logprobs: t.top };
}

function completionLogprobs(tokens: TokenOut[], offset: number): CompletionLogprobs {
  return {
    tokens: tokens.map((t) => t.token),
    token_logprobs: tokens.map((t) => t.logprob),
    top_logprobs: tokens.map((t) => Object.fromEntries(t.top.map((c) => [c.token, c.logprob]))),
    text_offset: tokens.map((t) => offset + t.start),
  };
}

/** The generations of a request: choice by choice, prompt by prompt; the first is made up front (its errors come before any work). */
class Choices {
  private first: Generation | null;
  /** Whether the n choices of a prompt run as batched rows, and the current prompt's rows. */
  private readonly batched: boolean;
  private batch: Generation[] = [];
  constructor(private readonly engine: GenerateEngine, private readonly plan: RequestPlan, private readonly signal?: AbortSignal) {
    this.batched = plan.n > 1 && typeof engine.generateBatch === 'function' && canBatch(plan.options);
    this.first = this.make(0);
  }

  get count(): number {
    return this.plan.prompts.length * this.plan.n;
  }

  prompt(index: number): Prompt {
    return this.plan.prompts[Math.floor(index / this.plan.n)];
  }

  generation(index: number): Generation {
    if (index === 0 && this.first) {
      const g = this.first;
      this.first = null;
      return g;
    }
    return this.make(index);
  }

  private make(index: number): Generation {
    const row = index % this.plan.n;
    const options: GenerateOptions = { ...this.plan.options, seed: this.plan.seed + (this.batched ? 0 : row) };
    if (this.signal) options.signal = this.signal;
    if (!this.batched) return this.engine.generate(this.prompt(index), options);
    if (row === 0) this.batch = this.engine.generateBatch!(this.prompt(index), options, this.plan.n);
    return this.batch[row];
  }
}

export class ChatCompletions {
  constructor(private readonly owner: OpenAIEngine) {}

  create(params: ChatCompletionCreateParamsStreaming, options?: RequestOptions): Promise<ChunkStream<ChatCompletionChunk>>;
  create(params: ChatCompletionCreateParamsNonStreaming, options?: RequestOptions): Promise<ChatCompletion>;
  create(params: ChatCompletionCreateParams, options?: RequestOptions): Promise<ChatCompletion | ChunkStream<ChatCompletionChunk>>;
  async create(params: ChatCompletionCreateParams, options?: RequestOptions): Promise<ChatCompletion | ChunkStream<ChatCompletionChunk>> {
    const plan = chatPlan(params, { topK: this.owner.topK });
    const choices = new Choices(this.owner.engine, plan, options?.signal ?? plan.signal);
    const base = { id: randomId('chatcmpl-'), created: now(), model: this.owner.modelId };
    return plan.stream ? this.stream(plan, choices, base) : this.whole(plan, choices, base);
  }

  private async whole(plan: RequestPlan, choices: Choices, base: { id: string; created: number; model: string }): Promise<ChatCompletion> {
    const out: ChatCompletion['choices'] = [];
    const usage = new Usage(plan.n);
    for (let i = 0; i < choices.count; i++) {
      const { text, tokens, end } = await collect(pieces(choices.generation(i), plan));
      usage.add(i, end);
      out.push({
        index: i,
        message: { role: 'assistant', content: text, refusal: null },
        logprobs: plan.logprobs === null ? null : { content: tokens.map(chatLogprob), refusal: null },
        finish_reason: end.finishReason,
        forkwise: { tokens: tokens.map((t) => t.stats), ...end.extension },
      });
    }
    return { ...base, object: 'chat.completion', choices: out, usage: usage.usage };
  }

  private async *stream(plan: RequestPlan, choices: Choices, base: { id: string; created: number; model: string }): ChunkStream<ChatCompletionChunk> {
    const usageField = plan.includeUsage ? { usage: null } : {};
    const chunk = (choice: ChatCompletionChunk['choices'][number]): ChatCompletionChunk => ({ ...base, object: 'chat.completion.chunk', choices: [choice], ...usageField });
    const usage = new Usage(plan.n);
    for (let i = 0; i < choices.count; i++) {
      const run = pieces(choices.generation(i), plan);
      let next: IteratorResult<Piece, ChoiceEnd>;
      try {
        yield chunk({ index: i, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null, forkwise: { tokens: [] } });
        for (next = await run.next(); !next.done; next = await run.next()) {
          const { text, tokens } = next.value;
          yield chunk({
            index: i,
            delta: { content: text },
            logprobs: plan.logprobs === null ? null : { content: tokens.map(chatLogprob), refusal: null },
            finish_reason: null,
            forkwise: { tokens: tokens.map((t) => t.stats) },
          });
        }
      } finally {
        await run.return(undefined as never); // a consumer that stops early stops the generation
      }
      const end = next.value;
      usage.add(i, end);
      yield chunk({ index: i, delta: {}, logprobs: null, finish_reason: end.finishReason, forkwise: { tokens: [], ...end.extension } });
    }
    if (plan.includeUsage) yield { ...base, object: 'chat.completion.chunk', choices: [], usage: usage.usage };
  }
}

export class Completions {
  constructor(private readonly owner: OpenAIEngine) {}

  create(params: CompletionCreateParamsStreaming, options?: RequestOptions): Promise<ChunkStream<Completion>>;
  create(params: CompletionCreateParamsNonStreaming, options?: RequestOptions): Promise<Completion>;
  create(params: CompletionCreateParams, options?: RequestOptions): Promise<Completion | ChunkStream<Completion>>;
  async create(params: CompletionCreateParams, options?: RequestOptions): Promise<Completion | ChunkStream<Completion>> {
    const plan = completionPlan(params, { topK: this.owner.topK });
    const choices = new Choices(this.owner.engine, plan, options?.signal ?? plan.signal);
    const base = { id: randomId('cmpl-'), object: 'text_completion' as const, created: now(), model: this.owner.modelId };
    return plan.stream ? this.stream(plan, choices, base) : this.whole(plan, choices, base);
  }

  private async whole(plan: RequestPlan, choices: Choices, base: Omit<Completion, 'choices'>): Promise<Completion> {
    const out: Completion['choices'] = [];
    const usage = new Usage(plan.n);
    for (let i = 0; i < choices.count; i++) {
      const echoed = plan.echo ? (choices.prompt(i) as string) : '';
      const { text, tokens, end } = await collect(pieces(choices.generation(i), plan), echoed);
      usage.add(i, end);
      out.push({
        index: i,
        text,
        logprobs: plan.logprobs === null ? null : completionLogprobs(tokens, echoed.length),
        finish_reason: end.finishReason,
        forkwise: { tokens: tokens.map((t) => t.stats), ...end.extension },
      });
    }
    return { ...base, choices: out, usage: usage.usage };
  }

  private async *stream(plan: RequestPlan, choices: Choices, base: Omit<Completion, 'choices'>): ChunkStream<Completion> {
    const usageField = plan.includeUsage ? { usage: null } : {};
    const usage = new Usage(plan.n);
    for (let i = 0; i < choices.count; i++) {
      const echoed = plan.echo ? (choices.prompt(i) as string) : '';
      const run = pieces(choices.generation(i), plan);
      let next: IteratorResult<Piece, ChoiceEnd>;
      try {
        if (echoed) yield { ...base, choices: [{ index: i, text: echoed, logprobs: null, finish_reason: null, forkwise: { tokens: [] } }], ...usageField };
        for (next = await run.next(); !next.done; next = await run.next()) {
          const { text, tokens } = next.value;
          yield {
            ...base,
            choices: [{
              index: i, text, logprobs: plan.logprobs === null ? null : completionLogprobs(tokens, echoed.length), finish_reason: null,
              forkwise: { tokens: tokens.map((t) => t.stats) },
            }],
            ...usageField,
          };
        }
      } finally {
        await run.return(undefined as never);
      }
      const end = next.value;
      usage.add(i, end);
      yield {
        ...base,
        choices: [{ index: i, text: '', logprobs: null, finish_reason: end.finishReason, forkwise: { tokens: [], ...end.extension } }],
        ...usageField,
      };
    }
    if (plan.includeUsage) yield { ...base, choices: [], usage: usage.usage };
  }
}

/** `engine` with OpenAI's API: `chat.completions.create`, `completions.create`, `models.list`. */
export class OpenAIEngine {
  readonly modelId: string;
  readonly topK: number;
  readonly chat: { completions: ChatCompletions };
  readonly completions: Completions;
  readonly models: { list(): Promise<ModelList> };
  private readonly created = now();

  constructor(readonly engine: GenerateEngine, options: OpenAIEngineOptions = {}) {
    this.modelId = options.model ?? 'forkwise';
    this.topK = checkInteger('topK', options.topK ?? DEFAULT_TOP_K, 1, 64);
    this.chat = { completions: new ChatCompletions(this) };
    this.completions = new Completions(this);
    this.models = { list: async () => this.modelList() };
  }

  /** GET /v1/models: the one model loaded (none while nothing is loaded). */
  modelList(): ModelList {
    const data = this.engine.model ? [{ id: this.modelId, object: 'model' as const, created: this.created, owned_by: 'forkwise' }] : [];
    return { object: 'list', data };
  }
}

export function createOpenAI(engine: GenerateEngine, options: OpenAIEngineOptions = {}): OpenAIEngine {
  return new OpenAIEngine(engine, options);
}

/** Just `chat.completions` of createOpenAI(engine, options). */
export function createChatCompletions(engine: GenerateEngine, options: OpenAIEngineOptions = {}): ChatCompletions {
  return new OpenAIEngine(engine, options).chat.completions;
}
