// Named tensors → GPU buffers in the layouts the kernels want, tensor by tensor (a model is never
// held in JS memory whole): every matmul weight transposed to [in][out] (so GEMV invocations
// stream contiguous vec4s), q|k|v and gate|up concatenated along the output so each is one
// launch, and the classifier transposed and split by vocabulary into tiles that each fit one
// storage binding.
//
// Weight matrices (embedding, projections, classifier) are kept in their stored format where a
// kernel reads it (GGUF blocks, F16/BF16) or quantised at load (`weights`: weight-types.ts,
// quantize.ts), and then re-laid by blocks (weight-types.ts); f32 ones as above. A concatenation
// whose tensors differ in format (Q4_K_M's q, k Q4_K and v Q6_K) is split into parts, one launch
// each, writing their columns of the same output rows. A tied embedding is read once: in a
// non-f32 format the classifier's tiles are also the embedding table the gather reads.
import { AbortedError, InvalidArgumentError, ModelFormatError } from '../errors.ts';
import { STORAGE, createBufferChecked, uploadStorage } from '../gpu/buffers.ts';
import type { GpuContext } from '../gpu/device.ts';
import type { ClassifierTile, Kernels, MatrixFormat, WeightMatrix } from '../gpu/kernels.ts';
import { ceilDiv, encodeCalls } from '../gpu/pipelines.ts';
import { type LayerTensorName, type ModelConfig, TENSOR, kvDim, qDim } from './config.ts';
import { dequantize, readTensorF32, tensorBytes } from './dequant.ts';
import { quantizeQ4_0, quantizeQ8_0, toBf16, toF16 } from './quantize.ts';
import type { ModelFiles, TensorInfo } from './tensors.ts';
import {
  FORMAT_SOURCE, type EncodedRows, type WeightsOption, asWeightMatrix, matrixBytes, packMatrix, sliceRows, targetFormat,
} from './weight-types.ts';

/** A matrix, or the columns [col, col + n) of a concatenation, in one format. */
export interface MatrixPart {
  /** float32 [k][n/4] vec4 (matmul.wgsl), or a WeightMatrix in another format. */
  w: GPUBuffer | WeightMatrix;
  col: number;
  n: number;
}

export interface LayerWeights {
  attnNorm: GPUBuffer;
  wqkv: MatrixPart[]; // [dim][qDim + 2 kvDim]
  /** q|k|v biases [qDim + 2 kvDim]; zeros when the model has none. */
  qkvBias: GPUBuffer;
  /** q_norm | k_norm weights [2][headDim]; ones (unused) without qkNorm. */
  qkNorm: GPUBuffer;
  wo: MatrixPart[]; // [qDim][dim]
  ffnNorm: GPUBuffer;
  w13: MatrixPart[]; // [dim][2 hidden]: gate | up
  w2: MatrixPart[]; // [hidden][dim]
}

export interface GpuWeights {
  config: ModelConfig;
  /** Positions of the RoPE table (the session's context). */
  contextLength: number;
  /**
   * float32 [vocab][dim], row-major for the gather; or vocabulary tiles of a [vocab][dim]
   * WeightMatrix, which for a tied embedding are the classifier's tiles (the same buffers).
   */
  embedding: GPUBuffer | ClassifierTile[];
  layers: LayerWeights[];
  outputNorm: GPUBuffer;
  /** The classifier by vocabulary range; one tile unless it exceeds a storage binding. */
  classifier: ClassifierTile[];
  rope: GPUBuffer; // [contextLength][headDim/2] (cos, sin)
  bytes: number;
  /** GPU bytes by storage format (norms, biases and the RoPE table count as f32). */
  bytesByFormat: Partial<Record<MatrixFormat, number>>;
  /**
   * The classifier as one float32 transposed buffer [dim][vocab/4] vec4 (SRGen's xent reads that):
   * tile 0's buffer when it is f32, else decoded once on the GPU from the stored format and kept
   * (not counted in `bytes`).
   */
  denseClassifier(kernels: Kernels): Promise<GPUBuffer>;
  destroy(): void;
}

export interface UploadOptions {
  contextLength: number;
  /** GPU format of the weight matrices (weight-types.ts WeightsOption); default each tensor's own. */
  weights?: WeightsOption;
  /** Largest storage binding to plan for (default: the device's maxStorageBufferBindingSize). */
  maxBindingBytes?: number;
  /** Bytes of tensor data read (and uploaded) so far, of the total. */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
  signal?: AbortSignal;
}

