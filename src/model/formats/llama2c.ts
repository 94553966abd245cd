// llama2.c checkpoints: a 7-int32 header (dim, hidden, layers, heads, kv heads, vocab, context),
// then float32 tensors in a fixed order, each stacked over layers. A negative vocab size means the
// classifier is stored after the RoPE tables instead of shared with the embedding. The tokenizer
// is a separate tokenizer.bin.
import { ModelFormatError } from '../../errors.ts';
import { type LayerTensorName, type ModelConfig, TENSOR, kvDim, validateConfig } from '../config.ts';
import type { ByteReader, ModelFiles, TensorInfo } from '../tensors.ts';

const HEADER_BYTES = 28;
const MAX_DIM = 1 << 20;
/** Layers at most (the largest Llama models have 126): each is nine named tensors. */
const MAX_LAYERS = 1024;

function readConfig(h: Int32Array): ModelConfig {
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocab, seqLen] = Array.from(h);
  const bad = (why: string) => new ModelFormatError(`not a GGUF file, and not a llama2.c checkpoint: ${why} (header ${JSON.stringify(Array.from(h))})`);
  for (const [name, v] of Object.entries({ dim, hiddenDim, nLayers, nHeads, nKvHeads, seqLen, vocabSize: Math.abs(vocab) })) {
    if (!(v > 0 && v <= MAX_DIM)) throw bad(`${name} = ${v} is out of range`);
  }
  if (nLayers > MAX_LAYERS) throw bad(`n_layers = ${nLayers} is over ${MAX_LAYERS}`);
  if (dim % nHeads !== 0) throw bad(`dim ${dim} is not a multiple of n_heads ${nHeads}`);
  return validateConfig({
    architecture: 'llama2c', dim, hiddenDim, nLayers, nHeads, nKvHeads, headDim: dim / nHeads,
    vocabSize: Math.abs(vocab), normEps: 1e-5, ropeTheta: 10000, ropeLayout: 'interleaved', ropeFreqFactors: null,
    qkvBias: false, qkNorm: false, tiedEmbeddings: vocab > 0,
    // llama2.c's stories end a story with BOS (the engine stops there); they have no EOS of their own.
    bosId: 1, eosIds: [], trainedContext: seqLen,
  }, 'llama2.c checkpoint');
}

/** The checkpoint's tensors in file order: canonical name (per layer where stacked) and float count. */
function layout(c: ModelConfig): { name: string | LayerTensorName | null; count: number; perLayer: boolean }[] {
  const kv = kvDim(c);
  const { dim, hiddenDim: hidden, vocabSize: vocab } = c;
  const rope = (c.trainedContext * c.headDim) / 2;
  return [
    { name: TENSOR.embedding, count: vocab * dim, perLayer: false },
    { name: 'attn_norm.weight', count: dim, perLayer: true },
    { name: 'attn_q.weight', count: dim * dim, perLayer: true },
    { name: 'attn_k.weight', count: kv * dim, perLayer: true },
    { name: 'attn_v.weight', count: kv * dim, perLayer: true },
    { name: 'attn_output.weight', count: dim * dim, perLayer: true },
    { name: 'ffn_norm.weight', count: dim, perLayer: true },
    { name: 'ffn_gate.weight', count: hidden * dim, perLayer: true },
    { name: 'ffn_down.weight', count: dim * hidden, perLayer: true },
    { name: 'ffn_up.weight', count: hidden * dim, perLayer: true },
    { name: TENSOR.outputNorm, count: dim, perLayer: false },
    { name: null, count: rope, perLayer: false }, // legacy RoPE tables: we compute our own
    { name: null, count: rope, perLayer: false },
    ...(c.tiedEmbeddings ? [] : [{ name: TENSOR.output, count: vocab * dim, perLayer: false }]),
  ];
}

const SHAPES: Record<string, (c: ModelConfig) => number[]> = {
  [TENSOR.embedding]: (c) => [c.vocabSize, c.dim],
  [TENSOR.output]: (c) => [c.vocabSize, c.dim],
  [TENSOR.outputNorm]: (c) => [c.dim],
  'attn_norm.weight': (c) => [c.dim],
  'ffn_norm.weight': (c) => [c.dim],
  'attn_q.weight': (c) => [c.dim, c.dim],
  'attn_k.weight': (c) => [kvDim(c), c.dim],
  'attn_v.weight': (c) => [kvDim(c), c.dim],
  'attn_output.weight': (c) => [c.dim, c.dim],
  'ffn_gate.weight': (c) => [c.hiddenDim, c.dim],
  'ffn_up.weight': (c) => [c.hiddenDim, c.dim],
  'ffn_down.weight': (c) => [c.dim, c.hiddenDim],
};

/** Parses and validates a checkpoint; tensors are byte ranges of `file` (nothing is copied). */
export async function readLlama2c(file: ByteReader, signal?: AbortSignal): Promise<ModelFiles> {
  if (file.size < HEADER_BYTES) {
    throw new ModelFormatError(`model file is ${file.size} bytes, shorter than the 28-byte llama2.c header`);
  }
  const header = await file.read(0, HEADER_BYTES, signal);
  const config = readConfig(new Int32Array(header.slice().buffer));
  const parts = layout(config);
  const expected = HEADER_BYTES + 4 * parts.reduce((n, p) => n + p.count * (p.perLayer ? config.nLayers : 1), 0);
  if (file.size !== expected) {
    const what = file.size < expected ? 'truncated' : 'longer than its header describes';
    throw new ModelFormatError(`model file is ${what}: ${file.size} bytes, the header needs exactly ${expected}`);
  }
  const tensors = new Map<string, TensorInfo>();
  let offset = HEADER_BYTES;
  for (const p of parts) {
    for (let l = 0; l < (p.perLayer ? config.nLayers : 1); l++) {
      if (p.name !== null) {
        const name = p.perLayer ? TENSOR.layer(l, p.name as LayerTensorName) : p.name;
        tensors.set(name, { name, type: 'F32', shape: SHAPES[p.name](config), file, offset, byteLength: 4 * p.count });
      }
      offset += 4 * p.count;
    }
  }
  return { format: 'llama2c', config, tensors, tokenizer: null, dtype: 'F32' };
}

/** True when the first bytes can be a llama2.c header (seven positive-ish int32s), for format sniffing. */
export function looksLikeLlama2c(head: Uint8Array): boolean {
  if (head.length < HEADER_BYTES) return false;
  const h = new Int32Array(head.slice(0, HEADER_BYTES).buffer);
  return [0, 1, 2, 3, 4, 6].every((i) => h[i] > 0 && h[i] <= MAX_DIM) && h[5] !== 0;
}
