// The Llama-family forward pass as a sequence of kernel launches, in llama2.c's order:
//
//   x = embed(tokens)
//   per layer:  xb = rmsnorm(x)      qkv = xb·Wqkv
//               (+ bias, q/k rmsnorm per head,) rope(q, k); append k, v to the cache
//               att = attention(q, cache)               x += att·Wo
//               xb = rmsnorm(x)      hb = xb·W13        x += swiglu(hb)·W2
//   hidden = rmsnorm(x)              logits = hidden·Wcls     stats = lm_head_stats(logits)
//
// llama2.c, HF Llama/Mistral, Qwen2 and Qwen3 are flags of this one graph (ModelConfig: RoPE
// layout, biases, q/k norm, head size); a format never reaches it. The same graph runs one token
// (decode: GEMV) or many (prefill and batched rows: GEMM); each token slot carries its own KV row
// and position, so attention needs no other mode. Weight matrices may be in any MatrixFormat
// (decoded in the matmul's inner loop); a concatenation whose parts differ in format is one
// launch per part.
import type { ClassifierTile, Kernels } from '../gpu/kernels.ts';
import type { KernelCall } from '../gpu/pipelines.ts';
import { type ModelConfig, kvDim, qDim } from './config.ts';
import type { GpuWeights, MatrixPart } from './weights.ts';

/** Buffers a runtime session owns and hands to the graph. Sizes are in floats per token row. */
export interface ForwardBuffers {
  step: GPUBuffer; // uniform Step
  tokens: GPUBuffer; // TokenSlot per token row
  x: GPUBuffer; // residual stream [rows][dim]
  xb: GPUBuffer; // normed input [rows][dim]
  qkv: GPUBuffer; // [rows][qDim + 2 kvDim]
  att: GPUBuffer; // attention output [rows][qDim]
  hb: GPUBuffer; // [rows][2 hidden]
  hb2: GPUBuffer; // [rows][hidden]
  hidden: GPUBuffer; // final-normed hidden states [rows][dim]
  kCache: GPUBuffer[]; // per layer [kvRows][nKvHeads][context][headDim]
  vCache: GPUBuffer[];
  partials: GPUBuffer;
  partialTopK: GPUBuffer;
  stats: GPUBuffer; // StepStats records [statsRows]
  logits: GPUBuffer; // [statsRows][vocab], the stats rows' logits (the split and batched heads)
}

export interface ForwardGraph {
  /** Embedding to final norm for one-token steps (GEMV matmuls). */
  decode: KernelCall[];
  /** The same for many-token steps (GEMM matmuls). */
  prefill: KernelCall[];
  /** One stats row (HeadKind): the classifier GEMV + statistics over its logits, or the fused kernel. */
  head: KernelCall[];
  /**
   * Several stats rows (a batch, or scoring): a GEMM over the classifier reads its weights once
   * per four rows into a small logits buffer, then the same statistics over that buffer. The
   * fused head would read the 37 MB classifier once per row.
   */
  batchedHead: KernelCall[];
  /** The classifier GEMM alone (the first launches of batchedHead, one per tile): logits of the stats rows. */
  logits: KernelCall[];
  /** The same as a GEMV, for one stats row (the split head's; empty with the fused head). */
  logits1: KernelCall[];
}

/**
 * How a one-row step's LM head runs. 'split': the classifier GEMV writes the row's logits to a GPU
 * buffer (128 KB for a 32k vocabulary; nothing is read back) and the statistics reduce them.
 * 'fused': one kernel folds each logit into the statistics as it computes it (lm_head_stats.wgsl).
 * The split head is the default: on SwiftShader its GPU time is ×0.69 of the fused one's for f32
 * weights and the same (±1 %) for Q8_0 and Q4_0 (bench/kernel-bench.ts and bench:profile): the
 * fused kernel's statistics fold inside the dot-product loop costs more than the logits' round
 * trip through memory.
 */
export type HeadKind = 'split' | 'fused';

export async function buildForward(
  kernels: Kernels, weights: GpuWeights, b: ForwardBuffers, topK: number, head: HeadKind = 'split',
): Promise<ForwardGraph> {
  const c = weights.config;
  // All pipelines compile concurrently: compilation dominates load time on SwiftShader.
  const [decode, prefill, logits, logits1] = await Promise.all([
    Promise.all(body(kernels, c, weights, b, 1)),
    Promise.all(body(kernels, c, weights, b, 4)),
    Promise.all(weights.classifier.map((tile, i) => classifierMatmul(kernels, c, tile, i, b, 4))),
    // The GEMV serves the split one-row head only.
    head === 'split' ? Promise.all(weights.classifier.map((tile, i) => classifierMatmul(kernels, c, tile, i, b, 1))) : [],
  ]);
  return { decode, prefill, logits, logits1, ...(await buildHeads(kernels, weights, b, topK, { logits, logits1 }, head)) };
}