/**
 * Stacks row-major matrices [out_i][inDim] along their outputs and transposes the result to
 * [inDim][outTotal], padding outTotal to a multiple of 4 with zero columns.
 */
export function transposeConcat(mats: readonly Float32Array[], inDim: number): Float32Array {
  const outs = mats.map((m) => m.length / inDim);
  const total = outs.reduce((a, b) => a + b, 0);
  const stride = Math.ceil(total / 4) * 4;
  const t = new Float32Array(inDim * stride);
  let col = 0;
  mats.forEach((m, i) => {
    for (let o = 0; o < outs[i]; o++) {
      const row = o * inDim;
      for (let k = 0; k < inDim; k++) t[k * stride + col + o] = m[row + k];
    }
    col += outs[i];
  });
  return t;
}

/**
 * cos/sin of RoPE per (position, frequency). llama2.c checkpoints: in float32 with llama2.c's
 * operation order (freq = 1/10000^(2i/d), angle = pos·freq), so rotations match the reference bit
 * for bit. Others: inv_freq_i = θ^(−2i/d) / factor_i and the angle in float64, as HF computes them
 * (its float32 angle differs from float64 by a rounding).
 */
export function ropeTable(c: ModelConfig, positions: number): Float32Array {
  const half = c.headDim / 2;
  const table = new Float32Array(positions * c.headDim);
  const f = Math.fround;
  for (let i = 0; i < half; i++) {
    const llama2c = c.architecture === 'llama2c';
    const inv = llama2c
      ? f(1 / f(Math.pow(10000, f((2 * i) / c.headDim))))
      : Math.pow(c.ropeTheta, (-2 * i) / c.headDim) / (c.ropeFreqFactors?.[i] ?? 1);
    for (let pos = 0; pos < positions; pos++) {
      const angle = llama2c ? f(pos * inv) : pos * inv;
      table[pos * c.headDim + 2 * i] = Math.cos(angle);
      table[pos * c.headDim + 2 * i + 1] = Math.sin(angle);
    }
  }
  return table;
}

/**
 * The classifier's vocabulary tiles: as few as keep each tile's bytes (`tileBytes` of its vocabulary
 * size; default the transposed f32 layout, dim · 16 bytes per 4 ids) within one binding, the
 * vocabulary split evenly in multiples of 4 ids.
 */
export function classifierTiles(
  vocab: number, dim: number, maxBindingBytes: number, tileBytes = (n: number) => dim * 16 * Math.ceil(n / 4),
): { firstId: number; vocab: number }[] {
  const v4 = Math.ceil(vocab / 4);
  let count = Math.max(1, Math.ceil(tileBytes(vocab) / maxBindingBytes));
  while (count < v4 && tileBytes(Math.ceil(v4 / count) * 4) > maxBindingBytes) count++;
  const perTile = Math.ceil(v4 / count) * 4;
  const tiles: { firstId: number; vocab: number }[] = [];
  for (let first = 0; first < vocab; first += perTile) tiles.push({ firstId: first, vocab: Math.min(perTile, vocab - first) });
  return tiles;
}

/** A tensor's rows in the encoding of the format it is uploaded in (f32: the values). */
type Encoded = { format: 'f32'; values: Float32Array; rows: number } | { format: Exclude<MatrixFormat, 'f32'>; rows: EncodedRows };

const rowCount = (e: Encoded) => (e.format === 'f32' ? e.rows : e.rows.rows);

