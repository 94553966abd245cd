// Page side of test/browser/device-loss.test.ts: stories15M served by Vite, on the worker engine
// (src/worker/client.ts, as the demo uses it; device-loss-worker.ts destroys the worker's device)
// or on the in-page engine (as <forkwise-generate> uses it), with the GPU device destroyed in the
// middle of a generation and of a load. Each call returns plain data for Node.
import { type Engine, createEngine } from '../../../src/engine.ts';
import { DeviceLostError } from '../../../src/errors.ts';
import { createWorkerEngine } from '../../../src/worker/client.ts';

export type Mode = 'worker' | 'page';
/** What both engines offer and these calls use. */
type AnyEngine = Pick<Engine, 'loadModel' | 'generate' | 'recover' | 'lost' | 'model'>;

const PROMPT = 'Once upon a time';
const LOAD = { model: '/models/stories15M.bin', tokenizer: '/models/tokenizer.bin' };

export interface ErrorSummary {
  name: string;
  code?: string;
  message: string;
  deviceLost: boolean;
}

const summary = (e: unknown): ErrorSummary | null =>
  e === null ? null : { name: (e as Error).name, code: (e as { code?: string }).code, message: String((e as Error).message ?? e), deviceLost: e instanceof DeviceLostError };

let engine: AnyEngine | null = null;
let destroy = () => {};

async function start(mode: Mode): Promise<{ vocabSize: number }> {
  if (mode === 'worker') {
    const worker = new Worker(new URL('./device-loss-worker.ts', import.meta.url), { type: 'module' });
    const channel = new MessageChannel();
    worker.postMessage({ kind: 'serve', port: channel.port2 }, [channel.port2]);
    engine = await createWorkerEngine(channel.port1);
    destroy = () => worker.postMessage({ kind: 'destroy' });
  } else {
    const inPage = await createEngine();
    engine = inPage;
    destroy = () => inPage.gpu.device.destroy(); // its current device: recover() replaces it
  }
  const info = await engine.loadModel(LOAD);
  return { vocabSize: info.config.vocabSize };
}

const ready = () => {
  if (!engine) throw new Error('start() first');
  return engine;
};

async function greedy(maxTokens: number): Promise<number[]> {
  return (await ready().generate(PROMPT, { maxTokens }).complete()).tokens;
}

/** Destroys the device once `after` steps have arrived; the error the generation ends with, and the next call's. */
async function loseMidGeneration(after: number, maxTokens: number) {
  const e = ready();
  let steps = 0;
  let error: unknown = null;
  try {
    for await (const _ of e.generate(PROMPT, { maxTokens })) if (++steps === after) destroy();
  } catch (caught) {
    error = caught;
  }
  // (the in-page engine throws at once on a lost device, the worker engine's call rejects)
  const next = await Promise.resolve().then(() => e.generate(PROMPT, { maxTokens: 1 }).complete()).then(() => null, (caught: unknown) => caught);
  return { steps, error: summary(error), next: summary(next), lost: e.lost };
}

/** Loads stories15M again and destroys the device at its first uploaded bytes. */
async function loseMidLoad() {
  const e = ready();
  const before = e.model;
  let destroyedAt: string | null = null;
  const error = await e.loadModel({
    ...LOAD,
    onProgress: (p) => {
      if (destroyedAt === null && p.phase === 'upload' && p.loaded > 0) {
        destroyedAt = `${p.phase} ${p.loaded}/${p.total}`;
        destroy();
      }
    },
  }).then(() => null, (caught: unknown) => caught);
  return { destroyedAt, error: summary(error), lost: e.lost, modelKept: e.model === before };
}

async function recover() {
  const t0 = performance.now();
  const info = await ready().recover();
  return { ms: performance.now() - t0, vocabSize: info?.config.vocabSize ?? null, lost: ready().lost };
}

export const deviceLossPage = { start, greedy, loseMidGeneration, loseMidLoad, recover };

declare global {
  interface Window {
    deviceLossPage: typeof deviceLossPage;
  }
}
window.deviceLossPage = deviceLossPage;
