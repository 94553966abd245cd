// Adaptive temperature — HAPO's entropy-scaled temperature (algorithms.md §4), at inference.
// The authors calibrate on the previous rollout batch; an inference engine has only the current
// generation, so the calibration set is a running window of this generation's steps before the
// current one (the last `window` entropies; below `warmup` of them the temperature is T):
//   ℓ = ln max(H, 1e-8), H the entropy (nats) of softmax(z) at T = 1;
//   pivot m = the value at index round(0.8·(N − 1)) of ℓ sorted ascending (Python's round);
//   σ = sqrt(max(mean((ℓ − m)²), 1e-8)); z = (ℓ − m)/σ;
//   P = max(max z⁺, 1e-8), Q = min(min z⁻, −1e-8).
// Per step: ℓ = ln max(H, 1e-6); h = (ℓ − m)/(σ + 1e-6);
//   ĥ = clamp(h > 0 ? h/P : h/|Q|, −1, 1);  T′ = T·(1 + τ·ĥ), τ = 0.05;
// then the sampler stages at T′ and one seeded draw.
//
// The published code divides the negative branch by Q itself (negative), so h/Q ≥ 0 and ĥ is
// never below 0: steps below the pivot get a *higher* temperature, like those above it — a sign
// bug. This follows the paper: h/|Q|, so low-entropy steps cool and high-entropy steps warm.
//
// The stages run in the sampler's order (top-H → top-k → top-p → min-p → typical); the authors'
// rollout applies min-p before top-k/top-p, which differs only when both are on. T′ is known only
// after the step (it depends on that step's H). Each step's statistics are at T = 1 with the GPU's
// draw at T: with no truncating stage that draw serves while T′ = T (the warm-up, τ = 0); a draw the
// step's record cannot decide takes the statistics again at T′ (runtime.statsUnder: the GPU's draw
// at T′ keyed as the step's, the candidates' lse at T′, no logits read back), and only a draw those
// cannot decide either reads the full logits row.
import { InvalidArgumentError, checkInteger, checkNumber } from '../errors.ts';
import type { SamplingParams } from '../runtime/session.ts';
import type { StepStats } from '../runtime/stats.ts';
import { type DecodeContext, type Decoder, type Emission, checkDecodeContext } from './decoder.ts';
import { uniform01 } from './rng.ts';
import {
  CPU_DRAW_INDEX, MAX_TEMPERATURE, MIN_TEMPERATURE, type Sampler, type SamplerOptions, createSampler, drawIndex, needsFullVocabulary,
  samplerParams, warp,
} from './samplers.ts';
import { defineDecoder, roundHalfEven } from './spec.ts';

export const ADAPTIVE_TEMPERATURE_DEFAULTS = { tau: 0.05, window: 256, warmup: 8 } as const;
/** Candidates each step (and each redraw at T′) asks the GPU for: truncations decide from them. */
const CANDIDATES = 64;

/** HAPO's calibration of a set of entropies (nats). */
export interface Calibration {
  /** The pivot m (of ℓ = ln H). */
  pivot: number;
  sigma: number;
  /** max z⁺ (≥ 1e-8) and min z⁻ (≤ −1e-8). */
  p: number;
  q: number;
}

export function calibrate(entropies: readonly number[]): Calibration {
  if (!Array.isArray(entropies) || entropies.length === 0) throw new InvalidArgumentError('calibrate() needs at least one entropy');
  const l = entropies.map((h, i) => Math.log(Math.max(checkNumber(`entropies[${i}]`, h, -Number.MAX_VALUE, Number.MAX_VALUE), 1e-8)));
  const sorted = [...l].sort((a, b) => a - b);
  const pivot = sorted[roundHalfEven(0.8 * (sorted.length - 1))];
  const sigma = Math.sqrt(Math.max(l.reduce((s, x) => s + (x - pivot) ** 2, 0) / l.length, 1e-8));
  const z = l.map((x) => (x - pivot) / sigma);
  return { pivot, sigma, p: Math.max(Math.max(...z.map((x) => Math.max(x, 0))), 1e-8), q: Math.min(Math.min(...z.map((x) => Math.min(x, 0))), -1e-8) };
}

