// n sequences from one prompt in n KV rows of one session, stepped together: one forward pass per
// token for all rows (OpenAI's `n`). The engine's loop yields each row's steps and end;
// demultiplex drives it and hands each of n Generations its row's steps; a Generation closed
// early stops its row.
import type { Decoder } from './decode/decoder.ts';
import type { DecodeRuntime, ReflectOptions, Reflection } from './runtime/decode-runtime.ts';
import type { SamplingParams } from './runtime/session.ts';
import type { StepStats } from './runtime/stats.ts';
import { InvalidArgumentError } from './errors.ts';

/** One item of the batch stream: a step of a row, or a row's end with its result. */
export type BatchItem<S, R> = { row: number; step: S } | { row: number; result: R };

/**
 * Row `row` of a runtime seen as row 0, for a decoder that reads its own row only: its length, the
 * row its draws are keyed by, and its last step's full row and statistics at other sampling. Stepping, forking and reflecting belong to the batch.
 */
export class RowView implements DecodeRuntime {
  constructor(private readonly runtime: DecodeRuntime, readonly row: number) {}
  get vocabSize() { return this.runtime.vocabSize; }
  get seqLen() { return this.runtime.seqLen; }
  get rows() { return 1; }
  length(row: number) { return this.runtime.length(this.mapped(row)); }
  drawRow(row: number) { return this.runtime.drawRow(this.mapped(row)); }
  fullStats(row: number, temperature: number): Promise<StepStats> { return this.runtime.fullStats(this.mapped(row), temperature); }
  statsUnder(row: number, sampling: SamplingParams): Promise<StepStats> { return this.runtime.statsUnder(this.mapped(row), sampling); }
  step(): Promise<StepStats[]> { throw this.refused('step'); }
  feed(): Promise<StepStats> { throw this.refused('feed'); }
  fork(): void { throw this.refused('fork'); }
  rollback(): void { throw this.refused('rollback'); }
  commit(): void { throw this.refused('commit'); }
  reflect(_: ReflectOptions): Promise<Reflection> { throw this.refused('reflect'); }

  private mapped(row: number): number {
    if (row !== 0) throw new InvalidArgumentError(`a batched row's decoder sees one row, not ${row}`);
    return this.row;
  }

  private refused(what: string) {
    return new InvalidArgumentError(`${what}: a batched row's decoder may only draw from its row (use one generate() per choice for this decoder)`);
  }
}

/** Whether a decoder can run as one row of a batch (it needs no rows, models or state beyond its own row). */
export function batchable(d: Decoder, requires: { rows?: number; smallModel?: boolean; hiddenStates?: boolean }): boolean {
  return !d.start && (requires.rows ?? 1) === 1 && !requires.smallModel && !requires.hiddenStates;
}

/** The step each row's decoder asks the GPU for: all rows share one step, so one SamplingParams. */
export function sharedSampling(decoders: readonly Decoder[], pos: number): SamplingParams {
  const s = decoders[0].sampling(pos);
  for (const d of decoders.slice(1)) {
    const t = d.sampling(pos);
    if (t.seed !== s.seed || t.temperature !== s.temperature || (t.statsTemperature ?? 1) !== (s.statsTemperature ?? 1)) {
      throw new InvalidArgumentError('the rows of a batch must sample alike (same decoder options)');
    }
  }
  return s;
}

/**
 * n Generation sources over one batch stream. The stream is driven to its end at once (the
 * engine's lock is released when the batch ends, whether or not every row is read), each row's
 * steps queued until its reader takes them; closing row r early marks it inactive, and the loop
 * stops stepping it.
 */
export function demultiplex<S, R>(source: AsyncGenerator<BatchItem<S, R>, void>, n: number, active: boolean[]): AsyncGenerator<S, R>[] {
  const queues: S[][] = Array.from({ length: n }, () => []);
  const results = new Map<number, R>();
  let failure: { error: unknown } | null = null;
  let ended = false;
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const wake of [...waiters]) wake();
    waiters.clear();
  };
  void (async () => {
    try {
      for (;;) {
        const next = await source.next();
        if (next.done) break;
        if ('step' in next.value) queues[next.value.row].push(next.value.step);
        else results.set(next.value.row, next.value.result);
        notify();
      }
    } catch (error) {
      failure = { error };
    } finally {
      ended = true;
      notify();
    }
  })();
  async function* rowSource(row: number): AsyncGenerator<S, R> {
    try {
      for (;;) {
        if (queues[row].length > 0) {
          yield queues[row].shift()!;
          continue;
        }
        if (results.has(row)) return results.get(row)!;
        if (failure) throw failure.error;
        if (ended) throw new InvalidArgumentError(`batch row ${row} ended without a result`);
        await new Promise<void>((wake) => waiters.add(wake));
      }
    } finally {
      active[row] = false;
    }
  }
  return Array.from({ length: n }, (_, r) => rowSource(r));
}
