// The OpenAI-shaped API (chat completions, completions, models) over any engine with generate().
export {
  ChatCompletions, Completions, OpenAIEngine, UNLISTED_LOGPROB, createChatCompletions, createOpenAI,
  type ChunkStream, type OpenAIEngineOptions,
} from './engine.ts';
export { COMPLETION_MAX_TOKENS, InvalidParamError, MAX_CHOICES, MAX_TOP_LOGPROBS } from './params.ts';
export { StopBuffer, type StopPush } from './stop.ts';
export type * from './types.ts';
