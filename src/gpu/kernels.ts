// The kernel families of shaders/, each as a typed launcher: which override constants specialise
// it, which buffers bind where, and how big its grid is for a step. The model layer composes these
// into a forward graph; nothing above src/gpu needs to know a binding number.
import adamwWgsl from '../../shaders/adamw.wgsl?raw';
import attentionWgsl from '../../shaders/attention.wgsl?raw';
import copyWgsl from '../../shaders/copy.wgsl?raw';
import embeddingWgsl from '../../shaders/embedding.wgsl?raw';
import kvCacheWgsl from '../../shaders/kv_cache.wgsl?raw';
import lmHeadStatsWgsl from '../../shaders/lm_head_stats.wgsl?raw';
import matmulWgsl from '../../shaders/matmul.wgsl?raw';
import matmulFmtF16Wgsl from '../../shaders/matmul_fmt_f16.wgsl?raw';
import matmulFmtQ45kWgsl from '../../shaders/matmul_fmt_q45_k.wgsl?raw';
import matmulFmtQ40Wgsl from '../../shaders/matmul_fmt_q4_0.wgsl?raw';
import matmulFmtQ6kWgsl from '../../shaders/matmul_fmt_q6_k.wgsl?raw';
import matmulFmtQ80Wgsl from '../../shaders/matmul_fmt_q8_0.wgsl?raw';
import matmulQWgsl from '../../shaders/matmul_q.wgsl?raw';
import matmulQCoreWgsl from '../../shaders/matmul_q_core.wgsl?raw';
import matmulQHeadWgsl from '../../shaders/matmul_q_head.wgsl?raw';
import preludeWgsl from '../../shaders/prelude.wgsl?raw';
import ropeKvWgsl from '../../shaders/rope_kv.wgsl?raw';
import rmsnormWgsl from '../../shaders/rmsnorm.wgsl?raw';
import softmaxWgsl from '../../shaders/softmax.wgsl?raw';
import swigluWgsl from '../../shaders/swiglu.wgsl?raw';
import xentWgsl from '../../shaders/xent.wgsl?raw';
import xentCommonWgsl from '../../shaders/xent_common.wgsl?raw';
import xentLinearWgsl from '../../shaders/xent_linear.wgsl?raw';
import { InvalidArgumentError } from '../errors.ts';
import type { GpuContext } from './device.ts';
import { type KernelCall, type StepShape, PipelineCache, bindGroupFor, ceilDiv } from './pipelines.ts';

export { NO_TOKEN, STEP_UNIFORM_BYTES, TOKEN_SLOT_BYTES } from './step.ts';
/** u32 words before the top-K pairs in a StepStats record (lm_head_stats.wgsl). */
export const STATS_HEADER_WORDS = 6;
export const MAX_TOP_K = 64;
export const statsRecordWords = (topK: number) => STATS_HEADER_WORDS + 2 * topK;

const LM_WG = 64;
const LM_GROUPS = 16;
/** Partials the fused LM head writes per stats row (one per invocation). */
export const LM_PARTIALS_PER_ROW = LM_WG * LM_GROUPS;
export const LM_PARTIAL_BYTES = 40;
/** Destination rows one kv_fork launch can take (the Fork uniform's array). */
export const MAX_FORK_ROWS = 64;
export const FORK_UNIFORM_BYTES = 16 + 4 * MAX_FORK_ROWS;

const MATMUL_WG = 32;

/**
 * How a weight matrix W [n][k] is stored on the GPU. 'f32': transposed [k][n/4] vec4
 * (matmul.wgsl). The others keep their blocks (GGUF's block semantics, values identical to
 * model/dequant.ts) in the layouts of shaders/matmul_fmt_*.wgsl, built by model/weight-types.ts,
 * and are dequantised inside the kernels' inner loops.
 */
export type MatrixFormat = 'f32' | 'f16' | 'bf16' | 'q8_0' | 'q4_0' | 'q4_k' | 'q5_k' | 'q6_k';

/** A weight matrix W [n][k] (n outputs, k inputs) in one buffer. */
export interface WeightMatrix {
  format: MatrixFormat;
  buffer: GPUBuffer;
  k: number;
  n: number;
  /** The layout's override constants: its sections' offsets in 16-byte words ({} for f32). */
  layout: Record<string, number>;
}

