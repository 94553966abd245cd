// What the runtime lends a decoder (src/decode): model steps over KV rows, KV management, and a
// full-vocabulary fallback — statistics only, never a GPU buffer.
import { InvalidArgumentError, ModelFormatError } from '../errors.ts';
import { type AdamWOptions, adamwOptions } from './adamw.ts';
import type { SamplingParams, Session, XentMode } from './session.ts';
import type { StepStats } from './stats.ts';

/** SRGen's reflection (algorithms.md §4): optimise δ at the LM-head input over the known context. */
export interface ReflectOptions {
  /** Every token of row 0 so far, BOS first (one per filled position); targets are tokens[1..]. */
  tokens: readonly number[];
  /** Weight of the entropy term: loss = (1−λ)·CE + λ·Ent. */
  lambda: number;
  /** AdamW steps on δ (0: δ stays 0), at most MAX_REFLECT_STEPS. */
  steps: number;
  /** Temperature of the entropy term (the sampler's). */
  temperature: number;
  /** AdamW settings; lr etc. default to SRGEN_ADAMW. */
  adam?: Partial<AdamWOptions>;
  /** What the LM head over h_T + δ computes (the decoder's sampling params; the draw is keyed as the step's). */
  sampling: SamplingParams;
  /**
   * 'linear' (default): the context's logits W·h_t are computed once (GEMM over the new kept
   * positions) and each AdamW step costs O(T·V + V·d) (xent_linear.wgsl); 'fused' recomputes
   * them every step, O(T·V·d) (xent.wgsl). The same loss and δ within float32 rounding; 'linear'
   * falls back to 'fused' where the kept logits would not fit (Session.keptLogitsCapacity).
   */
  mode?: XentMode;
}

export interface Reflection {
  /** The loss at δ = 0, then after each AdamW step. */
  losses: number[];
  /** Statistics of W(h_T + δ) for the final δ (row 0's last position). */
  stats: StepStats;
}

/** What the engine lends a decoder: model steps over KV rows. Row 0 is the main sequence. */
export interface DecodeRuntime {
  readonly vocabSize: number;
  /** Context length: positions per row. */
  readonly seqLen: number;
  /** KV rows available (row 0 included). */
  readonly rows: number;
  /** Positions filled in `row`. */
  length(row: number): number;
  /**
   * The row the RNG keys `row`'s draws by, as the GPU keys its own by KV row: `row` itself, or for
   * one row of a batch seen as row 0, that batch row (so n choices from one seed differ).
   */
  drawRow(row: number): number;
  /** Runs each token at its row's next position, all rows in one batched step. */
  step(tokens: readonly { id: number; row: number }[], sampling: SamplingParams): Promise<StepStats[]>;
  /**
   * Feeds `ids` to row 0 at its next positions in one step and returns the statistics after the
   * last one (a prompt, a catch-up, the tokens a decoder emitted).
   */
  feed(ids: readonly number[], sampling: SamplingParams): Promise<StepStats>;
  /** Copies `src`'s KV prefix into each of `dsts`. */
  fork(src: number, dsts: readonly number[]): void;
  /** Keeps the first `length` positions of `row`. */
  rollback(row: number, length: number): void;
  /** Makes `row` the main sequence (its KV is copied into row 0). */
  commit(row: number): void;
  /**
   * Statistics of every vocabulary entry for the last step's token on `row` (all ids as
   * candidates, lse/entropy in float64 at `temperature`): the fallback when the GPU's top-K
   * cannot decide a sampler. Costs a 128 KB readback.
   */
  fullStats(row: number, temperature: number): Promise<StepStats>;
  /**
   * The statistics (and GPU draw, keyed as the step's) of the last step's token on `row` again,
   * under other sampling parameters: for a temperature known only after the step (adaptive
   * temperature's T′). The statistics kernels over the logits the step left (the LM head again
   * where it left none); only the step record is read back.
   */
  statsUnder(row: number, sampling: SamplingParams): Promise<StepStats>;
  /**
   * SRGen: optimises one vector δ added to the final hidden states of row 0's positions (kept on
   * the GPU), with the cross-entropy kernels and AdamW all on the GPU (Session.reflect: one submit,
   * one readback), then returns the statistics
   * of the LM head over h_T + δ at row 0's last position. The KV cache is untouched; δ is discarded.
   * Until the next step, fullStats(0, …) describes h_T + δ as well.
   */
  reflect(options: ReflectOptions): Promise<Reflection>;
}

