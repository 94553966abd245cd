// The OpenAI-shaped API's request and response types: OpenAI's field names and types (chat
// completions, legacy completions, models), plus the `forkwise` extensions — the decoder and its
// parameters on a request, each token's uncertainty statistics on a response.
import type {
  DecoderName, FinishReason, GenerateOptions, Generation, GenerationResult, GenerationStep, ModelInfo, Prompt,
} from '../engine.ts';

type DecoderEvent = NonNullable<GenerationStep['event']>;
type DecoderSummary = GenerationResult['summary'];

/** What the OpenAI layer needs of an engine: Engine and WorkerEngine both qualify. */
export interface GenerateEngine {
  generate(prompt: Prompt, options?: GenerateOptions): Generation;
  /** n rows stepped together (Engine.generateBatch); without it, n choices run one after another. */
  generateBatch?(prompt: Prompt, options: GenerateOptions, n: number): Generation[];
  readonly model: ModelInfo | null;
}

/**
 * The decoder and the sampler stages OpenAI has no name for, passed through to generate():
 * `{ decoder: 'ead', ead: { tau: 1.5 } }`, `{ decoder: 'cntp', cntp: { maxTrials: 4 } }`,
 * `{ topK: 40, minP: 0.05 }`. Temperature, top_p, seed and max_tokens are OpenAI's parameters.
 */
export type ForkwiseRequestOptions = Omit<GenerateOptions, 'maxTokens' | 'chat' | 'seed' | 'signal' | 'temperature' | 'topP'> & {
  decoder?: DecoderName;
};

export type ChatRole = 'system' | 'developer' | 'user' | 'assistant';

export interface ChatCompletionContentPartText {
  type: 'text';
  text: string;
}

export interface ChatCompletionMessageParam {
  role: ChatRole;
  /** Text, or text parts (joined). */
  content: string | ChatCompletionContentPartText[];
  /** Accepted and ignored. */
  name?: string;
}

/** Parameters both endpoints share. `null` means absent, as in OpenAI's API. */
interface CommonParams {
  /** Checked to be a string and otherwise ignored: the loaded model answers (responses name it). */
  model?: string;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean } | null;
  /** In [0, 2]; default 1 (OpenAI's). 0 is greedy. Sampling is seeded: see `seed`. */
  temperature?: number | null;
  /** Nucleus mass in [0, 1]; default 1. */
  top_p?: number | null;
  /** RNG seed, an integer in [0, 2^32 − n]; default 0, so the same request gives the same text. Choice i uses seed + i. */
  seed?: number | null;
  /** Up to 4 strings; the text stops before the first one (never emitted; matched on the decoded text across tokens). */
  stop?: string | string[] | null;
  /** Choices, 1..16, generated one after another with seeds seed, seed + 1, … */
  n?: number | null;
  /** [−2, 2]: each token's logit − count·this, counted over the text so far (prompt included); default 0. */
  frequency_penalty?: number | null;
  /** [−2, 2]: logit − this for every token of the text so far (prompt included); default 0. */
  presence_penalty?: number | null;
  /** Only empty. */
  logit_bias?: Record<string, number> | null;
  /** Accepted and ignored. */
  user?: string;
  /** Aborts the generation (also accepted as create()'s second argument, `{ signal }`). */
  signal?: AbortSignal;
  forkwise?: ForkwiseRequestOptions;
}

export interface ChatCompletionCreateParams extends CommonParams {
  messages: ChatCompletionMessageParam[];
  /** New tokens at most; default: until the model ends or the context is full. */
  max_completion_tokens?: number | null;
  /** Older name of max_completion_tokens (both given: they must agree). */
  max_tokens?: number | null;
  logprobs?: boolean | null;
  /** 0..20, with logprobs: at most the topK the model was loaded with (see OpenAIEngineOptions.topK). */
  top_logprobs?: number | null;
  /** Only { type: 'text' }. */
  response_format?: { type: 'text' } | null;
}

export interface CompletionCreateParams extends CommonParams {
  /** A prompt, or several (each gets n choices: index = prompt · n + choice). */
  prompt: string | string[];
  /** New tokens at most; default 16 (OpenAI's). */
  max_tokens?: number | null;
  /** Candidates per token, 0..20 (at most the loaded topK); absent or null: no logprobs. */
  logprobs?: number | null;
  /** Prepend the prompt to each choice's text (not with logprobs). */
  echo?: boolean | null;
  /** Only 1, or n. */
  best_of?: number | null;
}