/** The format library (and the constants that pick its variant) of each non-f32 format. */
const FORMAT_LIBS: Record<Exclude<MatrixFormat, 'f32'>, { lib: string; code: string; constants: Record<string, number> }> = {
  f16: { lib: 'f16', code: matmulFmtF16Wgsl, constants: { BF16: 0 } },
  bf16: { lib: 'f16', code: matmulFmtF16Wgsl, constants: { BF16: 1 } },
  q8_0: { lib: 'q8_0', code: matmulFmtQ80Wgsl, constants: {} },
  q4_0: { lib: 'q4_0', code: matmulFmtQ40Wgsl, constants: {} },
  q4_k: { lib: 'q45_k', code: matmulFmtQ45kWgsl, constants: { Q5: 0 } },
  q5_k: { lib: 'q45_k', code: matmulFmtQ45kWgsl, constants: { Q5: 1 } },
  q6_k: { lib: 'q6_k', code: matmulFmtQ6kWgsl, constants: {} },
};

/** k must be a multiple of this for a format's kernels (its scale blocks: 8 values per chunk). */
export const FORMAT_K_MULTIPLE: Record<MatrixFormat, number> = {
  f32: 4, f16: 8, bf16: 8, q8_0: 32, q4_0: 32, q4_k: 256, q5_k: 256, q6_k: 256,
};

const asMatrix = (w: GPUBuffer | WeightMatrix): WeightMatrix | null => ('format' in w && 'layout' in w ? w : null);

function quantSpec(format: Exclude<MatrixFormat, 'f32'>, m: WeightMatrix, k: number, n: number) {
  if (m.k !== k || m.n !== n) throw new InvalidArgumentError(`a ${m.n}×${m.k} ${format} matrix bound as ${n}×${k}`);
  if (k % FORMAT_K_MULTIPLE[format] !== 0) throw new InvalidArgumentError(`${format}: k = ${k} is not a multiple of ${FORMAT_K_MULTIPLE[format]}`);
  const f = FORMAT_LIBS[format];
  return { lib: f, constants: { ...f.constants, ...m.layout, K8: k / 8, N4: ceilDiv(n, 4) } };
}

/** Shape of one kv_fork launch: positions copied, destination rows. */
export interface ForkShape {
  positions: number;
  destinations: number;
}

export interface StepBindings {
  step: GPUBuffer; // uniform Step
  tokens: GPUBuffer; // TokenSlot[]
}

export class Kernels {
  readonly pipelines: PipelineCache;
  constructor(private readonly ctx: GpuContext, pipelines?: PipelineCache) {
    this.pipelines = pipelines ?? new PipelineCache(ctx);
  }

  private async call<S = StepShape>(
    label: string,
    spec: { name: string; code: string; entryPoint?: string; constants: Record<string, number> },
    buffers: (GPUBuffer | null)[],
    grid: KernelCall<S>['grid'],
  ): Promise<KernelCall<S>> {
    // Every kernel sees the prelude's Step and TokenSlot (one definition, shaders/prelude.wgsl).
    const pipeline = await this.pipelines.get({ ...spec, code: preludeWgsl + spec.code });
    return { label, pipeline, bindGroup: bindGroupFor(this.ctx, pipeline, label, buffers), grid };
  }

  /**
   * x[t] = table[token_t]: `table` float32 row-major [vocab][dim] (embedding.wgsl), or a
   * WeightMatrix [vocab][dim] (n = token id, k = feature) in a non-f32 format, gathered from its
   * layout (matmul_q.wgsl `embed`). A vocabulary tile of the table (a classifier tile serves for a
   * tied embedding) holds ids `firstId` .. + its n and writes only their rows: one launch per tile.
   */
  embedding(label: string, dim: number, b: StepBindings & { table: GPUBuffer | WeightMatrix; x: GPUBuffer; firstId?: number }) {
    const grid = (s: StepShape): [number, number, number] => [ceilDiv(dim, 64), s.nTokens, 1];
    const m = asMatrix(b.table);
    if (m && m.format !== 'f32') {
      const q = quantSpec(m.format, m, dim, m.n);
      return this.call(label, {
        name: `matmul_q.${q.lib.lib}`, code: q.lib.code + matmulQCoreWgsl + matmulQWgsl, entryPoint: 'embed',
        constants: { ...q.constants, ID_OFFSET: b.firstId ?? 0, TABLE_ROWS: m.n },
      }, [b.step, b.tokens, m.buffer, b.x], grid);
    }
    if (m || b.firstId) throw new InvalidArgumentError('embedding: a float32 table is one row-major [vocab][dim] buffer');
    return this.call(label, { name: 'embedding', code: embeddingWgsl, constants: { DIM: dim } },
      [b.step, b.tokens, b.table as GPUBuffer, b.x], grid);
  }

