// EAD — Entropy Adaptive Decoding (algorithms.md §4): a small and a large model sharing a
// vocabulary. The rolling mean of the active model's entropy (bits, raw logits) picks the model:
// above τ the large one, at or below τ the small one, each switch only after the active model has
// produced d_min tokens. Each model keeps its own KV cache, synced up to some position; switching
// into a model first feeds it, in one batched step, every token committed since it was last active.
//
// Choices the paper leaves open (documented in README):
// * The start: the small model reads the prompt; if its entropy at the last prompt position is
//   above τ, the large model catches up and produces the first token (no d_min before the first
//   token: there is no previous switch). So τ = +∞ is exactly small-only and τ = −∞ exactly
//   large-only.
// * Entropy is of the raw logits (softmax(z), before temperature) whatever T the sampler draws
//   at, as the paper specifies: the steps run their statistics at temperature 1. The draw still
//   uses T (the GPU's draw, or the candidates rescaled); stages that need the normaliser at T
//   (top-p, typical, top-H) then read the full logits row when T ≠ 1.
import { InvalidArgumentError, checkInteger, shown } from '../errors.ts';
import type { DecodeRuntime } from '../runtime/decode-runtime.ts';
import type { StepStats } from '../runtime/stats.ts';
import {
  type DecodeContext, type Decoder, type DecoderResources, type Emission, checkDecodeContext, checkPrompt, checkRuntime,
} from './decoder.ts';
import { defineDecoder } from './spec.ts';
import { SamplingDecoder, type SamplingDecoderOptions } from './sampling-decoder.ts';

export interface EadOptions extends SamplingDecoderOptions {
  /** Threshold on the rolling mean entropy, bits. ±Infinity allowed. Default 1.0. */
  tau?: number;
  /** Rolling window w. Default 5. */
  window?: number;
  /** Minimum stay d_min: tokens the active model produces before it may hand over. Default 4. */
  minStay?: number;
  /** Parameter counts, for the cost ratio f_L + (1 − f_L)·P_S/P_L. */
  smallParameters: number;
  largeParameters: number;
  /** Ids that end generation (not fed to a model after they are drawn). */
  endIds?: readonly number[];
}

export const EAD_DEFAULTS = { tau: 1.0, window: 5, minStay: 4 } as const;

/** A switch of model before the token at `pos`. */
export interface EadEvent {
  type: 'ead';
  pos: number;
  from: ModelName;
  to: ModelName;
  /** The rolling mean entropy that decided it, bits. */
  meanEntropyBits: number;
  /** Tokens the model switched into read first (its catch-up prefill). */
  catchUpTokens: number;
}

export type EadSummary = {
  decoder: 'ead';
  /** f_L: share of tokens by the large model. */
  largeShare: number;
  /** f_L + (1 − f_L)·P_S/P_L. */
  costRatio: number;
  catchUpTokens: number;
  promptTokens: number;
  switches: number;
  smallTokens: number;
  largeTokens: number;
};

export const eadSpec = defineDecoder<EadEvent, EadSummary>()({
  name: 'ead',
  key: 'ead',
  title: 'EAD',
  doc: 'Entropy Adaptive Decoding: the rolling mean entropy of the active model picks the small or the large model (loadModel\'s smallModel).',
  params: {
    tau: {
      type: 'number', default: EAD_DEFAULTS.tau, min: -1e6, max: 1e6, infinite: true, unit: 'bits', legacy: 'tau', demo: { step: 0.25 },
      doc: 'threshold on the rolling mean entropy: above it the large model (±Infinity: one model throughout)',
    },
    window: { type: 'integer', default: EAD_DEFAULTS.window, min: 1, max: 4096, unit: 'tokens', legacy: 'window', doc: 'rolling window w' },
    minStay: { type: 'integer', default: EAD_DEFAULTS.minStay, min: 0, max: 4096, unit: 'tokens', legacy: 'minStay', doc: 'd_min: tokens the active model produces before it may hand over' },
  },
  sampling: { temperature: 0 },
  requires: () => ({ smallModel: true }),
  create: (p, c) => new EadDecoder({
    ...c.sampler, seed: c.seed, tau: p.tau, window: p.window, minStay: p.minStay, endIds: c.endIds,
    smallParameters: c.parameters.small, largeParameters: c.parameters.large,
  }),
});

type ModelName = 'small' | 'large';

interface Member {
  name: ModelName;
  runtime: DecodeRuntime;
}

export class EadDecoder implements Decoder<EadEvent, EadSummary> {
  readonly name = 'ead';
  private readonly base: SamplingDecoder;
  private readonly tau: number;
  private readonly window: number;
  private readonly minStay: number;
  private readonly smallParameters: number;
  private readonly largeParameters: number;
  private small!: Member;
  private large!: Member;
  private active!: Member;
  private readonly history: number[] = [];
  private sinceSwitch = 0;
  private produced = { small: 0, large: 0 };
  private catchUpTokens = 0;
  private switches = 0;
  private promptTokens = 0;
  private smallRuntime: DecodeRuntime | null = null;
  private readonly ends: Set<number>;

