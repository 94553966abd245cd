// Entropy top-k (PURE's rule, algorithms.md §4) as a decoder: the sampler pipeline with the
// entropy top-k stage first — k = clamp(round(k_min + (k_max − k_min)·σ(clamp(H, 0, 10) − 5)),
// k_min, k_max) from the entropy H of the raw logits, every logit ≥ the k-th largest kept (ties
// too), then temperature and the other stages. The stage itself is samplers.ts's
// applyEntropyTopK; the step's statistics run at temperature 1 (H is of the raw logits), and a k
// beyond the GPU's 64 candidates reads the step's full logits row.
import { ENTROPY_TOP_K_DEFAULTS } from './samplers.ts';
import { SamplingDecoder, type SamplingSummary } from './sampling-decoder.ts';
import { DecoderOptionError, defineDecoder } from './spec.ts';

export const entropyTopKSpec = defineDecoder<never, SamplingSummary>()({
  name: 'entropy-top-k',
  key: 'entropyTopK',
  title: 'entropy top-k',
  doc: 'PURE\'s rule: top-k with k from the raw entropy (H 0 → 14, 2 → 96, 5 → 1000, 10 → 1987 of 1..2000), then the sampler stages.',
  params: {
    kMin: { type: 'integer', default: ENTROPY_TOP_K_DEFAULTS.kMin, min: 1, max: 0x7fffffff, unit: 'tokens', doc: 'k at zero entropy and below (k_min)' },
    kMax: { type: 'integer', default: ENTROPY_TOP_K_DEFAULTS.kMax, min: 1, max: 0x7fffffff, unit: 'tokens', demo: { step: 100 }, doc: 'k at entropy 10 nats and above (k_max)' },
  },
  sampling: { temperature: 1 },
  check(p) {
    if (p.kMax < p.kMin) throw new DecoderOptionError('entropyTopK.kMax', `entropyTopK.kMax must be at least entropyTopK.kMin (${p.kMin}), got ${p.kMax}`);
  },
  requires: () => ({}),
  create: (p, c) => new SamplingDecoder({ ...c.sampler, entropyTopK: { kMin: p.kMin, kMax: p.kMax }, seed: c.seed }, undefined, 'entropy-top-k'),
});
