// The public engine: a GPU device, one loaded model (weights, tokenizer, session) and
// generate(), an async iterator of token steps with their uncertainty statistics.
import { checkBoolean, checkGenerateCall, checkGpuOptions, checkLoadOptions, checkTokenIds } from './arguments.ts';
import type { Decoder, Emission, Gauge } from './decode/decoder.ts';
import {
  DECODERS, type DecoderEvent, type DecoderName, type DecoderSections, type DecoderSummary, resolveDecoder,
} from './decode/registry.ts';
import type { SamplerOptions } from './decode/samplers.ts';
import type { Requirements } from './decode/spec.ts';
import {
  AbortedError, ContextOverflowError, ForkwiseError, GpuAllocationError, InvalidArgumentError, ModelFormatError,
  WebGPUUnavailableError, checkInteger,
} from './errors.ts';
import { BufferPool, type GpuMemory, gpuMemory } from './gpu/buffers.ts';
import { type AdapterDescription, type GpuContextOptions, GpuContext, acquireGpu } from './gpu/device.ts';
import { Kernels, MAX_TOP_K } from './gpu/kernels.ts';
import { type ModelConfig, kvDim, parameterCount, qDim } from './model/config.ts';
import { type ModelSource, openModel } from './model/load.ts';
import { type ByteSource, readSource, rememberUrl } from './model/source.ts';
import type { ModelFiles, ModelFormat, TensorType } from './model/tensors.ts';
import { type MatrixFormat, type WeightsOption, checkWeightsOption } from './model/weight-types.ts';
import { type GpuWeights, uploadWeights } from './model/weights.ts';
import { SessionRuntime } from './runtime/decode-runtime.ts';
import { type Eviction, type MemoryOptions, type MemoryPolicy, type MemorySizes, RowMemory, memorySizes, surprisal } from './runtime/memory.ts';
import { PREFILL_CHUNK, Session } from './runtime/session.ts';
import { type BatchItem, RowView, batchable, demultiplex, sharedSampling } from './batch.ts';
import type { AttentionStats, StepStats } from './runtime/stats.ts';
import { buildTokenizer } from './tokenizer/load.ts';
import type { ChatMessage, TextTokenizer, TokenTextStream } from './tokenizer/types.ts';

/** Candidates per step unless loadModel asks otherwise: 24 B of statistics + 5 × 8 B = 64 B read back. */
export const DEFAULT_TOP_K = 5;

export type LoadPhase = 'download' | 'parse' | 'upload' | 'compile' | 'ready';

export interface LoadProgress {
  phase: LoadPhase;
  /** Bytes downloaded (download) or steps done (upload, compile). */
  loaded: number;
  total: number;
  /** Overall progress in [0, 1]. */
  fraction: number;
}

export interface LoadModelOptions {
  /**
   * The model: a llama2.c checkpoint, a GGUF file, or a Hugging Face folder (config.json,
   * *.safetensors, tokenizer.json, …), as a URL (a folder URL ends with '/'), 'hf:Owner/Name'
   * (the hub, see `hubUrl`), bytes, a Blob/File, the Files of a folder, or a ModelFolder.
   */
  model: ModelSource;
  /** The tokenizer.bin of a llama2.c checkpoint (other formats carry their tokenizer). */
  tokenizer?: ByteSource;
  /**
   * Positions a session allocates (KV cache, RoPE table); default min(trained context, 4096).
   * Never more than the model was trained for.
   */
  contextLength?: number;
  /** Base of 'hf:' sources, default 'https://huggingface.co' (files at <base>/<repo>/resolve/<revision>/<file>). */
  hubUrl?: string;
  /** Revision of 'hf:' sources, default 'main'. */
  revision?: string;
  /**
   * Largest storage binding to plan buffers for (default: the device's limit). A classifier
   * larger than this is split into vocabulary tiles.
   */
  maxBindingBytes?: number;
  onProgress?: (progress: LoadProgress) => void;
  signal?: AbortSignal;
  /** Top candidates computed per step, 1..64 (default 5: a 64-byte StepStats record). */
  topK?: number;
  /**
   * A smaller model with the same vocabulary (any format; a llama2.c one shares `tokenizer`), for
   * decoder 'ead' (entropy adaptive decoding switches between it and the model).
   */
  smallModel?: ModelSource;
  /**
   * Cache API store for model URLs (browsers): a later load, e.g. after a reload, reads the bytes
   * from browser storage instead of the network. Keyed by URL: version the URL when the file
   * changes, or pass false to disable. Default 'forkwise-models'.
   */
  cache?: string | false;
  /**
   * GPU format of the weight matrices: 'q8' / 'q4' quantise to Q8_0 / Q4_0 blocks at load, 'f16'
   * to halves (BF16 stays BF16), 'f32' dequantises. Default: the file's own types (GGUF blocks,
   * HF F16/BF16; f32 for llama2.c). Norms, biases, activations and the KV cache are f32 always.
   */
  weights?: WeightsOption;
}

export interface ModelInfo {
  config: ModelConfig;
  format: ModelFormat;
  /** The file's dominant weight type as stored ('F32', 'BF16', 'Q4_K', …). */
  dtype: TensorType;
  /** Positions a generation may use (prompt + output). */
  contextLength: number;
  parameterCount: number;
  /** The model has a chat template: generate({ messages }) and { chat: true } apply it. */
  hasChatTemplate: boolean;
  /** Parameters of the small model (EAD), or null when none is loaded. */
  smallParameterCount: number | null;
  /** Bytes of GPU memory held by weights, activations and the KV cache. */
  gpuBytes: number;
  /** The model's weight bytes on the GPU by storage format (e.g. { q4_k, q6_k, f32 }). */
  weightBytes: Partial<Record<MatrixFormat, number>>;
  loadMs: number;
}

export { DECODERS, type DecoderEvent, type DecoderName, type DecoderSummary };

/** Positions a session allocates unless loadModel asks otherwise (and the model allows). */
export const DEFAULT_CONTEXT = 4096;

/**
 * Options of generate(): the sampler stages of samplers.ts, shared by every decoder (temperature
 * — default 1; each decoder may declare its own defaults: 0.6 for SRGen, 0 for greedy and EAD —
 * topK, topP, minP, typical, topH, repetitionPenalty, entropyTopK), and each decoder's parameters
 * in its own section: `{ decoder: 'ead', ead: { tau: 1.5 } }` (src/decode/registry.ts; README's
 * decoder table lists them). The flat parameter keys below are the older form, still accepted for
 * the chosen decoder; a section's value wins over them.
 */