  constructor(o: EadOptions) {
    if (typeof o !== 'object' || o === null) throw new InvalidArgumentError('EAD options must be an object');
    const { tau, window, minStay, smallParameters, largeParameters, endIds, ...sampling } = o;
    if (endIds !== undefined && !Array.isArray(endIds)) throw new InvalidArgumentError('endIds must be an array of token ids');
    (endIds ?? []).forEach((id, i) => checkInteger(`endIds[${i}]`, id, 0, 0xffffffff));
    this.ends = new Set(endIds ?? []);
    this.tau = tau ?? EAD_DEFAULTS.tau;
    if (typeof this.tau !== 'number' || Number.isNaN(this.tau)) {
      throw new InvalidArgumentError(`tau must be a number (±Infinity allowed), got ${shown(this.tau)}`);
    }
    this.window = checkInteger('window', window ?? EAD_DEFAULTS.window, 1, 4096);
    this.minStay = checkInteger('minStay', minStay ?? EAD_DEFAULTS.minStay, 0, 4096);
    this.smallParameters = checkInteger('smallParameters', smallParameters, 1, Number.MAX_SAFE_INTEGER);
    this.largeParameters = checkInteger('largeParameters', largeParameters, 1, Number.MAX_SAFE_INTEGER);
    // Statistics of the raw logits (temperature 1): H_t is of softmax(z), not softmax(z/T).
    this.base = new SamplingDecoder(sampling, 1);
  }

  sampling() {
    return this.base.sampling();
  }

  /** The small model's runtime (the engine's second session): a DecodeRuntime, or { small }. */
  attach(resources: DecodeRuntime | DecoderResources): this {
    const small = resources && 'small' in resources && !('step' in resources) ? resources.small : resources;
    this.smallRuntime = checkRuntime('the small model\'s runtime', small as DecodeRuntime);
    return this;
  }

  async start(runtime: DecodeRuntime, prompt: readonly number[]): Promise<StepStats> {
    if (!this.smallRuntime) throw new InvalidArgumentError('EAD needs a small model: attach() its runtime');
    checkRuntime('runtime', runtime);
    checkPrompt(prompt);
    this.small = { name: 'small', runtime: this.smallRuntime };
    this.large = { name: 'large', runtime };
    this.promptTokens = prompt.length;
    this.small.runtime.rollback(0, 0);
    this.large.runtime.rollback(0, 0);
    this.active = this.small;
    const stats = await this.feed(this.small, prompt);
    const bits = stats.entropy / Math.LN2;
    if (bits > this.tau) return this.switchTo(this.large, prompt);
    return stats;
  }

  async next(ctx: DecodeContext): Promise<Emission<EadEvent>> {
    checkDecodeContext(ctx);
    if (!this.active) throw new InvalidArgumentError('EAD: start() runs the prompt before next()');
    let stats = ctx.stats;
    this.history.push(stats.entropy / Math.LN2);
    if (this.history.length > this.window) this.history.shift();
    const mean = this.history.reduce((a, b) => a + b, 0) / this.history.length;
    let event: EadEvent | undefined;
    if (this.sinceSwitch >= this.minStay) {
      const want = mean > this.tau ? this.large : this.small;
      if (want !== this.active) {
        const from = this.active.name;
        const catchUp = ctx.tokens.length - want.runtime.length(0);
        stats = await this.switchTo(want, ctx.tokens);
        event = { type: 'ead', pos: ctx.pos, from, to: want.name, meanEntropyBits: mean, catchUpTokens: catchUp };
      }
    }
    const drawn = await this.base.draw({ ...ctx, runtime: this.active.runtime }, stats, 0, ctx.pos, ctx.tokens);
    const model = this.active.name;
    this.produced[model]++;
    this.sinceSwitch++;
    const last = ctx.budget > 1 && !this.ends.has(drawn.tokenId) ? await this.feed(this.active, [drawn.tokenId]) : undefined;
    const gauges = [{ value: mean * Math.LN2, threshold: this.tau * Math.LN2 }];
    return { tokens: [drawn.tokenId], stats: [stats], models: [model], event, gauges, next: last };
  }

  /** Feeds the tokens `member` lacks (everything after its synced position) and makes it active. */
  private async switchTo(member: Member, tokens: readonly number[]): Promise<StepStats> {
    const missing = tokens.slice(member.runtime.length(0));
    this.catchUpTokens += missing.length;
    this.switches++;
    this.active = member;
    this.sinceSwitch = 0;
    return this.feed(member, missing);
  }

  private feed(member: Member, ids: readonly number[]): Promise<StepStats> {
    return member.runtime.feed(ids, this.sampling());
  }

  summary(): EadSummary {
    const total = this.produced.small + this.produced.large;
    const largeShare = total ? this.produced.large / total : 0;
    return {
      decoder: 'ead',
      largeShare,
      costRatio: largeShare + (1 - largeShare) * (this.smallParameters / this.largeParameters),
      catchUpTokens: this.catchUpTokens,
      promptTokens: this.promptTokens,
      switches: this.switches,
      smallTokens: this.produced.small,
      largeTokens: this.produced.large,
    };
  }
}
