// The Llama forward pass as a sequence of kernel launches, in llama2.c's order:
//
//   x = embed(tokens)
//   per layer:  xb = rmsnorm(x)      qkv = xb·Wqkv      rope(q, k); append k, v to the cache
//               att = attention(q, cache)               x += att·Wo
//               xb = rmsnorm(x)      hb = xb·W13        x += swiglu(hb)·W2
//   hidden = rmsnorm(x)              stats = lm_head_stats(hidden)
//
// The same graph runs one token (decode: GEMV) or many (prefill and batched rows: GEMM); each
// token slot carries its own KV row and position, so attention needs no other mode.
import type { Kernels } from '../gpu/kernels.ts';
import type { KernelCall } from '../gpu/pipelines.ts';
import { type ModelConfig, headSize, kvDim } from './checkpoint.ts';
import type { GpuWeights } from './weights.ts';

/** Buffers a runtime session owns and hands to the graph. Sizes are in floats per token row. */
export interface ForwardBuffers {
  step: GPUBuffer; // uniform Step
  tokens: GPUBuffer; // TokenSlot per token row
  x: GPUBuffer; // residual stream [rows][dim]
  xb: GPUBuffer; // normed input [rows][dim]
  qkv: GPUBuffer; // [rows][dim + 2 kvDim]
  att: GPUBuffer; // attention output [rows][dim]
  hb: GPUBuffer; // [rows][2 hidden]
  hb2: GPUBuffer; // [rows][hidden]
  hidden: GPUBuffer; // final-normed hidden states [rows][dim]
  hiddenHistory: GPUBuffer; // row 0's final-normed hidden state by position [seqLen][dim] (SRGen; the session fills it)
  kCache: GPUBuffer[]; // per layer [kvRows][nKvHeads][seqLen][headSize]
  vCache: GPUBuffer[];
  partials: GPUBuffer;
  partialTopK: GPUBuffer;
  stats: GPUBuffer; // StepStats records [statsRows]
  logits: GPUBuffer; // [statsRows][vocab], only for the batched head
}

export interface ForwardGraph {
  /** Embedding to final norm for one-token steps (GEMV matmuls). */
  decode: KernelCall[];
  /** The same for many-token steps (GEMM matmuls). */
  prefill: KernelCall[];
  /** One stats row: the fused LM head + statistics, logits in registers. */
  head: KernelCall[];
  /**
   * Several stats rows (a batch, or scoring): a GEMM over the classifier reads its weights once
   * per four rows into a small logits buffer, then the same statistics over that buffer. The
   * fused head would read the 37 MB classifier once per row.
   */
  batchedHead: KernelCall[];
  /** The classifier GEMM alone (the first launch of batchedHead): logits of the stats rows. */
  logits: KernelCall;
}

export async function buildForward(
  kernels: Kernels, weights: GpuWeights, b: ForwardBuffers, topK: number,
): Promise<ForwardGraph> {
  const c = weights.config;
  // All pipelines compile concurrently: compilation dominates load time on SwiftShader.
  const [decode, prefill, logits] = await Promise.all([
    Promise.all(body(kernels, c, weights, b, 1)),
    Promise.all(body(kernels, c, weights, b, 4)),
    kernels.matmul('lm_head.logits', { k: c.dim, n: c.vocabSize, accumulate: false, rowsPerInvocation: 4, statsRowsOnly: true },
      { step: b.step, x: b.hidden, w: weights.classifier, y: b.logits }),
  ]);
  return { decode, prefill, logits, ...(await buildHeads(kernels, weights, b, topK, logits)) };
}

/** The two statistics heads (single row fused, batched) for `topK` candidates per row. */
export async function buildHeads(
  kernels: Kernels, weights: GpuWeights, b: ForwardBuffers, topK: number, logits: KernelCall,
): Promise<Pick<ForwardGraph, 'head' | 'batchedHead'>> {
  const c = weights.config;
  const stats = { step: b.step, tokens: b.tokens, partials: b.partials, partialTopK: b.partialTopK, stats: b.stats };
  const [head, logitsStats] = await Promise.all([
    kernels.lmHeadStats(`lm_head.top${topK}`, { dim: c.dim, vocab: c.vocabSize, topK }, { ...stats, hidden: b.hidden, wcls: weights.classifier }),
    kernels.logitsStats(`lm_head.stats.top${topK}`, { vocab: c.vocabSize, topK }, { ...stats, logits: b.logits }),
  ]);
  return { head, batchedHead: [logits, ...logitsStats] };
}

function body(k: Kernels, c: ModelConfig, w: GpuWeights, b: ForwardBuffers, rowsPerInvocation: 1 | 4): Promise<KernelCall>[] {
  const step = { step: b.step, tokens: b.tokens };
  const dims = { dim: c.dim, kvDim: kvDim(c), headSize: headSize(c), nHeads: c.nHeads, nKvHeads: c.nKvHeads, seqLen: c.seqLen };
  const matmul = (label: string, k_: number, n: number, accumulate: boolean, x: GPUBuffer, wt: GPUBuffer, y: GPUBuffer) =>
    k.matmul(label, { k: k_, n, accumulate, rowsPerInvocation }, { step: b.step, x, w: wt, y });

  const calls = [k.embedding('embed', c.dim, { ...step, table: w.embedding, x: b.x })];
  for (let l = 0; l < c.nLayers; l++) {
    const lw = w.layers[l];
    const cache = { kCache: b.kCache[l], vCache: b.vCache[l] };
    calls.push(
      k.rmsnorm(`l${l}.rms_att`, c.dim, { step: b.step, x: b.x, weight: lw.rmsAtt, out: b.xb }),
      matmul(`l${l}.qkv`, c.dim, c.dim + 2 * dims.kvDim, false, b.xb, lw.wqkv, b.qkv),
      k.ropeKv(`l${l}.rope_kv`, dims, { ...step, qkv: b.qkv, rope: w.rope, ...cache }),
      k.attention(`l${l}.attention`, dims, { ...step, qkv: b.qkv, ...cache, out: b.att }),
      matmul(`l${l}.wo`, c.dim, c.dim, true, b.att, lw.wo, b.x),
      k.rmsnorm(`l${l}.rms_ffn`, c.dim, { step: b.step, x: b.x, weight: lw.rmsFfn, out: b.xb }),
      matmul(`l${l}.w13`, c.dim, 2 * c.hiddenDim, false, b.xb, lw.w13, b.hb),
      k.swiglu(`l${l}.swiglu`, c.hiddenDim, { step: b.step, hb: b.hb, out: b.hb2 }),
      matmul(`l${l}.w2`, c.hiddenDim, c.dim, true, b.hb2, lw.w2, b.x),
    );
  }
  calls.push(k.rmsnorm('rms_final', c.dim, { step: b.step, x: b.x, weight: w.rmsFinal, out: b.hidden }));
  return calls;
}
