// entropix — the original quadrant sampler (algorithms.md §4; xjdr-alt/entropix `sampler.py`).
// Each step the entropy and varentropy of the raw logits (bits), with four attention metrics of
// the last layer, pick one of five branches:
//   1. ent < 0.1, vent < 0.1           argmax
//   2. ent > 5.0, vent < 0.1           emit the clarifying token once per generation; after that
//                                      sample at T = min(1.5, T₀·(1.3 + 0.2·attn_ent))
//   3. ent < 5.0, vent > 5.0           T = min(1.5, T₀·(1.2 + 0.3·interaction)),
//                                      top-k = max(5, int(k₀·(1 + 0.5·(1 − agreement))))
//   4. ent > 3.0, vent > 5.0           T = max(2.0, T₀·(2.0 + 0.5·attn_vent)),
//                                      top-p = max(0.5, p₀ − 0.2·attn_ent)
//   5. otherwise (adaptive)            U_l = ent + vent, U_a = attn_ent + attn_vent;
//                                      T = T₀·(1 + 0.3·U_l + 0.2·U_a − 0.2·agreement),
//                                      top-p = clip(p₀·(1 + 0.1·attn_vent), 0.1, 1),
//                                      top-k = clip(round(k₀·(1 + 0.3·interaction − 0.2·agreement)), 1, 100),
//                                      min-p = clip(m₀·(1 − 0.5·U_l), 0.01, 0.5);
//                                      5 draws, the one with the highest raw log-prob kept (first on ties)
// tested in that order, with T₀ 0.666, p₀ 0.90, k₀ 27, m₀ 0.03 (the sampler options `temperature`,
// `topP`, `topK`, `minP`). Every draw: softmax(z/T) → min-p → top-k → top-p over the descending
// order → renormalise → one seeded draw. The first token after the prompt is the argmax, as the
// authors' driver does.
//
// Where the published code differs (and this follows algorithms.md, i.e. the algorithm):
// * `_sample` computes the min-p mask on `logit` but then samples from `probs`, computed before
//   the mask: min-p never applies. Here it does: the draw is over the tokens with p ≥ min_p·p_max
//   (probabilities renormalised over them before top-k/top-p; the min-p set is what top-p's
//   cumulative mass is taken over, as the published code takes it over the top-k probabilities
//   without renormalising after top-k).
// * `_sample` flips the top-k list to ascending order before the cumulative sum, so top-p cuts
//   the most probable tokens instead of the least. Here the order is descending; a token stays
//   iff the mass before it is ≤ top-p (the published mask's `> top_p`, on the right order).
// * The clarifying token is inserted when it "has not been emitted yet in this generation"; the
//   published code checks only the last generated token (`gen_tokens[:, -1]`), so it re-inserts
//   it after any other token. The id is Llama 3's 2564 (" ...") hard-coded; here a parameter,
//   by default the model's first token of " ..." as encoded mid-text.
// * Attention entropy and agreement are over the valid (filled) cache positions; the published
//   code's scores include the empty cache slots (score 0, so softmax weight e^0 each), and
//   `interaction_strength` averages |S| over them too.
// * The adaptive branch scores each sample by log p + a confidence term shared by all five
//   samples; the term cannot change which wins, so only the raw log-prob is compared.
// * Branch 4's temperature is max(2.0, …) as published and as algorithms.md writes it (so it is
//   at least 2; a min would mirror branches 2 and 3, but the algorithm as specified is kept).
// * The published code samples with jax.random keys; here the draws are the counter-based RNG
//   (rng.ts), keyed (seed, row, position, counter = sample index), so a seed reproduces a text;
//   the row is 0 but in a batch (runtime.drawRow).
//
// Attention statistics come from StepStats.attention (the engine turns them on for the last layer
// because the spec requires them). A runtime that gives none (a fake runtime in tests) leaves
// the four metrics at 0, and the summary says `attention: 'unavailable'` — the branch tests do
// not read them; they only shape T, top-k and top-p.
import { InvalidArgumentError, checkInteger, checkNumber } from '../errors.ts';
import type { StepStats } from '../runtime/stats.ts';
import { type DecodeContext, type Decoder, type Emission, checkDecodeContext } from './decoder.ts';
import { uniform01 } from './rng.ts';
import {
  CPU_DRAW_INDEX, type Distribution, MAX_TEMPERATURE, MIN_TEMPERATURE, type SamplerOptions, applyMinP, applyTemperature, applyTopK,
  drawIndex, fromStepStats, needsFullVocabulary, normaliser,
} from './samplers.ts';
import { defineDecoder, roundHalfEven } from './spec.ts';