/** DecodeRuntime over one Session. */
export class SessionRuntime implements DecodeRuntime {
  /** Which token row of the last step each KV row's token was (for fullStats). */
  private lastHiddenRow = new Map<number, number>();

  constructor(private readonly session: Session) {}

  get vocabSize() { return this.session.config.vocabSize; }
  get seqLen() { return this.session.context; }
  get rows() { return this.session.kv.rows; }
  length(row: number) { return this.session.kv.lengths[row]; }
  drawRow(row: number) { return row; }

  async step(tokens: readonly { id: number; row: number }[], sampling: SamplingParams): Promise<StepStats[]> {
    const inputs = tokens.map((t, i) => ({ id: t.id, row: t.row, pos: this.session.kv.lengths[t.row] + countBefore(tokens, i) }));
    const stats = (await this.session.step(inputs, tokens.length, sampling)).map((x, i) => finite(x, inputs[i].pos));
    this.lastHiddenRow = new Map(tokens.flatMap((t, i) => {
      const hidden = this.session.hiddenRowOf(i, tokens.length);
      return hidden === undefined ? [] : [[t.row, hidden] as const];
    }));
    return stats;
  }

  fork(src: number, dsts: readonly number[]) { this.session.fork(src, dsts); }
  rollback(row: number, length: number) { this.session.kv.rollback(row, length); }
  commit(row: number) { this.session.commit(row); }

  async fullStats(row: number, temperature: number): Promise<StepStats> {
    return finite(statsOfLogits(await this.session.logits(this.hiddenRowOf(row)), temperature), this.session.kv.lengths[row] - 1);
  }

  async statsUnder(row: number, sampling: SamplingParams): Promise<StepStats> {
    return finite(await this.session.statsUnder(this.hiddenRowOf(row), sampling), this.session.kv.lengths[row] - 1);
  }

  /** The activations row the last step left KV row `row`'s token in. */
  private hiddenRowOf(row: number): number {
    const hiddenRow = this.lastHiddenRow.get(row);
    if (hiddenRow === undefined) throw new InvalidArgumentError(`row ${row} was not part of the last step`);
    return hiddenRow;
  }

  async reflect(o: ReflectOptions): Promise<Reflection> {
    const session = this.session;
    const n = session.kv.lengths[0];
    const hiddenRow = this.hiddenRowOf(0);
    if (o.tokens.length !== n) throw new InvalidArgumentError(`reflect: ${o.tokens.length} tokens for the ${n} positions of row 0`);
    const r = await session.reflect(n, o.tokens.slice(1), {
      lambda: o.lambda, temperature: o.temperature, steps: o.steps, adam: adamwOptions(o.adam), mode: o.mode,
    });
    // 'linear': the last evaluation formed W·h_T + W·δ already; the statistics come from those logits.
    const stats = r.mode === 'linear'
      ? await session.headOverKeptLogits(hiddenRow, r.input, o.sampling)
      : await session.headOver(hiddenRow, r.input, o.sampling);
    const losses = r.losses;
    return { losses, stats };
  }