/** The logits of the stats rows for one classifier tile, at its columns of the logits rows. */
function classifierMatmul(k: Kernels, c: ModelConfig, tile: ClassifierTile, i: number, b: ForwardBuffers, rowsPerInvocation: 1 | 4) {
  return k.matmul(`lm_head.logits${rowsPerInvocation === 1 ? '1' : ''}.${i}`, {
    k: c.dim, n: tile.vocab, accumulate: false, rowsPerInvocation, statsRowsOnly: true,
    yN: Math.ceil(c.vocabSize / 4) * 4, yOffset: tile.firstId,
  }, { step: b.step, x: b.hidden, w: tile.matrix ?? tile.buffer, y: b.logits });
}

/** The two statistics heads (one row, batched) for `topK` candidates per row. */
export async function buildHeads(
  kernels: Kernels, weights: GpuWeights, b: ForwardBuffers, topK: number, m: Pick<ForwardGraph, 'logits' | 'logits1'>,
  kind: HeadKind = 'split',
): Promise<Pick<ForwardGraph, 'head' | 'batchedHead'>> {
  const c = weights.config;
  const stats = { step: b.step, tokens: b.tokens, partials: b.partials, partialTopK: b.partialTopK, stats: b.stats };
  const [fused, logitsStats] = await Promise.all([
    kind === 'fused' ? kernels.lmHeadStats(`lm_head.top${topK}`, { dim: c.dim, topK }, { ...stats, hidden: b.hidden, tiles: weights.classifier }) : [],
    kernels.logitsStats(`lm_head.stats.top${topK}`, { vocab: c.vocabSize, topK }, { ...stats, logits: b.logits }),
  ]);
  return { head: kind === 'fused' ? fused : [...m.logits1, ...logitsStats], batchedHead: [...m.logits, ...logitsStats] };
}

function body(k: Kernels, c: ModelConfig, w: GpuWeights, b: ForwardBuffers, rowsPerInvocation: 1 | 4): Promise<KernelCall>[] {
  const step = { step: b.step, tokens: b.tokens };
  const attn = {
    qDim: qDim(c), kvDim: kvDim(c), headDim: c.headDim, nHeads: c.nHeads, nKvHeads: c.nKvHeads, seqLen: w.contextLength,
  };
  const rope = { ...attn, ropeHalf: c.ropeLayout === 'half', qkNorm: c.qkNorm, eps: c.normEps };
  const norm = { dim: c.dim, eps: c.normEps };
  // One launch per part of a matrix (parts differ in format), each writing its columns of y.
  const matmul = (label: string, k_: number, n: number, accumulate: boolean, x: GPUBuffer, parts: MatrixPart[], y: GPUBuffer) =>
    parts.map((p, i) => k.matmul(parts.length > 1 ? `${label}.${i}` : label, {
      k: k_, n: p.n, accumulate, rowsPerInvocation, yN: n, yOffset: p.col,
    }, { step: b.step, x, w: p.w, y }));

  const tiles = w.embedding instanceof Array ? w.embedding : null;
  const calls = tiles
    ? tiles.map((t, i) => k.embedding(tiles.length > 1 ? `embed.${i}` : 'embed', c.dim, {
      ...step, table: t.matrix!, firstId: t.firstId, x: b.x,
    }))
    : [k.embedding('embed', c.dim, { ...step, table: w.embedding as GPUBuffer, x: b.x })];
  for (let l = 0; l < c.nLayers; l++) {
    const lw = w.layers[l];
    const cache = { kCache: b.kCache[l], vCache: b.vCache[l] };
    calls.push(
      k.rmsnorm(`l${l}.attn_norm`, norm, { step: b.step, x: b.x, weight: lw.attnNorm, out: b.xb }),
      ...matmul(`l${l}.qkv`, c.dim, attn.qDim + 2 * attn.kvDim, false, b.xb, lw.wqkv, b.qkv),
      k.ropeKv(`l${l}.rope_kv`, rope, { ...step, qkv: b.qkv, rope: w.rope, ...cache, bias: lw.qkvBias, qkNorm: lw.qkNorm }),
      k.attention(`l${l}.attention`, attn, { ...step, qkv: b.qkv, ...cache, out: b.att }),
      ...matmul(`l${l}.wo`, attn.qDim, c.dim, true, b.att, lw.wo, b.x),
      k.rmsnorm(`l${l}.ffn_norm`, norm, { step: b.step, x: b.x, weight: lw.ffnNorm, out: b.xb }),
      ...matmul(`l${l}.w13`, c.dim, 2 * c.hiddenDim, false, b.xb, lw.w13, b.hb),
      k.swiglu(`l${l}.swiglu`, c.hiddenDim, { step: b.step, hb: b.hb, out: b.hb2 }),
      ...matmul(`l${l}.w2`, c.hiddenDim, c.dim, true, b.hb2, lw.w2, b.x),
    );
  }
  calls.push(k.rmsnorm('output_norm', norm, { step: b.step, x: b.x, weight: w.outputNorm, out: b.hidden }));
  return calls;
}