export const ENTROPIX_DEFAULTS = { temperature: 0.666, topP: 0.9, topK: 27, minP: 0.03, clarifyingToken: 2564 } as const;

/** The attention metrics of one step (last layer, per query head after the GQA repeat). */
export interface EntropixAttention {
  /** Mean over heads of the entropy of each head's attention distribution, bits. */
  entropy: number;
  /** Variance across heads of those entropies (population variance, bits²). */
  varentropy: number;
  /** Mean over heads and positions of |P_h − mean_h P|. */
  agreement: number;
  /** Mean |S| of the scaled pre-softmax scores. */
  interaction: number;
}

const NO_ATTENTION: EntropixAttention = { entropy: 0, varentropy: 0, agreement: 0, interaction: 0 };

/**
 * The step's attention metrics, if the runtime computed them (StepStats.attention: the last
 * layer, valid positions only, entropies in bits), else null.
 */
export function attentionOf(stats: StepStats): EntropixAttention | null {
  const a = stats.attention;
  if (typeof a !== 'object' || a === null) return null;
  const { entropy, varentropy, agreement, interaction } = a;
  if (![entropy, varentropy, agreement, interaction].every((x) => typeof x === 'number' && Number.isFinite(x))) return null;
  return { entropy, varentropy, agreement, interaction };
}

export type EntropixBranch = 'first' | 'argmax' | 'clarify' | 'explore' | 'resample' | 'adaptive';
export const ENTROPIX_BRANCHES: readonly EntropixBranch[] = ['first', 'argmax', 'clarify', 'explore', 'resample', 'adaptive'];

/** What the sampler does in a branch (null: no draw). */
export interface EntropixDraw {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  /** Draws; the highest raw log-prob wins (adaptive: 5). */
  samples: number;
}

export interface EntropixDecision {
  branch: EntropixBranch;
  /** Emit this token without drawing (argmax, the clarifying token). */
  token?: number;
  draw?: EntropixDraw;
}

export interface EntropixMetrics {
  /** Entropy of softmax(z), bits. */
  ent: number;
  /** Σ p (log₂ p + ent)², bits². */
  vent: number;
  attention: EntropixAttention;
}

export interface EntropixBase {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
}

const clip = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));

/**
 * The branch rules alone (algorithms.md §4), as a pure function: metrics, the base sampler, the
 * argmax, and whether the clarifying token is still available (null: there is none).
 */
export function entropixBranch(m: EntropixMetrics, base: EntropixBase, argmax: number, clarifying: number | null): EntropixDecision {
  const { ent, vent } = m;
  const { entropy: attnEnt, varentropy: attnVent, agreement, interaction } = m.attention;
  const T0 = base.temperature;
  const plain = (temperature: number, o: Partial<EntropixDraw> = {}): EntropixDraw => ({
    temperature: clip(temperature, MIN_TEMPERATURE, MAX_TEMPERATURE), topK: base.topK, topP: base.topP, minP: base.minP, samples: 1, ...o,
  });
  if (ent < 0.1 && vent < 0.1) return { branch: 'argmax', token: argmax };
  if (ent > 5.0 && vent < 0.1) {
    if (clarifying !== null) return { branch: 'clarify', token: clarifying };
    return { branch: 'clarify', draw: plain(Math.min(1.5, T0 * (1.3 + 0.2 * attnEnt))) };
  }
  if (ent < 5.0 && vent > 5.0) {
    return {
      branch: 'explore',
      draw: plain(Math.min(1.5, T0 * (1.2 + 0.3 * interaction)), { topK: Math.max(5, Math.trunc(base.topK * (1 + 0.5 * (1 - agreement)))) }),
    };
  }
  if (ent > 3.0 && vent > 5.0) {
    return { branch: 'resample', draw: plain(Math.max(2.0, T0 * (2.0 + 0.5 * attnVent)), { topP: Math.max(0.5, base.topP - 0.2 * attnEnt) }) };
  }
  const uL = ent + vent;
  const uA = attnEnt + attnVent;
  return {
    branch: 'adaptive',
    draw: plain(T0 * (1 + 0.3 * uL + 0.2 * uA - 0.2 * agreement), {
      topP: clip(base.topP * (1 + 0.1 * attnVent), 0.1, 1),
      topK: clip(roundHalfEven(base.topK * (1 + 0.3 * interaction - 0.2 * agreement)), 1, 100),
      minP: clip(base.minP * (1 - 0.5 * uL), 0.01, 0.5),
      samples: 5,
    }),
  };
}

