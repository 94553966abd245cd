// The page side of an engine in a Web Worker (serve.ts runs in the worker). WorkerEngine has
// the in-page Engine's API — loadModel with progress and AbortSignal, generate() returning a
// Generation to iterate, typed errors — but every GPU wait happens in the worker, so the page's
// main thread only receives finished steps.
//
//   const worker = new Worker(new URL('./engine-worker.ts', import.meta.url), { type: 'module' });
//   const engine = await createWorkerEngine(worker);
import {
  type GenerateOptions, Generation, type GenerationResult, type GenerationStep, type LoadModelOptions, type ModelInfo, type Prompt,
} from '../engine.ts';
import { checkGenerateCall, checkLoadOptions } from '../arguments.ts';
import { AbortedError, InvalidArgumentError } from '../errors.ts';
import type { AdapterDescription } from '../gpu/device.ts';
import type { StepStats } from '../runtime/stats.ts';
import {
  type MessageEndpoint, type Reply, type Request, type WorkerGpuOptions, type WorkerLoadOptions, reviveError,
} from './protocol.ts';

/** Replies of one request, in arrival order, until it is done or fails. */
interface Pending {
  onReply(reply: Reply): void;
}

/** Connects to an engine served in `worker` (serveEngine) and acquires its GPU. */
export async function createWorkerEngine(worker: MessageEndpoint, options: WorkerGpuOptions = {}): Promise<WorkerEngine> {
  const client = new WorkerEngine(worker);
  await client.init(options);
  return client;
}

export class WorkerEngine {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private adapterInfo: AdapterDescription | null = null;
  private info: ModelInfo | null = null;
  private lostMessage: string | null = null;

  constructor(private readonly endpoint: MessageEndpoint) {
    endpoint.addEventListener('message', (event) => {
      const reply = event.data as Reply;
      if (reply.kind === 'lost') {
        this.lostMessage = reply.message;
        return;
      }
      this.pending.get(reply.id)?.onReply(reply);
    });
    // A worker that fails to start or throws outside a request fails everything waiting.
    (endpoint as Partial<Worker>).addEventListener?.('error', (event: ErrorEvent) => {
      const error = { name: 'Error', message: `engine worker failed: ${event.message || 'it could not start'}` };
      for (const p of [...this.pending.values()]) p.onReply({ kind: 'error', id: 0, error });
    });
    endpoint.start?.();
  }

  /** @internal (createWorkerEngine) */
  async init(options: WorkerGpuOptions): Promise<void> {
    this.adapterInfo = (await this.call({ kind: 'init', options })) as AdapterDescription;
  }

  get adapter(): AdapterDescription {
    if (!this.adapterInfo) throw new InvalidArgumentError('WorkerEngine has no engine yet: create it with createWorkerEngine()');
    return this.adapterInfo;
  }

  get model(): ModelInfo | null {
    return this.info;
  }

  /** True once the worker reported its device lost, until recover() (or autoRecover's next call) replaces it. */
  get lost(): boolean {
    return this.lostMessage !== null;
  }

  /**
   * As Engine.recover: after DeviceLostError, a new device in the worker and the loaded model
   * loaded again from its kept options; resolves with the model (null if none was loaded).
   */
  async recover(): Promise<ModelInfo | null> {
    this.info = (await this.call({ kind: 'recover' })) as ModelInfo | null;
    this.lostMessage = null;
    return this.info;
  }

  /** As Engine.loadModel; string URLs are resolved against the page, not the worker script. */
  async loadModel(options: LoadModelOptions): Promise<ModelInfo> {
    checkLoadOptions(options);
    const { onProgress, signal, ...rest } = options;
    const sendable: WorkerLoadOptions = {
      ...rest, model: absolute(rest.model), ...(rest.tokenizer === undefined ? {} : { tokenizer: absolute(rest.tokenizer) }),
      ...(rest.smallModel === undefined ? {} : { smallModel: absolute(rest.smallModel) }),
    };
    this.info = (await this.call({ kind: 'load', options: sendable }, signal, (reply) => {
      if (reply.kind === 'progress') onProgress?.(reply.progress);
    })) as ModelInfo;
    return this.info;
  }

