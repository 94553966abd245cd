// What the forward graph needs to know about a model, whatever file it came from. Every format
// reader (formats/) fills one ModelConfig; nothing above src/model sees a format.
import { ModelFormatError } from '../errors.ts';

/** Architectures of the Llama family, all run by one graph builder with the flags below. */
export type Architecture = 'llama2c' | 'llama' | 'mistral' | 'qwen2' | 'qwen3';

/**
 * How q/k rows pair features for RoPE: 'interleaved' rotates (x_2i, x_2i+1) (llama2.c, GGUF
 * `llama`); 'half' rotates (x_i, x_i+d/2) (HF checkpoints, GGUF `qwen2`/`qwen3`).
 */
export type RopeLayout = 'interleaved' | 'half';

export interface ModelConfig {
  architecture: Architecture;
  /** Hidden size (the residual stream's width). */
  dim: number;
  /** FFN inner size. */
  hiddenDim: number;
  nLayers: number;
  /** Query heads. */
  nHeads: number;
  /** Key/value heads (GQA when fewer than nHeads). */
  nKvHeads: number;
  /** Features per head; independent of dim / nHeads (Qwen3, Llama 3.2 set it). */
  headDim: number;
  /** Rows of the embedding and the classifier (may exceed the tokenizer's vocabulary: Qwen pads). */
  vocabSize: number;
  /** RMSNorm ε. */
  normEps: number;
  /** RoPE base θ. */
  ropeTheta: number;
  ropeLayout: RopeLayout;
  /**
   * Per-frequency divisors of RoPE's inverse frequencies (length headDim / 2), from `llama3`
   * rope scaling or GGUF's rope_freqs.weight; null for plain RoPE.
   */
  ropeFreqFactors: number[] | null;
  /** q, k, v projections have biases (Qwen2). */
  qkvBias: boolean;
  /** RMSNorm over headDim on each q and k head before RoPE (Qwen3). */
  qkNorm: boolean;
  /** The classifier is the embedding (no separate output tensor). */
  tiedEmbeddings: boolean;
  bosId: number | null;
  /** Generation ends on any of these. */
  eosIds: number[];
  /** Positions the model was trained for (a session allocates its own, smaller, context). */
  trainedContext: number;
}

export const qDim = (c: ModelConfig) => c.nHeads * c.headDim;
export const kvDim = (c: ModelConfig) => c.nKvHeads * c.headDim;

/**
 * Canonical tensor names (GGUF's, which are short and well known). Shapes are row-major,
 * outermost first: a matrix is [out][in], as HF and llama2.c store it (GGUF's ne reversed).
 *
 *   token_embd.weight [vocab][dim]           output_norm.weight [dim]     output.weight [vocab][dim] (untied)
 *   blk.L.attn_norm.weight [dim]             blk.L.ffn_norm.weight [dim]
 *   blk.L.attn_q.weight [qDim][dim]          blk.L.attn_q.bias [qDim]     (qkvBias; likewise k, v)
 *   blk.L.attn_k.weight [kvDim][dim]         blk.L.attn_v.weight [kvDim][dim]
 *   blk.L.attn_q_norm.weight [headDim]       blk.L.attn_k_norm.weight [headDim]   (qkNorm)
 *   blk.L.attn_output.weight [dim][qDim]
 *   blk.L.ffn_gate.weight [hidden][dim] (w1) blk.L.ffn_up.weight [hidden][dim] (w3)
 *   blk.L.ffn_down.weight [dim][hidden] (w2)
 */
export const TENSOR = {
  embedding: 'token_embd.weight',
  outputNorm: 'output_norm.weight',
  output: 'output.weight',
  layer: (l: number, name: LayerTensorName) => `blk.${l}.${name}`,
} as const;

export type LayerTensorName =
  | 'attn_norm.weight' | 'attn_q.weight' | 'attn_k.weight' | 'attn_v.weight'
  | 'attn_q.bias' | 'attn_k.bias' | 'attn_v.bias' | 'attn_q_norm.weight' | 'attn_k_norm.weight'
  | 'attn_output.weight' | 'ffn_norm.weight' | 'ffn_gate.weight' | 'ffn_up.weight' | 'ffn_down.weight';

