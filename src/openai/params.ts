// OpenAI request parameters → generate() options, checked before any GPU work: an unknown,
// unsupported or invalid parameter throws InvalidParamError naming it (OpenAI's `param`).
import { type GenerateOptions, type Prompt, DECODERS, checkGenerateOptions } from '../engine.ts';
import { InvalidArgumentError, shown } from '../errors.ts';
import type { ChatMessage } from '../tokenizer/types.ts';
import type { ChatCompletionCreateParams, CompletionCreateParams, ForkwiseRequestOptions } from './types.ts';

/** An OpenAI request parameter that is unknown, unsupported or invalid; `param` names it ('messages[0].role', 'forkwise.ead.tau'). */
export class InvalidParamError extends InvalidArgumentError {
  readonly param: string | null;
  /** OpenAI's error `code` ('unsupported_parameter', 'unknown_parameter', …), null if none applies. */
  readonly openaiCode: string | null;
  constructor(param: string | null, message: string, openaiCode: string | null = null) {
    super(message);
    this.param = param;
    this.openaiCode = openaiCode;
  }
}

/** The most choices per request. */
export const MAX_CHOICES = 16;
/** The most top_logprobs OpenAI allows. */
export const MAX_TOP_LOGPROBS = 20;
const MAX_STOPS = 4;
const MAX_SEED = 0xffffffff;

/** What one request asks for, validated: one or more prompts, each with `n` choices. */
export interface RequestPlan {
  prompts: Prompt[];
  n: number;
  stream: boolean;
  includeUsage: boolean;
  stops: string[];
  /** Top candidates per token (0: logprobs without candidates), or null: no logprobs. */
  logprobs: number | null;
  echo: boolean;
  /** generate()'s options for choice 0 (choice i: seed + i). */
  options: GenerateOptions;
  seed: number;
  /** The temperature the decoder's step statistics are at (logprob = z/T − lse). */
  statsTemperature: number;
  signal?: AbortSignal;
}

export interface PlanLimits {
  /** Candidates the loaded model computes per step. */
  topK: number;
}

/** Parameters OpenAI has that forkwise does not do (named in the error as unsupported, not unknown). */
const UNSUPPORTED = new Set([
  'tools', 'tool_choice', 'functions', 'function_call', 'parallel_tool_calls', 'audio', 'modalities', 'prediction',
  'reasoning_effort', 'web_search_options', 'service_tier', 'store', 'metadata', 'suffix', 'verbosity', 'prompt_cache_key',
  'safety_identifier',
]);

const COMMON = [
  'model', 'stream', 'stream_options', 'temperature', 'top_p', 'seed', 'stop', 'n', 'frequency_penalty', 'presence_penalty',
  'logit_bias', 'user', 'signal', 'forkwise',
];
const CHAT_KEYS = new Set([...COMMON, 'messages', 'max_tokens', 'max_completion_tokens', 'logprobs', 'top_logprobs', 'response_format']);
const COMPLETION_KEYS = new Set([...COMMON, 'prompt', 'max_tokens', 'logprobs', 'echo', 'best_of']);

/** forkwise.* keys that are OpenAI parameters: given there, they say where they belong. */
const RESERVED: Record<string, string> = {
  temperature: 'temperature', topP: 'top_p', seed: 'seed', maxTokens: 'max_tokens', signal: 'signal', chat: 'messages (chat completions)',
  frequencyPenalty: 'frequency_penalty', presencePenalty: 'presence_penalty',
};
const SAMPLER_KEYS = ['topK', 'minP', 'typical', 'topH', 'repetitionPenalty', 'entropyTopK'];
/** Flat decoder parameters generate() still accepts (the sections are the documented form). */
const LEGACY_KEYS = [
  'hLo', 'hHi', 'maxTrials', 'trialsInSequence', 'tau', 'window', 'minStay', 'lambda', 'lr', 'optSteps', 'maxReflections', 'k',
  'sigmaMin', 'thetaMin', 'theta0',
];
const camel = (name: string) => name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

const present = (v: unknown) => v !== undefined && v !== null;