export interface GenerateOptions extends Omit<SamplerOptions, 'vocabSize'>, DecoderSections {
  /** New tokens to produce at most (default: until EOS, BOS for llama2.c stories, or the context is full). */
  maxTokens?: number;
  /** Apply the model's chat template to the prompt as one user message (with the generation prompt). */
  chat?: boolean;
  /** One of DECODERS (default 'greedy', the argmax as llama2.c). */
  decoder?: DecoderName;
  /** @deprecated `cntp.hLo`. CNTP: entropy (nats) below which one trial runs; default 0.01. */
  hLo?: number;
  /** @deprecated `cntp.hHi`. CNTP: entropy at which maxTrials run; default 1.5. */
  hHi?: number;
  /** @deprecated `cntp.maxTrials`. CNTP: N_max, at most the model's KV rows (default 10). */
  maxTrials?: number;
  /** @deprecated `cntp.sequential`. CNTP: run trials one after another instead of as one batch (same tokens; for benchmarks). */
  trialsInSequence?: boolean;
  /** @deprecated `ead.tau`. EAD: threshold τ on the rolling mean entropy in bits (±Infinity allowed); default 1. */
  tau?: number;
  /** @deprecated `ead.window` (EAD's rolling window, default 5) or `srgen.window` (SRGen's N, default 25). */
  window?: number;
  /** @deprecated `ead.minStay`. EAD: tokens the active model produces before it may hand over (d_min); default 4. */
  minStay?: number;
  /** @deprecated `srgen.lambda`. SRGen: weight λ of the entropy term in the reflection loss; default 0.05. (SRGen reads `window` as N, default 25.) */
  lambda?: number;
  /** @deprecated `srgen.lr`. SRGen: AdamW learning rate for δ; default 0.01. */
  lr?: number;
  /** @deprecated `srgen.optSteps`. SRGen: AdamW steps per reflection; default 3. */
  optSteps?: number;
  /** @deprecated `srgen.maxReflections`. SRGen: reflections per generation at most; default 20. */
  maxReflections?: number;
  /** @deprecated `srgen.k`. SRGen: K, standard deviations above the window's mean entropy; default 4. */
  k?: number;
  /** @deprecated `srgen.sigmaMin`. SRGen: σ_min, floor of the window's standard deviation; default 0.5. */
  sigmaMin?: number;
  /** @deprecated `srgen.thetaMin`. SRGen: θ_min, floor of the threshold (nats); default 1.8. */
  thetaMin?: number;
  /** @deprecated `srgen.theta0`. SRGen: θ_0, the threshold before N entropies are known; default 3.0. */
  theta0?: number;
  /** RNG seed; default 0. The same seed, prompt and options give the same text everywhere. */
  seed?: number;
  /**
   * Report the last layer's attention statistics with every step (GenerationStep.attention; on
   * anyway for decoders that require them, e.g. entropix). Off by default: 16 + 4·n_heads more
   * bytes read back per step.
   */
  attention?: boolean;
  /**
   * Start from the KV rows the model's session already holds where they match (default true):
   * the longest common prefix of token ids between the last generation's sequence and this
   * prompt is kept and only the rest is prefilled, so a conversation's next turn reads only the
   * tokens its template adds. Greedy results are the same as with `reuse: false` (the same sums
   * in the same order). Decoders that run the prompt themselves (EAD) or keep per-position state
   * (SRGen) always start fresh.
   */
  reuse?: boolean;
  /**
   * What to do when the conversation outgrows the context (default policy 'none': a prompt that
   * does not fit is a ContextOverflowError, a generation that fills it ends with 'context').
   * 'sirllm' keeps the attention sinks, the recent positions and the tokens of highest decayed
   * self-information and evicts the rest (re-positioning the kept ones); 'window' keeps sinks and
   * recent positions only. Each generate() is a turn; the memory carries over to the next one.
   */
  memory?: MemoryOptions;
  signal?: AbortSignal;
}

export interface TopCandidate {
  id: number;
  text: string;
  logit: number;
  /** Probability under softmax of the raw logits. */
  prob: number;
}

export interface GenerationStep {
  /** 0 for the first generated token. */
  index: number;
  /** Position whose logits produced this token. */
  pos: number;
  /** The token fed at `pos`. */
  inputToken: number;
  tokenId: number;
  /** Newly complete text (may be '' while a multi-byte character is pending). */
  text: string;
  lse: number;
  entropy: number;
  varentropy: number;
  maxLogit: number;
  topK: TopCandidate[];
  /** Which model produced the token, for decoders with two (EAD: 'small' | 'large'). */
  model?: string;
  /** The decoder's value and threshold at this token, in nats (EAD: rolling mean entropy vs τ; SRGen: entropy vs θ). */
  gauge?: Gauge;
  /** What the decoder did to produce this token (a CNTP branch, an EAD switch, an SRGen reflection, an entropix branch); also in `result.events`. */
  event?: DecoderEvent;
  /** The last layer's attention statistics at `pos` (entropies in bits), when asked for (GenerateOptions.attention). */
  attention?: AttentionStats;
}

/** 'eos': an end-of-sequence id of the model; 'bos': a llama2.c story ended (its models emit BOS). */
export type FinishReason = 'eos' | 'bos' | 'max_tokens' | 'context';

export interface GenerationTiming {
  /** From generate() to the first token, including prefill. */
  ttftMs: number;
  prefillMs: number;
  prefillTokens: number;
  decodeMs: number;
  /** Decode forwards (one per token after the first, plus one that produced a final BOS). */
  decodeTokens: number;
  prefillTokPerSec: number;
  decodeTokPerSec: number;
  /** Bytes mapped back from the GPU per decode step. */
  readbackBytesPerStep: number;
  /**
   * Leading prompt tokens not fed again (GenerateOptions.reuse): their KV rows were kept from the
   * previous generation (with a memory policy: kept or evicted in an earlier turn).
   */
  reusedTokens: number;
}

/** What a memory policy did in one generation (GenerationResult.memory). */
export interface MemoryReport {
  policy: MemoryPolicy;
  /** Each eviction: logical index it happened at, positions kept and evicted. */
  evictions: Eviction[];
  /** Indices into `tokens` of the tokens row 0 holds at the end (attention sinks, recent, kept by score). */
  kept: number[];
  /** Their scores (decayed −ln p, nats), same order. */
  scores: number[];
  /** The text of the kept tokens, in order (what the model still sees of the conversation). */
  keptText: string;
}

export interface GenerationResult {
  /** The prompt text as fed (after the chat template, when one applied). */
  prompt: string;
  /** Every token fed or produced, BOS first. */
  tokens: number[];
  promptTokenCount: number;
  /** The text of `tokens` (prompt included; llama2.c models: as llama2.c prints it). */
  text: string;
  /** Only the generated part. */
  completion: string;
  finish: FinishReason;
  steps: GenerationStep[];
  /** What the decoder did besides emitting (CNTP branches, EAD switches, SRGen reflections). */
  events: DecoderEvent[];
  /** The decoder's totals (EAD: largeShare, costRatio, catchUpTokens); {} for the others. */
  summary: DecoderSummary;
  timing: GenerationTiming;
  /** With a memory policy: what it kept and evicted. */
  memory?: MemoryReport;
}

/** An in-progress generation: iterate it for steps; `result` settles when it ends. */
export class Generation implements AsyncIterable<GenerationStep> {
  readonly result: Promise<GenerationResult>;
  private settle!: { resolve: (r: GenerationResult) => void; reject: (e: unknown) => void };
  private iterated = false;

