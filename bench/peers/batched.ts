// The batch-size axis of the bench matrix (bench/matrix/): B sequences decoded together as
// batched KV rows, below the public API (which has no batched generate). Like OpenAI's `n`:
// the prompt is prefilled once on row 0 and its first token sampled there, row 0 is forked to
// rows 1..B−1, then every decode step forwards B tokens (one per row, each at the row's next
// position) in one GPU step whose LM head samples each row's next token on the GPU (Gumbel-max
// at the given temperature; the RNG hashes seed, row and position, so rows diverge). No top-p
// (GPU sampling has none) and rows do not stop on BOS: every row runs exactly maxTokens tokens.
//
// The same runtime the engine uses (Session, src/runtime/session.ts), built here on navigator.gpu
// with its own stories15M copy, as bench/decoders.ts's batchedRows() does in Node. The matrix cell
// alternates each B-row run with a B = 1 run on the same page, so the per-row cost is relative to
// a single row of the same path, measured in the same page and minute.
import { acquireGpu } from '../../src/gpu/device.ts';
import { BufferPool } from '../../src/gpu/buffers.ts';
import { Kernels } from '../../src/gpu/kernels.ts';
import { readLlama2c } from '../../src/model/formats/llama2c.ts';
import { bytesReader } from '../../src/model/readers.ts';
import { uploadWeights } from '../../src/model/weights.ts';
import { Session } from '../../src/runtime/session.ts';
import { Tokenizer } from '../../src/tokenizer/tokenizer.ts';

/** KV rows of the session: the largest B a cell may ask for. */
export const MAX_ROWS = 10;

export interface BatchedParams {
  prompt: string;
  rows: number;
  maxTokens: number;
  temperature: number;
  seed: number;
}

export interface BatchedRun {
  rows: number;
  /** Generated token ids per row. */
  tokens: number[][];
  promptTokens: number;
  ttftMs: number;
  prefillMs: number;
  prefillTokPerSec: number;
  decodeMs: number;
  /** Decode steps (each forwards `rows` tokens). */
  decodeSteps: number;
  /** Aggregate: rows × decode steps / decode time. */
  decodeTokPerSec: number;
  stepMs: number;
  /** Bytes mapped back per forward step (prefill counts as one). */
  readbackBytesPerStep: number;
  /** Distinct continuations among the rows (B independent samples should all differ). */
  distinctRows: number;
}

interface Loaded {
  session: Session;
  tokenizer: Tokenizer;
  loadMs: number;
  adapter: unknown;
}

let loaded: Promise<Loaded> | null = null;

async function fetchBytes(url: string): Promise<ArrayBuffer> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url} -> ${res.status}`);
  return res.arrayBuffer();
}

/** Loads stories15M into a Session with MAX_ROWS KV rows, once per page. */
export function loadBatched(): Promise<{ loadMs: number; adapter: unknown }> {
  loaded ??= (async () => {
    const t0 = performance.now();
    const ctx = await acquireGpu();
    const [model, tok] = await Promise.all([fetchBytes('/models/stories15M.bin'), fetchBytes('/models/tokenizer.bin')]);
    const spec = await readLlama2c(bytesReader('stories15M.bin', model));
    const weights = await uploadWeights(ctx, spec, { contextLength: spec.config.trainedContext });
    // topK 5: the engine's default, so readback per stats row matches the public API's.
    const session = await Session.create(ctx, new Kernels(ctx), new BufferPool(ctx), weights, { rows: MAX_ROWS, topK: 5 });
    const tokenizer = Tokenizer.fromBytes(tok, spec.config.vocabSize);
    return { session, tokenizer, loadMs: performance.now() - t0, adapter: ctx.adapter };
  })();
  loaded.catch(() => (loaded = null));
  return loaded.then((l) => ({ loadMs: l.loadMs, adapter: l.adapter }));
}

/** One batched generation of `rows` continuations, timed by phase. */
export async function runBatched(p: BatchedParams): Promise<BatchedRun> {
  if (!(Number.isInteger(p.rows) && p.rows >= 1 && p.rows <= MAX_ROWS)) throw new Error(`rows must be 1..${MAX_ROWS}, got ${p.rows}`);
  await loadBatched();
  const { session, tokenizer } = await loaded!;
  const sampling = { temperature: p.temperature, seed: p.seed };
  const prompt = tokenizer.encode(p.prompt, { bos: true });
  session.reset();
  const bytes0 = session.bytesRead;

  const t0 = performance.now();
  const [first] = await session.step(prompt.map((id, pos) => ({ id, pos, row: 0 })), 1, sampling);
  const t1 = performance.now();
  session.fork(0, Array.from({ length: p.rows - 1 }, (_, i) => i + 1));
  const tokens = Array.from({ length: p.rows }, () => [first.sampled]);
  for (let s = 1; s < p.maxTokens; s++) {
    const pos = prompt.length + s - 1;
    const stats = await session.step(tokens.map((t, row) => ({ id: t[t.length - 1], pos, row })), p.rows, sampling);
    stats.forEach((st, row) => tokens[row].push(st.sampled));
  }
  const t2 = performance.now();

  const decodeSteps = p.maxTokens - 1;
  const decodeMs = t2 - t1;
  return {
    rows: p.rows,
    tokens,
    promptTokens: prompt.length,
    ttftMs: t1 - t0,
    prefillMs: t1 - t0,
    prefillTokPerSec: prompt.length / ((t1 - t0) / 1000),
    decodeMs,
    decodeSteps,
    decodeTokPerSec: decodeSteps > 0 ? (p.rows * decodeSteps) / (decodeMs / 1000) : 0,
    stepMs: decodeSteps > 0 ? decodeMs / decodeSteps : 0,
    readbackBytesPerStep: (session.bytesRead - bytes0) / (1 + decodeSteps),
    distinctRows: new Set(tokens.map((t) => t.join(','))).size,
  };
}

declare global {
  interface Window {
    runBatched: typeof runBatched;
    loadBatched: typeof loadBatched;
  }
}

/** Puts runBatched / loadBatched on window for Playwright. */
export function exposeBatched(): void {
  window.runBatched = runBatched;
  window.loadBatched = loadBatched;
}