/** ĥ ∈ [−1, 1] of one step's entropy H (nats) under a calibration (the paper's sign). */
export function normalisedEntropy(entropy: number, c: Calibration): number {
  checkNumber('entropy', entropy, -Number.MAX_VALUE, Number.MAX_VALUE);
  const h = (Math.log(Math.max(entropy, 1e-6)) - c.pivot) / (c.sigma + 1e-6);
  const scaled = h > 0 ? h / c.p : h / Math.abs(c.q);
  return Math.min(1, Math.max(-1, scaled));
}

/** T′ = T·(1 + τ·ĥ). */
export function adaptedTemperature(temperature: number, tau: number, hHat: number): number {
  return temperature * (1 + tau * hHat);
}

export type AdaptiveTemperatureSummary = {
  decoder: 'adaptive-temperature';
  /** Steps whose temperature was adapted (after the warm-up). */
  adaptedSteps: number;
  meanTemperature: number;
  minTemperature: number;
  maxTemperature: number;
  /** Steps drawn from statistics taken again at T′ (runtime.statsUnder). */
  redrawnSteps: number;
  fullVocabularySteps: number;
};

export interface AdaptiveTemperatureOptions extends SamplerOptions {
  seed?: number;
  tau?: number;
  window?: number;
  warmup?: number;
}

export class AdaptiveTemperatureDecoder implements Decoder<never, AdaptiveTemperatureSummary> {
  readonly name = 'adaptive-temperature';
  private readonly options: SamplerOptions;
  /** The sampler at the base temperature T (what each step's GPU draw is at). */
  private readonly base: Sampler;
  private readonly temperature: number;
  private readonly seed: number;
  readonly tau: number;
  readonly window: number;
  readonly warmup: number;
  /** Raw entropies (nats) of this generation's steps, oldest first. */
  readonly history: number[] = [];
  /** The temperature of each step, in order. */
  readonly temperatures: number[] = [];
  private redrawnSteps = 0;
  private fullVocabularySteps = 0;

  constructor(o: AdaptiveTemperatureOptions = {}) {
    if (typeof o !== 'object' || o === null) throw new InvalidArgumentError('adaptive temperature options must be an object');
    const { seed = 0, tau, window, warmup, ...sampler } = o;
    this.options = sampler;
    this.base = this.samplerAt(samplerParams(sampler).temperature); // validates every stage now
    this.temperature = this.base.params.temperature;
    this.seed = checkInteger('seed', seed, 0, 0xffffffff);
    this.tau = checkNumber('tau', tau ?? ADAPTIVE_TEMPERATURE_DEFAULTS.tau, 0, 1);
    this.window = checkInteger('window', window ?? ADAPTIVE_TEMPERATURE_DEFAULTS.window, 1, 1 << 20);
    this.warmup = checkInteger('warmup', warmup ?? ADAPTIVE_TEMPERATURE_DEFAULTS.warmup, 1, 1 << 20);
  }

  /** Statistics of the raw logits (H at T = 1) with 64 candidates, and the GPU's draw at T. */
  sampling(): SamplingParams {
    return { ...this.base.sampling(this.seed), statsTemperature: 1, candidates: CANDIDATES };
  }

  summary(): AdaptiveTemperatureSummary {
    const ts = this.temperatures;
    const adapted = Math.max(0, ts.length - Math.min(this.warmup, ts.length));
    return {
      decoder: 'adaptive-temperature', adaptedSteps: adapted,
      meanTemperature: ts.length ? ts.reduce((a, b) => a + b, 0) / ts.length : this.temperature,
      minTemperature: ts.length ? Math.min(...ts) : this.temperature,
      maxTemperature: ts.length ? Math.max(...ts) : this.temperature,
      redrawnSteps: this.redrawnSteps, fullVocabularySteps: this.fullVocabularySteps,
    };
  }

  /** The temperature for a step of raw entropy H, from the window before it (T below the warm-up). */
  temperatureFor(entropy: number): { temperature: number; pivot: number | null } {
    const recent = this.history.slice(-this.window);
    if (recent.length < this.warmup || this.temperature === 0) return { temperature: this.temperature, pivot: null };
    const c = calibrate(recent);
    const t = adaptedTemperature(this.temperature, this.tau, normalisedEntropy(entropy, c));
    return { temperature: Math.min(MAX_TEMPERATURE, t), pivot: c.pivot };
  }