  /** As Engine.generate: iterate the steps as they arrive; Stop (the signal) ends it at once. */
  generate(prompt: Prompt, options: GenerateOptions = {}): Generation {
    const { signal, ...rest } = checkGenerateCall(options);
    return new Generation(this.stream({ kind: 'generate', prompt, options: rest }, signal));
  }

  /** As Engine.score: the statistics of every position of `tokens` (teacher forcing). */
  async score(tokens: readonly number[]): Promise<StepStats[]> {
    if (!Array.isArray(tokens)) throw new InvalidArgumentError('tokens must be an array of token ids');
    return (await this.call({ kind: 'score', tokens: [...tokens] })) as StepStats[];
  }

  /**
   * As Engine.dispose: frees the model's GPU memory in the worker (the work in flight and queued
   * rejects with AbortedError); settles once it is free. The worker itself is the caller's to terminate.
   */
  dispose(): Promise<void> {
    this.info = null;
    return this.call({ kind: 'dispose' }).then(() => {}, () => {});
  }

  private async *stream(request: DistributiveOmit<Request, 'id'>, signal?: AbortSignal): AsyncGenerator<GenerationStep, GenerationResult> {
    const steps: GenerationStep[] = [];
    let wake = () => {};
    let finished = false;
    const { id, done } = this.send(request, signal, (reply) => {
      if (reply.kind === 'step') steps.push(reply.step);
      wake();
    });
    const settled = done.finally(() => {
      finished = true;
      wake();
    });
    settled.catch(() => {}); // surfaced below, after the steps that arrived before it
    try {
      for (;;) {
        if (steps.length) yield steps.shift()!;
        else if (finished) return (await done) as GenerationResult;
        else await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      if (!finished) this.endpoint.postMessage({ kind: 'abort', id } satisfies Request); // iteration stopped early
    }
  }

  private call(request: DistributiveOmit<Request, 'id'>, signal?: AbortSignal, onUpdate?: (reply: Reply) => void): Promise<unknown> {
    return this.send(request, signal, onUpdate).done;
  }

  /**
   * Posts `request`; `done` settles with its result or typed error. An aborting signal tells the
   * worker to stop and rejects at once with AbortedError (later replies are dropped).
   */
  private send(request: DistributiveOmit<Request, 'id'>, signal?: AbortSignal, onUpdate?: (reply: Reply) => void): { id: number; done: Promise<unknown> } {
    const id = this.nextId++;
    const done = new Promise((resolve, reject) => {
      const finish = () => {
        this.pending.delete(id);
        signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = () => {
        this.endpoint.postMessage({ kind: 'abort', id } satisfies Request);
        finish();
        reject(new AbortedError());
      };
      if (signal?.aborted) return reject(new AbortedError());
      signal?.addEventListener('abort', onAbort);
      this.pending.set(id, {
        onReply: (reply) => {
          if (reply.kind === 'done') {
            if (request.kind !== 'dispose') this.lostMessage = null; // it ran on a live device
            finish();
            resolve(reply.value);
          } else if (reply.kind === 'error') {
            finish();
            reject(reviveError(reply.error));
          } else {
            onUpdate?.(reply);
          }
        },
      });
      try {
        this.endpoint.postMessage({ ...request, id } as Request);
      } catch (cause) {
        // a function, a class instance or a structure too deep for structured cloning
        finish();
        reject(new InvalidArgumentError(`the ${request.kind} request cannot be sent to the engine worker: ${(cause as Error)?.message ?? String(cause)}`));
      }
    });
    return { id, done };
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** A string or URL source made absolute against the page (the worker's base URL differs). */
function absolute<S>(source: S): S | string {
  if (typeof source !== 'string' && !(source instanceof URL)) return source;
  if (String(source).startsWith('hf:')) return String(source);
  const base = typeof location === 'undefined' ? undefined : location.href;
  try {
    return base ? new URL(String(source), base).href : String(source);
  } catch {
    return String(source); // not a URL: the worker's loader reports it
  }
}