  rmsnorm(label: string, c: { dim: number; eps: number }, b: { step: GPUBuffer; x: GPUBuffer; weight: GPUBuffer; out: GPUBuffer }) {
    const dim = c.dim;
    return this.call(label, { name: 'rmsnorm', code: rmsnormWgsl, constants: { DIM: dim, EPS: c.eps } },
      [b.step, b.x, b.weight, b.out], (s) => [ceilDiv(s.nTokens, 64), 1, 1]);
  }

  /**
   * y = x·W (+ y when accumulate). `w` holds W transposed, [k][n4] vec4 (see model/weights.ts),
   * or is a WeightMatrix in any MatrixFormat (decoded in the inner loop: matmul_q.wgsl);
   * k must be a multiple of 4 (checkpoints are validated for it), of FORMAT_K_MULTIPLE for others. `statsRowsOnly` multiplies only
   * the step's stats rows of x (into y rows 0..), for the LM head over a batch.
   * `rowsPerInvocation` 1 is the GEMV for decode, 4 the GEMM for prefill and batches. `y` rows are
   * `yN` wide with this matmul's columns at `yOffset` (both multiples of 4; default n and 0): a
   * tile of a wider output.
   */
  matmul(
    label: string,
    shape: {
      k: number; n: number; accumulate: boolean; rowsPerInvocation: 1 | 4; statsRowsOnly?: boolean;
      yN?: number; yOffset?: number;
    },
    b: { step: GPUBuffer; x: GPUBuffer; w: GPUBuffer | WeightMatrix; y: GPUBuffer },
  ) {
    const n4 = ceilDiv(shape.n, 4);
    const gemm = shape.rowsPerInvocation === 4;
    const statsRows = shape.statsRowsOnly ?? false;
    // Each invocation computes two output vec4s (matmul.wgsl, matmul_q.wgsl).
    const groups = ceilDiv(ceilDiv(n4, 2), MATMUL_WG);
    const constants = {
      ACCUMULATE: shape.accumulate ? 1 : 0, WG: MATMUL_WG, STATS_ROWS: statsRows ? 1 : 0,
      Y_N4: ceilDiv(shape.yN ?? shape.n, 4), Y_OFFSET4: (shape.yOffset ?? 0) / 4,
    };
    const grid = (s: StepShape): [number, number, number] => {
      const rows = statsRows ? s.statsRows : s.nTokens;
      return [groups, gemm ? ceilDiv(rows, 4) : rows, 1];
    };
    const m = asMatrix(b.w);
    const entryPoint = gemm ? 'gemm' : 'gemv';
    if (m && m.format !== 'f32') {
      const q = quantSpec(m.format, m, shape.k, shape.n);
      return this.call(label, {
        name: `matmul_q.${q.lib.lib}`, code: q.lib.code + matmulQCoreWgsl + matmulQWgsl, entryPoint,
        constants: { ...constants, ...q.constants },
      }, [b.step, b.x, m.buffer, b.y], grid);
    }
    return this.call(label, {
      name: 'matmul', code: matmulWgsl, entryPoint, constants: { ...constants, K4: shape.k / 4, N4: n4 },
    }, [b.step, b.x, m ? m.buffer : (b.w as GPUBuffer), b.y], grid);
  }

  /**
   * W as float32 in matmul.wgsl's layout ([k][n/4] vec4, `out` ≥ k·⌈n/4⌉·16 bytes), decoded on
   * the GPU from a quantised or 16-bit matrix: the values of model/dequant.ts, bit for bit.
   */
  dequantize(label: string, w: WeightMatrix, out: GPUBuffer) {
    if (w.format === 'f32') throw new InvalidArgumentError('dequantize: the matrix is float32 already');
    const q = quantSpec(w.format, w, w.k, w.n);
    return this.call(label, {
      name: `matmul_q.${q.lib.lib}`, code: q.lib.code + matmulQCoreWgsl + matmulQWgsl, entryPoint: 'dequant',
      constants: { WG: MATMUL_WG, Y_N4: ceilDiv(w.n, 4), ...q.constants },
    }, [null, null, w.buffer, out], () => [ceilDiv(ceilDiv(w.n, 4), MATMUL_WG), w.k, 1]);
  }

  /**
   * q/k/v bias, q/k RMSNorm (qkNorm), RoPE of q and k in place in the qkv rows, and k, v appended
   * to the cache. `bias` [qDim + 2 kvDim] (zeros when the model has none), `qkNorm` [2][headDim].
   */
  ropeKv(
    label: string,
    c: AttentionShape & { ropeHalf: boolean; qkNorm: boolean; eps: number },
    b: StepBindings & { qkv: GPUBuffer; rope: GPUBuffer; kCache: GPUBuffer; vCache: GPUBuffer; bias: GPUBuffer; qkNorm: GPUBuffer },
  ) {
    return this.call(label, {
      name: 'rope_kv', code: ropeKvWgsl,
      constants: {
        ...attentionConstants(c), ROPE_HALF: c.ropeHalf ? 1 : 0, QK_NORM: c.qkNorm ? 1 : 0, EPS: c.eps,
      },
    }, [b.step, b.tokens, b.qkv, b.rope, b.kCache, b.vCache, b.bias, b.qkNorm],
    (s) => [ceilDiv(c.nHeads + c.nKvHeads, 32), s.nTokens, 1]);
  }