  constructor(private readonly source: AsyncGenerator<GenerationStep, GenerationResult>) {
    this.result = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    this.result.catch(() => {}); // observed through iteration or `result`, never unhandled
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<GenerationStep, void> {
    if (this.iterated) throw new InvalidArgumentError('a Generation can be iterated only once');
    this.iterated = true;
    try {
      for (;;) {
        const next = await this.source.next();
        if (next.done) {
          this.settle.resolve(next.value);
          return;
        }
        yield next.value;
      }
    } catch (error) {
      this.settle.reject(error);
      throw error;
    } finally {
      await this.source.return(undefined as never);
      this.settle.reject(new AbortedError('iteration stopped before the generation ended'));
    }
  }

  /** Runs to the end without looking at steps. */
  async complete(): Promise<GenerationResult> {
    if (!this.iterated) for await (const _ of this);
    return this.result;
  }
}

interface LoadedModel {
  weights: GpuWeights;
  tokenizer: TextTokenizer;
  session: Session;
  info: ModelInfo;
  pool: BufferPool;
  /** EAD's small model: same vocabulary, its own weights and KV cache. */
  small: { weights: GpuWeights; session: Session; parameterCount: number } | null;
  /** The load's maxBindingBytes (KV rows grown later stay within it). */
  maxBindingBytes?: number;
  /** What row 0 holds of the conversation, once a generation with a memory policy ran. */
  memory?: RowMemory;
}

/** Text or a conversation to generate from. */
export type Prompt = string | { messages: readonly ChatMessage[] };

export interface EngineOptions extends GpuContextOptions {
  /**
   * After a GPU device loss, acquire a new device and reload the model by itself, once per loss
   * (as recover() does; a loss during that recovery is not retried). The generation or load in
   * flight still rejects with DeviceLostError; the calls after it run on the new device.
   * Default false: the engine rejects with DeviceLostError until recover() is called.
   */
  autoRecover?: boolean;
}

export interface RecoverOptions {
  /** A new device, for an engine made on a device its caller owns (else one is acquired as at creation). */
  device?: GPUDevice;
  onProgress?: (progress: LoadProgress) => void;
  signal?: AbortSignal;
}

export async function createEngine(options: EngineOptions = {}): Promise<Engine> {
  checkGpuOptions(options);
  if (options.autoRecover !== undefined && typeof options.autoRecover !== 'boolean') {
    throw new InvalidArgumentError(`autoRecover must be true or false, got ${typeof options.autoRecover}`);
  }
  return new Engine(await acquireGpu(options), options);
}

/** The abort reason dispose() gives the work it cancels. */
const DISPOSED = Symbol('disposed');

/**
 * Concurrency: one FIFO lock. loadModel(), score(), recover() and every generation (from its first
 * next() / complete() until it ends or stops) run alone, in the order they were called (started).
 * A generation runs on the model loaded when its turn comes; dispose() cancels the work in flight
 * and queued (AbortedError) and frees the model once the step in flight has ended.
 */
export class Engine {
  private loaded: LoadedModel | null = null;
  private ctx: GpuContext;
  private kernels: Kernels;
  /** The tail of the FIFO lock: loads, generations, scores and recoveries run one at a time. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Work queued or running under the lock (dispose() frees at once only when there is none). */
  private busy = 0;
  /** Loads queued or running: a generation made meanwhile is planned at its turn. */
  private pendingLoads = 0;
  /** The load options of the loaded model (sources kept by reference), replayed by recover(). */
  private loadedWith: LoadModelOptions | null = null;
  /** Controllers of the work in flight or queued; dispose() aborts them. */
  private readonly active = new Set<AbortController>();
  /** The lost context whose automatic recovery was attempted (autoRecover: once per loss). */
  private autoTried: GpuContext | null = null;
  private readonly options: EngineOptions;

  constructor(gpu: GpuContext, options: EngineOptions = {}) {
    this.options = { ...options };
    this.ctx = gpu;
    this.kernels = new Kernels(gpu);
    this.watch(gpu);
  }

  /** The GPU context: a new one after recover(). */
  get gpu(): GpuContext {
    return this.ctx;
  }

  /** True once the device is lost, until recover() (or autoRecover) replaces it. */
  get lost(): boolean {
    return this.ctx.lost;
  }

  get adapter(): AdapterDescription {
    return this.gpu.adapter;
  }

  get model(): ModelInfo | null {
    return this.loaded?.info ?? null;
  }

  get tokenizer(): TextTokenizer {
    return this.require().tokenizer;
  }

  private require(): LoadedModel {
    this.gpu.assertAlive();
    if (!this.loaded) throw new InvalidArgumentError('no model is loaded: call loadModel() first');
    return this.loaded;
  }

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    this.busy++;
    const go = () => work().finally(() => this.busy--);
    const run = this.queue.then(go, go);
    this.queue = run.catch(() => {});
    return run;
  }

  /**
   * `work` under the lock with a signal that fires on the caller's abort or dispose(), on a live
   * device (recovered first under autoRecover); its errors are typed (loss, disposal, limits).
   */
  private turn<T>(signal: AbortSignal | undefined, work: (signal: AbortSignal) => Promise<T>, needsDevice = true): Promise<T> {
    const link = this.link(signal);
    return this.exclusive(async () => {
      const ctx = this.ctx;
      try {
        checkAbort(link.signal);
        if (needsDevice) await this.alive(link.signal);
        return await work(link.signal);
      } catch (error) {
        throw await this.failure(error, link.signal, ctx);
      } finally {
        link.end();
      }
    });
  }

