// Named tensors → GPU buffers in the layouts the kernels want, tensor by tensor (a model is never
// held in JS memory whole): every matmul weight transposed to [in][out] (so GEMV invocations
// stream contiguous vec4s), q|k|v and gate|up concatenated along the output so each is one
// launch, and the classifier transposed and split by vocabulary into tiles that each fit one
// storage binding.
import { AbortedError } from '../errors.ts';
import { uploadStorage } from '../gpu/buffers.ts';
import type { GpuContext } from '../gpu/device.ts';
import type { ClassifierTile } from '../gpu/kernels.ts';
import { type LayerTensorName, type ModelConfig, TENSOR, kvDim, qDim } from './config.ts';
import { readTensorF32 } from './dequant.ts';
import type { ModelFiles } from './tensors.ts';

export interface LayerWeights {
  attnNorm: GPUBuffer;
  wqkv: GPUBuffer; // [dim][qDim + 2 kvDim]
  /** q|k|v biases [qDim + 2 kvDim]; zeros when the model has none. */
  qkvBias: GPUBuffer;
  /** q_norm | k_norm weights [2][headDim]; ones (unused) without qkNorm. */
  qkNorm: GPUBuffer;
  wo: GPUBuffer; // [qDim][dim]
  ffnNorm: GPUBuffer;
  w13: GPUBuffer; // [dim][2 hidden]: gate | up
  w2: GPUBuffer; // [hidden][dim]
}

export interface GpuWeights {
  config: ModelConfig;
  /** Positions of the RoPE table (the session's context). */
  contextLength: number;
  embedding: GPUBuffer; // [vocab][dim], row-major for the gather
  layers: LayerWeights[];
  outputNorm: GPUBuffer;
  /** The transposed classifier by vocabulary range; one tile unless it exceeds a storage binding. */
  classifier: ClassifierTile[];
  rope: GPUBuffer; // [contextLength][headDim/2] (cos, sin)
  bytes: number;
  destroy(): void;
}

export interface UploadOptions {
  contextLength: number;
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

/** How many vec4 columns of the transposed classifier fit one binding, split evenly into tiles. */
export function classifierTiles(vocab: number, dim: number, maxBindingBytes: number): { firstId: number; vocab: number }[] {
  const v4 = Math.ceil(vocab / 4);
  const maxV4 = Math.max(1, Math.floor(maxBindingBytes / (dim * 16)));
  const count = Math.ceil(v4 / maxV4);
  const perTile = Math.ceil(v4 / count) * 4;
  const tiles: { firstId: number; vocab: number }[] = [];
  for (let first = 0; first < vocab; first += perTile) tiles.push({ firstId: first, vocab: Math.min(perTile, vocab - first) });
  return tiles;
}

export async function uploadWeights(ctx: GpuContext, model: ModelFiles, o: UploadOptions): Promise<GpuWeights> {
  const c = model.config;
  const buffers: GPUBuffer[] = [];
  let done = 0;
  let total = 0;
  for (const t of model.tensors.values()) total += t.byteLength;
  const check = () => {
    if (o.signal?.aborted) throw new AbortedError('loading the model was aborted');
  };
  const up = async (label: string, data: Float32Array) => {
    const b = await uploadStorage(ctx, label, data);
    buffers.push(b);
    return b;
  };
  const read = async (name: string) => {
    const tensor = model.tensors.get(name)!;
    const values = await readTensorF32(tensor, o.signal);
    done += tensor.byteLength;
    o.onProgress?.(Math.min(done, total), total);
    return values;
  };
  const layer = (l: number, name: LayerTensorName) => read(TENSOR.layer(l, name));
  try {
    const embedding = await up('embedding', await read(TENSOR.embedding));
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
        wqkv: await up(`l${l}.wqkv`, transposeConcat(
          [await layer(l, 'attn_q.weight'), await layer(l, 'attn_k.weight'), await layer(l, 'attn_v.weight')], c.dim)),
        qkvBias: await up(`l${l}.qkv_bias`, bias),
        qkNorm: await up(`l${l}.qk_norm`, norm),
        wo: await up(`l${l}.wo`, transposeConcat([await layer(l, 'attn_output.weight')], qDim(c))),
        ffnNorm: await up(`l${l}.ffn_norm`, await layer(l, 'ffn_norm.weight')),
        w13: await up(`l${l}.w13`, transposeConcat([await layer(l, 'ffn_gate.weight'), await layer(l, 'ffn_up.weight')], c.dim)),
        w2: await up(`l${l}.w2`, transposeConcat([await layer(l, 'ffn_down.weight')], c.hiddenDim)),
      });
    }
    check();
    const outputNorm = await up('output_norm', await read(TENSOR.outputNorm));
    const classifier = await uploadClassifier(
      ctx, await read(c.tiedEmbeddings ? TENSOR.embedding : TENSOR.output), c,
      Math.min(o.maxBindingBytes ?? Infinity, ctx.device.limits.maxStorageBufferBindingSize), buffers,
    );
    const rope = await up('rope', ropeTable(c, o.contextLength));
    return {
      config: c, contextLength: o.contextLength, embedding, layers, outputNorm, classifier, rope,
      bytes: buffers.reduce((n, b) => n + b.size, 0),
      destroy: () => buffers.forEach((b) => b.destroy()),
    };
  } catch (error) {
    buffers.forEach((b) => b.destroy());
    throw error;
  }
}

/** The classifier [vocab][dim] as transposed tiles [dim][tile vocab/4] vec4, each ≤ one binding. */
async function uploadClassifier(
  ctx: GpuContext, rows: Float32Array, c: ModelConfig, maxBindingBytes: number, owned: GPUBuffer[],
): Promise<ClassifierTile[]> {
  const tiles: ClassifierTile[] = [];
  for (const [i, t] of classifierTiles(c.vocabSize, c.dim, maxBindingBytes).entries()) {
    const slice = rows.subarray(t.firstId * c.dim, (t.firstId + t.vocab) * c.dim);
    const buffer = await uploadStorage(ctx, `classifier.${i}`, transposeConcat([slice], c.dim));
    owned.push(buffer);
    tiles.push({ buffer, ...t });
  }
  return tiles;
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
