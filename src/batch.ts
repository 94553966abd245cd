// n sequences from one prompt in n KV rows of one session, stepped together: one forward pass per
// token for all rows (OpenAI's `n`). batchLoop runs the rows and yields each row's steps and end;
// demultiplex turns that one stream into n Generations, each pulling the shared loop as it is
// read, and a Generation closed early stops its row.
import type { Decoder } from './decode/decoder.ts';
import type { DecodeRuntime, ReflectOptions, Reflection } from './runtime/decode-runtime.ts';
import type { SamplingParams } from './runtime/session.ts';
import type { StepStats } from './runtime/stats.ts';
import { InvalidArgumentError } from './errors.ts';

/** One item of the batch stream: a step of a row, or a row's end with its result. */
export type BatchItem<S, R> = { row: number; step: S } | { row: number; result: R };

/**
 * Row `row` of a runtime seen as row 0, for a decoder that reads its own row only: length and the
 * full-vocabulary fallback of its last step. Stepping, forking and reflecting belong to the batch.
 */
export class RowView implements DecodeRuntime {
  constructor(private readonly runtime: DecodeRuntime, readonly row: number) {}
  get vocabSize() { return this.runtime.vocabSize; }
  get seqLen() { return this.runtime.seqLen; }
  get rows() { return 1; }
  length(row: number) { return this.runtime.length(this.mapped(row)); }
  fullStats(row: number, temperature: number): Promise<StepStats> { return this.runtime.fullStats(this.mapped(row), temperature); }
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
 * n Generation sources over one batch stream. Reading row r pulls the stream until r has a step
 * (or has ended), queueing the other rows' steps; closing row r early marks it inactive (the loop
 * stops stepping it), and once every row is closed the stream is closed.
 */
export function demultiplex<S, R>(source: AsyncGenerator<BatchItem<S, R>, void>, n: number, active: boolean[]): AsyncGenerator<S, R>[] {
  const queues: S[][] = Array.from({ length: n }, () => []);
  const results = new Map<number, R>();
  let failure: { error: unknown } | null = null;
  let ended = false;
  let pulling: Promise<void> | null = null;
  const pull = () => (pulling ??= (async () => {
    try {
      const next = await source.next();
      if (next.done) ended = true;
      else if ('step' in next.value) queues[next.value.row].push(next.value.step);
      else results.set(next.value.row, next.value.result);
    } catch (error) {
      failure = { error };
    } finally {
      pulling = null;
    }
  })());
  const close = (row: number) => {
    active[row] = false;
    if (active.every((a) => !a) && !ended) {
      ended = true;
      void source.return(undefined).catch(() => {});
    }
  };
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
        await pull();
      }
    } finally {
      close(row);
    }
  }
  return Array.from({ length: n }, (_, r) => rowSource(r));
}