  /** A signal that fires with the caller's `signal` or with dispose(); `end` forgets it. */
  private link(signal?: AbortSignal): { signal: AbortSignal; end: () => void } {
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal?.reason);
    if (signal?.aborted) controller.abort(signal.reason);
    else signal?.addEventListener?.('abort', onAbort, { once: true });
    this.active.add(controller);
    return {
      signal: controller.signal,
      end: () => {
        this.active.delete(controller);
        signal?.removeEventListener?.('abort', onAbort);
      },
    };
  }

  /** The error a failed operation reports: disposal and device loss first, limits added to allocation errors. */
  private async failure(error: unknown, signal: AbortSignal, ctx: GpuContext): Promise<unknown> {
    if (signal.aborted && signal.reason === DISPOSED) return new AbortedError('the engine was disposed');
    if (error instanceof AbortedError && signal.aborted) return error;
    // A loss surfaces first as a failed mapAsync (an AbortError) or a validation error; the
    // device's lost promise settles within a task of it.
    if (!ctx.lost && !(error instanceof ForkwiseError)) await settleWithin(ctx.whenLost, 200);
    if (ctx.lost) return ctx.lostError();
    if (error instanceof GpuAllocationError && !/maxStorageBufferBindingSize/.test(error.message)) {
      const { maxBufferSize, maxStorageBufferBindingSize } = ctx.device.limits;
      return new GpuAllocationError(`${error.message} (device limits: maxBufferSize ${maxBufferSize}, maxStorageBufferBindingSize ${maxStorageBufferBindingSize})`, error);
    }
    return error;
  }

  /** Under the lock: throws DeviceLostError on a lost device, or recovers it (autoRecover, once per loss). */
  private async alive(signal?: AbortSignal): Promise<void> {
    const ctx = this.ctx;
    if (!ctx.lost) return;
    if (!this.options.autoRecover || this.autoTried === ctx) throw ctx.lostError();
    this.autoTried = ctx;
    try {
      await this.revive({ signal });
    } finally {
      if (this.ctx.lost) this.autoTried = this.ctx; // lost again while recovering: not retried
    }
  }

  /** Notes a loss of `ctx`; under autoRecover, recovers as soon as the lock is free. */
  private watch(ctx: GpuContext): void {
    void ctx.whenLost.then(() => {
      if (this.ctx === ctx && this.options.autoRecover) this.exclusive(() => this.alive()).catch(() => {});
    });
  }

  /**
   * Downloads (or takes) the checkpoint and tokenizer, validates both, uploads the weights and
   * compiles the kernels. On any error the previously loaded model, if any, stays in place.
   * Queued behind the work in flight (FIFO); the options are kept so recover() can replay the load
   * (bytes, Blobs, Files and readers by reference; URLs are read again, through the Cache API).
   */
  loadModel(options: LoadModelOptions): Promise<ModelInfo> {
    this.pendingLoads++;
    const signal = typeof options === 'object' && options !== null ? options.signal : undefined;
    return this.turn(signal, (linked) => {
      checkLoadOptions(options);
      return this.load({ ...options, signal: linked });
    }).finally(() => this.pendingLoads--);
  }

  /**
   * After a device loss (DeviceLostError): acquires a new device (as at creation, or `device`)
   * and loads the model that was loaded again from the same options, so generation gives the
   * same tokens as before the loss. Queued like a load; resolves with the model (null if none
   * was loaded). On a live device with the model in place it does nothing.
   */
  recover(options: RecoverOptions = {}): Promise<ModelInfo | null> {
    return this.turn(options.signal, (signal) => this.revive({ ...options, signal }), false);
  }

  /** Under the lock: a new device if the current one is lost, then the kept load replayed. */
  private async revive(o: RecoverOptions): Promise<ModelInfo | null> {
    const replay = this.loadedWith;
    if (!this.ctx.lost && !o.device && (this.loaded || !replay)) return this.loaded?.info ?? null;
    if (this.ctx.lost || o.device) {
      if (this.options.device && !o.device) {
        throw new WebGPUUnavailableError('the engine runs on a device its caller owns: pass a new one, recover({ device })');
      }
      this.pendingLoads++;
      const ctx = await acquireGpu(o.device ? { device: o.device, mapWait: this.options.mapWait } : this.options).finally(() => this.pendingLoads--);
      this.unload(); // buffers of the lost device: nothing to wait for
      this.ctx = ctx;
      this.kernels = new Kernels(ctx);
      this.watch(ctx);
    }
    if (!replay) return null;
    this.pendingLoads++; // generations made meanwhile wait for the model
    try {
      return await this.load({ ...replay, signal: o.signal, onProgress: o.onProgress });
    } finally {
      this.pendingLoads--;
    }
  }

  private async load(o: LoadModelOptions): Promise<ModelInfo> {
    this.gpu.assertAlive();
    checkLoadOptions(o);
    const t0 = performance.now();
    const topK = checkInteger('topK', o.topK ?? DEFAULT_TOP_K, 1, MAX_TOP_K);
    if (o.contextLength !== undefined) checkInteger('contextLength', o.contextLength, 1, 1 << 24);
    const report = (phase: LoadPhase, loaded: number, total: number, fraction: number) =>
      o.onProgress?.({ phase, loaded, total, fraction: Math.min(1, fraction) });
    // Headers first (parse), then the weights stream to the GPU tensor by tensor as they are read
    // (upload: bytes of the tensors; ~0.9 of the work), then the kernels compile.
    const cache = o.cache === false ? null : o.cache ?? 'forkwise-models';
    const source = { signal: o.signal, cache, hubUrl: o.hubUrl, revision: o.revision };
    report('parse', 0, 1, 0);
    const [opened, openedSmall, tokenizerBytes] = await Promise.all([
      openModel(o.model, source),
      o.smallModel === undefined ? null : openModel(o.smallModel, source),
      o.tokenizer === undefined ? null : readSource(o.tokenizer, 'tokenizer', undefined, o.signal, cache),
    ]);
    checkAbort(o.signal);
    const model = opened.files;
    const small = openedSmall?.files ?? null;
    const tokenizer = this.tokenizerFor(model, tokenizerBytes);
    if (small && small.config.vocabSize !== model.config.vocabSize) {
      throw new ModelFormatError(`the small model's vocabulary (${small.config.vocabSize}) differs from the model's (${model.config.vocabSize})`);
    }
    const contextLength = Math.min(o.contextLength ?? DEFAULT_CONTEXT, model.config.trainedContext);
    checkFits(this.gpu, model.config, contextLength, 1, o.maxBindingBytes);
    if (small) checkFits(this.gpu, small.config, Math.min(contextLength, small.config.trainedContext), 1, o.maxBindingBytes);
    const pool = new BufferPool(this.gpu);
    const uploaded: GpuWeights[] = [];
    try {
      const upload = { contextLength, maxBindingBytes: o.maxBindingBytes, signal: o.signal, weights: checkWeightsOption(o.weights) };
      const weights = await uploadWeights(this.gpu, model, {
        ...upload, onProgress: (done, total) => report('upload', done, total, total ? (0.9 * done) / total : 0.9),
      });
      uploaded.push(weights);
      const smallWeights = small && (await uploadWeights(this.gpu, small, { ...upload, contextLength: Math.min(contextLength, small.config.trainedContext) }));
      if (smallWeights) uploaded.push(smallWeights);
      checkAbort(o.signal);
      report('compile', 0, 1, 0.9);
      const session = await Session.create(this.gpu, this.kernels, pool, weights, { topK });
      const smallLoaded = small && smallWeights && {
        weights: smallWeights,
        session: await Session.create(this.gpu, this.kernels, pool, smallWeights, { topK }),
        parameterCount: parameterCount(small.config),
      };
      const info: ModelInfo = {
        config: model.config,
        format: model.format,
        dtype: model.dtype,
        contextLength,
        parameterCount: parameterCount(model.config),
        hasChatTemplate: tokenizer.chatTemplate !== null,
        smallParameterCount: smallLoaded ? smallLoaded.parameterCount : null,
        gpuBytes: uploaded.reduce((n, w) => n + w.bytes, 0) + pool.bytes,
        weightBytes: weights.bytesByFormat,
        loadMs: performance.now() - t0,
      };
      checkAbort(o.signal); // aborted while compiling: the previous model stays
      this.gpu.assertAlive(); // lost while loading: nothing uploaded is usable
      this.unload();
      this.loaded = { weights, tokenizer, session, info, pool, small: smallLoaded || null, maxBindingBytes: o.maxBindingBytes };
      const { signal: _signal, onProgress: _onProgress, ...replay } = o;
      this.loadedWith = replay;
      // Validated: keep the URLs' files for the next load (best effort, in the background).
      if (cache) for (const url of [...opened.urls, ...(openedSmall?.urls ?? []), ...(typeof o.tokenizer === 'string' ? [o.tokenizer] : [])]) void rememberUrl(url, cache);
      report('ready', 1, 1, 1);
      return info;
    } catch (error) {
      uploaded.forEach((w) => w.destroy());
      pool.destroy();
      throw error;
    }
  }

  /** The model's own tokenizer, or for a llama2.c checkpoint the tokenizer.bin given with it. */
  private tokenizerFor(model: ModelFiles, tokenizerBytes: ArrayBuffer | null): TextTokenizer {
    const source = model.tokenizer ?? (tokenizerBytes && { kind: 'llama2c' as const, bytes: new Uint8Array(tokenizerBytes) });
    if (!source) {
      throw new InvalidArgumentError(`a ${model.format} model needs a tokenizer: pass tokenizer (its tokenizer.bin) to loadModel()`);
    }
    return buildTokenizer(source, { modelVocabSize: model.config.vocabSize, eosIds: model.config.eosIds });
  }

  private unload(): void {
    if (!this.loaded) return;
    this.loaded.session.dispose();
    this.loaded.weights.destroy();
    this.loaded.small?.session.dispose();
    this.loaded.small?.weights.destroy();
    this.loaded.pool.destroy();
    this.loaded = null;
  }

  /**
   * Generates from `prompt` (text, or `{ messages }` rendered with the model's chat template);
   * validates everything before any GPU work.
   */
  generate(prompt: Prompt, options: GenerateOptions = {}): Generation {
    const o = checkGenerateCall(options);
    const model = this.loaded;
    if (this.ctx.lost && !this.options.autoRecover) throw this.ctx.lostError();
    // With the model in place, plan now (errors before work); while a load or a recovery is
    // pending, check what needs no model now and plan at the generation's turn.
    const loop = (m: LoadedModel, p: Plan) => this.decodeLoop(m, p);
    if (model && this.pendingLoads === 0 && !this.ctx.lost) return new Generation(this.run(prompt, o, { model, plan: this.plan(model, prompt, o) }, loop));
    if (!model && this.pendingLoads === 0 && !this.ctx.lost) throw new InvalidArgumentError('no model is loaded: call loadModel() first');
    checkGenerateOptions(o);
    return new Generation(this.run(prompt, o, null, loop));
  }

  /**
   * `n` sequences from one prompt in n KV rows, stepped together (one forward pass per token for
   * all of them): OpenAI's `n`. Row i's draws are keyed by (seed, row i, position), so the first
   * equals generate(prompt, options) and each other one is its own seeded stream. For decoders
   * over one row (greedy, sample, typical, top-H, entropy top-k, adaptive temperature, entropix);
   * CNTP, EAD and SRGen, which use rows or models of their own, run one generate() per choice.
   * Closing one Generation early (break, return) stops its row; the others go on.
   */
  generateBatch(prompt: Prompt, options: GenerateOptions, n: number): Generation[] {
    const o = checkGenerateCall(options);
    checkInteger('n', n, 1, MAX_BATCH_ROWS);
    const model = this.loaded;
    if (this.ctx.lost && !this.options.autoRecover) throw this.ctx.lostError();
    if (!model && this.pendingLoads === 0 && !this.ctx.lost) throw new InvalidArgumentError('no model is loaded: call loadModel() first');
    const ready = model && this.pendingLoads === 0 && !this.ctx.lost;
    const planned = ready ? { model, plan: this.plan(model, prompt, o) } : null;
    if (planned) checkBatch(planned.plan, n);
    else checkGenerateOptions(o);
    const active = new Array<boolean>(n).fill(true);
    const source = this.run(prompt, o, planned, (m, p) => this.batchLoop(m, p, o, n, active));
    return demultiplex(source, n, active).map((rows) => new Generation(rows));
  }

  /**
   * Teacher forcing: the statistics of the logits at every position of `tokens` (BOS first),
   * e.g. to score a text or compare with a reference implementation.
   */
  score(tokens: readonly number[]): Promise<StepStats[]> {
    const check = (model: LoadedModel) => {
      checkTokenIds('tokens', tokens, model.info.config.vocabSize);
      if (tokens.length === 0) throw new InvalidArgumentError('score() needs at least one token');
      if (tokens.length > model.session.context) {
        throw new ContextOverflowError(`${tokens.length} tokens exceed the context of ${model.session.context}`);
      }
    };
    // errors before work, unless a recovery or a load is pending (then at its turn)
    const model = (this.ctx.lost && this.options.autoRecover) || (!this.loaded && this.pendingLoads > 0) ? null : this.require();
    if (model) check(model);
    return this.turn(undefined, async () => {
      // the model at this turn (a load queued before may have replaced it)
      const current = this.require();
      if (current !== model) check(current);
      current.session.reset();
      return current.session.score(0, tokens);
    });
  }

  private plan(model: LoadedModel, prompt: Prompt, o: GenerateOptions): Plan {
    const text = this.promptText(model, prompt, o);
    const { maxTokens, decoder, requires } = checkGenerateOptions(o, decoderContext(model));
    if (requires.smallModel) {
      if (!model.small) throw new InvalidArgumentError(`decoder ${decoder.name} needs a small model: pass smallModel to loadModel()`);
      decoder.attach?.({ small: new SessionRuntime(model.small.session) });
    }
    const context = model.session.context;
    const memory = memorySizes(o.memory, context);
    if (memory.policy !== 'none' && (decoder.start || requires.hiddenStates || requires.smallModel)) {
      throw new InvalidArgumentError(`memory policy ${memory.policy} needs a decoder over one model's row 0 (not ${decoder.name})`);
    }
    // A chat rendering carries its special tokens as text; a plain prompt gets the format's (BOS).
    const promptTokens = model.tokenizer.encode(text, { special: typeof prompt === 'string' && !o.chat });
    if (promptTokens.length === 0) throw new InvalidArgumentError('the prompt encodes to no tokens (and the model adds no BOS): give some text');
    if (promptTokens.length > context && memory.policy === 'none') {
      throw new ContextOverflowError(`the prompt is ${promptTokens.length} tokens; the context holds ${context}`);
    }
    // KV rows the decoder declared (CNTP's trials), allocated when a generation first needs them.
    const rows = requires.rows ?? 1;
    checkBoolean('attention', o.attention);
    checkBoolean('reuse', o.reuse);
    const reuse = o.reuse !== false && !decoder.start && !requires.hiddenStates && !requires.smallModel;
    return { prompt: text, promptTokens, maxTokens, decoder, requires, rows, signal: o.signal, attention: o.attention === true, reuse, memory };
  }

  /** The text to encode: the prompt, or the chat template's rendering of the conversation. */
  private promptText(model: LoadedModel, prompt: Prompt, o: GenerateOptions): string {
    if (typeof prompt === 'string') {
      if (!o.chat) return prompt;
      return this.renderChat(model, [{ role: 'user', content: prompt }]);
    }
    if (typeof prompt !== 'object' || prompt === null || !Array.isArray(prompt.messages)) {
      throw new InvalidArgumentError('prompt must be a string or { messages: [{ role, content }, …] }');
    }
    for (const [i, m] of prompt.messages.entries()) {
      if (typeof m !== 'object' || m === null || typeof m.role !== 'string' || typeof m.content !== 'string') {
        throw new InvalidArgumentError(`messages[${i}] must be { role: string, content: string }`);
      }
    }
    return this.renderChat(model, prompt.messages);
  }

  private renderChat(model: LoadedModel, messages: readonly ChatMessage[]): string {
    if (model.tokenizer.chatTemplate === null) {
      throw new InvalidArgumentError('this model has no chat template: pass a plain prompt without chat');
    }
    return model.tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true });
  }

  private async *run<Y, R>(
    prompt: Prompt, o: GenerateOptions, planned: { model: LoadedModel; plan: Plan } | null,
    loop: (model: LoadedModel, plan: Plan) => AsyncGenerator<Y, R>,
  ): AsyncGenerator<Y, R> {
    // Take the engine for the whole generation; release it once the GPU work has ended however
    // the generator ends (an abort or dispose() rejects at once, the lock waits for the step in
    // flight; a lost device has nothing left to wait for).
    const link = this.link(o.signal);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const turn = this.queue;
    this.queue = turn.then(() => held);
    this.busy++;
    const unlock = () => {
      this.busy--;
      release();
    };
    await turn;
    const ctx = this.ctx;
    let inner: AsyncGenerator<Y, R> | null = null;
    const stop = interruption(link.signal, ctx);
    try {
      checkAbort(link.signal);
      await this.alive(link.signal);
      const model = this.require();
      const plan = planned?.model === model ? planned.plan : this.plan(model, prompt, o);
      plan.signal = link.signal;
      inner = loop(model, plan);
      for (;;) {
        const step = inner.next();
        step.catch(() => {}); // an interruption may win the race; the step's end is awaited below
        const next = await Promise.race([step, stop.promise]);
        if (next.done) return next.value;
        yield next.value;
      }
    } catch (error) {
      throw await this.failure(error, link.signal, ctx);
    } finally {
      stop.end();
      link.end();
      if (!inner || ctx.lost) unlock();
      else inner.return(undefined as never).then(unlock, unlock);
    }
  }

  private async *decodeLoop(model: LoadedModel, plan: Plan): AsyncGenerator<GenerationStep, GenerationResult> {
    const { session, tokenizer } = model;
    const { decoder } = plan;
    const seqLen = session.context;
    if (plan.rows > session.kv.rows) checkFits(this.ctx, model.info.config, seqLen, plan.rows, model.maxBindingBytes);
    await session.ensureRows(plan.rows);
    if (plan.requires.hiddenStates) await session.keepHiddenStates();
    await session.setAttentionStats(plan.requires.attention || plan.attention ? undefined : null);
    const runtime = new SessionRuntime(session);
    const seq = new Sequence(model, plan);
    const { tokens, steps } = seq;
    const t0 = performance.now();
    // Readback of every session the decoder may use (EAD's small model too).
    const bytesRead = () => session.bytesRead + (model.small?.session.bytesRead ?? 0);
    const bytesBefore = bytesRead();
    // With a memory policy, row 0 is a window onto the conversation (RowMemory); without one,
    // position p of row 0 holds tokens[p].
    const memory = plan.memory.policy === 'none' ? null : (model.memory ??= new RowMemory(session, plan.memory));
    if (!memory) model.memory = undefined;
    const reserve = () => Math.min(plan.maxTokens - steps.length, Math.floor(seqLen / 4));
    const statsTemperature = (pos: number) => decoder.sampling(pos).statsTemperature ?? 1;

    checkAbort(plan.signal);
    // Leading prompt tokens not fed again: in row 0 already (or, with a memory, evicted earlier).
    let reused: number;
    let stats: StepStats;
    if (memory) {
      reused = memory.begin(tokens, plan.memory, plan.reuse);
      stats = await memory.prefill(tokens, reused, reserve(), (id) => runtime.feed([id], decoder.sampling(tokens.length - 1)));
    } else {
      reused = session.keepCommonPrefix(plan.reuse ? tokens : []);
      stats = decoder.start
        ? await decoder.start(runtime, tokens)
        : await runtime.feed(tokens.slice(reused), decoder.sampling(tokens.length - 1));
    }
    /** Logical tokens fed to row 0 (in it, or evicted by the memory). */
    const fed = () => (memory ? memory.next : runtime.length(0));
    const prefillMs = performance.now() - t0;
    let decodeMs = 0;
    while (seq.finish === null) {
      // pos: the position of the last token (its logits are `stats`), tokens.length − 1 unless a
      // memory has evicted: then row 0's (a decoder with its own models, EAD, may not feed row 0).
      const pos = memory ? runtime.length(0) - 1 : tokens.length - 1;
      const budget = Math.min(plan.maxTokens - steps.length, seqLen - pos);
      const ts = performance.now();
      const emission = await decoder.next({ stats, pos, tokens, budget, runtime });
      const accepted = seq.accept(emission, budget, { contextEnds: !memory });
      for (const [i, step] of accepted.entries()) {
        memory?.score(step.pos + 1, surprisal(emission.stats[i], step.tokenId, statsTemperature(pos + i)));
        yield step;
      }
      if (seq.finish === null) {
        checkAbort(plan.signal);
        if (emission.next) {
          stats = emission.next;
        } else {
          // Row 0 holds every token but the last (a decoder may have fed some, e.g. a CNTP trial).
          memory?.sync(tokens);
          const extra = fed() - (tokens.length - 1);
          if (extra > 0) {
            runtime.rollback(0, runtime.length(0) - extra);
            memory?.sync(tokens);
          }
          const ids = tokens.slice(fed());
          await memory?.makeRoom(ids.length + reserve());
          stats = await runtime.feed(ids, decoder.sampling(runtime.length(0) + ids.length - 1));
          memory?.sync(tokens);
        }
      }
      decodeMs += performance.now() - ts;
    }
    memory?.sync(tokens);
    const result = seq.result(decoder, { prefillMs, decodeMs, reused, bytesRead: bytesRead() - bytesBefore });
    if (memory) {
      result.memory = {
        policy: plan.memory.policy, evictions: [...memory.evictions], kept: [...memory.held], scores: [...memory.scores],
        keptText: tokenizer.decode(memory.held.map((i) => tokens[i])),
      };
    }
    return result;
  }

  /** generateBatch's loop: every live row's decoder draws, then one step feeds all their tokens. */
  private async *batchLoop(
    model: LoadedModel, plan: Plan, o: GenerateOptions, n: number, active: boolean[],
  ): AsyncGenerator<BatchItem<GenerationStep, GenerationResult>, void> {
    checkBatch(plan, n);
    const { session, tokenizer } = model;
    const seqLen = session.context;
    if (n > session.kv.rows) checkFits(this.ctx, model.info.config, seqLen, n, model.maxBindingBytes);
    await session.ensureRows(n);
    await session.setAttentionStats(plan.requires.attention || plan.attention ? undefined : null);
    const runtime = new SessionRuntime(session);
    const decoders = [plan.decoder, ...Array.from({ length: n - 1 }, () => checkGenerateOptions(o, decoderContext(model)).decoder)];
    const prompt = plan.promptTokens;
    const rows = Array.from({ length: n }, () => new Sequence(model, plan));
    const views = rows.map((_, r) => new RowView(runtime, r));
    const t0 = performance.now();
    const bytesBefore = session.bytesRead;
    session.reset();
    checkAbort(plan.signal);
    // The prompt but its last token once, copied into every row; the last token on every row, so
    // each row's statistics carry its own GPU draw.
    if (prompt.length > 1) await runtime.feed(prompt.slice(0, -1), sharedSampling(decoders, prompt.length - 2));
    runtime.fork(0, Array.from({ length: n - 1 }, (_, i) => i + 1));
    const first = await runtime.step(rows.map((_, r) => ({ id: prompt.at(-1)!, row: r })), sharedSampling(decoders, prompt.length - 1));
    const stats = new Map(first.map((x, r) => [r, x]));
    const prefillMs = performance.now() - t0;
    let decodeMs = 0;
    const live = () => rows.map((_, r) => r).filter((r) => rows[r].finish === null && active[r]);
    while (live().length > 0) {
      const ts = performance.now();
      const feeds: { id: number; row: number }[] = [];
      for (const r of live()) {
        const row = rows[r];
        const pos = row.tokens.length - 1;
        const budget = Math.min(plan.maxTokens - row.steps.length, seqLen - pos);
        const emission = await decoders[r].next({ stats: stats.get(r)!, pos, tokens: row.tokens, budget, runtime: views[r] });
        for (const step of row.accept(emission, budget, { contextEnds: true })) {
          feeds.push({ id: step.tokenId, row: r });
          yield { row: r, step };
        }
        if (row.finish) {
          const bytesRead = (session.bytesRead - bytesBefore) / n;
          yield { row: r, result: row.result(decoders[r], { prefillMs, decodeMs, reused: 0, bytesRead }) };
        }
      }
      const step = feeds.filter((f) => rows[f.row].finish === null && active[f.row]);
      if (step.length > 0) {
        checkAbort(plan.signal);
        const out = await runtime.step(step, sharedSampling(decoders, 0));
        step.forEach((f, i) => stats.set(f.row, out[i])); // a row's last token wins
      }
      decodeMs += performance.now() - ts;
    }
  }

  /**
   * GPU memory the engine holds now: bytes of every live buffer it created, in all and by owner
   * ('weights', 'kv', 'activations', 'readback', 'uniforms', 'srgen'; 'pool' for buffers freed
   * for reuse). It keeps none without a model: 0 after dispose().
   */
  memory(): GpuMemory {
    return gpuMemory(this.gpu);
  }

  /**
   * Frees the model's GPU memory; the engine can load another. The work in flight and queued
   * rejects with AbortedError ('the engine was disposed'); with none, the memory is free on
   * return, else once the step in flight has ended (the promise settles then).
   */
  dispose(): Promise<void> {
    for (const controller of this.active) controller.abort(DISPOSED);
    this.loadedWith = null;
    if (this.busy === 0) {
      this.unload();
      return Promise.resolve();
    }
    return this.exclusive(async () => {
      this.unload();
      this.loadedWith = null;
    });
  }
}