/** Every tensor name and shape a config requires, for validation before any upload. */
export function expectedTensors(c: ModelConfig): Map<string, number[]> {
  const m = new Map<string, number[]>();
  m.set(TENSOR.embedding, [c.vocabSize, c.dim]);
  m.set(TENSOR.outputNorm, [c.dim]);
  if (!c.tiedEmbeddings) m.set(TENSOR.output, [c.vocabSize, c.dim]);
  for (let l = 0; l < c.nLayers; l++) {
    const t = (name: LayerTensorName, shape: number[]) => m.set(TENSOR.layer(l, name), shape);
    t('attn_norm.weight', [c.dim]);
    t('attn_q.weight', [qDim(c), c.dim]);
    t('attn_k.weight', [kvDim(c), c.dim]);
    t('attn_v.weight', [kvDim(c), c.dim]);
    if (c.qkvBias) {
      t('attn_q.bias', [qDim(c)]);
      t('attn_k.bias', [kvDim(c)]);
      t('attn_v.bias', [kvDim(c)]);
    }
    if (c.qkNorm) {
      t('attn_q_norm.weight', [c.headDim]);
      t('attn_k_norm.weight', [c.headDim]);
    }
    t('attn_output.weight', [c.dim, qDim(c)]);
    t('ffn_norm.weight', [c.dim]);
    t('ffn_gate.weight', [c.hiddenDim, c.dim]);
    t('ffn_up.weight', [c.hiddenDim, c.dim]);
    t('ffn_down.weight', [c.dim, c.hiddenDim]);
  }
  return m;
}

/** Parameters as stored (a tied classifier counted once). */
export function parameterCount(c: ModelConfig): number {
  let n = 0;
  for (const shape of expectedTensors(c).values()) n += shape.reduce((a, b) => a * b, 1);
  return n;
}

/**
 * The llama3 RoPE scaling of HF's `rope_scaling` as per-frequency divisors of inv_freq_i =
 * θ^(−2i/d): wavelengths above original/low_freq_factor are divided by `factor`, below
 * original/high_freq_factor kept, and blended in between.
 */
export function llama3FreqFactors(
  headDim: number, theta: number,
  s: { factor: number; lowFreqFactor: number; highFreqFactor: number; originalContext: number },
): number[] {
  const lowWavelen = s.originalContext / s.lowFreqFactor;
  const highWavelen = s.originalContext / s.highFreqFactor;
  const factors: number[] = [];
  for (let i = 0; i < headDim / 2; i++) {
    const inv = Math.pow(theta, (-2 * i) / headDim);
    const wavelen = (2 * Math.PI) / inv;
    if (wavelen > lowWavelen) factors.push(s.factor);
    else if (wavelen < highWavelen) factors.push(1);
    else {
      const smooth = (s.originalContext / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      // inv' = (1 − s)·inv/factor + s·inv  ⇒  divisor = inv / inv'
      factors.push(1 / ((1 - smooth) / s.factor + smooth));
    }
  }
  return factors;
}

/**
 * Checks what the kernels require of a config (throws ModelFormatError naming `what`, e.g. the
 * file): positive sizes, widths that are multiples of 4, at most 256 features per head, query
 * heads a multiple of the KV heads.
 */
export function validateConfig(c: ModelConfig, what: string): ModelConfig {
  const bad = (why: string) => new ModelFormatError(`${what}: ${why}`);
  for (const key of ['dim', 'hiddenDim', 'nLayers', 'nHeads', 'nKvHeads', 'headDim', 'vocabSize', 'trainedContext'] as const) {
    const v = c[key];
    if (!Number.isInteger(v) || v <= 0 || v > 1 << 24) throw bad(`${key} = ${v} is out of range`);
  }
  if (c.nHeads % c.nKvHeads !== 0) throw bad(`${c.nHeads} attention heads are not a multiple of ${c.nKvHeads} KV heads`);
  if (c.headDim % 4 !== 0 || c.headDim > 256) throw bad(`head dim ${c.headDim} must be a multiple of 4 and at most 256`);
  if (c.dim % 4 !== 0 || c.hiddenDim % 4 !== 0) throw bad(`hidden size ${c.dim} and FFN size ${c.hiddenDim} must be multiples of 4`);
  if (!(c.normEps > 0 && c.normEps < 1)) throw bad(`RMSNorm epsilon ${c.normEps} is out of range`);
  if (!(c.ropeTheta > 0)) throw bad(`RoPE theta ${c.ropeTheta} is out of range`);
  if (c.ropeFreqFactors && (c.ropeFreqFactors.length !== c.headDim / 2 || c.ropeFreqFactors.some((f) => !(f > 0)))) {
    throw bad(`RoPE frequency factors must be ${c.headDim / 2} positive numbers`);
  }
  for (const id of [c.bosId, ...c.eosIds]) {
    if (id !== null && !(Number.isInteger(id) && id >= 0 && id < c.vocabSize)) throw bad(`special token id ${id} is outside the vocabulary of ${c.vocabSize}`);
  }
  return c;
}
