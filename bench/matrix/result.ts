// The shape of a matrix result file (bench/results/matrix/<ISO date>.json) and of each cell in it.
// Cells travel from the test (cells.spec.ts) to the reporter as a JSON attachment named CELL_ATTACHMENT.
import type { MatrixDef } from './matrix.ts';

export const RESULT_KIND = 'matrix';
export const RESULT_SCHEMA = 1;
export const CELL_ATTACHMENT = 'bench-cell';

export interface Stat {
  median: number;
  min: number;
  max: number;
  n: number;
}

/** One system's medians over the measured runs of a cell. */
export interface SystemSummary {
  name: string;
  loadMs: number;
  decodeTokPerSec?: Stat;
  prefillTokPerSec?: Stat;
  ttftMs?: Stat;
  readbackBytesPerStep?: Stat;
  /** Generated tokens per run (per row for B > 1), median. */
  tokensPerRun?: number;
  /** GPU bytes (forkwise: ModelInfo.gpuBytes). */
  gpuBytes?: number;
  /** Threads, backend, package version, file (peers). */
  details?: Record<string, unknown>;
}

/** One peer of a greedy cell, run alternating with forkwise. */
export interface PeerResult {
  name: string;
  status: 'ok' | 'skipped' | 'failed';
  reason?: string;
  summary?: SystemSummary;
  /** forkwise median / this peer's median (decode, prefill: > 1 forkwise faster; TTFT: < 1 forkwise faster). */
  ratio?: { decodeTokPerSec?: number; prefillTokPerSec?: number; ttftMs?: number };
  /** Tokens per run this peer was given (less than the cell's for a slow peer). */
  maxTokens?: number;
  /** Generated tokens equal to forkwise's before the first difference (min over runs), and of how many. */
  agreement?: { tokens: number; of: number; fromText?: boolean };
}

export interface CellExtras {
  /** Decoder events per run (median), by type: CNTP branches, EAD switches, SRGen reflections. */
  eventsPerRun: Record<string, number>;
  /** EAD: share of tokens from the large model, and cost relative to large-only (medians). */
  largeShare?: number;
  costRatio?: number;
}

export interface BatchedSummary {
  /** Aggregate tok/s over the B rows divided by B. */
  perRowTokPerSec: number;
  stepMs: number;
  /** Step time at B = 1 on the same path, alternating with the B-row runs. */
  singleRowStepMs: number;
  /** (B-row step / B) / single-row step: what one more row costs, relative to a sequence alone. */
  perRowRelative: number;
  /** Distinct continuations among the B rows (min over runs). */
  distinctRows: number;
}

export interface CellResult {
  id: string;
  matrix: string;
  decoder: string;
  params: Record<string, unknown>;
  batch: number;
  promptSet: string;
  prompts: string[];
  weights: string;
  maxTokens: number;
  warmup: number;
  runs: number;
  seed: number;
  status: 'ok' | 'skipped' | 'failed';
  reason?: string;
  error?: string;
  startedAt?: string;
  durationMs?: number;
  machine?: Record<string, unknown>;
  browserVersion?: string;
  adapter?: unknown;
  /** forkwise (public API for B = 1, batched rows for B > 1). */
  forkwise?: SystemSummary;
  extras?: CellExtras;
  batched?: BatchedSummary;
  peer?: SystemSummary;
  /** forkwise median / peer median (decode, prefill: > 1 forkwise faster; TTFT: < 1 forkwise faster). */
  ratio?: { decodeTokPerSec?: number; prefillTokPerSec?: number; ttftMs?: number };
  /** Greedy cells: every forkwise and peer run produced the same tokens. */
  sameTokens?: boolean;
  mismatches?: unknown[];
  /** Greedy cells: every peer of the cell's weights (llama2.c's numbers are also in peer / ratio above). */
  peers?: PeerResult[];
  /** Greedy cells: forkwise's generated tokens of the first measured run per prompt (for the agreement with f32). */
  tokens?: number[][];
}

export interface MatrixResult {
  kind: typeof RESULT_KIND;
  schema: number;
  date: string;
  command: string;
  matrix: MatrixDef;
  machine?: Record<string, unknown>;
  browser?: { version?: string; flags: string };
  adapter?: unknown;
  cells: CellResult[];
}
