// Benchmark peer: llama.cpp compiled to WebAssembly, as npm `@wllama/wllama` (3.13.0), on the
// same GGUF files forkwise loads (test/fixtures/stories15M-gguf: Q8_0, Q4_0), in the same
// browser. wllama 3 runs llama.cpp's server loop in a worker; bench pages are served
// cross-origin isolated (COOP/COEP, vite.config.ts) so it can use its multi-threaded build: the
// thread count asked for (`threads`, default navigator.hardwareConcurrency) and the one it runs
// (getNumThreads()) are reported. CPU only (n_gpu_layers 0): its WebGPU backend is not measured.
//
// Timing: llama.cpp's own `timings` of the completion (prompt_ms over prompt_n positions:
// prefill; predicted_ms over predicted_n tokens: the generated tokens, the first included), and
// the page clock from the request to the first streamed token (TTFT, which includes the worker
// round trip). Greedy (temperature 0, no penalties), no prompt cache (cache_prompt false: every
// run prefills its prompt), stops at EOS or max_tokens. The streamed chunks carry text, not ids
// (`tokens` stays empty unless the server adds them): the matrix re-encodes the text with
// forkwise's tokenizer to compare continuations.
import { Wllama } from '@wllama/wllama';
import wasmUrl from '@wllama/wllama/esm/wasm/wllama.wasm?url';
import { type PeerTiming, peerTiming } from './timing.ts';

export interface WllamaLoad {
  loadMs: number;
  threadsAsked: number;
  threads: number;
  multithread: boolean;
  crossOriginIsolated: boolean;
  version: string;
}

export interface WllamaRun extends PeerTiming {
  text: string;
  tokens: number[];
}

let wllama: Wllama | null = null;

export async function loadWllama(o: { model: string; threads?: number }): Promise<WllamaLoad> {
  if (wllama) await wllama.exit();
  const threadsAsked = o.threads ?? navigator.hardwareConcurrency;
  const t0 = performance.now();
  const w = new Wllama({ default: wasmUrl }, { suppressNativeLog: true, allowOffline: true });
  await w.loadModelFromUrl(new URL(o.model, location.href).href, {
    n_ctx: 256, n_batch: 256, n_threads: threadsAsked, n_gpu_layers: 0, useCache: false, warmup: true,
  });
  wllama = w;
  return {
    loadMs: performance.now() - t0, threadsAsked, threads: w.getNumThreads(), multithread: w.isMultithread(),
    crossOriginIsolated: globalThis.crossOriginIsolated === true, version: Wllama.getLibllamaVersion(),
  };
}

export async function runWllama(o: { prompt: string; maxTokens: number }): Promise<WllamaRun> {
  const w = wllama;
  if (!w) throw new Error('loadWllama() first');
  const t0 = performance.now();
  let ttftMs = 0;
  let text = '';
  const tokens: number[] = [];
  let timings: { prompt_n: number; prompt_ms: number; predicted_n: number; predicted_ms: number } | undefined;
  const stream = await w.createCompletion({
    prompt: o.prompt, max_tokens: o.maxTokens, temperature: 0, top_k: 1, stream: true, cache_prompt: false, return_tokens: true,
  } as Parameters<Wllama['createCompletion']>[0] & { stream: true });
  for await (const chunk of stream) {
    const c = chunk as typeof chunk & { tokens?: number[] };
    const piece = c.choices?.[0]?.text ?? '';
    if ((piece || c.tokens?.length) && ttftMs === 0) ttftMs = performance.now() - t0;
    text += piece;
    if (c.tokens?.length) tokens.push(...c.tokens);
    if (c.timings) timings = c.timings;
  }
  const totalMs = performance.now() - t0;
  if (!timings) throw new Error('wllama returned no timings');
  // predicted_n counts every generated token; the first one belongs to prefill (as for the other peers).
  const decodeTokens = Math.max(0, timings.predicted_n - 1);
  const decodeMs = timings.predicted_ms * (decodeTokens / Math.max(1, timings.predicted_n));
  return {
    text: o.prompt + text, tokens,
    ...peerTiming({ ttftMs, totalMs, prefillMs: timings.prompt_ms, prefillTokens: timings.prompt_n, decodeMs, decodeTokens }),
  };
}

declare global {
  interface Window {
    loadWllama: typeof loadWllama;
    runWllama: typeof runWllama;
  }
}

export function exposeWllama(): void {
  window.loadWllama = loadWllama;
  window.runWllama = runWllama;
}