  attention(
    label: string,
    c: AttentionShape,
    b: StepBindings & { qkv: GPUBuffer; kCache: GPUBuffer; vCache: GPUBuffer; out: GPUBuffer },
  ) {
    return this.call(label, { name: 'attention', code: attentionWgsl, constants: attentionConstants(c) },
      [b.step, b.tokens, b.qkv, b.kCache, b.vCache, b.out], (s) => [ceilDiv(c.nHeads, 32), s.nTokens, 1]);
  }

  /**
   * `attention` that also writes, for the step's stats rows, one AttentionRecord each into
   * `records` ([statsRows][4 + nHeads] f32: mean and variance over heads of the per-head entropies
   * in bits, head agreement, mean |score|, then each head's entropy in bits; attention.wgsl
   * main_stats + agree). `headStats` holds [maxStatsRows][nHeads] vec4 and `scores`
   * [maxStatsRows][nHeads][seqLen] f32 of scratch. The attention output is the same as attention's.
   */
  attentionStats(
    label: string,
    c: AttentionShape,
    b: StepBindings & {
      qkv: GPUBuffer; kCache: GPUBuffer; vCache: GPUBuffer; out: GPUBuffer; headStats: GPUBuffer; scores: GPUBuffer; records: GPUBuffer;
    },
  ): Promise<KernelCall[]> {
    const spec = (entryPoint: string) => ({ name: 'attention', code: attentionWgsl, entryPoint, constants: attentionConstants(c) });
    return Promise.all([
      this.call(label, spec('main_stats'), [b.step, b.tokens, b.qkv, b.kCache, b.vCache, b.out, b.headStats, b.scores],
        (s) => [ceilDiv(c.nHeads, 32), s.nTokens, 1]),
      this.call(`${label}.agree`, spec('agree'), [b.step, b.tokens, null, null, null, null, b.headStats, b.scores, b.records],
        (s) => [s.statsRows, 1, 1]),
    ]);
  }

  swiglu(label: string, hidden: number, b: { step: GPUBuffer; hb: GPUBuffer; out: GPUBuffer }) {
    return this.call(label, { name: 'swiglu', code: swigluWgsl, constants: { HIDDEN: hidden } },
      [b.step, b.hb, b.out], (s) => [ceilDiv(hidden, 64), s.nTokens, 1]);
  }

  private statsConstants(dim: number, vocab: number, topK: number) {
    return { DIM: dim, V4: ceilDiv(vocab, 4), VOCAB: vocab, TOP_K: topK, LM_WG, LM_GROUPS };
  }

  /**
   * The fused LM head + softmax statistics writing one StepStats record per stats row into
   * `stats`: one partials launch per classifier tile (ClassifierTile: a vocabulary range in its
   * own buffer), then one merge over every tile's partials.
   */
  async lmHeadStats(
    label: string,
    c: { dim: number; topK: number },
    b: StepBindings & { hidden: GPUBuffer; tiles: readonly ClassifierTile[]; partials: GPUBuffer; partialTopK: GPUBuffer; stats: GPUBuffer },
  ): Promise<KernelCall[]> {
    const tiles = b.tiles.length;
    return Promise.all([
      ...b.tiles.map((tile, i) => {
        const constants = { ...this.statsConstants(c.dim, tile.vocab, c.topK), ID_OFFSET: tile.firstId, TILE: i, TILES: tiles };
        const m = tile.matrix;
        const spec = m && m.format !== 'f32'
          ? (() => {
            const q = quantSpec(m.format, m, c.dim, tile.vocab);
            return {
              name: `lm_head_stats.${q.lib.lib}`, code: q.lib.code + matmulQCoreWgsl + lmHeadStatsWgsl + matmulQHeadWgsl,
              entryPoint: 'lm_head_q', constants: { ...constants, ...q.constants },
            };
          })()
          : { name: 'lm_head_stats', code: lmHeadStatsWgsl, entryPoint: 'lm_head', constants };
        return this.call(`${label}.partials${tiles > 1 ? `.${i}` : ''}`, spec,
          [b.step, b.tokens, b.hidden, m ? m.buffer : tile.buffer, b.partials, b.partialTopK], (s) => [LM_GROUPS, s.statsRows, 1]);
      }),
      this.statsMerge(label, { TOP_K: c.topK, TILES: tiles }, b),
    ]);
  }

