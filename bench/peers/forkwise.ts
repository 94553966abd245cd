// The forkwise side of the end-to-end benchmark (bench/run.ts): the public API (src/index.ts) on
// navigator.gpu in the page, with the stories15M checkpoint and tokenizer served by Vite from
// public/models. Same protocol as the llama2.c peer (bench/peers/llama2c.ts):
//
// Positions follow run.c's `steps`: positions 0..steps-1 are forwarded, BOS and the prompt
// included. Prefill forwards the P = BOS + prompt positions and yields the first generated token;
// every further token costs one forward, so at most steps − P + 1 tokens are generated
// (maxTokens below); the engine also stops at its context (256) and — always — on BOS, like run.c.
//
// Phases and counts, matched to the llama2.c peer:
//  ttft    = page wall clock from generate() to the first generated step in hand (prompt encoding,
//            the prefill forward of P positions on the GPU, the fused LM head and the ~88-byte
//            StepStats readback included).
//  prefill = the engine's own prefill time (timing.prefillMs); prefillTokens = P.
//  decode  = the engine's decode time and count (timing.decodeMs, timing.decodeTokens: every
//            forward after the first token along the kept sequence, the one that produced a
//            final BOS included, as for the peer).
//  readback bytes per step = bytes mapped back from the GPU over the whole generation divided by
//            the forwards (prefill counts as one step), from timing.readbackBytesPerStep.
//  load    = createEngine() (adapter + device) + loadModel() (fetch, parse, upload, compile).
import type { AdapterDescription, Engine, GenerateOptions, GenerationResult, ModelInfo } from '../../src/index.ts';
import { createEngine } from '../../src/index.ts';
import { type PeerTiming, peerTiming } from './timing.ts';

export interface ForkwiseParams {
  prompt: string;
  /** Positions to forward, run.c style (BOS + prompt + generated ≤ steps). */
  steps?: number;
  /** Tokens to generate at most, instead of `steps` (the bench matrix's unit). */
  maxTokens?: number;
  temperature?: 0;
  /** Must be true: the engine's generate() always stops on BOS. */
  stopAtBos?: boolean;
  /**
   * Decoder options for generate() (decoder, seed, temperature, topP, tau, …); default greedy.
   * With a decoder other than greedy the run.c-style protocol above does not apply.
   */
  generate?: Omit<GenerateOptions, 'maxTokens' | 'signal'>;
}

/** What a decoder did besides emitting: events by type, and its totals (EAD's largeShare, …). */
export interface ForkwiseExtras {
  events: Record<string, number>;
  summary: Record<string, unknown>;
}

export interface ForkwiseLoad {
  loadMs: number;
  engineLoadMs: number;
  acquireMs: number;
  adapter: AdapterDescription;
  deviceFeatures: string[];
  gpuBytes: number;
  /** GPU bytes of the weights by storage format, where the engine reports it (ModelInfo.weightBytes). */
  weightBytes?: unknown;
  parameterCount: number;
  config: ModelInfo['config'];
}

export interface ForkwiseRun extends PeerTiming {
  text: string;
  /** Generated token ids (a final BOS excluded). */
  tokens: number[];
  promptTokens: number[];
  finish: GenerationResult['finish'];
  stoppedOnBos: boolean;
  readbackBytesPerStep: number;
  readbackBytesTotal: number;
  gpuBytes: number;
  /** The engine's GenerationTiming as it reported it. */
  engine: GenerationResult['timing'];
  extras: ForkwiseExtras;
}

export interface ForkwiseLoadOptions {
  /** Also load EAD's small model. */
  smallModel?: boolean;
  /** A model URL (a GGUF file carries its tokenizer); default the bundled stories15M.bin + tokenizer.bin. */
  model?: string;
  /** loadModel's `weights` GPU format ('q8', 'q4', 'f16', 'f32'). */
  weights?: string;
}

let engine: Engine | null = null;
let loaded: Promise<ForkwiseLoad> | null = null;

/**
 * Creates the engine on navigator.gpu and loads stories15M once per page (the options of the first
 * call of a page count): `model` another file of it (the GGUF fixtures), `weights` the GPU format,
 * `smallModel` also EAD's small model (public/models/stories-student.bin).
 */
