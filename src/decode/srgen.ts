// SRGen — Self-Reflective Generation (algorithms.md §4). Each step the entropy of the sampling
// distribution is compared with a threshold drawn from the recent entropies; where it is higher,
// the decoder "reflects" before emitting: it optimises one vector δ added to the final hidden
// states of every position so far, for (1−λ)·(next-token cross-entropy over the context) +
// λ·(entropy at the last position), and samples the token from W(h_T + δ). δ is then discarded.
// The optimisation runs on the GPU (runtime.reflect: cross-entropy kernels and AdamW, one submit).
// Monitoring starts at the second generated token: the token the prefill forward produced is
// never checked and never enters the entropy history, as in the authors' code.
import { InvalidArgumentError, checkInteger, checkNumber } from '../errors.ts';
import type { DecodeRuntime } from '../runtime/decode-runtime.ts';
import type { StepStats } from '../runtime/stats.ts';
import { type DecodeContext, type Decoder, type Emission, checkDecodeContext, checkPrompt, checkRuntime } from './decoder.ts';
import { defineDecoder } from './spec.ts';
import { SamplingDecoder, type SamplingDecoderOptions } from './sampling-decoder.ts';

export interface SrgenThresholdOptions {
  /** N: entries of history the adaptive threshold looks at. Default 25. */
  window: number;
  /** K: standard deviations above the mean. Default 4. */
  k: number;
  /** σ_min: floor of the standard deviation. Default 0.5. */
  sigmaMin: number;
  /** θ_min: floor of the threshold. Default 1.8. */
  thetaMin: number;
  /** θ_0: threshold while fewer than N entries are known. Default 3.0. */
  theta0: number;
}

export interface SrgenOptions extends SamplingDecoderOptions, Partial<SrgenThresholdOptions> {
  /** Weight of the entropy term in the loss. Default 0.05. */
  lambda?: number;
  /** AdamW learning rate. Default 0.01. */
  lr?: number;
  /** AdamW steps per reflection. Default 3. */
  optSteps?: number;
  /**
   * Reflections per generation at most; monitoring stops after the last. Default 20. (The
   * authors' `max_retries = 20` loop yields at most 19 reflections; this is exactly "at most
   * maxReflections", so 20 allows one more than their code.)
   */
  maxReflections?: number;
}

/**
 * The authors' settings. Sampling as their runs had it: T 0.6, top-k 50 (HF's implicit default),
 * top-p 0.95 (the checkpoint's generation_config); each is overridable.
 */
export const SRGEN_DEFAULTS = {
  window: 25, k: 4, sigmaMin: 0.5, thetaMin: 1.8, theta0: 3.0,
  lambda: 0.05, lr: 0.01, optSteps: 3, maxReflections: 20, temperature: 0.6, topK: 50, topP: 0.95,
} as const;

/**
 * The threshold θ for a step, from the entropies of the steps before it (`history`, oldest
 * first): with at least N entries, max(mean + K·max(std, σ_min), θ_min) over the last N (std
 * unbiased, divisor N − 1); otherwise θ_0. As the authors' code does (algorithms.md §4, SRGen
 * steps 1–2), the current step's entropy is compared with a threshold of the previous N and
 * appended afterwards: a spike does not raise its own threshold.
 */
export function srgenThreshold(history: readonly number[], o: SrgenThresholdOptions = SRGEN_DEFAULTS): number {
  if (!Array.isArray(history)) throw new InvalidArgumentError('history must be an array of entropies');
  checkThresholdOptions(o);
  const n = o.window;
  if (history.length < n) return o.theta0;
  const last = history.slice(history.length - n);
  last.forEach((h, i) => checkNumber(`history[${history.length - n + i}]`, h, -Number.MAX_VALUE, Number.MAX_VALUE));
  const mean = last.reduce((a, b) => a + b, 0) / n;
  const variance = n > 1 ? last.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1) : 0;
  return Math.max(mean + o.k * Math.max(Math.sqrt(variance), o.sigmaMin), o.thetaMin);
}

/** Throws InvalidArgumentError naming the first threshold option out of range. */
function checkThresholdOptions(o: SrgenThresholdOptions): SrgenThresholdOptions {
  if (typeof o !== 'object' || o === null) throw new InvalidArgumentError('threshold options must be an object { window, k, sigmaMin, thetaMin, theta0 }');
  return {
    window: checkInteger('window', o.window, 1, 1 << 20),
    k: checkNumber('k', o.k, 0, 1e3),
    sigmaMin: checkNumber('sigmaMin', o.sigmaMin, 0, 1e3),
    thetaMin: checkNumber('thetaMin', o.thetaMin, 0, 1e3),
    theta0: checkNumber('theta0', o.theta0, 0, 1e3),
  };
}

/** A reflection before the token at `pos`. */
export interface SrgenEvent {
  type: 'srgen';
  pos: number;
  /** Entropy of softmax(z/T) at `pos`, nats, and the threshold it exceeded. */
  entropy: number;
  threshold: number;
  /** The loss at δ = 0, then after each AdamW step. */
  loss: number[];
  /** The token sampled from W(h_T + δ). */
  token: number;
}

export type SrgenSummary = {
  decoder: 'srgen';
  reflections: number;
  /** Steps whose entropy was compared with the threshold. */
  monitoredSteps: number;
};

