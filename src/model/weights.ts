// Uploading a ModelSpec to the GPU in the layouts the kernels want: every matmul weight transposed
// to [in][out] (so GEMV invocations stream contiguous vec4s), q|k|v and w1|w3 concatenated along
// the output so each pair or triple is one launch, and the classifier transposed for the LM head.
import { uploadStorage } from '../gpu/buffers.ts';
import type { GpuContext } from '../gpu/device.ts';
import { type ModelConfig, type ModelSpec, headSize } from './checkpoint.ts';

export interface LayerWeights {
  rmsAtt: GPUBuffer;
  wqkv: GPUBuffer; // [dim][dim + 2 kvDim]
  wo: GPUBuffer; // [dim][dim]
  rmsFfn: GPUBuffer;
  w13: GPUBuffer; // [dim][2 hidden]
  w2: GPUBuffer; // [hidden][dim]
}

export interface GpuWeights {
  config: ModelConfig;
  embedding: GPUBuffer; // [vocab][dim], row-major for the gather
  layers: LayerWeights[];
  rmsFinal: GPUBuffer;
  classifier: GPUBuffer; // [dim][vocab rounded up to 4]
  rope: GPUBuffer; // [seqLen][headSize/2] (cos, sin)
  bytes: number;
  destroy(): void;
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
 * cos/sin of llama2.c's RoPE, in float32 with its operation order (freq = 1/10000^(hd/hs),
 * angle = pos·freq), so rotations match the reference bit for bit.
 */
export function ropeTable(seqLen: number, hs: number): Float32Array {
  const f = Math.fround;
  const table = new Float32Array(seqLen * hs);
  for (let pos = 0; pos < seqLen; pos++) {
    for (let i = 0; i < hs; i += 2) {
      const freq = f(1 / f(Math.pow(10000, f(i / hs))));
      const angle = f(pos * freq);
      table[pos * hs + i] = f(Math.cos(angle));
      table[pos * hs + i + 1] = f(Math.sin(angle));
    }
  }
  return table;
}

export async function uploadWeights(
  ctx: GpuContext, spec: ModelSpec, onProgress?: (done: number, total: number) => void,
): Promise<GpuWeights> {
  const c = spec.config;
  const buffers: GPUBuffer[] = [];
  const total = c.nLayers + 2;
  const up = async (label: string, data: Float32Array) => {
    const b = await uploadStorage(ctx, label, data);
    buffers.push(b);
    return b;
  };
  try {
    const embedding = await up('embedding', spec.tokenEmbedding);
    const layers: LayerWeights[] = [];
    for (let l = 0; l < c.nLayers; l++) {
      const w = spec.layers[l];
      layers.push({
        rmsAtt: await up(`l${l}.rms_att`, w.rmsAtt),
        wqkv: await up(`l${l}.wqkv`, transposeConcat([w.wq, w.wk, w.wv], c.dim)),
        wo: await up(`l${l}.wo`, transposeConcat([w.wo], c.dim)),
        rmsFfn: await up(`l${l}.rms_ffn`, w.rmsFfn),
        w13: await up(`l${l}.w13`, transposeConcat([w.w1, w.w3], c.dim)),
        w2: await up(`l${l}.w2`, transposeConcat([w.w2], c.hiddenDim)),
      });
      onProgress?.(l + 1, total);
      await Promise.resolve();
    }
    const rmsFinal = await up('rms_final', spec.rmsFinal);
    const classifier = await up('classifier', transposeConcat([spec.classifier], c.dim));
    onProgress?.(c.nLayers + 1, total);
    const rope = await up('rope', ropeTable(c.seqLen, headSize(c)));
    onProgress?.(total, total);
    return {
      config: c, embedding, layers, rmsFinal, classifier, rope,
      bytes: buffers.reduce((n, b) => n + b.size, 0),
      destroy: () => buffers.forEach((b) => b.destroy()),
    };
  } catch (error) {
    buffers.forEach((b) => b.destroy());
    throw error;
  }
}