/**
 * Whether generateBatch can run these options (the decoder works on one row: not CNTP, EAD,
 * SRGen), checked without a model.
 */
export function canBatch(options: GenerateOptions): boolean {
  const { decoder, requires } = checkGenerateOptions(options);
  return batchable(decoder, requires) && (options.memory?.policy ?? 'none') === 'none';
}

/**
 * One sequence being generated (generate()'s, or a row of generateBatch): its tokens, steps,
 * events and text, how it ended, and its result.
 */
class Sequence {
  readonly tokens: number[];
  readonly steps: GenerationStep[] = [];
  readonly events: DecoderEvent[] = [];
  finish: FinishReason | null = null;
  private readonly text: TokenTextStream;
  private readonly promptText: string;
  private readonly eos: Set<number>;

  constructor(private readonly model: LoadedModel, private readonly plan: Plan) {
    this.tokens = [...plan.promptTokens];
    this.text = model.tokenizer.stream(this.tokens);
    this.promptText = model.tokenizer.decode(this.tokens);
    this.eos = new Set(model.info.config.eosIds.concat(model.tokenizer.eosIds));
  }

  /**
   * Appends the emission's tokens (at most `budget`), each as a step, until the sequence ends:
   * an EOS id, a llama2.c story's BOS, max tokens, or (contextEnds) the last position.
   */
  accept(emission: Emission, budget: number, o: { contextEnds: boolean }): GenerationStep[] {
    const { model, tokens } = this;
    if (emission.event) this.events.push(withTrialTexts(emission.event as DecoderEvent, model.tokenizer));
    const out: GenerationStep[] = [];
    for (const [i, next] of emission.tokens.slice(0, budget).entries()) {
      if (this.eos.has(next)) this.finish = 'eos';
      else if (next === model.tokenizer.bosId && model.info.format === 'llama2c') this.finish = 'bos';
      if (this.finish) break;
      const at = tokens.length - 1;
      tokens.push(next);
      const step = describeStep(model, this.steps.length, at, tokens[at], next, this.text.push(next), emission.stats[i]);
      if (emission.models) step.model = emission.models[i];
      if (emission.gauges) step.gauge = emission.gauges[i];
      if (i === 0 && emission.event) step.event = this.events.at(-1);
      this.steps.push(step);
      out.push(step);
      if (o.contextEnds && at + 1 >= model.session.context) this.finish = 'context';
      else if (this.steps.length >= this.plan.maxTokens) this.finish = 'max_tokens';
      if (this.finish) break;
    }
    return out;
  }

