// CNTP — Cautious Next Token Prediction (algorithms.md §4). Where the model hesitates (high
// entropy of the warped distribution), run N independent trials to the next punctuation and keep
// the one with the lowest perplexity. Trials run as batched KV rows: each step reads the weights
// once for all of them.
import { InvalidArgumentError, checkInteger, checkNumber } from '../errors.ts';
import type { StepStats } from '../runtime/stats.ts';
import { type DecodeContext, type Decoder, type Emission, checkDecodeContext } from './decoder.ts';
import { DecoderOptionError, defineDecoder } from './spec.ts';
import { SamplingDecoder, type SamplingDecoderOptions } from './sampling-decoder.ts';
import { type Distribution, type SampledToken, checkDistribution, entropyOf } from './samplers.ts';

export interface CntpOptions extends SamplingDecoderOptions {
  /** Entropy (nats) at or below which one trial is run. Default 0.01. */
  hLo?: number;
  /** Entropy at or above which maxTrials are run. Default 1.5. */
  hHi?: number;
  /** N_max. Default 10. */
  maxTrials?: number;
  /** Token ids that end a trial once emitted (the first token of . , \n ? ! : ; ) ] }). */
  stopIds: readonly number[];
  /** Ids that end generation (EOS; BOS for llama2.c models). */
  endIds: readonly number[];
  /** Run trials one after another instead of as one batch (same tokens; for comparison). */
  sequential?: boolean;
}

export const CNTP_DEFAULTS = { hLo: 0.01, hHi: 1.5, maxTrials: 10, topK: 50 } as const;

/** CNTP trials end after the first token of each of these marks as the tokenizer encodes it mid-text. */
export const CNTP_STOP_MARKS = ['.', ',', '\n', '?', '!', ':', ';', ')', ']', '}'] as const;

/** A branch point: N trials ran from `pos`; `chosen` (lowest perplexity) was committed. */
export interface CntpEvent {
  type: 'cntp';
  pos: number;
  /** H of the warped distribution at `pos`, nats. */
  entropy: number;
  trials: number;
  /** Perplexity of each trial under its warped distributions. */
  ppl: number[];
  chosen: number;
  committed: number[];
  /** Each trial's tokens. */
  tokens: number[][];
  /** Each trial's text (the engine adds it). */
  texts?: string[];
}

export type CntpSummary = {
  decoder: 'cntp';
  /** Branch points (steps with N > 1 trials). */
  branches: number;
  /** Trials run at all branch points. */
  trials: number;
};

export const cntpSpec = defineDecoder<CntpEvent, CntpSummary>()({
  name: 'cntp',
  key: 'cntp',
  title: 'CNTP',
  doc: 'Cautious Next Token Prediction: where the warped entropy is high, N trials to the next punctuation as batched KV rows; the lowest-perplexity one is kept.',
  params: {
    hLo: { type: 'number', default: CNTP_DEFAULTS.hLo, min: 0, max: 1e3, unit: 'nats', legacy: 'hLo', doc: 'entropy at or below which one trial runs' },
    hHi: { type: 'number', default: CNTP_DEFAULTS.hHi, min: 0, max: 1e3, unit: 'nats', legacy: 'hHi', doc: 'entropy at or above which maxTrials run' },
    maxTrials: { type: 'integer', default: CNTP_DEFAULTS.maxTrials, min: 1, max: 64, unit: 'trials', legacy: 'maxTrials', demo: { step: 1 }, doc: 'N_max (KV rows)' },
    sequential: { type: 'boolean', default: false, legacy: 'trialsInSequence', doc: 'run trials one after another instead of as one batch (same tokens; for benchmarks)' },
  },
  sampling: { topK: CNTP_DEFAULTS.topK },
  check(p) {
    if (!(p.hHi > p.hLo)) throw new DecoderOptionError('cntp.hHi', `cntp.hHi must be above cntp.hLo (${p.hLo}), got ${p.hHi}`);
  },
  requires: (p) => ({ rows: p.maxTrials }),
  create: (p, c) => new CntpDecoder({
    ...c.sampler, seed: c.seed, hLo: p.hLo, hHi: p.hHi, maxTrials: p.maxTrials, sequential: p.sequential,
    stopIds: c.tokenIds(CNTP_STOP_MARKS), endIds: c.endIds,
  }),
});

/** N = floor(1 + (N_max − 1)·clamp((H − H_lo)/(H_hi − H_lo), 0, 1)). */
export function trialCount(entropy: number, hLo: number, hHi: number, maxTrials: number): number {
  checkNumber('entropy', entropy, -Number.MAX_VALUE, Number.MAX_VALUE);
  checkNumber('hLo', hLo, 0, Number.MAX_VALUE);
  checkNumber('hHi', hHi, 0, Number.MAX_VALUE);
  if (!(hHi > hLo)) throw new InvalidArgumentError(`hHi must be above hLo (${hLo}), got ${hHi}`);
  checkInteger('maxTrials', maxTrials, 1, Number.MAX_SAFE_INTEGER);
  const t = Math.min(1, Math.max(0, (entropy - hLo) / (hHi - hLo)));
  return Math.floor(1 + (maxTrials - 1) * t);
}

interface Trial {
  row: number;
  tokens: number[];
  logProbs: number[];
  stats: StepStats[];
  done: boolean;
}

export class CntpDecoder implements Decoder<CntpEvent, CntpSummary> {
  readonly name = 'cntp';
  private readonly base: SamplingDecoder;
  private readonly hLo: number;
  private readonly hHi: number;
  readonly maxTrials: number;
  private readonly stops: Set<number>;
  private readonly ends: Set<number>;
  private readonly sequential: boolean;
  private branches = 0;
  private trialsRun = 0;

