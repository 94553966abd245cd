// Greedy and sampled decoding through the sampler pipeline (samplers.ts): one token per step,
// chosen from the GPU's top-K and exact log-sum-exp; when those cannot decide a truncation, from
// the full logits row of that step.
import { InvalidArgumentError, checkInteger, checkNumber } from '../errors.ts';
import type { SamplingParams } from '../runtime/session.ts';
import type { StepStats } from '../runtime/stats.ts';
import { type DecodeContext, type Decoder, type Emission, checkDecodeContext, checkRuntime } from './decoder.ts';
import { defineDecoder } from './spec.ts';
import {
  MAX_TEMPERATURE, MIN_TEMPERATURE, type SampledToken, type Sampler, type SamplerOptions, createSampler, needsFullVocabulary,
  statsTemperatureOf, truncates,
} from './samplers.ts';

/** Candidates a truncating sampler asks the GPU for (the most a step returns). */
const TRUNCATION_CANDIDATES = 64;

export interface SamplingDecoderOptions extends SamplerOptions {
  seed?: number;
}

export type SamplingSummary = {
  decoder: 'greedy' | 'sample' | 'entropy-top-k';
  /** Tokens whose draw needed the full logits row (the candidates could not decide it). */
  fullVocabularySteps: number;
};

export const greedySpec = defineDecoder<never, SamplingSummary>()({
  name: 'greedy',
  key: 'greedy',
  title: 'greedy',
  doc: 'The argmax at every step, as llama2.c (the sampler stages other than the repetition penalty do not apply).',
  params: {},
  fixedSampling: { temperature: 0 },
  requires: () => ({}),
  create: (_, c) => new SamplingDecoder({ ...c.sampler, seed: c.seed }, undefined, 'greedy'),
});

export const sampleSpec = defineDecoder<never, SamplingSummary>()({
  name: 'sample',
  key: 'sample',
  title: 'sample',
  doc: 'The sampler pipeline: repetition penalty → temperature → top-H → top-k → top-p → min-p → typical, then one seeded draw.',
  params: {},
  sampling: { temperature: 1 },
  requires: () => ({}),
  create: (_, c) => new SamplingDecoder({ ...c.sampler, seed: c.seed }, undefined, 'sample'),
});

export class SamplingDecoder implements Decoder<never, SamplingSummary> {
  readonly name: SamplingSummary['decoder'];
  readonly sampler: Sampler;
  private readonly seed: number;
  /**
   * Temperature the GPU computes each step's lse and entropy at: the sampler's (1 for greedy)
   * unless the decoder needs other statistics (EAD: 1, the raw logits). Stages that need the
   * normaliser at T then fall back to the full logits row.
   */
  readonly statsTemperature: number;
  /** Steps whose token needed the full logits row (for benchmarks and tests). */
  fullVocabularySteps = 0;

  /** `statsTemperature`: see the field; default the sampler's temperature (1 for greedy). */
  constructor(options: SamplingDecoderOptions = {}, statsTemperature?: number, name?: SamplingSummary['decoder']) {
    if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('decoder options must be an object');
    const { seed = 0, ...samplerOptions } = options;
    this.sampler = createSampler(samplerOptions);
    this.seed = seed;
    this.name = name ?? (this.sampler.params.temperature === 0 ? 'greedy' : 'sample');
    this.sampler.sampling(seed); // validates the seed now, before any GPU work
    const own = statsTemperatureOf(this.sampler.params);
    this.statsTemperature = statsTemperature === undefined ? own : checkNumber('statsTemperature', statsTemperature, MIN_TEMPERATURE, MAX_TEMPERATURE);
  }

  sampling(): SamplingParams {
    const params = { ...this.sampler.sampling(this.seed), statsTemperature: this.statsTemperature };
    // Truncating stages decide from the candidates: ask for many, so the full-logits fallback
    // stays rare (top-p 0.9, or CNTP's top-k 50, need more than the default few).
    return truncates(this.sampler.params) ? { ...params, candidates: TRUNCATION_CANDIDATES } : params;
  }

  /**
   * Draws the token of KV row `row` from `stats` (the logits at `pos`), keyed by (seed, row, pos)
   * so a row's draws do not depend on what other rows do; falls back to the full logits row when
   * the top-K candidates cannot decide. `statsRow` is the row whose last step produced `stats`
   * (CNTP's trials all draw their first token from row 0's).
   */
  async draw(
    ctx: DecodeContext, stats: StepStats, row: number, pos: number, history: readonly number[], statsRow = row,
  ): Promise<SampledToken> {
    if (typeof ctx !== 'object' || ctx === null) throw new InvalidArgumentError('draw() needs the DecodeContext');
    checkRuntime('ctx.runtime', ctx.runtime);
    checkInteger('statsRow', statsRow, 0, 0xffffffff);
    const key = { seed: this.seed, row: ctx.runtime.drawRow(row), pos, history, statsTemperature: this.statsTemperature };
    const first = this.sampler.sample(stats, key);
    if (!needsFullVocabulary(first)) return first;
    this.fullVocabularySteps++;
    const temperature = this.sampler.params.temperature || 1;
    const fullRow = await ctx.runtime.fullStats(statsRow, temperature);
    const vocabSize = ctx.runtime.vocabSize;
    if (fullRow.topK.length < vocabSize) {
      throw new InvalidArgumentError(`runtime.fullStats must list all ${vocabSize} vocabulary entries, got ${fullRow.topK.length}`);
    }
    // Every entry is a candidate: the support is closed and every stage exact on it.
    const full = this.sampler.sample(fullRow, { ...key, statsTemperature: temperature, vocabSize });
    if (needsFullVocabulary(full)) throw new InvalidArgumentError(`the sampler is undecidable on the full logits row: ${full.reason}`);
    return full;
  }

  /**
   * ln p of a drawn token under the distribution it was drawn from. Known for a draw from a kept
   * set; for the GPU's full-vocabulary draw of a token outside the candidates (or stats at another
   * temperature), read from the full logits row of `statsRow` at the sampler's temperature.
   */
  async logProb(ctx: DecodeContext, drawn: SampledToken, statsRow: number): Promise<number> {
    if (typeof drawn !== 'object' || drawn === null || drawn.needsFullVocabulary !== false) {
      throw new InvalidArgumentError('logProb() needs a token returned by draw()');
    }
    checkInteger('drawn.tokenId', drawn.tokenId, 0, 0xffffffff);
    if (drawn.logProb !== null) return checkNumber('drawn.logProb', drawn.logProb, -Number.MAX_VALUE, Number.MAX_VALUE);
    if (typeof ctx !== 'object' || ctx === null) throw new InvalidArgumentError('logProb() needs the DecodeContext');
    checkRuntime('ctx.runtime', ctx.runtime);
    checkInteger('statsRow', statsRow, 0, 0xffffffff);
    const temperature = this.sampler.params.temperature || 1;
    const full = await ctx.runtime.fullStats(statsRow, temperature);
    const c = full.topK.find((x) => x.id === drawn.tokenId);
    if (!c) throw new InvalidArgumentError(`token ${drawn.tokenId} is not in the full logits row of row ${statsRow}`);
    return c.logit / temperature - full.lse;
  }

  summary(): SamplingSummary {
    return { decoder: this.name, fullVocabularySteps: this.fullVocabularySteps };
  }

  async next(ctx: DecodeContext): Promise<Emission<never>> {
    checkDecodeContext(ctx);
    const { tokenId } = await this.draw(ctx, ctx.stats, 0, ctx.pos, ctx.tokens);
    return { tokens: [tokenId], stats: [ctx.stats] };
  }
}
