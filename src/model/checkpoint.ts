// llama2.c checkpoints: a 7-int32 header, then float32 tensors in a fixed order. A negative
// vocab size means the classifier is stored separately instead of shared with the embedding.
import { ModelFormatError } from '../errors.ts';

export interface ModelConfig {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  seqLen: number;
  sharedClassifier: boolean;
}

export interface LayerTensors {
  rmsAtt: Float32Array; // [dim]
  wq: Float32Array; // [dim][dim]       (out, in), as llama2.c stores them
  wk: Float32Array; // [kvDim][dim]
  wv: Float32Array; // [kvDim][dim]
  wo: Float32Array; // [dim][dim]
  rmsFfn: Float32Array; // [dim]
  w1: Float32Array; // [hidden][dim]
  w2: Float32Array; // [dim][hidden]
  w3: Float32Array; // [hidden][dim]
}

export interface ModelSpec {
  config: ModelConfig;
  tokenEmbedding: Float32Array; // [vocab][dim]
  layers: LayerTensors[];
  rmsFinal: Float32Array; // [dim]
  classifier: Float32Array; // [vocab][dim]; the embedding itself when shared
  /** Parameter count as stored (classifier counted once when shared). */
  parameterCount: number;
}

export const headSize = (c: ModelConfig) => c.dim / c.nHeads;
export const kvDim = (c: ModelConfig) => (c.dim * c.nKvHeads) / c.nHeads;

const HEADER_BYTES = 28;
const MAX_DIM = 1 << 16;

function readConfig(bytes: ArrayBuffer): ModelConfig {
  if (bytes.byteLength < HEADER_BYTES) {
    throw new ModelFormatError(`model file is ${bytes.byteLength} bytes, shorter than the 28-byte llama2.c header`);
  }
  const h = new Int32Array(bytes, 0, 7);
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocab, seqLen] = Array.from(h);
  const config: ModelConfig = {
    dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize: Math.abs(vocab), seqLen, sharedClassifier: vocab > 0,
  };
  const bad = (why: string) => new ModelFormatError(`not a llama2.c checkpoint: ${why} (header ${JSON.stringify(Array.from(h))})`);
  for (const [name, v] of Object.entries({ dim, hiddenDim, nLayers, nHeads, nKvHeads, seqLen, vocabSize: Math.abs(vocab) })) {
    if (!(v > 0 && v <= MAX_DIM * 16)) throw bad(`${name} = ${v} is out of range`);
  }
  if (dim % nHeads !== 0) throw bad(`dim ${dim} is not a multiple of n_heads ${nHeads}`);
  if (nHeads % nKvHeads !== 0) throw bad(`n_heads ${nHeads} is not a multiple of n_kv_heads ${nKvHeads}`);
  const hs = dim / nHeads;
  if (hs % 4 !== 0 || hs > 256) throw bad(`head size ${hs} must be a multiple of 4 and at most 256`);
  if (dim % 4 !== 0 || hiddenDim % 4 !== 0) throw bad('dim and hidden_dim must be multiples of 4');
  return config;
}

/** Float count of each tensor, in file order. */
function tensorLayout(c: ModelConfig): [string, number][] {
  const kv = kvDim(c);
  const hs = headSize(c);
  const L = c.nLayers;
  const layout: [string, number][] = [
    ['tokenEmbedding', c.vocabSize * c.dim],
    ['rmsAtt', L * c.dim],
    ['wq', L * c.dim * c.dim],
    ['wk', L * kv * c.dim],
    ['wv', L * kv * c.dim],
    ['wo', L * c.dim * c.dim],
    ['rmsFfn', L * c.dim],
    ['w1', L * c.hiddenDim * c.dim],
    ['w2', L * c.dim * c.hiddenDim],
    ['w3', L * c.hiddenDim * c.dim],
    ['rmsFinal', c.dim],
    ['freqCisReal', (c.seqLen * hs) / 2], // legacy RoPE tables: skipped, we compute our own
    ['freqCisImag', (c.seqLen * hs) / 2],
  ];
  if (!c.sharedClassifier) layout.push(['classifier', c.vocabSize * c.dim]);
  return layout;
}

/** Parses and validates a checkpoint; tensors are views into `bytes` (no copy). */
export function parseCheckpoint(bytes: ArrayBuffer): ModelSpec {
  const config = readConfig(bytes);
  const layout = tensorLayout(config);
  const expected = HEADER_BYTES + 4 * layout.reduce((n, [, count]) => n + count, 0);
  if (bytes.byteLength !== expected) {
    const what = bytes.byteLength < expected ? 'truncated' : 'longer than its header describes';
    throw new ModelFormatError(
      `model file is ${what}: ${bytes.byteLength} bytes, the header ${JSON.stringify(config)} needs exactly ${expected}`,
    );
  }
  const tensors: Record<string, Float32Array> = {};
  let offset = HEADER_BYTES;
  for (const [name, count] of layout) {
    tensors[name] = new Float32Array(bytes, offset, count);
    offset += count * 4;
  }
  const kv = kvDim(config);
  const per = (name: string, size: number, l: number) => tensors[name].subarray(l * size, (l + 1) * size);
  const { dim, hiddenDim } = config;
  const layers: LayerTensors[] = [];
  for (let l = 0; l < config.nLayers; l++) {
    layers.push({
      rmsAtt: per('rmsAtt', dim, l),
      wq: per('wq', dim * dim, l),
      wk: per('wk', kv * dim, l),
      wv: per('wv', kv * dim, l),
      wo: per('wo', dim * dim, l),
      rmsFfn: per('rmsFfn', dim, l),
      w1: per('w1', hiddenDim * dim, l),
      w2: per('w2', dim * hiddenDim, l),
      w3: per('w3', hiddenDim * dim, l),
    });
  }
  const parameterCount = layout
    .filter(([name]) => !name.startsWith('freqCis'))
    .reduce((n, [, count]) => n + count, 0);
  return {
    config,
    tokenEmbedding: tensors.tokenEmbedding,
    layers,
    rmsFinal: tensors.rmsFinal,
    classifier: tensors.classifier ?? tensors.tokenEmbedding,
    parameterCount,
  };
}