function kind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `string ${shown(JSON.stringify(value))}`;
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${shown(value)}`;
}

function object(param: string, value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidParamError(param, `${param} must be an object, got ${kind(value)}`);
  }
  return value as Record<string, unknown>;
}

function optionalBoolean(param: string, value: unknown): boolean | undefined {
  if (!present(value)) return undefined;
  if (typeof value !== 'boolean') throw new InvalidParamError(param, `${param} must be true or false, got ${kind(value)}`);
  return value;
}

function optionalNumber(param: string, value: unknown, min: number, max: number, integer = false): number | undefined {
  if (!present(value)) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
    throw new InvalidParamError(param, `${param} must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], got ${kind(value)}`);
  }
  return value;
}

function checkKeys(params: Record<string, unknown>, known: Set<string>, endpoint: string): void {
  for (const key of Object.keys(params)) {
    if (known.has(key)) continue;
    if (UNSUPPORTED.has(key)) throw new InvalidParamError(key, `${key} is not supported by forkwise's ${endpoint}`, 'unsupported_parameter');
    throw new InvalidParamError(key, `unknown parameter ${JSON.stringify(key)} for ${endpoint}`, 'unknown_parameter');
  }
}

function checkMessages(value: unknown): ChatMessage[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new InvalidParamError('messages', `messages must be a non-empty array of { role, content }, got ${kind(value)}`);
  }
  return value.map((raw, i) => {
    const at = `messages[${i}]`;
    const m = object(at, raw);
    for (const key of Object.keys(m)) {
      if (key !== 'role' && key !== 'content' && key !== 'name') {
        throw new InvalidParamError(`${at}.${key}`, `${at}.${key} is not supported (messages carry role, content and name)`, 'unsupported_parameter');
      }
    }
    if (!['system', 'developer', 'user', 'assistant'].includes(m.role as string)) {
      throw new InvalidParamError(`${at}.role`, `${at}.role must be system, developer, user or assistant, got ${kind(m.role)}`);
    }
    if (m.name !== undefined && typeof m.name !== 'string') throw new InvalidParamError(`${at}.name`, `${at}.name must be a string, got ${kind(m.name)}`);
    let content: string;
    if (typeof m.content === 'string') {
      content = m.content;
    } else if (Array.isArray(m.content)) {
      content = m.content.map((part, j) => {
        const p = object(`${at}.content[${j}]`, part);
        if (p.type !== 'text' || typeof p.text !== 'string') {
          throw new InvalidParamError(`${at}.content[${j}]`, `${at}.content[${j}] must be { type: 'text', text } (forkwise takes text only), got type ${kind(p.type)}`);
        }
        return p.text;
      }).join('');
    } else {
      throw new InvalidParamError(`${at}.content`, `${at}.content must be a string or text parts, got ${kind(m.content)}`);
    }
    // The chat templates know system, user and assistant; OpenAI's developer role is its system role.
    return { role: m.role === 'developer' ? 'system' : (m.role as string), content };
  });
}

function checkStops(value: unknown): string[] {
  if (!present(value)) return [];
  const stops = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(stops) || stops.length > MAX_STOPS || stops.some((s) => typeof s !== 'string' || s === '')) {
    throw new InvalidParamError('stop', `stop must be a non-empty string or an array of at most ${MAX_STOPS} of them, got ${kind(value)}`);
  }
  return [...stops] as string[];
}

function checkForkwise(value: unknown): ForkwiseRequestOptions {
  if (value === undefined) return {};
  const o = object('forkwise', value);
  const sections = new Set(DECODERS.map(camel));
  for (const key of Object.keys(o)) {
    if (Object.hasOwn(RESERVED, key)) {
      throw new InvalidParamError(`forkwise.${key}`, `forkwise.${key}: use OpenAI's parameter ${RESERVED[key]}`);
    }
    if (key !== 'decoder' && !SAMPLER_KEYS.includes(key) && !LEGACY_KEYS.includes(key) && !sections.has(key)) {
      throw new InvalidParamError(
        `forkwise.${key}`,
        `unknown parameter forkwise.${key} (expected decoder, ${SAMPLER_KEYS.join(', ')}, or a decoder's section: ${[...sections].join(', ')})`,
        'unknown_parameter',
      );
    }
  }
  if (o.decoder !== undefined && !DECODERS.includes(o.decoder as never)) {
    throw new InvalidParamError('forkwise.decoder', `forkwise.decoder must be one of ${DECODERS.join(', ')}, got ${kind(o.decoder)}`);
  }
  return o as ForkwiseRequestOptions;
}