const d0 = SRGEN_DEFAULTS;
export const srgenSpec = defineDecoder<SrgenEvent, SrgenSummary>()({
  name: 'srgen',
  key: 'srgen',
  title: 'SRGen',
  doc: 'Self-Reflective Generation: above an adaptive entropy threshold, optimise a vector δ on the final hidden states for a few AdamW steps, then sample from W(h_T + δ).',
  params: {
    window: { type: 'integer', default: d0.window, min: 1, max: 1 << 20, unit: 'tokens', legacy: 'window', doc: 'N: entropies the adaptive threshold looks at' },
    k: { type: 'number', default: d0.k, min: 0, max: 1e3, legacy: 'k', doc: 'K: standard deviations above the mean' },
    sigmaMin: { type: 'number', default: d0.sigmaMin, min: 0, max: 1e3, unit: 'nats', legacy: 'sigmaMin', doc: 'σ_min: floor of the standard deviation' },
    thetaMin: { type: 'number', default: d0.thetaMin, min: 0, max: 1e3, unit: 'nats', legacy: 'thetaMin', demo: { step: 0.1 }, doc: 'θ_min: floor of the threshold' },
    theta0: { type: 'number', default: d0.theta0, min: 0, max: 1e3, unit: 'nats', legacy: 'theta0', demo: { step: 0.1 }, doc: 'θ_0: the threshold before N entropies are known' },
    lambda: { type: 'number', default: d0.lambda, min: 0, max: 1, legacy: 'lambda', doc: 'λ: weight of the entropy term in the reflection loss' },
    lr: { type: 'number', default: d0.lr, min: 0, max: 10, legacy: 'lr', doc: 'AdamW learning rate for δ' },
    optSteps: { type: 'integer', default: d0.optSteps, min: 0, max: 100, unit: 'steps', legacy: 'optSteps', doc: 'AdamW steps per reflection' },
    maxReflections: { type: 'integer', default: d0.maxReflections, min: 0, max: 1 << 20, legacy: 'maxReflections', doc: 'reflections per generation at most; then monitoring stops' },
  },
  sampling: { temperature: d0.temperature, topK: d0.topK, topP: d0.topP },
  requires: () => ({ hiddenStates: true }),
  create: (p, c) => new SrgenDecoder({ ...c.sampler, seed: c.seed, ...p }),
});

export class SrgenDecoder implements Decoder<SrgenEvent, SrgenSummary> {
  readonly name = 'srgen';
  readonly base: SamplingDecoder;
  readonly threshold: SrgenThresholdOptions;
  readonly lambda: number;
  readonly lr: number;
  readonly optSteps: number;
  readonly maxReflections: number;
  private readonly temperature: number;
  /** Entropies of the monitored steps (nats, at the sampling temperature). */
  readonly history: number[] = [];
  reflections = 0;
  /** Tokens generated since start() (the first, from the prefill forward, is not monitored). */
  private generated = 0;

  constructor(o: SrgenOptions = {}) {
    if (typeof o !== 'object' || o === null) throw new InvalidArgumentError('SRGen options must be an object');
    const { lambda, lr, optSteps, maxReflections, window, k, sigmaMin, thetaMin, theta0, ...sampling } = o;
    const d = SRGEN_DEFAULTS;
    this.threshold = checkThresholdOptions({
      window: window ?? d.window, k: k ?? d.k, sigmaMin: sigmaMin ?? d.sigmaMin, thetaMin: thetaMin ?? d.thetaMin, theta0: theta0 ?? d.theta0,
    });
    this.lambda = checkNumber('lambda', lambda ?? d.lambda, 0, 1);
    this.lr = checkNumber('lr', lr ?? d.lr, 0, 10);
    this.optSteps = checkInteger('optSteps', optSteps ?? d.optSteps, 0, 100);
    this.maxReflections = checkInteger('maxReflections', maxReflections ?? d.maxReflections, 0, 1 << 20);
    this.base = new SamplingDecoder({
      ...sampling,
      temperature: sampling.temperature ?? d.temperature, topK: sampling.topK ?? d.topK, topP: sampling.topP ?? d.topP,
    });
    this.temperature = this.base.sampler.params.temperature || 1;
  }

  sampling() {
    return this.base.sampling();
  }

  /** Totals for the result: reflections made, steps monitored (entropies in the history). */
  summary(): SrgenSummary {
    return { decoder: 'srgen', reflections: this.reflections, monitoredSteps: this.history.length };
  }

  /** Runs the prompt on row 0 (as the engine would) and starts a generation: no history yet. */
  async start(runtime: DecodeRuntime, prompt: readonly number[]): Promise<StepStats> {
    checkRuntime('runtime', runtime);
    checkPrompt(prompt);
    this.history.length = 0;
    this.reflections = 0;
    this.generated = 0;
    return runtime.feed(prompt, this.sampling());
  }

  async next(ctx: DecodeContext): Promise<Emission<SrgenEvent>> {
    checkDecodeContext(ctx);
    // The prefill forward's token is never checked and never enters the history.
    if (this.generated++ === 0) return this.base.next(ctx);
    if (this.reflections >= this.maxReflections) return this.base.next(ctx); // budget spent: stop monitoring
    // The step's stats are at the sampling temperature (sampling().statsTemperature).
    const entropy = ctx.stats.entropy;
    const threshold = srgenThreshold(this.history, this.threshold);
    this.history.push(entropy);
    const gauges = [{ value: entropy, threshold }];
    if (!(entropy > threshold)) return { ...(await this.base.next(ctx)), gauges };

    this.reflections++;
    const { losses, stats } = await ctx.runtime.reflect({
      tokens: ctx.tokens, lambda: this.lambda, steps: this.optSteps, temperature: this.temperature,
      adam: { lr: this.lr }, sampling: this.sampling(),
    });
    // The token comes from W(h_T + δ) through the normal sampler, keyed as the plain step's draw.
    const { tokenId } = await this.base.draw(ctx, stats, 0, ctx.pos, ctx.tokens);
    return {
      tokens: [tokenId],
      stats: [stats],
      event: { type: 'srgen', pos: ctx.pos, entropy, threshold, loss: losses, token: tokenId },
      gauges,
    };
  }
}
