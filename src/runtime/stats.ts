// StepStats: what crosses from the GPU to the CPU for each row of a step — a few dozen bytes,
// never the logits row.
import { STATS_HEADER_WORDS, statsRecordWords } from '../gpu/kernels.ts';

export interface Candidate {
  id: number;
  logit: number;
}

/**
 * Statistics of softmax(z/T_stats) over the full vocabulary. T_stats is the temperature the
 * decoder samples at (1 for greedy), so entropy and log-probabilities describe the distribution
 * the token is actually drawn from.
 */
export interface StepStats {
  /** log Σ exp(z/T_stats) over the full vocabulary (T_stats = 1 unless asked otherwise). */
  lse: number;
  /** Entropy of softmax(z/T_stats), nats. */
  entropy: number;
  /** Variance of the surprisal −ln p under softmax(z/T_stats), nats². */
  varentropy: number;
  /** The largest raw logit (topK[0]'s). */
  maxLogit: number;
  /**
   * The raw logit of the token that follows: the next token of a teacher-forced row (Session.score),
   * else of `sampled` (the argmax when not sampling). −ln p(next) = lse − nextLogit/T_stats.
   */
  nextLogit?: number;
  argmax: number;
  /** Token drawn on the GPU from softmax(z/T_sample) (Gumbel-max); the argmax when not sampling. */
  sampled: number;
  /** The K largest raw logits, descending (ties by lower id). */
  topK: Candidate[];
  /** Attention statistics of one layer, when the session computes them (Session.setAttentionStats). */
  attention?: AttentionStats;
}

/**
 * Statistics of one layer's attention for the token of a stats row (entropix's, algorithms.md §4),
 * over the valid positions 0..pos only, per query head (after the GQA repeat), scores scaled by
 * 1/√head_dim before the softmax. Entropies in bits.
 */
export interface AttentionStats {
  layer: number;
  /** H(P_h) of each query head, bits. */
  heads: number[];
  /** attn_ent: mean over heads of H(P_h), bits. */
  entropy: number;
  /** attn_vent: variance over heads of H(P_h) (divisor n_heads, as jnp.var), bits². */
  varentropy: number;
  /** Mean over heads and positions of |P_h − mean over heads of P|. */
  agreement: number;
  /** interaction: mean over heads and positions of |scaled score|. */
  interaction: number;
}

/** f32 words of one attention record (attention.wgsl `agree`). */
export const attentionRecordWords = (nHeads: number) => 4 + nHeads;

export function parseAttention(bytes: ArrayBuffer, count: number, nHeads: number, layer: number): AttentionStats[] {
  const f = new Float32Array(bytes);
  const w = attentionRecordWords(nHeads);
  return Array.from({ length: count }, (_, r) => ({
    layer,
    heads: Array.from(f.subarray(r * w + 4, r * w + w)),
    entropy: f[r * w], varentropy: f[r * w + 1], agreement: f[r * w + 2], interaction: f[r * w + 3],
  }));
}

export const statsRecordBytes = (topK: number) => 4 * statsRecordWords(topK);

export function parseStats(bytes: ArrayBuffer, count: number, topK: number): StepStats[] {
  const words = statsRecordWords(topK);
  const f = new Float32Array(bytes);
  const u = new Uint32Array(bytes);
  const out: StepStats[] = [];
  for (let r = 0; r < count; r++) {
    const o = r * words;
    const candidates: Candidate[] = [];
    for (let j = 0; j < topK; j++) {
      const id = u[o + STATS_HEADER_WORDS + 2 * j];
      if (id !== 0xffffffff) candidates.push({ id, logit: f[o + STATS_HEADER_WORDS + 2 * j + 1] });
    }
    out.push({
      lse: f[o], entropy: f[o + 1], varentropy: f[o + 2], maxLogit: candidates[0]?.logit ?? f[o + 3], nextLogit: f[o + 3],
      argmax: u[o + 4], sampled: u[o + 5], topK: candidates,
    });
  }
  return out;
}