/** An error of generate()'s own checks, named as an OpenAI parameter where it can be. */
function asParamError(error: unknown): unknown {
  if (error instanceof InvalidParamError || !(error instanceof InvalidArgumentError)) return error;
  const parameter = (error as { parameter?: unknown }).parameter; // DecoderOptionError: 'ead.tau'
  if (typeof parameter === 'string') return new InvalidParamError(`forkwise.${parameter}`, error.message);
  const leading = /^([A-Za-z.]+)/.exec(error.message)?.[1] ?? '';
  const param = leading === 'temperature' ? 'temperature' : leading === 'topP' ? 'top_p' : leading === 'seed' ? 'seed' : 'forkwise';
  return new InvalidParamError(param, error.message);
}

function commonPlan(p: Record<string, unknown>, n: number): Omit<RequestPlan, 'prompts' | 'logprobs' | 'echo'> {
  if (p.model !== undefined && typeof p.model !== 'string') throw new InvalidParamError('model', `model must be a string, got ${kind(p.model)}`);
  if (p.user !== undefined && typeof p.user !== 'string') throw new InvalidParamError('user', `user must be a string, got ${kind(p.user)}`);
  const stream = optionalBoolean('stream', p.stream) ?? false;
  let includeUsage = false;
  if (present(p.stream_options)) {
    if (!stream) throw new InvalidParamError('stream_options', 'stream_options is only allowed with stream: true');
    const so = object('stream_options', p.stream_options);
    for (const key of Object.keys(so)) {
      if (key !== 'include_usage') throw new InvalidParamError(`stream_options.${key}`, `unknown parameter stream_options.${key}`, 'unknown_parameter');
    }
    includeUsage = optionalBoolean('stream_options.include_usage', so.include_usage) ?? false;
  }
  const temperature = optionalNumber('temperature', p.temperature, 0, 2);
  const topP = optionalNumber('top_p', p.top_p, 0, 1);
  const seed = optionalNumber('seed', p.seed, 0, MAX_SEED - (n - 1), true) ?? 0;
  const frequencyPenalty = optionalNumber('frequency_penalty', p.frequency_penalty, -2, 2);
  const presencePenalty = optionalNumber('presence_penalty', p.presence_penalty, -2, 2);
  if (present(p.logit_bias) && Object.keys(object('logit_bias', p.logit_bias)).length > 0) {
    throw new InvalidParamError('logit_bias', 'logit_bias is not supported', 'unsupported_parameter');
  }
  if (p.signal !== undefined) {
    const s = p.signal as Partial<AbortSignal> | null;
    if (typeof s !== 'object' || s === null || typeof s.aborted !== 'boolean' || typeof s.addEventListener !== 'function') {
      throw new InvalidParamError('signal', `signal must be an AbortSignal, got ${kind(p.signal)}`);
    }
  }
  const forkwise = checkForkwise(p.forkwise);
  // OpenAI's default is sampling at temperature 1; temperature 0 is greedy. A decoder named in
  // forkwise keeps its own temperature default unless temperature is given.
  const decoder = forkwise.decoder ?? (temperature === 0 ? 'greedy' : 'sample');
  const options: GenerateOptions = { ...forkwise, decoder };
  if (temperature !== undefined && decoder !== 'greedy') options.temperature = temperature;
  if (topP !== undefined && decoder !== 'greedy') options.topP = topP;
  // Over the text so far (prompt included), before temperature, for every decoder.
  if (frequencyPenalty) options.frequencyPenalty = frequencyPenalty;
  if (presencePenalty) options.presencePenalty = presencePenalty;
  let statsTemperature: number;
  try {
    const { decoder: built } = checkGenerateOptions({ ...options, seed });
    statsTemperature = built.sampling(0).statsTemperature ?? 1;
  } catch (error) {
    throw asParamError(error);
  }
  return { n, stream, includeUsage, stops: checkStops(p.stop), options, seed, statsTemperature, signal: p.signal as AbortSignal | undefined };
}

