// forkwise: entropy-aware LLM decoding on WebGPU. The public API.
export {
  Engine, Generation, createEngine,
  type DecoderName, type FinishReason, type GenerateOptions, type GenerationResult, type GenerationStep,
  type GenerationTiming, type LoadModelOptions, type LoadPhase, type LoadProgress, type MemoryReport, type ModelInfo, type Prompt,
  type TopCandidate,
} from './engine.ts';
export type { Eviction, MemoryOptions, MemoryPolicy } from './runtime/memory.ts';
export {
  AbortedError, ContextOverflowError, DeviceLostError, ForkwiseError, GpuAllocationError, InvalidArgumentError,
  ModelFetchError, ModelFormatError, TokenizerFormatError, WebGPUUnavailableError, type ForkwiseErrorCode,
} from './errors.ts';
export type { Gauge } from './decode/decoder.ts';
export { DECODER_SPECS, decoderTable, eventsOf, summaryOf, type DecoderEvent, type DecoderParams, type DecoderSections, type DecoderSummary } from './decode/registry.ts';
export { DecoderOptionError, type DecoderSpec, type ParamSpec, type Requirements } from './decode/spec.ts';
export type { CntpEvent, CntpSummary } from './decode/cntp.ts';
export type { EadEvent, EadSummary } from './decode/ead.ts';
export type { SrgenEvent, SrgenSummary } from './decode/srgen.ts';
export type { EntropixAttention, EntropixBranch, EntropixEvent, EntropixSummary } from './decode/entropix.ts';
export type { AdaptiveTemperatureSummary } from './decode/adaptive-temperature.ts';
export type { SamplingSummary } from './decode/sampling-decoder.ts';
export type { AdapterDescription, GpuContextOptions } from './gpu/device.ts';
export type { Architecture, ModelConfig, RopeLayout } from './model/config.ts';
export type { HfFolder } from './model/formats/hf.ts';
export type { ModelSource } from './model/load.ts';
export { blobReader, bytesReader, urlReader } from './model/readers.ts';
export type { ByteSource } from './model/source.ts';
export type { ByteReader, ModelFormat, TensorType } from './model/tensors.ts';
export type { Candidate, StepStats } from './runtime/stats.ts';
export { Tokenizer, TokenStreamDecoder } from './tokenizer/tokenizer.ts';
export type { ChatMessage, TextTokenizer, TokenTextStream } from './tokenizer/types.ts';
export { WorkerEngine, createWorkerEngine } from './worker/client.ts';
export { serveEngine } from './worker/serve.ts';
export type { MessageEndpoint } from './worker/protocol.ts';
export * from './openai/index.ts';