  /**
   * Feeds `ids` to row 0 at its next positions in one step (a prompt, or the tokens a decoder
   * emitted) and returns the statistics after the last one.
   */
  async feed(ids: readonly number[], sampling: SamplingParams): Promise<StepStats> {
    const start = this.session.kv.lengths[0];
    const [stats] = await this.session.step(ids.map((id, i) => ({ id, pos: start + i, row: 0 })), 1, sampling);
    this.lastHiddenRow = new Map([[0, this.session.hiddenRowOf(ids.length - 1, ids.length)!]]);
    return finite(stats, start + ids.length - 1);
  }
}

/**
 * A step whose logits overflowed (NaN or ±∞ log-sum-exp, no finite candidate) cannot be decoded
 * from: the model's weights or activations are out of float32's range. A typed error, not a
 * sampler's complaint about its input.
 */
function finite(stats: StepStats, pos: number): StepStats {
  if (!Number.isFinite(stats.lse) || stats.topK.length === 0 || !Number.isFinite(stats.topK[0].logit)) {
    throw new ModelFormatError(`the model's logits at position ${pos} are not finite (log-sum-exp ${stats.lse}): its weights or activations overflow float32`);
  }
  return stats;
}

/** Tokens for the same row earlier in the list (a row may take several tokens in one step). */
function countBefore(tokens: readonly { row: number }[], i: number): number {
  let n = 0;
  for (let j = 0; j < i; j++) if (tokens[j].row === tokens[i].row) n++;
  return n;
}

/** StepStats over every vocabulary entry, in float64, at `temperature`. */
export function statsOfLogits(logits: Float32Array, temperature: number): StepStats {
  const ids = orderByLogit(logits);
  const max = logits[ids[0]] / temperature;
  let z = 0;
  let a = 0;
  let b = 0;
  for (const v of logits) {
    const d = v / temperature - max;
    const e = Math.exp(d);
    z += e;
    a += e * d;
    b += e * d * d;
  }
  const mean = a / z;
  return {
    lse: max + Math.log(z),
    entropy: Math.log(z) - mean,
    varentropy: Math.max(0, b / z - mean * mean),
    maxLogit: logits[ids[0]],
    nextLogit: logits[ids[0]],
    argmax: ids[0],
    sampled: ids[0],
    topK: candidatesOf(logits, ids),
  };
}

function candidatesOf(logits: Float32Array, ids: Uint32Array): { id: number; logit: number }[] {
  const out = new Array<{ id: number; logit: number }>(ids.length);
  for (let i = 0; i < ids.length; i++) out[i] = { id: ids[i], logit: logits[ids[i]] };
  return out;
}

/**
 * Ids by logit descending, equal logits by id ascending: a stable LSD radix sort (3 passes of 11
 * bits) on the float32 bits made order-preserving. A 32k row in about a millisecond, where a
 * comparison sort takes ten (this runs on every full-row fallback).
 */
export function orderByLogit(logits: Float32Array): Uint32Array {
  const n = logits.length;
  const bits = new Uint32Array(logits.buffer, logits.byteOffset, n);
  let keys = new Uint32Array(n);
  let ids = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    // Ascending order-preserving key (negatives flipped, positives above them; −0 as +0),
    // inverted so that descending logits sort first.
    const b = bits[i] === 0x80000000 ? 0 : bits[i];
    keys[i] = ~(b & 0x80000000 ? ~b : b | 0x80000000) >>> 0;
    ids[i] = i;
  }
  let keys2 = new Uint32Array(n);
  let ids2 = new Uint32Array(n);
  const count = new Uint32Array(2048);
  for (const shift of [0, 11, 22]) {
    count.fill(0);
    for (let i = 0; i < n; i++) count[(keys[i] >>> shift) & 2047]++;
    for (let d = 0, sum = 0; d < 2048; d++) {
      const c = count[d];
      count[d] = sum;
      sum += c;
    }
    for (let i = 0; i < n; i++) {
      const at = count[(keys[i] >>> shift) & 2047]++;
      keys2[at] = keys[i];
      ids2[at] = ids[i];
    }
    [keys, keys2, ids, ids2] = [keys2, keys, ids2, ids];
  }
  return ids;
}
