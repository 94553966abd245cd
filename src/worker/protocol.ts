// The messages between a page and an engine in a Web Worker (serve.ts ↔ client.ts). Every
// request carries an id; replies name it. Errors cross as { name, code, message } and come back
// as the same typed ForkwiseError subclasses the in-page engine throws.
import type {
  EngineOptions, GenerateOptions, GenerationResult, GenerationStep, LoadModelOptions, LoadProgress, ModelInfo, Prompt,
} from '../engine.ts';
import {
  AbortedError, ContextOverflowError, DeviceLostError, ForkwiseError, type ForkwiseErrorCode, GpuAllocationError,
  InvalidArgumentError, ModelFetchError, ModelFormatError, TokenizerFormatError, WebGPUUnavailableError,
} from '../errors.ts';
import type { AdapterDescription } from '../gpu/device.ts';
import type { StepStats } from '../runtime/stats.ts';

/** What both a Worker (page side) and a worker's global scope (worker side) offer; also a MessagePort. */
export interface MessageEndpoint {
  postMessage(message: unknown): void;
  addEventListener(type: 'message', listener: (event: MessageEvent) => void): void;
  start?(): void;
}

/** Load options that can cross to the worker (no callbacks; string URLs already absolute). */
export type WorkerLoadOptions = Omit<LoadModelOptions, 'onProgress' | 'signal'>;
export type WorkerGenerateOptions = Omit<GenerateOptions, 'signal'>;
export type WorkerGpuOptions = Omit<EngineOptions, 'gpu'>;

export type Request =
  | { kind: 'init'; id: number; options: WorkerGpuOptions }
  | { kind: 'load'; id: number; options: WorkerLoadOptions }
  | { kind: 'generate'; id: number; prompt: Prompt; options: WorkerGenerateOptions }
  | { kind: 'score'; id: number; tokens: number[] }
  /** After DeviceLostError: a new device in the worker and the model loaded again (Engine.recover). */
  | { kind: 'recover'; id: number }
  /** Aborts the load or generation with `id`, as its AbortSignal would in the page (no reply of its own). */
  | { kind: 'abort'; id: number }
  | { kind: 'dispose'; id: number };

export type Reply =
  | { kind: 'progress'; id: number; progress: LoadProgress }
  | { kind: 'step'; id: number; step: GenerationStep }
  | { kind: 'done'; id: number; value: AdapterDescription | ModelInfo | GenerationResult | StepStats[] | null }
  /** The worker engine's device was lost (sent once per loss, with id 0); DeviceLostError's message. */
  | { kind: 'lost'; id: 0; message: string }
  | { kind: 'error'; id: number; error: SerializedError };

export interface SerializedError {
  name: string;
  message: string;
  code?: ForkwiseErrorCode;
  status?: number;
}

export function serializeError(error: unknown): SerializedError {
  if (error instanceof ForkwiseError) {
    return { name: error.name, message: error.message, code: error.code, status: (error as ModelFetchError).status };
  }
  if (error instanceof Error) return { name: error.name, message: error.message };
  return { name: 'Error', message: String(error) };
}

const ERROR_CLASSES: Record<ForkwiseErrorCode, (message: string, status?: number) => ForkwiseError> = {
  'invalid-argument': (m) => new InvalidArgumentError(m),
  'model-format': (m) => new ModelFormatError(m),
  'tokenizer-format': (m) => new TokenizerFormatError(m),
  'model-fetch': (m, status) => new ModelFetchError(m, status),
  'context-overflow': (m) => new ContextOverflowError(m),
  'webgpu-unavailable': (m) => new WebGPUUnavailableError(m),
  'device-lost': (m) => new DeviceLostError(m),
  'gpu-allocation': (m) => new GpuAllocationError(m),
  aborted: (m) => new AbortedError(m),
};

/** The error the worker threw, as the same class on this side. */
export function reviveError(e: SerializedError): Error {
  if (e.code && e.code in ERROR_CLASSES) return ERROR_CLASSES[e.code](e.message, e.status);
  const error = new Error(e.message);
  error.name = e.name;
  return error;
}