export async function uploadWeights(ctx: GpuContext, model: ModelFiles, o: UploadOptions): Promise<GpuWeights> {
  const c = model.config;
  const buffers: GPUBuffer[] = [];
  const bytesByFormat: Partial<Record<MatrixFormat, number>> = {};
  const count = (format: MatrixFormat, b: GPUBuffer) => {
    buffers.push(b);
    bytesByFormat[format] = (bytesByFormat[format] ?? 0) + b.size;
    return b;
  };
  let done = 0;
  let total = 0;
  for (const t of model.tensors.values()) total += t.byteLength;
  const check = () => {
    if (o.signal?.aborted) throw new AbortedError('loading the model was aborted');
  };
  const up = async (label: string, data: Float32Array) => count('f32', await uploadStorage(ctx, label, data));
  const upMatrix = async (label: string, k: number, format: Exclude<MatrixFormat, 'f32'>, parts: EncodedRows[]) => {
    const packed = packMatrix(format, k, parts);
    return asWeightMatrix(packed, count(format, await uploadStorage(ctx, label, packed.words)));
  };
  const bytesOf = async (tensor: TensorInfo) => {
    const bytes = await tensor.file.read(tensor.offset, tensor.byteLength, o.signal);
    done += tensor.byteLength;
    o.onProgress?.(Math.min(done, total), total);
    return bytes;
  };
  const read = async (name: string) => {
    const tensor = model.tensors.get(name)!;
    const values = await readTensorF32(tensor, o.signal);
    done += tensor.byteLength;
    o.onProgress?.(Math.min(done, total), total);
    return values;
  };
  /** A matrix tensor [rows][k] in the format it is uploaded in (weight-types.ts targetFormat). */
  const encode = async (name: string, k: number): Promise<Encoded> => {
    const tensor = model.tensors.get(name)!;
    const bytes = await bytesOf(tensor);
    try {
      return encodeTensor(tensor, bytes, k);
    } catch (e) {
      if (e instanceof ModelFormatError) throw new ModelFormatError(`tensor ${tensor.name} in ${tensor.file.name}: ${e.message}`);
      throw e;
    }
  };
  const encodeTensor = (tensor: TensorInfo, bytes: Uint8Array, k: number): Encoded => {
    const rows = tensor.shape[0];
    const format = targetFormat(tensor.type, o.weights, k);
    if (format !== 'f32' && tensor.type === FORMAT_SOURCE[format]) {
      if (bytes.byteLength < tensorBytes(tensor.type, rows * k)) throw new ModelFormatError(`${rows * k} ${tensor.type} values need ${tensorBytes(tensor.type, rows * k)} bytes, got ${bytes.byteLength}`);
      return { format, rows: { type: tensor.type, bytes, rows } };
    }
    const values = dequantize(tensor.type, bytes, rows * k);
    switch (format) {
      case 'f32':
        return { format, values, rows };
      case 'q8_0':
        return { format, rows: quantizeQ8_0(values, k) };
      case 'q4_0':
        return { format, rows: quantizeQ4_0(values, k) };
      default: {
        // f16 (bf16 only from BF16 tensors, read above); halves that overflow keep float32's range as bf16
        const half = toF16(values, k);
        return half ? { format: 'f16', rows: half } : { format: 'bf16', rows: toBf16(values, k) };
      }
    }
  };
  /** Tensors [n_i][k] stacked along the outputs: one part per run of tensors of one format. */
  const matrix = async (label: string, names: string[], k: number): Promise<MatrixPart[]> => {
    const encoded: Encoded[] = [];
    for (const name of names) encoded.push(await encode(name, k));
    const parts: MatrixPart[] = [];
    let col = 0;
    for (let i = 0; i < encoded.length;) {
      let j = i + 1;
      while (j < encoded.length && encoded[j].format === encoded[i].format) j++;
      const run = encoded.slice(i, j);
      const n = run.reduce((s, e) => s + rowCount(e), 0);
      const name = encoded.length > j - i ? `${label}.${parts.length}` : label;
      const first = run[0];
      const w = first.format === 'f32'
        ? await up(name, transposeConcat(run.map((e) => (e as { values: Float32Array }).values), k))
        : await upMatrix(name, k, first.format, run.map((e) => (e as { rows: EncodedRows }).rows));
      parts.push({ w, col, n });
      col += n;
      i = j;
    }
    return parts;
  };
  const layer = (l: number, name: LayerTensorName) => read(TENSOR.layer(l, name));
  const L = (l: number, name: LayerTensorName) => TENSOR.layer(l, name);
  const maxBinding = Math.min(o.maxBindingBytes ?? Infinity, ctx.device.limits.maxStorageBufferBindingSize);
  try {
    // The embedding first; a tied classifier is made from the same read.
    const emb = await encode(TENSOR.embedding, c.dim);
    let classifier: ClassifierTile[] | null = null;
    if (c.tiedEmbeddings) classifier = await uploadClassifier(ctx, emb, c, maxBinding, count);
    const embedding = emb.format === 'f32' ? await up('embedding', emb.values)
      : classifier ?? await uploadClassifier(ctx, emb, c, maxBinding, count, 'embedding');
    const layers: LayerWeights[] = [];
    for (let l = 0; l < c.nLayers; l++) {
      check();
      const qkvWidth = qDim(c) + 2 * kvDim(c);
      const bias = c.qkvBias
        ? concat([await layer(l, 'attn_q.bias'), await layer(l, 'attn_k.bias'), await layer(l, 'attn_v.bias')])
        : new Float32Array(qkvWidth);
      const norm = c.qkNorm
        ? concat([await layer(l, 'attn_q_norm.weight'), await layer(l, 'attn_k_norm.weight')])
        : new Float32Array(2 * c.headDim).fill(1);
      layers.push({
        attnNorm: await up(`l${l}.attn_norm`, await layer(l, 'attn_norm.weight')),
        wqkv: await matrix(`l${l}.wqkv`, [L(l, 'attn_q.weight'), L(l, 'attn_k.weight'), L(l, 'attn_v.weight')], c.dim),
        qkvBias: await up(`l${l}.qkv_bias`, bias),
        qkNorm: await up(`l${l}.qk_norm`, norm),
        wo: await matrix(`l${l}.wo`, [L(l, 'attn_output.weight')], qDim(c)),
        ffnNorm: await up(`l${l}.ffn_norm`, await layer(l, 'ffn_norm.weight')),
        w13: await matrix(`l${l}.w13`, [L(l, 'ffn_gate.weight'), L(l, 'ffn_up.weight')], c.dim),
        w2: await matrix(`l${l}.w2`, [L(l, 'ffn_down.weight')], c.hiddenDim),
      });
    }
    check();
    const outputNorm = await up('output_norm', await read(TENSOR.outputNorm));
    classifier ??= await uploadClassifier(ctx, await encode(TENSOR.output, c.dim), c, maxBinding, count);
    const rope = await up('rope', ropeTable(c, o.contextLength));
    const tiles = classifier;
    let dense: Promise<GPUBuffer> | null = null;
    return {
      config: c, contextLength: o.contextLength, embedding, layers, outputNorm, classifier, rope,
      bytes: buffers.reduce((n, b) => n + b.size, 0),
      bytesByFormat,
      denseClassifier: (kernels) => (dense ??= denseClassifier(ctx, kernels, tiles, c, buffers)),
      destroy: () => buffers.forEach((b) => b.destroy()),
    };
  } catch (error) {
    buffers.forEach((b) => b.destroy());
    throw error;
  }
}