/**
 * softmax(z/T) → min-p → top-k → top-p (descending; a token stays iff the min-p set's mass
 * before it is ≤ top-p) → renormalised, from a raw (temperature 1) distribution. null when the
 * candidates cannot decide min-p (the caller reads the full logits row).
 */
export function entropixWarp(raw: Distribution, draw: EntropixDraw): Distribution | null {
  const scaled = applyTemperature(raw, draw.temperature);
  const minP = applyMinP(scaled, draw.minP);
  if (needsFullVocabulary(minP)) return null;
  if (minP.tail) {
    // min-p 0 (off) on an open distribution: the candidates decide only if top-k fits them.
    const topK = applyTopK(minP, draw.topK);
    if (needsFullVocabulary(topK) || topK.tail) return null;
    return entropixTopP(topK, draw.topP, normaliser(minP)?.lse ?? null);
  }
  const topK = applyTopK(minP, draw.topK) as Distribution;
  return entropixTopP(topK, draw.topP, normaliser(minP)!.lse);
}

function entropixTopP(d: Distribution, topP: number, lse: number | null): Distribution | null {
  if (lse === null) return null;
  let mass = 0;
  let n = 0;
  while (n < d.ids.length && mass <= topP) {
    mass += Math.exp(d.logits[n] - lse);
    n++;
  }
  return { ...d, ids: d.ids.slice(0, Math.max(1, n)), logits: d.logits.slice(0, Math.max(1, n)), tail: null };
}

/** A branch taken at `pos`: one per generated token. */
export interface EntropixEvent {
  type: 'entropix';
  pos: number;
  branch: EntropixBranch;
  /** Entropy and varentropy of the raw logits, bits and bits². */
  ent: number;
  vent: number;
  attention: EntropixAttention | null;
  /** The sampler the branch drew with (absent for argmax and the clarifying token). */
  draw?: EntropixDraw;
  /** The adaptive branch's draws, the kept one at `chosen`. */
  samples?: number[];
  chosen?: number;
  token: number;
}

export type EntropixSummary = {
  decoder: 'entropix';
  /** Tokens per branch. */
  branches: Record<EntropixBranch, number>;
  /** Whether the runtime gave attention statistics (else the four metrics were 0). */
  attention: 'gpu' | 'unavailable';
  /** Draws that needed the full logits row. */
  fullVocabularySteps: number;
};

export interface EntropixOptions extends Pick<SamplerOptions, 'temperature' | 'topK' | 'topP' | 'minP' | 'vocabSize'> {
  seed?: number;
  /** The clarifying token; null: branch 2 always samples. */
  clarifyingToken: number | null;
}

export class EntropixDecoder implements Decoder<EntropixEvent, EntropixSummary> {
  readonly name = 'entropix';
  readonly base: EntropixBase;
  private readonly seed: number;
  private readonly clarifying: number | null;
  private clarified = false;
  private generated = 0;
  private sawAttention = false;
  private fullVocabularySteps = 0;
  private readonly counts: Record<EntropixBranch, number> = { first: 0, argmax: 0, clarify: 0, explore: 0, resample: 0, adaptive: 0 };

  constructor(o: EntropixOptions) {
    if (typeof o !== 'object' || o === null) throw new InvalidArgumentError('entropix options must be an object');
    this.base = {
      temperature: checkNumber('temperature', o.temperature ?? ENTROPIX_DEFAULTS.temperature, MIN_TEMPERATURE, MAX_TEMPERATURE),
      topK: checkInteger('topK', o.topK ?? ENTROPIX_DEFAULTS.topK, 0, 0x7fffffff),
      topP: checkNumber('topP', o.topP ?? ENTROPIX_DEFAULTS.topP, 0, 1),
      minP: checkNumber('minP', o.minP ?? ENTROPIX_DEFAULTS.minP, 0, 1),
    };
    this.seed = checkInteger('seed', o.seed ?? 0, 0, 0xffffffff);
    this.clarifying = o.clarifyingToken;
  }