function checkTopLogprobs(param: string, value: number | undefined, limits: PlanLimits): void {
  if (value !== undefined && value > limits.topK) {
    throw new InvalidParamError(
      param,
      `${param} ${value} exceeds the ${limits.topK} candidates the model computes per step: load it with topK ≥ ${value} (forkwise serve --top-k ${value})`,
    );
  }
}

/** Validates chat completion parameters (topK: the loaded model's candidates per step). */
export function chatPlan(params: ChatCompletionCreateParams, limits: PlanLimits): RequestPlan {
  const p = object('the request', params);
  checkKeys(p, CHAT_KEYS, 'chat completions');
  const messages = checkMessages(p.messages);
  const n = optionalNumber('n', p.n, 1, MAX_CHOICES, true) ?? 1;
  const plan = commonPlan(p, n);
  const maxCompletion = optionalNumber('max_completion_tokens', p.max_completion_tokens, 1, Number.MAX_SAFE_INTEGER, true);
  const maxTokens = optionalNumber('max_tokens', p.max_tokens, 1, Number.MAX_SAFE_INTEGER, true);
  if (maxCompletion !== undefined && maxTokens !== undefined && maxCompletion !== maxTokens) {
    throw new InvalidParamError('max_tokens', `max_tokens (${maxTokens}) and max_completion_tokens (${maxCompletion}) disagree: give one`);
  }
  const logprobs = optionalBoolean('logprobs', p.logprobs) ?? false;
  const top = optionalNumber('top_logprobs', p.top_logprobs, 0, MAX_TOP_LOGPROBS, true);
  if (top !== undefined && !logprobs) throw new InvalidParamError('top_logprobs', 'top_logprobs needs logprobs: true');
  checkTopLogprobs('top_logprobs', top, limits);
  if (present(p.response_format) && object('response_format', p.response_format).type !== 'text') {
    throw new InvalidParamError('response_format', "response_format must be { type: 'text' } (structured output is not supported)", 'unsupported_parameter');
  }
  const max = maxCompletion ?? maxTokens;
  return {
    ...plan,
    options: max === undefined ? plan.options : { ...plan.options, maxTokens: max },
    prompts: [{ messages }],
    logprobs: logprobs ? (top ?? 0) : null,
    echo: false,
  };
}

/** OpenAI's default max_tokens for completions. */
export const COMPLETION_MAX_TOKENS = 16;

/** Validates (legacy) completion parameters. */
export function completionPlan(params: CompletionCreateParams, limits: PlanLimits): RequestPlan {
  const p = object('the request', params);
  checkKeys(p, COMPLETION_KEYS, 'completions');
  const prompt = p.prompt;
  const prompts = typeof prompt === 'string' ? [prompt] : prompt;
  if (!Array.isArray(prompts) || prompts.length === 0 || prompts.some((s) => typeof s !== 'string')) {
    throw new InvalidParamError('prompt', `prompt must be a string or a non-empty array of strings (token arrays are not supported), got ${kind(prompt)}`);
  }
  const n = optionalNumber('n', p.n, 1, MAX_CHOICES, true) ?? 1;
  if (prompts.length * n > MAX_CHOICES) throw new InvalidParamError('n', `prompts × n must be at most ${MAX_CHOICES}, got ${prompts.length * n}`);
  const bestOf = optionalNumber('best_of', p.best_of, 1, MAX_CHOICES, true);
  if (bestOf !== undefined && bestOf !== 1 && bestOf !== n) throw new InvalidParamError('best_of', 'best_of is not supported (only 1, or equal to n)', 'unsupported_parameter');
  const plan = commonPlan(p, n);
  const maxTokens = optionalNumber('max_tokens', p.max_tokens, 1, Number.MAX_SAFE_INTEGER, true) ?? COMPLETION_MAX_TOKENS;
  const logprobs = optionalNumber('logprobs', p.logprobs, 0, MAX_TOP_LOGPROBS, true);
  checkTopLogprobs('logprobs', logprobs, limits);
  const echo = optionalBoolean('echo', p.echo) ?? false;
  if (echo && logprobs !== undefined) throw new InvalidParamError('echo', 'echo with logprobs is not supported (the prompt tokens have no logprobs here)', 'unsupported_parameter');
  return { ...plan, options: { ...plan.options, maxTokens }, prompts: prompts as string[], logprobs: logprobs ?? null, echo };
}