  /** The same statistics over an existing logits buffer [statsRows][vocab] (standalone reduction). */
  async logitsStats(
    label: string,
    c: { vocab: number; topK: number },
    b: StepBindings & { logits: GPUBuffer; partials: GPUBuffer; partialTopK: GPUBuffer; stats: GPUBuffer },
  ): Promise<KernelCall[]> {
    // The partials carry the sums only; merge_select picks the top-K from the logits themselves.
    // (partialTopK stays bound: the entry point still names it, behind PARTIAL_TOP_K.)
    const constants = { ...this.statsConstants(4, c.vocab, c.topK), PARTIAL_TOP_K: 0 };
    const spec = { name: 'lm_head_stats', code: lmHeadStatsWgsl };
    const { TOP_K, V4, VOCAB } = constants;
    return Promise.all([
      this.call(`${label}.partials`, { ...spec, entryPoint: 'logits_partials', constants },
        [b.step, b.tokens, null, null, b.partials, b.partialTopK, null, b.logits], (s) => [LM_GROUPS, s.statsRows, 1]),
      this.call(`${label}.merge`, { ...spec, entryPoint: 'merge_select', constants: { TOP_K, V4, VOCAB, LM_WG, LM_GROUPS } },
        [b.step, b.tokens, null, null, b.partials, null, b.stats, b.logits], (s) => [1, s.statsRows, 1]),
    ]);
  }

  private statsMerge(
    label: string, c: { TOP_K: number; TILES?: number },
    b: { step: GPUBuffer; tokens: GPUBuffer; partials: GPUBuffer; partialTopK: GPUBuffer; stats: GPUBuffer },
  ) {
    // Only the constants the merge uses, so the fused heads of every tile and format share one pipeline.
    const constants = { TOP_K: c.TOP_K, LM_WG, LM_GROUPS, TILES: c.TILES ?? 1 };
    return this.call(`${label}.merge`, { name: 'lm_head_stats', code: lmHeadStatsWgsl, entryPoint: 'merge', constants },
      [b.step, b.tokens, null, null, b.partials, b.partialTopK, b.stats], (s) => [1, s.statsRows, 1]);
  }

  /** probs = softmax(logits · invTemp) row-wise; `params` is a uniform {invTemp f32, rows u32}. */
  softmax(label: string, cols: number, b: { params: GPUBuffer; logits: GPUBuffer; probs: GPUBuffer }) {
    return this.call(label, { name: 'softmax', code: softmaxWgsl, constants: { COLS: cols } },
      [b.params, b.logits, b.probs], (s) => [s.nTokens, 1, 1]);
  }

  /**
   * Copies a KV row's prefix into other rows of the same cache buffer. `params` is the `Fork`
   * uniform (src_row, length, n_dst, pad, then up to MAX_FORK_ROWS destination rows as u32).
   */
  kvFork(label: string, c: { nKvHeads: number; seqLen: number; headDim: number }, b: { params: GPUBuffer; cache: GPUBuffer }) {
    const head4 = c.headDim / 4;
    return this.call<ForkShape>(label, {
      name: 'kv_cache', code: kvCacheWgsl, entryPoint: 'kv_fork',
      constants: { N_KV_HEADS: c.nKvHeads, SEQ_LEN: c.seqLen, HEAD4: head4 },
    }, [b.params, b.cache], (s) => [ceilDiv(s.positions * head4, 64), c.nKvHeads, s.destinations]);
  }

  /**
   * Gathers row 0's positions `keep` (a storage list of ascending old positions; `params` the
   * uniform vec4 (count, 0, 0, 0)) of one layer's key or value cache into `scratch` at positions
   * 0.., keys turned back by their shift (kv_cache.wgsl kv_compact).
   */
  kvCompact(
    label: string, c: { nKvHeads: number; seqLen: number; headDim: number; keys: boolean; ropeHalf: boolean },
    b: { params: GPUBuffer; keep: GPUBuffer; rope: GPUBuffer; cache: GPUBuffer; scratch: GPUBuffer },
  ) {
    return this.call<{ count: number }>(label, {
      name: 'kv_cache', code: kvCacheWgsl, entryPoint: 'kv_compact',
      constants: { N_KV_HEADS: c.nKvHeads, SEQ_LEN: c.seqLen, HEAD_DIM: c.headDim, ROTATE: c.keys ? 1 : 0, ROPE_HALF: c.ropeHalf ? 1 : 0 },
    }, [null, null, b.params, b.keep, b.rope, b.cache, b.scratch], (s) => [ceilDiv(s.count * (c.headDim / 2), 64), c.nKvHeads, 1]);
  }

