// Benchmark peer: transformers.js (npm `@huggingface/transformers` 4.3.2, onnxruntime-web inside)
// running the ONNX export of the same stories15M weights (f32; test/fixtures/README.md:
// stories15M-onnx) in the same browser, on its WASM backend (`threads`: the matrix asks for 1,
// see bench/matrix/peers.ts) and on its WebGPU backend. The model
// folder and onnxruntime-web's WASM files are served by the Playwright test (page.route, from
// FORKWISE_ONNX_DIR or ../shared/fixtures/stories15M-onnx, and node_modules/onnxruntime-web/dist):
// nothing is fetched from a CDN or the hub.
//
// Timing, on the page clock: model.generate() with greedy decoding (do_sample false) and a
// streamer whose token callback fires once per generated token. TTFT = generate() to the first
// token (tokenised prompt in hand: prefill of BOS + prompt included); prefill = TTFT; decode =
// the following tokens over the time after the first one. Prompt ids are the tokenizer's
// (tokenizer.json, BOS added), generation stops at EOS or max_new_tokens.
import { AutoModelForCausalLM, AutoTokenizer, TextStreamer, env } from '@huggingface/transformers';
import { type PeerTiming, peerTiming } from './timing.ts';

/** Where the Playwright test serves the model folder and onnxruntime-web's dist/ (bench/matrix/cells.spec.ts). */
export const TRANSFORMERS_MODEL_PREFIX = '/peer-files/onnx/';
export const ORT_WASM_PREFIX = '/peer-files/ort/';
const MODEL_ID = 'stories15M-onnx';

export interface TransformersLoad {
  loadMs: number;
  device: 'wasm' | 'webgpu';
  threads: number;
  crossOriginIsolated: boolean;
}

export interface TransformersRun extends PeerTiming {
  text: string;
  tokens: number[];
  promptTokens: number[];
}

type Loaded = { model: Awaited<ReturnType<typeof AutoModelForCausalLM.from_pretrained>>; tokenizer: Awaited<ReturnType<typeof AutoTokenizer.from_pretrained>> };
let loaded: Loaded | null = null;

export async function loadTransformers(o: { device: 'wasm' | 'webgpu'; threads?: number }): Promise<TransformersLoad> {
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = TRANSFORMERS_MODEL_PREFIX;
  env.useBrowserCache = false;
  const wasm = env.backends.onnx.wasm!;
  wasm.wasmPaths = ORT_WASM_PREFIX;
  const threads = o.threads ?? (globalThis.crossOriginIsolated ? navigator.hardwareConcurrency : 1);
  wasm.numThreads = threads;
  const t0 = performance.now();
  const tokenizer = await AutoTokenizer.from_pretrained(MODEL_ID);
  const model = await AutoModelForCausalLM.from_pretrained(MODEL_ID, { dtype: 'fp32', device: o.device });
  loaded = { model, tokenizer };
  return { loadMs: performance.now() - t0, device: o.device, threads, crossOriginIsolated: globalThis.crossOriginIsolated === true };
}

export async function runTransformers(o: { prompt: string; maxTokens: number }): Promise<TransformersRun> {
  if (!loaded) throw new Error('loadTransformers() first');
  const { model, tokenizer } = loaded;
  const inputs = tokenizer(o.prompt);
  const promptTokens = Array.from(inputs.input_ids.data as BigInt64Array, Number);
  const times: number[] = [];
  const tokens: number[] = [];
  const streamer = new TextStreamer(tokenizer, {
    skip_prompt: true,
    token_callback_function: (ids: bigint[]) => {
      times.push(performance.now());
      tokens.push(...ids.map(Number));
    },
  });
  const t0 = performance.now();
  await model.generate({ ...inputs, max_new_tokens: o.maxTokens, do_sample: false, streamer });
  const totalMs = performance.now() - t0;
  const ttftMs = (times[0] ?? performance.now()) - t0;
  const decodeTokens = Math.max(0, times.length - 1);
  const decodeMs = decodeTokens > 0 ? times[times.length - 1] - times[0] : 0;
  const text = tokenizer.decode(tokens, { skip_special_tokens: true });
  return {
    text: o.prompt + text, tokens, promptTokens,
    ...peerTiming({ ttftMs, totalMs, prefillMs: ttftMs, prefillTokens: promptTokens.length, decodeMs, decodeTokens }),
  };
}

declare global {
  interface Window {
    loadTransformers: typeof loadTransformers;
    runTransformers: typeof runTransformers;
  }
}

export function exposeTransformers(): void {
  window.loadTransformers = loadTransformers;
  window.runTransformers = runTransformers;
}
