// Page side of the in-page soak (test/soak/page.ts, `npm run soak`): one in-page engine loads
// stories15M from its URLs, runs one generation (the decoders in turn) and disposes the model,
// once per cycle() call. Each call reports engine.memory() with the model loaded and after
// dispose(), and the JS heap after a forced GC (Chromium started with --js-flags=--expose-gc and
// --enable-precise-memory-info; measureUserAgentSpecificMemory too where the page is
// cross-origin isolated).
import { type DecoderName, type Engine, createEngine } from '../../../src/engine.ts';
import type { GpuMemory } from '../../../src/gpu/buffers.ts';

const LOAD = { model: '/models/stories15M.bin', tokenizer: '/models/tokenizer.bin' };
export const SOAK_DECODERS: readonly DecoderName[] = ['greedy', 'sample', 'cntp', 'srgen'];
const PROMPTS = ['Once upon a time', 'the end', 'Hello <b>world</b>', 'One day'];

export interface CycleReport {
  decoder: DecoderName;
  steps: number;
  /** engine.memory() after the load and the generation, before dispose(). */
  loaded: GpuMemory;
  /** engine.memory().total after dispose(). */
  afterDispose: number;
  /** performance.memory.usedJSHeapSize after a forced GC (null where there is neither). */
  heap: number | null;
  /** performance.measureUserAgentSpecificMemory() bytes, where the page may call it. */
  uaMemory: number | null;
}

let engine: Engine | null = null;

async function heap(): Promise<Pick<CycleReport, 'heap' | 'uaMemory'>> {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  const used = (performance as { memory?: { usedJSHeapSize: number } }).memory?.usedJSHeapSize;
  const measure = (performance as { measureUserAgentSpecificMemory?: () => Promise<{ bytes: number }> }).measureUserAgentSpecificMemory;
  const uaMemory = crossOriginIsolated && measure ? (await measure.call(performance)).bytes : null;
  return { heap: gc && used !== undefined ? used : null, uaMemory };
}

async function cycle(i: number): Promise<CycleReport> {
  engine ??= await createEngine();
  await engine.loadModel(LOAD);
  const decoder = SOAK_DECODERS[i % SOAK_DECODERS.length];
  const r = await engine.generate(PROMPTS[i % PROMPTS.length], { decoder, maxTokens: 4, seed: i }).complete();
  const loaded = engine.memory();
  await engine.dispose();
  return { decoder, steps: r.steps.length, loaded, afterDispose: engine.memory().total, ...(await heap()) };
}

export const soakPage = { cycle };

declare global {
  interface Window {
    soakPage: typeof soakPage;
  }
}
window.soakPage = soakPage;