  copy(label: string, b: { src: GPUBuffer; dst: GPUBuffer }, workgroups: number) {
    return this.call(label, { name: 'copy', code: copyWgsl, constants: { WG: 64 } }, [b.src, b.dst], () => [workgroups, 1, 1]);
  }

  /** Reads `src` only (sums into workgroups·64 vec4s of `dst`): the read-bandwidth ceiling. */
  readStream(label: string, b: { src: GPUBuffer; dst: GPUBuffer }, workgroups: number) {
    return this.call(label, { name: 'copy', code: copyWgsl, entryPoint: 'read_stream', constants: { WG: 64 } },
      [b.src, b.dst], () => [workgroups, 1, 1]);
  }

  private xentSpec(entryPoint: string, c: { dim: number; vocab: number }) {
    if (c.dim % 4 !== 0) throw new InvalidArgumentError(`xent: dim must be a multiple of 4, got ${c.dim}`);
    return {
      name: 'xent', code: xentCommonWgsl + xentWgsl, entryPoint,
      constants: { DIM: c.dim, V4: ceilDiv(c.vocab, 4), VOCAB: c.vocab, XW: XENT_WG, XGROUPS: XENT_GROUPS },
    };
  }

  private xentLinearSpec(entryPoint: string, c: { dim: number; vocab: number }) {
    const { constants } = this.xentSpec(entryPoint, c);
    return {
      name: 'xent_linear', code: xentCommonWgsl + xentLinearWgsl, entryPoint,
      constants: { DIM: constants.DIM, V4: constants.V4, VOCAB: constants.VOCAB, XW: XENT_WG },
    };
  }

  /**
   * SRGen's fused log-sum-exp cross-entropy, forward (xent.wgsl: forward, merge, loss): for
   * x_t = h_t + δ and z_t = W·x_t, writes `stats` (xentStatsBytes(T)): record 0 = (loss, CE,
   * entropy of softmax(z_{T−1}/T_s), its LSE), record 1 + t = (LSE_t, z_t[y_t], LSE_t − z_t[y_t], 0).
   * `params` is the 16-byte uniform of `xentParams`; `hidden` [T][dim], `delta` [dim], `wcls` the
   * transposed classifier of model/weights.ts, `targets` u32 [T−1] with y_t = x_{t+1} < vocab (a
   * buffer of at least 4 bytes when T = 1), `partials` xentPartialsBytes(dim, T) bytes of scratch.
   * The T×V logits are never stored. T (the shape's positions) must match params' T.
   */
  async xentForward(
    label: string,
    c: { dim: number; vocab: number },
    b: { params: GPUBuffer; hidden: GPUBuffer; delta: GPUBuffer; wcls: GPUBuffer; targets: GPUBuffer; partials: GPUBuffer; stats: GPUBuffer },
  ): Promise<KernelCall<XentShape>[]> {
    return Promise.all([
      this.call<XentShape>(`${label}.forward`, this.xentSpec('forward', c),
        [b.params, b.hidden, b.delta, b.wcls, b.targets, b.partials], () => [XENT_GROUPS, 1, 1]),
      this.call<XentShape>(`${label}.merge`, this.xentSpec('merge', c),
        [b.params, null, null, null, null, b.partials, b.stats], (s) => [xentRows(s) + 1, 1, 1]),
      this.call<XentShape>(`${label}.loss`, this.xentSpec('loss', c),
        [b.params, null, null, null, null, null, b.stats], () => [1, 1, 1]),
    ]);
  }

  /**
   * The gradient dloss/dδ = Wᵀ[(1−λ)/(T−1)·Σ_{t<T−1}(p_t − onehot(y_t)) + λ·g] into `grad` [dim]
   * (xent.wgsl: backward, reduce). Reads the LSEs the forward left in `stats` (run xentForward
   * with the same inputs first, in the same or an earlier pass); `partials` may be the forward's.
   */
  async xentBackward(
    label: string,
    c: { dim: number; vocab: number },
    b: {
      params: GPUBuffer; hidden: GPUBuffer; delta: GPUBuffer; wcls: GPUBuffer; targets: GPUBuffer;
      partials: GPUBuffer; stats: GPUBuffer; grad: GPUBuffer;
    },
  ): Promise<KernelCall<XentShape>[]> {
    return Promise.all([
      this.call<XentShape>(`${label}.backward`, this.xentSpec('backward', c),
        [b.params, b.hidden, b.delta, b.wcls, b.targets, b.partials, b.stats], () => [XENT_GROUPS, 1, 1]),
      this.call<XentShape>(`${label}.reduce`, this.xentSpec('reduce', c),
        [null, null, null, null, null, b.partials, null, b.grad], () => [c.dim / 4, 1, 1]),
    ]);
  }