export function loadForkwise(options: ForkwiseLoadOptions = {}): Promise<ForkwiseLoad> {
  loaded ??= (async () => {
    const t0 = performance.now();
    const e = await createEngine();
    const t1 = performance.now();
    const smallModel = options.smallModel ? { smallModel: '/models/stories-student.bin' } : {};
    const model = options.model ? { model: options.model } : { model: '/models/stories15M.bin', tokenizer: '/models/tokenizer.bin' };
    // loadModel's GPU format option, spread from a loose object (absent: each tensor's own type).
    const weights: Record<string, unknown> = options.weights ? { weights: options.weights } : {};
    const info = await e.loadModel({ ...model, ...smallModel, ...weights });
    const t2 = performance.now();
    engine = e;
    return {
      loadMs: t2 - t0,
      engineLoadMs: info.loadMs,
      acquireMs: t1 - t0,
      adapter: e.adapter,
      deviceFeatures: [...e.gpu.device.features].map(String).sort(),
      gpuBytes: info.gpuBytes,
      weightBytes: (info as { weightBytes?: unknown }).weightBytes,
      parameterCount: info.parameterCount,
      config: info.config,
    };
  })();
  loaded.catch(() => (loaded = null));
  return loaded;
}

/** Generation with forkwise (greedy unless params.generate says otherwise), timed by phase (see the header). */
export async function runForkwise(params: ForkwiseParams): Promise<ForkwiseRun> {
  const { prompt, temperature = 0, stopAtBos = true } = params;
  if (temperature !== 0) throw new Error('use params.generate.temperature for sampling decoders; temperature here is the greedy protocol\'s 0');
  if (!stopAtBos) throw new Error("forkwise's generate() always stops on BOS: stopAtBos false is not supported");
  await loadForkwise();
  const e = engine!;
  const seqLen = e.model!.contextLength;
  const steps = Math.min(params.steps ?? seqLen, seqLen);
  const promptTokens = e.tokenizer.encode(prompt);
  const p = promptTokens.length;
  if (p > steps) throw new Error(`prompt has ${p - 1} tokens + BOS, more than steps = ${steps}`);
  const maxTokens = Math.min(params.maxTokens ?? Infinity, steps - p + 1);

  const t0 = performance.now();
  const generation = e.generate(prompt, { decoder: 'greedy', topK: 0, reuse: false, ...params.generate, maxTokens });
  let ttftMs = 0;
  for await (const step of generation) {
    if (step.index === 0) ttftMs = performance.now() - t0;
  }
  const r = await generation.result;
  const totalMs = performance.now() - t0;

  const tokens = r.tokens.slice(r.promptTokenCount);
  const stoppedOnBos = r.finish === 'bos';
  const { decodeTokens } = r.timing;
  // The engine divides by decodeTokens + 1 (prefill counts as one step); the total, for reports.
  const readbackBytesTotal = r.timing.readbackBytesPerStep * (decodeTokens + 1);
  return {
    text: r.text,
    tokens,
    promptTokens: r.tokens.slice(0, r.promptTokenCount),
    finish: r.finish,
    stoppedOnBos,
    ...peerTiming({
      ttftMs, totalMs, prefillMs: r.timing.prefillMs, prefillTokens: r.timing.prefillTokens, decodeMs: r.timing.decodeMs, decodeTokens,
    }),
    readbackBytesPerStep: r.timing.readbackBytesPerStep,
    readbackBytesTotal,
    gpuBytes: e.model!.gpuBytes,
    engine: r.timing,
    extras: { events: countBy(r.events.map((ev) => ev.type)), summary: r.summary },
  };
}

function countBy(keys: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const k of keys) counts[k] = (counts[k] ?? 0) + 1;
  return counts;
}

/** `text`'s ids under the loaded model's tokenizer (BOS first): a peer that streams text is compared by them. */
export async function encodeForkwise(text: string): Promise<number[]> {
  await loadForkwise();
  return engine!.tokenizer.encode(text);
}

declare global {
  interface Window {
    encodeForkwise: typeof encodeForkwise;
    runForkwise: typeof runForkwise;
    loadForkwise: typeof loadForkwise;
  }
}

/** Puts runForkwise / loadForkwise on window for Playwright. */
export function exposeForkwise(): void {
  window.runForkwise = runForkwise;
  window.encodeForkwise = encodeForkwise;
  window.loadForkwise = loadForkwise;
}