  async next(ctx: DecodeContext): Promise<Emission<never>> {
    checkDecodeContext(ctx);
    const entropy = ctx.stats.entropy; // at statsTemperature 1: the raw logits
    const { temperature, pivot } = this.temperatureFor(entropy);
    this.history.push(entropy);
    this.temperatures.push(temperature);
    const tokenId = await this.draw(ctx, ctx.stats, temperature);
    const gauges = pivot === null ? undefined : [{ value: entropy, threshold: Math.exp(pivot) }];
    return { tokens: [tokenId], stats: [ctx.stats], ...(gauges ? { gauges } : {}) };
  }

  private samplerAt(temperature: number) {
    return createSampler({ ...this.options, temperature: temperature > 0 ? Math.max(temperature, MIN_TEMPERATURE) : 0 });
  }

  /**
   * The token at T′: from the step's statistics when they decide it (greedy, a truncation from the
   * raw candidates, or the step's own GPU draw while T′ = T), else from statistics taken again at
   * T′, else from the full logits row.
   */
  private async draw(ctx: DecodeContext, stats: StepStats, temperature: number): Promise<number> {
    const sampler = this.samplerAt(temperature);
    const row = ctx.runtime.drawRow(0);
    const key = { seed: this.seed, row, pos: ctx.pos, history: ctx.tokens, vocabSize: ctx.runtime.vocabSize };
    const first = sampler.sample(stats, { ...key, statsTemperature: 1 });
    if (!needsFullVocabulary(first) && (first.source !== 'gpu' || sampler.params.temperature === this.temperature)) {
      return first.tokenId;
    }
    const at = { ...sampler.sampling(this.seed), candidates: CANDIDATES };
    // A record at T′ decides what the step's could not, unless it would be the step's own (stats at
    // 1, no draw) or the GPU's draw cannot serve (a penalty with no truncating stage).
    const useful = !(at.statsTemperature === 1 && at.temperature === 0) && !(needsFullVocabulary(first) && first.stage === 'sample');
    if (useful) {
      this.redrawnSteps++;
      const again = sampler.sample(await ctx.runtime.statsUnder(0, at), { ...key, statsTemperature: at.statsTemperature });
      if (!needsFullVocabulary(again)) return again.tokenId;
    }
    this.fullVocabularySteps++;
    const full = await ctx.runtime.fullStats(0, 1);
    const d = warp(full, sampler.params, { history: ctx.tokens, statsTemperature: 1, vocabSize: ctx.runtime.vocabSize });
    if (needsFullVocabulary(d) || d.tail) throw new InvalidArgumentError('adaptive temperature: the full logits row must decide the draw');
    return d.ids[drawIndex(d, uniform01(this.seed, row, ctx.pos, 0, CPU_DRAW_INDEX))];
  }
}

export const adaptiveTemperatureSpec = defineDecoder<never, AdaptiveTemperatureSummary>()({
  name: 'adaptive-temperature',
  key: 'adaptiveTemperature',
  title: 'adaptive temperature',
  doc: 'HAPO\'s entropy-scaled temperature T′ = T·(1 + τ·ĥ), ĥ the step\'s log-entropy against a running calibration of this generation.',
  params: {
    tau: { type: 'number', default: ADAPTIVE_TEMPERATURE_DEFAULTS.tau, min: 0, max: 1, demo: { step: 0.01 }, doc: 'τ: the largest relative change of the temperature' },
    window: { type: 'integer', default: ADAPTIVE_TEMPERATURE_DEFAULTS.window, min: 1, max: 1 << 20, unit: 'tokens', doc: 'calibration: the last this many steps of the generation' },
    warmup: { type: 'integer', default: ADAPTIVE_TEMPERATURE_DEFAULTS.warmup, min: 1, max: 1 << 20, unit: 'tokens', doc: 'steps known before the temperature adapts (until then T)' },
  },
  sampling: { temperature: 1 },
  requires: () => ({}),
  create: (p, c) => new AdaptiveTemperatureDecoder({ ...c.sampler, seed: c.seed, tau: p.tau, window: p.window, warmup: p.warmup }),
});
