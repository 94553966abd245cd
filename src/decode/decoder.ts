// The decoder interface. A decoder sees the StepStats of the main sequence's current position
// and answers with the tokens to emit; to get there it may use the runtime's rows (fork, step a
// batch, roll back, commit a row as the main one), but never a GPU buffer.
import { InvalidArgumentError, checkInteger } from '../errors.ts';
import type { DecodeRuntime } from '../runtime/decode-runtime.ts';
import type { SamplingParams } from '../runtime/session.ts';
import type { StepStats } from '../runtime/stats.ts';

export type { DecodeRuntime };

export interface DecodeContext {
  /** Statistics of the logits at `pos` on row 0, computed with the decoder's `sampling`. */
  stats: StepStats;
  /** Position of the last token fed on row 0; the next token goes to pos + 1. */
  pos: number;
  /** Every token so far, BOS first. */
  tokens: readonly number[];
  /** New tokens still allowed (max tokens, context). */
  budget: number;
  runtime: DecodeRuntime;
}

/**
 * Something a decoder did that callers may want to see (a CNTP branch, an EAD switch, …): each
 * decoder declares its own event type with a literal `type`; registry.ts's DecoderEvent is their
 * union.
 */
export interface DecoderEventBase {
  type: string;
  /** Position whose logits the event is about. */
  pos: number;
}

/** What a decoder may be lent besides the main runtime, as its requirements declare. */
export interface DecoderResources {
  /** The second model's runtime (requirements.smallModel). */
  small?: DecodeRuntime;
}

/**
 * What an adaptive decoder compared with its threshold at a token, both in nats, so a chart can
 * draw them (EAD: the rolling mean entropy against τ; SRGen: the step's entropy against θ).
 */
export interface Gauge {
  value: number;
  threshold: number;
}

export interface Emission<E extends DecoderEventBase = DecoderEventBase> {
  /** Tokens to append, ≥ 1; the first is chosen from ctx.stats. */
  tokens: number[];
  /** For each token, the statistics it was chosen from. */
  stats: StepStats[];
  /** For each token, which model produced it (EAD: 'small' | 'large'). */
  models?: string[];
  event?: E;
  /** For each token, the decoder's gauge, if it has one. */
  gauges?: Gauge[];
  /**
   * The statistics after the last token, when the decoder has already fed it itself (EAD feeds
   * its active model); otherwise the engine feeds row 0 the tokens it lacks.
   */
  next?: StepStats;
}

export interface Decoder<E extends DecoderEventBase = DecoderEventBase, S extends object = object> {
  readonly name: string;
  /** Takes what the requirements asked the engine for (EAD: the small model's runtime). */
  attach?(resources: DecoderResources): void;
  /** What the GPU computes alongside each main-row step (stats temperature, GPU draw). */
  sampling(pos: number): SamplingParams;
  /** Runs the prompt itself and returns the statistics after it (default: row 0 of the runtime). */
  start?(runtime: DecodeRuntime, prompt: readonly number[]): Promise<StepStats>;
  next(ctx: DecodeContext): Promise<Emission<E>>;
  /** Totals for the result (EAD: large-model share, cost ratio, catch-up tokens). */
  summary?(): S;
}

/**
 * Throws InvalidArgumentError unless `ctx` has the shape of a DecodeContext (shallow: the stats
 * are checked by the sampler that reads them). Decoders call it first in next().
 */
export function checkDecodeContext(ctx: DecodeContext): DecodeContext {
  if (typeof ctx !== 'object' || ctx === null) throw new InvalidArgumentError('next() needs a DecodeContext { stats, pos, tokens, budget, runtime }');
  if (typeof ctx.stats !== 'object' || ctx.stats === null) throw new InvalidArgumentError('ctx.stats must be a StepStats record');
  checkInteger('ctx.pos', ctx.pos, 0, 0xffffffff);
  if (!Array.isArray(ctx.tokens) || ctx.tokens.length === 0) throw new InvalidArgumentError('ctx.tokens must be a non-empty array of token ids');
  checkInteger('ctx.budget', ctx.budget, 1, Number.MAX_SAFE_INTEGER);
  checkRuntime('ctx.runtime', ctx.runtime);
  return ctx;
}

/** Throws InvalidArgumentError unless `runtime` looks like a DecodeRuntime. */
export function checkRuntime(name: string, runtime: DecodeRuntime): DecodeRuntime {
  const methods = ['length', 'drawRow', 'step', 'feed', 'fork', 'rollback', 'commit', 'fullStats', 'statsUnder', 'reflect'] as const;
  if (typeof runtime !== 'object' || runtime === null || methods.some((m) => typeof runtime[m] !== 'function')) {
    throw new InvalidArgumentError(`${name} must be a DecodeRuntime`);
  }
  return runtime;
}

/** Throws InvalidArgumentError unless `ids` is a non-empty array of token ids. */
export function checkPrompt(ids: readonly number[]): readonly number[] {
  if (!Array.isArray(ids) || ids.length === 0) throw new InvalidArgumentError('the prompt must be a non-empty array of token ids');
  ids.forEach((id, i) => checkInteger(`prompt[${i}]`, id, 0, 0xffffffff));
  return ids;
}