  /** The result once the sequence has ended; `bytesRead`: this sequence's share of the readback. */
  result(decoder: Decoder, t: { prefillMs: number; decodeMs: number; reused: number; bytesRead: number }): GenerationResult {
    const { plan, steps } = this;
    // Forwards after prefill along the kept sequence: one per token after the first (a CNTP
    // trial's tokens each count), plus the one that produced a final BOS or EOS.
    const ended = this.finish === 'bos' || this.finish === 'eos';
    const decodeTokens = Math.max(0, steps.length - 1) + (ended && steps.length > 0 ? 1 : 0);
    const completion = steps.map((s) => s.text).join('') + this.text.flush();
    const prefilled = plan.promptTokens.length - t.reused;
    return {
      prompt: plan.prompt, tokens: this.tokens, promptTokenCount: plan.promptTokens.length,
      text: this.promptText + completion, completion, finish: this.finish ?? 'max_tokens', steps, events: this.events,
      summary: (decoder.summary?.() ?? { decoder: decoder.name }) as DecoderSummary,
      timing: {
        ttftMs: steps.length ? t.prefillMs : 0, prefillMs: t.prefillMs, prefillTokens: prefilled, reusedTokens: t.reused,
        decodeMs: t.decodeMs, decodeTokens,
        prefillTokPerSec: prefilled / (t.prefillMs / 1000),
        decodeTokPerSec: decodeTokens > 0 ? decodeTokens / (t.decodeMs / 1000) : 0,
        readbackBytesPerStep: t.bytesRead / (1 + decodeTokens),
      },
    };
  }
}