  /**
   * SRGen's loss and gradient from kept values (xent_linear.wgsl): `kept` [T][⌈vocab/4⌉] vec4 holds
   * E_t = exp(max(z_t − m_t, −87)) and `rowMax` [T] f32 m_t = max z_t, for z_t = W·h_t (xentKeep
   * writes them). u = W·δ into `u` [⌈vocab/4⌉] vec4 (matmul's GEMV; `oneRowStep` a Step uniform with
   * nTokens 1), then w = exp(u − max u) into `shift` [⌈vocab/4⌉ + 1] vec4, the forward (one workgroup
   * per XENT_LINEAR_ROWS rows) and xent.wgsl's loss into `stats` (the same records); with `backward` also the
   * coefficients into `coef` [⌈vocab/4⌉] vec4 and dδ = Wᵀc into `grad` [dim]. Costs O(T·V + V·dim)
   * per call instead of O(T·V·dim), and the T×V passes are multiply-adds.
   */
  async xentLinear(
    label: string,
    c: { dim: number; vocab: number; backward: boolean },
    b: {
      params: GPUBuffer; kept: GPUBuffer; rowMax: GPUBuffer; u: GPUBuffer; shift: GPUBuffer; wcls: GPUBuffer; targets: GPUBuffer;
      stats: GPUBuffer; coef: GPUBuffer; grad: GPUBuffer; delta: GPUBuffer; oneRowStep: GPUBuffer;
    },
  ): Promise<KernelCall<XentShape>[]> {
    const v4 = ceilDiv(c.vocab, 4);
    const spec = (entryPoint: string) => this.xentLinearSpec(entryPoint, c);
    // u = W·δ: the decode GEMV (one row, `oneRowStep`); δ = 0 (a reflection's first call): u = 0 without reading W.
    const gemv = await this.matmul(`${label}.shift`, { k: c.dim, n: c.vocab, accumulate: false, rowsPerInvocation: 1, yN: 4 * v4 },
      { step: b.oneRowStep, x: b.delta, w: b.wcls, y: b.u });
    const ONE_ROW = { nTokens: 1, statsRows: 1 };
    const calls = [
      Promise.resolve<KernelCall<XentShape>>({ ...gemv, grid: (s) => (s.zeroDelta ? [0, 1, 1] : gemv.grid(ONE_ROW)) }),
      this.call<XentShape>(`${label}.shift_exp`, spec('shift_exp'), [null, null, b.u, null, null, null, null, null, null, b.shift],
        () => [1, 1, 1]),
      // XENT_LINEAR_ROWS rows per workgroup, then one for the last position at 1/T_s.
      this.call<XentShape>(`${label}.forward`, spec('forward'), [b.params, b.kept, b.u, null, b.targets, b.rowMax, b.stats, null, null, b.shift],
        (s) => [ceilDiv(xentRows(s), XENT_LINEAR_ROWS) + 1, 1, 1]),
      this.call<XentShape>(`${label}.loss`, this.xentSpec('loss', c),
        [b.params, null, null, null, null, null, b.stats], () => [1, 1, 1]),
    ];
    if (c.backward) {
      calls.push(
        this.call<XentShape>(`${label}.coefficients`, spec('coefficients'),
          [b.params, b.kept, b.u, null, null, b.rowMax, b.stats, b.coef, null, b.shift], () => [ceilDiv(ceilDiv(v4, 2), 64), 1, 1]),
        this.call<XentShape>(`${label}.onehot`, spec('onehot'), [b.params, null, null, null, b.targets, null, null, b.coef], () => [1, 1, 1]),
        this.call<XentShape>(`${label}.grad`, spec('grad_reduce'), [null, null, null, b.wcls, null, null, null, b.coef, b.grad],
          () => [c.dim / 4, 1, 1]),
      );
    }
    return Promise.all(calls);
  }

  /**
   * xentLinear's kept values of new rows (xent_linear.wgsl keep): for the `statsRows` rows z of
   * `fillOut` [rows][⌈vocab/4⌉] vec4 (the fill GEMM's), m = max z into `rowMax` and
   * exp(max(z − m, −87)) into `kept`, at rows `statsRowStart`.. of `step` (a Step uniform).
   */
  xentKeep(label: string, c: { dim: number; vocab: number }, b: { step: GPUBuffer; fillOut: GPUBuffer; kept: GPUBuffer; rowMax: GPUBuffer }) {
    return this.call(label, this.xentLinearSpec('keep', c), [b.step, b.kept, null, b.fillOut, null, b.rowMax], (s) => [s.statsRows, 1, 1]);
  }