  constructor(o: CntpOptions) {
    if (typeof o !== 'object' || o === null) throw new InvalidArgumentError('CNTP options must be an object');
    const { hLo, hHi, maxTrials, stopIds, endIds, sequential, ...sampling } = o;
    this.hLo = checkNumber('hLo', hLo ?? CNTP_DEFAULTS.hLo, 0, 1e3);
    this.hHi = checkNumber('hHi', hHi ?? CNTP_DEFAULTS.hHi, this.hLo + 1e-9, 1e3);
    this.maxTrials = checkInteger('maxTrials', maxTrials ?? CNTP_DEFAULTS.maxTrials, 1, 64);
    this.base = new SamplingDecoder({ ...sampling, topK: sampling.topK ?? CNTP_DEFAULTS.topK });
    this.stops = new Set(checkIds('stopIds', stopIds));
    this.ends = new Set(checkIds('endIds', endIds));
    if (sequential !== undefined && typeof sequential !== 'boolean') throw new InvalidArgumentError('sequential must be a boolean');
    this.sequential = sequential ?? false;
  }

  sampling() {
    return this.base.sampling();
  }

  summary(): CntpSummary {
    return { decoder: 'cntp', branches: this.branches, trials: this.trialsRun };
  }

  async next(ctx: DecodeContext): Promise<Emission<CntpEvent>> {
    checkDecodeContext(ctx);
    const first = await this.base.draw(ctx, ctx.stats, 0, ctx.pos, ctx.tokens);
    const entropy = warpedEntropy(first.distribution);
    const n = Math.min(trialCount(entropy, this.hLo, this.hHi, this.maxTrials), ctx.runtime.rows);
    if (n === 1) return { tokens: [first.tokenId], stats: [ctx.stats] };
    this.branches++;
    this.trialsRun += n;

    // Trial i runs on KV row i; row 0 is trial 0, so its first draw is plain sampling's. With one
    // token of budget left the trials are single draws from row 0's logits (no forward, no fork);
    // the most probable wins, as in the authors' code.
    const trials: Trial[] = [];
    const forked = ctx.budget > 1;
    if (forked) ctx.runtime.fork(0, Array.from({ length: n - 1 }, (_, i) => i + 1));
    for (let row = 0; row < n; row++) {
      const trial: Trial = { row, tokens: [], logProbs: [], stats: [], done: false };
      await this.extend(ctx, trial, ctx.stats, 0, row === 0 ? first : undefined);
      trials.push(trial);
    }
    if (this.sequential) {
      for (const trial of trials) await this.runTrials(ctx, [trial]);
    } else {
      await this.runTrials(ctx, trials);
    }

    const ppl = trials.map((t) => Math.exp(-t.logProbs.reduce((a, b) => a + b, 0) / t.tokens.length));
    const chosen = ppl.indexOf(Math.min(...ppl));
    const winner = trials[chosen];
    if (forked) ctx.runtime.commit(winner.row);
    return {
      tokens: winner.tokens,
      stats: winner.stats,
      event: { type: 'cntp', pos: ctx.pos, entropy, trials: n, ppl, chosen, committed: winner.tokens, tokens: trials.map((t) => t.tokens) },
    };
  }

  /** Steps the unfinished trials together until each has stopped. */
  private async runTrials(ctx: DecodeContext, trials: Trial[]): Promise<void> {
    for (;;) {
      const active = trials.filter((t) => !t.done);
      if (active.length === 0) return;
      const stats = await ctx.runtime.step(active.map((t) => ({ id: t.tokens.at(-1)!, row: t.row })), this.base.sampling());
      for (const [i, trial] of active.entries()) await this.extend(ctx, trial, stats[i]);
    }
  }

  /**
   * Draws a trial's next token from `stats` (or takes `drawn`, already drawn from them) and decides
   * whether the trial has stopped.
   */
  private async extend(ctx: DecodeContext, trial: Trial, stats: StepStats, statsRow = trial.row, drawn?: SampledToken): Promise<void> {
    const pos = ctx.pos + trial.tokens.length;
    drawn ??= await this.base.draw(ctx, stats, trial.row, pos, [...ctx.tokens, ...trial.tokens], statsRow);
    trial.tokens.push(drawn.tokenId);
    // ln p_warped(x): known from the candidates, or (the GPU drew a token beyond them) from the full row.
    trial.logProbs.push(await this.base.logProb(ctx, drawn, statsRow));
    trial.stats.push(stats);
    trial.done = this.stops.has(drawn.tokenId) || this.ends.has(drawn.tokenId) || trial.tokens.length >= ctx.budget;
  }
}

/**
 * CNTP's H (algorithms.md §4 step 1): −Σ p ln(p + 1e-10) over the warped, truncated set; with no
 * truncating stage (top-k 0, top-p 1) the entropy of the full softmax at T, which the step's
 * statistics carry (exact lse and entropy at the sampling temperature).
 */
export function warpedEntropy(d: Distribution): number {
  checkDistribution(d);
  const h = d.tail ? entropyOf(d) : entropyOf(d, 1e-10);
  if (h === null) throw new InvalidArgumentError('CNTP needs the step statistics at the sampling temperature (the full-vocabulary entropy is unknown)');
  return h;
}

function checkIds(name: string, ids: unknown): readonly number[] {
  if (!Array.isArray(ids)) throw new InvalidArgumentError(`${name} must be an array of token ids`);
  ids.forEach((id, i) => checkInteger(`${name}[${i}]`, id, 0, 0xffffffff));
  return ids;
}