function describeStep(model: LoadedModel, index: number, pos: number, inputToken: number, tokenId: number, text: string, s: StepStats): GenerationStep {
  return {
    index, pos, inputToken, tokenId, text,
    lse: s.lse, entropy: s.entropy, varentropy: s.varentropy, maxLogit: s.maxLogit,
    topK: s.topK.slice(0, model.session.topK).map((c) => ({
      id: c.id, logit: c.logit, prob: Math.exp(c.logit - s.lse), text: model.tokenizer.decode([c.id]),
    })),
    ...(s.attention ? { attention: s.attention } : {}),
  };
}

/** A generation checked and tokenized before its turn (Engine.plan). */
interface Plan {
  prompt: string;
  promptTokens: number[];
  maxTokens: number;
  decoder: Decoder;
  requires: Requirements;
  rows: number;
  signal?: AbortSignal;
  attention: boolean;
  reuse: boolean;
  memory: MemorySizes;
}

/** Most rows generateBatch runs together (each step's statistics rows stay within one LM-head launch). */
export const MAX_BATCH_ROWS = 16;

function checkBatch(plan: Plan, n: number): void {
  if (!batchable(plan.decoder, plan.requires)) {
    throw new InvalidArgumentError(`decoder ${plan.decoder.name} uses rows or models of its own: run one generate() per choice instead of a batch`);
  }
  if (plan.memory.policy !== 'none') throw new InvalidArgumentError('a batch runs without a memory policy');
  checkInteger('n', n, 1, MAX_BATCH_ROWS);
}