  /**
   * One AdamW step on `theta` [dim] f32 with gradient `grad` (adamw.wgsl): `params` the uniform of
   * `adamwUniform` (runtime/adamw.ts), `moments` [dim] (m, v) and `count` (one u32, the steps taken) zeroed before the
   * first step, `corrections` the (1−β1^t, 1−β2^t) of `biasCorrections` for t = 1.. (as many as steps).
   */
  adamw(label: string, dim: number, b: { params: GPUBuffer; grad: GPUBuffer; theta: GPUBuffer; moments: GPUBuffer; count: GPUBuffer; corrections: GPUBuffer }) {
    return this.call<null>(label, { name: 'adamw', code: adamwWgsl, entryPoint: 'step', constants: { DIM: dim } },
      [b.params, b.grad, b.theta, b.moments, b.count, b.corrections], () => [1, 1, 1]);
  }

  /** `out` [⌈vocab/4⌉] vec4 = z_{T−1} + u after xentLinear (the logits of h_{T−1} + δ; xent_linear.wgsl last_row). */
  xentLastRow(label: string, c: { dim: number; vocab: number }, b: { params: GPUBuffer; kept: GPUBuffer; rowMax: GPUBuffer; u: GPUBuffer; out: GPUBuffer }) {
    return this.call(label, this.xentLinearSpec('last_row', c),
      [b.params, b.kept, b.u, null, null, b.rowMax, null, null, null, null, b.out], () => [ceilDiv(ceilDiv(c.vocab, 4), 64), 1, 1]);
  }
}

export type { StepShape };

/**
 * A vocabulary range of the classifier in its own buffer: float32 transposed, [dim][vocab/4] vec4,
 * or, with `matrix` (whose buffer is `buffer`), a [vocab][dim] WeightMatrix in any format.
 */
export interface ClassifierTile {
  buffer: GPUBuffer;
  firstId: number;
  vocab: number;
  matrix?: WeightMatrix;
}

/** The attention dimensions the rope/KV and attention kernels share. */
export interface AttentionShape {
  qDim: number;
  kvDim: number;
  headDim: number;
  nHeads: number;
  nKvHeads: number;
  /** Positions per KV row (the session's context). */
  seqLen: number;
}

const attentionConstants = (c: AttentionShape) => ({
  Q_DIM: c.qDim, KV_DIM: c.kvDim, HEAD_DIM: c.headDim, N_HEADS: c.nHeads, N_KV_HEADS: c.nKvHeads, SEQ_LEN: c.seqLen,
});

/** Shape of one xent launch: T, the positions (hidden rows) of the context, ≥ 1. */
export interface XentShape {
  positions: number;
  /** δ is 0 (xentLinear skips u = W·δ). */
  zeroDelta?: boolean;
}

const XENT_WG = 64;
/** Rows per workgroup of xent_linear.wgsl's forward: its const RB (the kernel unrolls four). */
const XENT_LINEAR_ROWS = 4;
const XENT_GROUPS = 16;
/** Invocations of xent's forward and backward, each owning vocabulary columns (partials per row). */
export const XENT_INVOCATIONS = XENT_WG * XENT_GROUPS;
/** Bytes of xent's `Params` uniform. */
export const XENT_PARAMS_BYTES = 16;
/** Bytes of xent's stats records for T positions: the summary, then one per position. */
export const xentStatsBytes = (positions: number) => 16 * (positions + 1);
/** Bytes of xent's scratch partials: (T+1) rows of forward partials, or the backward's dδ partials. */
export const xentPartialsBytes = (dim: number, positions: number) =>
  16 * XENT_INVOCATIONS * Math.max(positions + 1, dim / 4);

/** Bytes of adamw.wgsl's `Adam` uniform (runtime/adamw.ts adamwUniform). */
export const ADAMW_PARAMS_BYTES = 32;

/** The `Params` uniform of xent.wgsl: T, λ, and 1/T_s of the entropy term. */
export function xentParams(positions: number, lambda: number, temperature: number): ArrayBuffer {
  const bytes = new ArrayBuffer(XENT_PARAMS_BYTES);
  const v = new DataView(bytes);
  v.setUint32(0, positions, true);
  v.setFloat32(4, lambda, true);
  v.setFloat32(8, 1 / temperature, true);
  return bytes;
}

function xentRows(s: XentShape): number {
  if (!Number.isInteger(s.positions) || s.positions < 1) {
    throw new InvalidArgumentError(`xent needs at least one position, got ${s.positions}`);
  }
  return s.positions;
}