  /** Raw statistics (temperature 1: ent and vent are of softmax(z)); 64 candidates for the draws. */
  sampling() {
    return { temperature: 0, seed: this.seed, statsTemperature: 1, candidates: 64 };
  }

  summary(): EntropixSummary {
    return { decoder: 'entropix', branches: { ...this.counts }, attention: this.sawAttention ? 'gpu' : 'unavailable', fullVocabularySteps: this.fullVocabularySteps };
  }

  async next(ctx: DecodeContext): Promise<Emission<EntropixEvent>> {
    checkDecodeContext(ctx);
    const stats = ctx.stats;
    const ent = stats.entropy / Math.LN2;
    const vent = stats.varentropy / (Math.LN2 * Math.LN2);
    const attention = attentionOf(stats);
    if (attention) this.sawAttention = true;
    const metrics = { ent, vent, attention: attention ?? NO_ATTENTION };
    const decision: EntropixDecision = this.generated++ === 0
      ? { branch: 'first', token: stats.argmax }
      : entropixBranch(metrics, this.base, stats.argmax, this.clarified ? null : this.clarifying);
    if (decision.branch === 'clarify' && decision.token !== undefined) this.clarified = true;
    this.counts[decision.branch]++;
    const event: EntropixEvent = { type: 'entropix', pos: ctx.pos, branch: decision.branch, ent, vent, attention, token: 0 };
    let token: number;
    if (decision.token !== undefined) {
      token = decision.token;
    } else {
      const draw = decision.draw!;
      const dist = await this.warped(ctx, draw);
      const samples = Array.from({ length: draw.samples }, (_, counter) => {
        const u = uniform01(this.seed, ctx.runtime.drawRow(0), ctx.pos, counter, CPU_DRAW_INDEX);
        return dist.ids[drawIndex(dist, u)];
      });
      // Highest raw log-prob = highest raw logit (same normaliser); first on ties.
      const logit = (id: number) => dist.logits[dist.ids.indexOf(id)];
      let chosen = 0;
      for (let i = 1; i < samples.length; i++) if (logit(samples[i]) > logit(samples[chosen])) chosen = i;
      token = samples[chosen];
      event.draw = draw;
      if (draw.samples > 1) Object.assign(event, { samples, chosen });
    }
    event.token = token;
    return { tokens: [token], stats: [stats], event };
  }

  /** The branch's warped distribution from the step's candidates, or its full logits row. */
  private async warped(ctx: DecodeContext, draw: EntropixDraw): Promise<Distribution> {
    const raw = fromStepStats(ctx.stats, { statsTemperature: 1, vocabSize: ctx.runtime.vocabSize });
    const fromCandidates = entropixWarp(raw, draw);
    if (fromCandidates) return fromCandidates;
    this.fullVocabularySteps++;
    const full = await ctx.runtime.fullStats(0, 1);
    const d = entropixWarp(fromStepStats(full, { statsTemperature: 1, vocabSize: ctx.runtime.vocabSize }), draw);
    if (!d) throw new InvalidArgumentError('entropix: the full logits row must decide the draw');
    return d;
  }
}

export const entropixSpec = defineDecoder<EntropixEvent, EntropixSummary>()({
  name: 'entropix',
  key: 'entropix',
  title: 'entropix',
  doc: 'The quadrant sampler: entropy and varentropy (bits) of the logits, with attention metrics, pick argmax, a clarifying token, explore, resample or adaptive sampling.',
  params: {
    clarifyingToken: {
      type: 'token', default: null,
      doc: 'the token inserted once at high entropy and low varentropy (Llama 3: 2564); default the model\'s first token of " ..."',
    },
  },
  sampling: { temperature: ENTROPIX_DEFAULTS.temperature, topP: ENTROPIX_DEFAULTS.topP, topK: ENTROPIX_DEFAULTS.topK, minP: ENTROPIX_DEFAULTS.minP },
  requires: () => ({ attention: true }),
  create: (p, c) => new EntropixDecoder({
    temperature: c.sampler.temperature, topK: c.sampler.topK, topP: c.sampler.topP, minP: c.sampler.minP, vocabSize: c.vocabSize, seed: c.seed,
    clarifyingToken: p.clarifyingToken ?? c.tokenizer?.firstTokenMidText(' ...') ?? null,
  }),
});