/**
 * The classifier [vocab][dim] as vocabulary tiles, each ≤ one binding: f32 transposed [dim][tile
 * vocab/4] vec4, or a WeightMatrix per tile in the encoded format.
 */
async function uploadClassifier(
  ctx: GpuContext, rows: Encoded, c: ModelConfig, maxBindingBytes: number,
  count: (format: MatrixFormat, b: GPUBuffer) => GPUBuffer, label = 'classifier',
): Promise<ClassifierTile[]> {
  const tiles: ClassifierTile[] = [];
  const format = rows.format;
  for (const [i, t] of classifierTiles(c.vocabSize, c.dim, maxBindingBytes, (n) => matrixBytes(format, c.dim, n)).entries()) {
    if (rows.format === 'f32') {
      const slice = rows.values.subarray(t.firstId * c.dim, (t.firstId + t.vocab) * c.dim);
      tiles.push({ buffer: count('f32', await uploadStorage(ctx, `${label}.${i}`, transposeConcat([slice], c.dim))), ...t });
    } else {
      const packed = packMatrix(rows.format, c.dim, [sliceRows(rows.rows, c.dim, t.firstId, t.vocab)]);
      const buffer = count(rows.format, await uploadStorage(ctx, `${label}.${i}`, packed.words));
      tiles.push({ buffer, ...t, matrix: asWeightMatrix(packed, buffer) });
    }
  }
  return tiles;
}

/** One f32 transposed classifier [dim][vocab/4] vec4 (tile 0's own buffer when it is f32). */
async function denseClassifier(
  ctx: GpuContext, kernels: Kernels, tiles: readonly ClassifierTile[], c: ModelConfig, owned: GPUBuffer[],
): Promise<GPUBuffer> {
  const m = tiles[0].matrix;
  if (tiles.length === 1 && (!m || m.format === 'f32')) return tiles[0].buffer;
  if (tiles.length > 1) throw new InvalidArgumentError('a dense classifier needs the classifier in one tile');
  const out = await createBufferChecked(ctx, 'classifier.f32', c.dim * ceilDiv(c.vocabSize, 4) * 16, STORAGE);
  owned.push(out);
  const call = await kernels.dequantize('classifier.dequant', m!, out);
  const encoder = ctx.device.createCommandEncoder({ label: 'classifier.dequant' });
  const pass = encoder.beginComputePass({ label: 'classifier.dequant' });
  encodeCalls(pass, [call], { nTokens: 0, statsRows: 0 });
  pass.end();
  ctx.device.queue.submit([encoder.finish()]);
  return out;
}

function concat(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