/** What checkGenerateOptions needs to know of a loaded model. */
function decoderContext(model: LoadedModel): DecoderContext {
  return {
    vocabSize: model.info.config.vocabSize,
    tokenizer: model.tokenizer,
    parameters: { small: model.small?.parameterCount ?? 1, large: model.info.parameterCount },
    eosIds: model.info.config.eosIds,
  };
}

/**
 * Throws GpuAllocationError, before any allocation, when a buffer a session binds whole would
 * exceed the device's limits: a KV cache layer (`rows` × `context` positions; also over
 * `maxBindingBytes`) or the per-token activations (one prefill chunk of rows).
 */
function checkFits(ctx: GpuContext, c: ModelConfig, context: number, rows: number, maxBindingBytes?: number): void {
  const { maxBufferSize, maxStorageBufferBindingSize } = ctx.device.limits;
  const limits = `maxBufferSize ${maxBufferSize}, maxStorageBufferBindingSize ${maxStorageBufferBindingSize}` +
    (maxBindingBytes === undefined ? '' : `, maxBindingBytes ${maxBindingBytes}`);
  const deviceLimit = Math.min(maxBufferSize, maxStorageBufferBindingSize);
  const kvLimit = Math.min(deviceLimit, maxBindingBytes ?? Infinity);
  const positionBytes = rows * kvDim(c) * 4;
  if (context * positionBytes > kvLimit) {
    throw new GpuAllocationError(
      `a KV cache layer of ${rows} row(s) × ${context} positions needs ${context * positionBytes} bytes, over the limits (${limits}): ` +
      `${Math.floor(kvLimit / positionBytes)} positions fit`,
    );
  }
  // Activations hold one prefill chunk of token rows, not the context (Session's PREFILL_CHUNK).
  const tokenBytes = 4 * Math.max(c.dim, qDim(c) + 2 * kvDim(c), 2 * c.hiddenDim);
  const rowsHeld = Math.min(context, PREFILL_CHUNK);
  if (rowsHeld * tokenBytes > deviceLimit) {
    throw new GpuAllocationError(
      `the activations of ${rowsHeld} token rows need ${rowsHeld * tokenBytes} bytes, over the limits (${limits}): ${Math.floor(deviceLimit / tokenBytes)} rows fit`,
    );
  }
}

/** Rejects when `signal` aborts or the device is lost, whichever first (`end` stops listening). */
/**
 * Who waits on each context's loss: one `whenLost` callback per context calls them, so a
 * generation's waiter is dropped when it ends (a callback per generation on the never-settling
 * `whenLost` would keep every generation's closure alive).
 */
const lossWaiters = new WeakMap<GpuContext, Set<() => void>>();

function onLoss(ctx: GpuContext, waiter: () => void): () => void {
  let waiters = lossWaiters.get(ctx);
  if (!waiters) {
    const set = new Set<() => void>();
    lossWaiters.set(ctx, set);
    void ctx.whenLost.then(() => set.forEach((w) => w()));
    waiters = set;
  }
  waiters.add(waiter);
  return () => waiters.delete(waiter);
}

function interruption(signal: AbortSignal, ctx: GpuContext): { promise: Promise<never>; end: () => void } {
  let onAbort = () => {};
  let offLoss = () => {};
  const promise = new Promise<never>((_, reject) => {
    onAbort = () => reject(new AbortedError());
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    offLoss = onLoss(ctx, () => reject(ctx.lostError()));
  });
  promise.catch(() => {});
  return {
    promise,
    end: () => {
      signal.removeEventListener('abort', onAbort);
      offLoss();
    },
  };
}

/** Waits for `promise` at most `ms` milliseconds. */
async function settleWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([promise, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

/** CNTP events carry their trials as token ids; add each trial's text for displays. */
function withTrialTexts(event: DecoderEvent, tokenizer: TextTokenizer): DecoderEvent {
  if (event.type !== 'cntp' || !Array.isArray(event.tokens)) return event;
  return { ...event, texts: event.tokens.map((ids) => tokenizer.decode(ids)) };
}

/** What checkGenerateOptions can use of a loaded model (absent when validating before a load). */
export interface DecoderContext {
  vocabSize?: number;
  tokenizer?: TextTokenizer;
  /** Parameter counts of the small and large model (EAD's cost ratio). */
  parameters?: { small: number; large: number };
  /** The model's end-of-sequence ids (besides the tokenizer's). */
  eosIds?: readonly number[];
}

/**
 * Validates the options against their decoder's schema (callers such as the CLI check them before
 * loading a model) and builds the decoder; throws InvalidArgumentError on NaN, out-of-range or
 * unknown values (DecoderOptionError, with `parameter`, for a decoder's own).
 */
export function checkGenerateOptions(o: GenerateOptions, c: DecoderContext = {}): { maxTokens: number; decoder: Decoder; requires: Requirements } {
  const maxTokens = o.maxTokens === undefined ? Number.MAX_SAFE_INTEGER : checkInteger('maxTokens', o.maxTokens, 1, Number.MAX_SAFE_INTEGER);
  const endIds = c.tokenizer ? [...new Set([c.tokenizer.bosId ?? -1, ...c.tokenizer.eosIds, ...(c.eosIds ?? [])])].filter((id) => id >= 0) : [];
  const { decoder, requires } = resolveDecoder(o as Record<string, unknown>, {
    seed: o.seed ?? 0,
    vocabSize: c.vocabSize,
    tokenizer: c.tokenizer,
    endIds,
    tokenIds: (marks) => marks.map((m) => c.tokenizer?.firstTokenMidText(m)).filter((id): id is number => id !== undefined),
    parameters: c.parameters ?? { small: 1, large: 1 },
  });
  return { maxTokens, decoder, requires };
}

function checkAbort(signal?: AbortSignal): void {
  if (signal?.aborted) throw new AbortedError();
}

export { ForkwiseError };
