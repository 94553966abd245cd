// What the runtime lends a decoder (src/decode): model steps over KV rows, KV management, and a
// full-vocabulary fallback — statistics only, never a GPU buffer.
import type { SamplingParams, Session } from './session.ts';
import type { StepStats } from './stats.ts';

/** What the engine lends a decoder: model steps over KV rows. Row 0 is the main sequence. */
export interface DecodeRuntime {
  readonly vocabSize: number;
  /** Context length: positions per row. */
  readonly seqLen: number;
  /** KV rows available (row 0 included). */
  readonly rows: number;
  /** Positions filled in `row`. */
  length(row: number): number;
  /** Runs each token at its row's next position, all rows in one batched step. */
  step(tokens: readonly { id: number; row: number }[], sampling: SamplingParams): Promise<StepStats[]>;
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
}

/** DecodeRuntime over one Session. */
export class SessionRuntime implements DecodeRuntime {
  /** Which token row of the last step each KV row's token was (for fullStats). */
  private lastHiddenRow = new Map<number, number>();

  constructor(private readonly session: Session) {}

  get vocabSize() { return this.session.config.vocabSize; }
  get seqLen() { return this.session.config.seqLen; }
  get rows() { return this.session.kv.rows; }
  length(row: number) { return this.session.kv.lengths[row]; }

  async step(tokens: readonly { id: number; row: number }[], sampling: SamplingParams): Promise<StepStats[]> {
    const inputs = tokens.map((t, i) => ({ id: t.id, row: t.row, pos: this.session.kv.lengths[t.row] + countBefore(tokens, i) }));
    const stats = await this.session.step(inputs, tokens.length, sampling);
    this.lastHiddenRow = new Map(tokens.map((t, i) => [t.row, i]));
    return stats;
  }

  fork(src: number, dsts: readonly number[]) { this.session.fork(src, dsts); }
  rollback(row: number, length: number) { this.session.kv.rollback(row, length); }
  commit(row: number) { this.session.commit(row); }

  async fullStats(row: number, temperature: number): Promise<StepStats> {
    const hiddenRow = this.lastHiddenRow.get(row);
    if (hiddenRow === undefined) throw new RangeError(`row ${row} was not part of the last step`);
    return statsOfLogits(await this.session.logits(hiddenRow), temperature);
  }

  /**
   * Feeds `ids` to row 0 at its next positions in one step (a prompt, or the tokens a decoder
   * emitted) and returns the statistics after the last one.
   */
  async feed(ids: readonly number[], sampling: SamplingParams): Promise<StepStats> {
    const start = this.session.kv.lengths[0];
    const [stats] = await this.session.step(ids.map((id, i) => ({ id, pos: start + i, row: 0 })), 1, sampling);
    this.lastHiddenRow = new Map([[0, ids.length - 1]]);
    return stats;
  }
}

/** Tokens for the same row earlier in the list (a row may take several tokens in one step). */
function countBefore(tokens: readonly { row: number }[], i: number): number {
  let n = 0;
  for (let j = 0; j < i; j++) if (tokens[j].row === tokens[i].row) n++;
  return n;
}

/** StepStats over every vocabulary entry, in float64, at `temperature`. */
export function statsOfLogits(logits: Float32Array, temperature: number): StepStats {
  const ids = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a] || a - b);
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
    argmax: ids[0],
    sampled: ids[0],
    topK: ids.map((id) => ({ id, logit: logits[id] })),
  };
}