export type ChatCompletionCreateParamsStreaming = ChatCompletionCreateParams & { stream: true };
export type ChatCompletionCreateParamsNonStreaming = ChatCompletionCreateParams & { stream?: false | null };
export type CompletionCreateParamsStreaming = CompletionCreateParams & { stream: true };
export type CompletionCreateParamsNonStreaming = CompletionCreateParams & { stream?: false | null };

/** create()'s second argument, as the openai client's request options. */
export interface RequestOptions {
  signal?: AbortSignal;
}

export interface CompletionUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** 'stop': the model ended (EOS) or a stop string; 'length': max tokens or the context. */
export type OpenAIFinishReason = 'stop' | 'length';

export interface TopLogprob {
  token: string;
  logprob: number;
  /** UTF-8 bytes of `token`. */
  bytes: number[] | null;
}

/**
 * One generated token. `logprob` = z/T − lse, the log-probability under softmax(z/T) at the
 * temperature the decoder's statistics are computed at (the sampling temperature; 1 for greedy),
 * before truncation (top-p …); -9999 (OpenAI's "very unlikely") when the token is not among the
 * engine's top-K candidates of that step (possible only when sampling).
 */
export interface ChatCompletionTokenLogprob extends TopLogprob {
  top_logprobs: TopLogprob[];
}

/** Each token's uncertainty statistics, at the decoder's statistics temperature (see ChatCompletionTokenLogprob). */
export interface ForkwiseTokenStats {
  /** log Σ exp(z/T) over the vocabulary. */
  lse: number;
  /** Entropy of softmax(z/T), nats. */
  entropy: number;
  /** Variance of the surprisal, nats². */
  varentropy: number;
  /** What the decoder did at this token (a CNTP branch, an EAD switch, an SRGen reflection, …). */
  event?: DecoderEvent;
  /** The model that produced the token, for decoders with two (EAD). */
  model?: string;
}

/**
 * The `forkwise` extension of a choice: `tokens[i]` belongs to the same token as
 * `logprobs.content[i]` (chat) or `logprobs.tokens[i]` (completions), present with or without
 * logprobs. The final choice (or the chunk with its finish_reason) adds the engine's own reason
 * and the decoder's summary.
 */
export interface ForkwiseChoiceExtension {
  tokens: ForkwiseTokenStats[];
  /** The engine's reason ('eos', 'bos', 'max_tokens', 'context'), or 'stop_string'. */
  finish?: FinishReason | 'stop_string';
  summary?: DecoderSummary;
}

export interface ChatCompletionMessage {
  role: 'assistant';
  content: string;
  refusal: null;
}

export interface ChatCompletionLogprobs {
  content: ChatCompletionTokenLogprob[] | null;
  refusal: null;
}

export interface ChatCompletionChoice {
  index: number;
  message: ChatCompletionMessage;
  logprobs: ChatCompletionLogprobs | null;
  finish_reason: OpenAIFinishReason;
  forkwise: ForkwiseChoiceExtension;
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: ChatCompletionChoice[];
  usage: CompletionUsage;
}

export interface ChatCompletionChunkChoice {
  index: number;
  delta: { role?: 'assistant'; content?: string };
  logprobs: ChatCompletionLogprobs | null;
  finish_reason: OpenAIFinishReason | null;
  forkwise: ForkwiseChoiceExtension;
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  /** Empty in the usage chunk (stream_options.include_usage). */
  choices: ChatCompletionChunkChoice[];
  /** null except in the last chunk, with stream_options.include_usage. */
  usage?: CompletionUsage | null;
}

export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Record<string, number>[];
  /** Offsets of each token's text in the choice's text. */
  text_offset: number[];
}

export interface CompletionChoice {
  index: number;
  text: string;
  logprobs: CompletionLogprobs | null;
  /** null in a stream's chunks before the last of the choice. */
  finish_reason: OpenAIFinishReason | null;
  forkwise: ForkwiseChoiceExtension;
}

/** A completion, or one chunk of a streamed one (the same object type, as OpenAI's). */
export interface Completion {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  choices: CompletionChoice[];
  usage?: CompletionUsage | null;
}

export interface OpenAIModel {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
}

export interface ModelList {
  object: 'list';
  data: OpenAIModel[];
}

/** OpenAI's error body. */
export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}
