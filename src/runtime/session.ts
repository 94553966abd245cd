// A Session runs the forward graph of one model over a KV cache: it owns the activations, writes
// a step's few bytes of input (token slots + a 32-byte uniform), records the whole step into one
// command encoder, and maps back only the StepStats records.
import { BufferPool, STORAGE, UNIFORM } from '../gpu/buffers.ts';
import type { GpuContext } from '../gpu/device.ts';
import {
  ADAMW_PARAMS_BYTES, Kernels, LM_PARTIALS_PER_ROW, LM_PARTIAL_BYTES, MAX_TOP_K, XENT_PARAMS_BYTES,
  type XentShape, xentParams, xentPartialsBytes, xentStatsBytes,
} from '../gpu/kernels.ts';
import { type KernelCall, encodeCalls } from '../gpu/pipelines.ts';
import type { KernelProfiler } from '../gpu/profile.ts';
import { ReadbackRing } from '../gpu/readback.ts';
import { NO_TOKEN, STEP_UNIFORM_BYTES, TOKEN_SLOT_BYTES, encodeStep } from '../gpu/step.ts';
import { InvalidArgumentError } from '../errors.ts';
import { kvDim, qDim } from '../model/config.ts';
import { type ForwardBuffers, type ForwardGraph, type HeadKind, buildForward, buildHeads } from '../model/forward.ts';
import type { GpuWeights } from '../model/weights.ts';
import { type AdamWOptions, adamwUniform, biasCorrections } from './adamw.ts';
import { KvCache } from './kv-cache.ts';
import { type StepStats, attentionRecordWords, parseAttention, parseStats, statsRecordBytes } from './stats.ts';

export interface TokenInput {
  id: number;
  pos: number;
  row: number;
}

export interface SamplingParams {
  /** 0 = no GPU sampling (`sampled` is the argmax). */
  temperature: number;
  seed: number;
  /** Extra RNG stream salt (e.g. a retry index); 0 by default. */
  counter?: number;
  /** Temperature of the reported statistics; 1 = the raw logits. */
  statsTemperature?: number;
  /**
   * Candidates the step must return per row; above the session's topK the step runs a head with
   * MAX_TOP_K (64) candidates instead (slower: each invocation keeps a longer private list).
   */
  candidates?: number;
}

export interface SessionOptions {
  /** KV rows (independent sequences) to start with; ensureRows() adds more. Default 1. */
  rows?: number;
  /** Top candidates returned per stats row, 1..64. */
  topK?: number;
  /**
   * Token rows the activations hold (the prefill chunk): a longer step runs in chunks of this
   * many. Default min(context, PREFILL_CHUNK).
   */
  maxStepTokens?: number;
  /** Most stats rows one launch of the LM head may produce. */
  maxStatsRows?: number;
  /** How a one-row step's LM head runs (ForwardGraph.head); default 'split'. */
  head?: HeadKind;
}

const GREEDY: SamplingParams = { temperature: 0, seed: 0 };

/**
 * Default prefill chunk: the activations are sized for this many token rows, not the context. A
 * Llama 3.2 1B session at context 4096 would otherwise hold ~590 MB of activations, its FFN buffer
 * alone 268 MB, over the 128 MiB storage binding many devices have.
 */
export const PREFILL_CHUNK = 256;

/** SRGen's loss over row 0's kept hidden states, and its gradient (Session.xent). */
export interface XentResult {
  /** (1−λ)·CE + λ·Ent */
  loss: number;
  ce: number;
  /** Entropy of softmax(W(h_last + δ)/T_s), nats. */
  entropy: number;
  /** dloss/dδ [dim]; null when only the forward ran. */
  grad: Float32Array | null;
  /** The path that computed it ('linear' falls back to 'fused' past keptLogitsCapacity). */
  mode: XentMode;
}

/** The fused xent kernels and their buffers, made on the first reflection. */
interface XentState {
  params: GPUBuffer;
  delta: GPUBuffer;
  targets: GPUBuffer;
  partials: GPUBuffer;
  stats: GPUBuffer;
  grad: GPUBuffer;
  forward: KernelCall<XentShape>[];
  backward: KernelCall<XentShape>[];
  /** The transposed dense classifier the xent kernels read. */
  wcls: GPUBuffer;
}

/** Session.reflect: SRGen's optimisation of δ, every step on the GPU. */
export interface ReflectResult {
  /** The loss at δ = 0, then after each AdamW step. */
  losses: number[];
  /** The final δ [dim]. */
  delta: Float32Array;
  /** h_{T−1} + δ [dim] (float32 adds, as the xent kernels form them): the last position's LM-head input. */
  input: Float32Array;
  /** The path that computed the losses ('linear' falls back to 'fused' past keptLogitsCapacity). */
  mode: XentMode;
}

/** AdamW steps one Session.reflect may take (the bias corrections' buffer). */
export const MAX_REFLECT_STEPS = 1024;

/** adamw.wgsl's buffers and launch for Session.reflect, made on the first reflection. */
interface AdamState {
  params: GPUBuffer;
  moments: GPUBuffer;
  count: GPUBuffer;
  corrections: GPUBuffer;
  /** The 16-byte loss record of xent's stats after each evaluation, [MAX_REFLECT_STEPS + 1]. */
  losses: GPUBuffer;
  step: KernelCall<null>;
}

/** How SRGen's loss is computed: from kept logits (xent_linear.wgsl) or recomputed (xent.wgsl). */
export type XentMode = 'linear' | 'fused';

/**
 * Bytes the kept logits of row 0 may take at most (z_t = W·h_t, [positions][vocab] float32): 33 MB
 * for stories15M's 256 positions. A reflection over more positions than fit uses the fused
 * recompute (xent.wgsl).
 */
export const KEPT_LOGITS_MAX_BYTES = 128 * 1024 * 1024;
/** Positions per GEMM launch filling the kept logits. */
const FILL_ROWS = 64;

/** A graph body whose chosen layer's attention also writes attention records (attention.wgsl main_stats, agree). */
interface AttentionStatsState {
  layer: number;
  headStats: GPUBuffer;
  scores: GPUBuffer;
  records: GPUBuffer;
  /** The bodies built for `graph` (rebuilt when ensureRows rebinds the graph). */
  graph: ForwardGraph | null;
  decode: KernelCall[];
  prefill: KernelCall[];
}

/**
 * The kept-logits path of SRGen's loss: each kept position's logits as E = exp(z − max z) [cap][V4]
 * vec4 and max z [cap] (xent_linear.wgsl), and the linear kernels.
 */
interface LinearXentState {
  /** Leading positions the history can hold. */
  capacity: number;
  kept: GPUBuffer;
  rowMax: GPUBuffer;
  u: GPUBuffer;
  /** exp(u − max u), then max u. */
  shift: GPUBuffer;
  coef: GPUBuffer;
  fillStep: GPUBuffer;
  fillOut: GPUBuffer;
  /** A Step uniform with nTokens 1 (the GEMV u = W·δ). */
  oneRowStep: GPUBuffer;
  /** The fill GEMM's rows z into kept and rowMax. */
  fill: KernelCall[];
  forward: KernelCall<XentShape>[];
  backward: KernelCall<XentShape>[];
  /** z_{T−1} + u into the session's logits row 0 (headOverKeptLogits). */
  lastRow: KernelCall;
}

/** One evaluation of SRGen's loss (with `backward` its gradient): the linear kernels or the fused ones. */
function xentCalls(x: XentState, linear: LinearXentState | null, backward: boolean): KernelCall<XentShape>[] {
  if (linear) return backward ? linear.backward : linear.forward;
  return backward ? [...x.forward, ...x.backward] : x.forward;
}

/** The two LM heads of a graph (the session's, or the wide one with MAX_TOP_K candidates). */
type HeadCalls = Pick<ForwardGraph, 'head' | 'batchedHead'>;

export class Session {
  readonly topK: number;
  readonly head: HeadKind;
  readonly maxStepTokens: number;
  readonly maxStatsRows: number;
  private kvCache: KvCache;
  private readonly stepUniform = new ArrayBuffer(STEP_UNIFORM_BYTES);
  private tokenSlots: Uint32Array;
  private readonly readback: ReadbackRing;
  /** Heads with MAX_TOP_K candidates, compiled on first use. */
  private wideHeads: ReturnType<typeof buildHeads> | null = null;
  /**
   * Row 0's final-normed hidden state by position [context][dim], for decoders that ask for it
   * (SRGen's reflection): null until keepHiddenStates(); then every step copies its row-0 rows
   * there by position.
   */
  private hiddenHistory: GPUBuffer | null = null;
  /** Leading positions of row 0 whose hidden state is in hiddenHistory (a commit of another row invalidates it). */
  private hiddenKept = 0;
  private xentState: Promise<XentState> | null = null;
  private linearState: Promise<LinearXentState> | null = null;
  private adamState: Promise<AdamState> | null = null;
  /** Attention statistics of one layer for the stats rows (setAttentionStats); null: off. */
  private attention: AttentionStatsState | null = null;
  /** Leading positions of row 0 whose logits W·h_t are in the kept-logits history. */
  private logitsKept = 0;
  /** Token rows of the last step's last launch with the graph body (their hidden rows are current). */
  private lastStepTokens = 0;
  /**
   * The hidden row whose logits row 0 of the logits buffer holds (the split head and the batched
   * head write their first stats row's there; the fused head writes none): statsUnder() then runs
   * the statistics kernels alone. Null when unknown.
   */
  private logitsRow0: number | null = null;
  /** While set, steps time every launch in its own pass (gpu/profile.ts; `npm run bench:profile`). */
  profiler: KernelProfiler | null = null;

  private constructor(
    private readonly ctx: GpuContext,
    private readonly kernels: Kernels,
    private readonly pool: BufferPool,
    readonly weights: GpuWeights,
    private readonly buffers: ForwardBuffers,
    private graph: ForwardGraph,
    kv: KvCache,
    o: Required<SessionOptions>,
  ) {
    this.kvCache = kv;
    this.topK = o.topK;
    this.head = o.head;
    this.maxStepTokens = o.maxStepTokens;
    this.maxStatsRows = o.maxStatsRows;
    this.tokenSlots = new Uint32Array(4 * o.maxStepTokens);
    this.readback = new ReadbackRing(ctx, statsRecordBytes(o.topK));
  }

  static async create(ctx: GpuContext, kernels: Kernels, pool: BufferPool, weights: GpuWeights, options: SessionOptions = {}) {
    const c = weights.config;
    const o: Required<SessionOptions> = {
      rows: options.rows ?? 1,
      topK: options.topK ?? 8,
      maxStepTokens: options.maxStepTokens ?? Math.min(weights.contextLength, PREFILL_CHUNK),
      maxStatsRows: options.maxStatsRows ?? 16,
      head: options.head ?? 'split',
    };
    if (!Number.isInteger(o.maxStepTokens) || o.maxStepTokens < 1) throw new InvalidArgumentError(`maxStepTokens must be a positive integer, got ${o.maxStepTokens}`);
    if (o.head !== 'split' && o.head !== 'fused') throw new InvalidArgumentError(`head must be 'split' or 'fused', got ${String(o.head)}`);
    if (!Number.isInteger(o.topK) || o.topK < 1 || o.topK > MAX_TOP_K) {
      throw new InvalidArgumentError(`topK must be an integer in [1, ${MAX_TOP_K}], got ${o.topK}`);
    }
    const acquired: GPUBuffer[] = [];
    const get = async (label: string, floatsPerRow: number, rows = o.maxStepTokens, usage = STORAGE) => {
      const b = await pool.acquire(label, floatsPerRow * 4 * rows, usage);
      acquired.push(b);
      return b;
    };
    const kv = await KvCache.create(pool, kernels, kvShape(weights), o.rows);
    try {
      const buffers: ForwardBuffers = {
        step: await get('step', STEP_UNIFORM_BYTES / 4, 1, UNIFORM),
        tokens: await get('tokens', TOKEN_SLOT_BYTES / 4),
        x: await get('x', c.dim),
        xb: await get('xb', c.dim),
        qkv: await get('qkv', qDim(c) + 2 * kvDim(c)),
        att: await get('att', qDim(c)),
        hb: await get('hb', 2 * c.hiddenDim),
        hb2: await get('hb2', c.hiddenDim),
        hidden: await get('hidden', c.dim),
        kCache: kv.keys,
        vCache: kv.values,
        partials: await get('lm_partials', (LM_PARTIALS_PER_ROW * LM_PARTIAL_BYTES) / 4, o.maxStatsRows),
        // Sized for the wide head (MAX_TOP_K), which decoders may ask for (SamplingParams.candidates).
        partialTopK: await get('lm_partial_topk', LM_PARTIALS_PER_ROW * 2 * MAX_TOP_K, o.maxStatsRows),
        stats: await get('stats', statsRecordBytes(MAX_TOP_K) / 4, o.maxStatsRows),
        logits: await get('logits', Math.ceil(c.vocabSize / 4) * 4, o.maxStatsRows),
      };
      const graph = await buildForward(kernels, weights, buffers, o.topK, o.head);
      return new Session(ctx, kernels, pool, weights, buffers, graph, kv, o);
    } catch (error) {
      acquired.forEach((b) => pool.release(b));
      kv.release(pool);
      throw error;
    }
  }

  get config() {
    return this.weights.config;
  }

  get kv(): KvCache {
    return this.kvCache;
  }

  /** Positions per KV row. */
  get context(): number {
    return this.weights.contextLength;
  }

  /**
   * Grows the KV cache to at least `rows` rows (existing rows keep their contents) and rebinds
   * the graph to it: a decoder that runs several sequences (CNTP's trials) asks before it starts.
   */
  async ensureRows(rows: number): Promise<void> {
    this.ctx.assertAlive();
    if (rows <= this.kv.rows) return;
    const encoder = this.ctx.device.createCommandEncoder({ label: 'kv grow' });
    const grown = await this.kv.grow(this.pool, this.kernels, encoder, rows);
    try {
      const buffers = { ...this.buffers, kCache: grown.keys, vCache: grown.values };
      this.graph = await buildForward(this.kernels, this.weights, buffers, this.topK, this.head);
    } catch (error) {
      grown.discard(this.pool);
      throw error;
    }
    this.ctx.device.queue.submit([encoder.finish()]);
    this.buffers.kCache = grown.keys;
    this.buffers.vCache = grown.values;
    this.wideHeads = null;
    this.kv.discard(this.pool);
    this.kvCache = grown;
    if (this.attention) await this.setAttentionStats(this.attention.layer);
  }

  /**
   * Keeps row 0's final hidden state of every position from the next step on (SRGen's reflection
   * optimises over them): allocates the [context][dim] history on first call.
   */
  async keepHiddenStates(): Promise<void> {
    this.hiddenHistory ??= await this.pool.acquire('hidden_history', this.context * this.config.dim * 4);
  }

  /**
   * Runs the graph over `tokens` (each at its own row and position, which must be the row's next
   * position), then the LM head over the last `statsRows` of them, and returns their StepStats.
   */
  async step(tokens: readonly TokenInput[], statsRows = 1, sampling: SamplingParams = GREEDY): Promise<StepStats[]> {
    this.ctx.assertAlive();
    if (tokens.length === 0) throw new InvalidArgumentError('a step carries at least one token');
    this.checkTokens(tokens);
    const want = Math.min(statsRows, tokens.length);
    const out: StepStats[] = [];
    // More tokens than the activations hold run in chunks of maxStepTokens (hiddenRowOf says
    // where each token's hidden state is left); a chunk before the stats rows runs the body
    // alone. Stats rows go maxStatsRows per LM-head launch.
    for (let c = 0; c < tokens.length; c += this.maxStepTokens) {
      const chunk = tokens.slice(c, c + this.maxStepTokens);
      const rows = Math.max(0, Math.min(chunk.length, want - (tokens.length - c - chunk.length)));
      // The token after the chunk, when it continues the chunk's last row (its nextLogit).
      const end = chunk[chunk.length - 1];
      const after = tokens[c + chunk.length];
      this.writeTokens(chunk, after && after.row === end.row && after.pos === end.pos + 1 ? after.id : NO_TOKEN);
      const start = chunk.length - rows;
      let s = start;
      do {
        const count = Math.min(this.maxStatsRows, chunk.length - s);
        out.push(...(await this.run(s === start ? this.bodyFor(chunk.length) : [], chunk.length, s, count, sampling, s === start ? chunk : [])));
        s += this.maxStatsRows;
      } while (s < chunk.length);
      for (const t of chunk) this.kv.written(t.row, t.pos, t.id);
    }
    return out;
  }

  /**
   * Which row of the activations (0 .. maxStepTokens − 1) the last step of `n` tokens left token
   * `i`'s hidden state in: its index in the step's last chunk, or undefined for an earlier chunk.
   */
  hiddenRowOf(i: number, n: number): number | undefined {
    const last = Math.floor((n - 1) / this.maxStepTokens) * this.maxStepTokens;
    return i >= last ? i - last : undefined;
  }

  /**
   * Teacher forcing: runs `tokens` of one row (positions from the row's length on) and returns
   * the stats of every position, in chunks of maxStatsRows launches of the LM head. Each record's
   * nextLogit is the following token's logit; the last one's is `next`'s, when given.
   */
  async score(row: number, ids: readonly number[], sampling: SamplingParams = GREEDY, next: number = NO_TOKEN): Promise<StepStats[]> {
    const tokens = ids.map((id, i) => ({ id, pos: this.kv.lengths[row] + i, row }));
    this.checkTokens(tokens);
    const out: StepStats[] = [];
    for (let i = 0; i < tokens.length; i += this.maxStepTokens) {
      const chunk = tokens.slice(i, i + this.maxStepTokens);
      this.writeTokens(chunk, tokens[i + this.maxStepTokens]?.id ?? next);
      const body = this.bodyFor(chunk.length);
      for (let s = 0; s < chunk.length; s += this.maxStatsRows) {
        const count = Math.min(this.maxStatsRows, chunk.length - s);
        out.push(...(await this.run(s === 0 ? body : [], chunk.length, s, count, sampling, s === 0 ? chunk : [])));
      }
      for (const t of chunk) this.kv.written(t.row, t.pos, t.id);
    }
    return out;
  }

  /** The graph body for a step of `n` token rows: GEMV matmuls for one, GEMM for more. */
  private bodyFor(n: number): KernelCall[] {
    const a = this.attention;
    if (a) return n === 1 ? a.decode : a.prefill;
    return n === 1 ? this.graph.decode : this.graph.prefill;
  }

  /** The layer whose attention statistics steps report (StepStats.attention), or null. */
  get attentionStatsLayer(): number | null {
    return this.attention?.layer ?? null;
  }

  /**
   * From the next step on, each stats row's StepStats carries `attention`: the attention statistics
   * of `layer` (default the last; null turns them off) for that row's token (attention.wgsl
   * main_stats, agree): 16 + 4·n_heads bytes more per row read back, no attention matrix. Rows
   * whose graph body did not run in the launch (the LM-head launches after a step's or score()'s
   * first maxStatsRows rows, headOver) have none.
   */
  async setAttentionStats(layer: number | null = this.config.nLayers - 1): Promise<void> {
    this.ctx.assertAlive();
    if (layer === null) {
      this.releaseAttention();
      return;
    }
    const c = this.config;
    if (!Number.isInteger(layer) || layer < 0 || layer >= c.nLayers) {
      throw new InvalidArgumentError(`attention statistics: layer must be an integer in [0, ${c.nLayers - 1}], got ${layer}`);
    }
    if (this.attention?.layer === layer && this.attention.graph === this.graph) return;
    const a = this.attention ?? {
      layer,
      headStats: await this.pool.acquire('attn_head_stats', this.maxStatsRows * c.nHeads * 16),
      scores: await this.pool.acquire('attn_scores', this.maxStatsRows * c.nHeads * this.context * 4),
      records: await this.pool.acquire('attn_records', this.maxStatsRows * attentionRecordWords(c.nHeads) * 4),
      graph: null, decode: [], prefill: [],
    };
    const shape = {
      qDim: qDim(c), kvDim: kvDim(c), headDim: c.headDim, nHeads: c.nHeads, nKvHeads: c.nKvHeads, seqLen: this.context,
    };
    const calls = await this.kernels.attentionStats(`l${layer}.attention`, shape, {
      step: this.buffers.step, tokens: this.buffers.tokens, qkv: this.buffers.qkv, kCache: this.buffers.kCache[layer],
      vCache: this.buffers.vCache[layer], out: this.buffers.att, headStats: a.headStats, scores: a.scores, records: a.records,
    });
    // The graph's body with the chosen layer's attention launch replaced (forward.ts labels it l<layer>.attention).
    const splice = (body: KernelCall[]) => {
      const i = body.findIndex((k) => k.label === `l${layer}.attention`);
      if (i < 0) throw new InvalidArgumentError(`no attention launch for layer ${layer} in the graph`);
      return [...body.slice(0, i), ...calls, ...body.slice(i + 1)];
    };
    Object.assign(a, { layer, graph: this.graph, decode: splice(this.graph.decode), prefill: splice(this.graph.prefill) });
    this.attention = a;
  }

  private releaseAttention(): void {
    const a = this.attention;
    if (!a) return;
    [a.headStats, a.scores, a.records].forEach((b) => this.pool.release(b));
    this.attention = null;
  }

  private checkTokens(tokens: readonly TokenInput[]): void {
    const vocab = this.config.vocabSize;
    const next = [...this.kv.lengths];
    for (const t of tokens) {
      if (!Number.isInteger(t.id) || t.id < 0 || t.id >= vocab) throw new InvalidArgumentError(`token id ${t.id} is outside the vocabulary of ${vocab}`);
      if (!Number.isInteger(t.row) || t.row < 0 || t.row >= this.kv.rows) throw new InvalidArgumentError(`KV row ${t.row} does not exist (rows: ${this.kv.rows})`);
      if (t.pos !== next[t.row]) throw new InvalidArgumentError(`token at row ${t.row} has position ${t.pos}, expected ${next[t.row]}`);
      this.kv.checkRoom(t.row, t.pos + 1 - this.kv.lengths[t.row]);
      next[t.row]++;
    }
  }

  /** Writes the token slots; `last` is the id that follows the last token, if known. */
  private writeTokens(tokens: readonly TokenInput[], last = NO_TOKEN): void {
    tokens.forEach((t, i) => {
      const n = tokens[i + 1];
      const next = !n ? last : n.row === t.row && n.pos === t.pos + 1 ? n.id : NO_TOKEN;
      this.tokenSlots.set([t.id, t.pos, t.row, next], 4 * i);
    });
    this.ctx.device.queue.writeBuffer(this.buffers.tokens, 0, this.tokenSlots.buffer, 0, tokens.length * TOKEN_SLOT_BYTES);
  }

  private async run(
    body: KernelCall[], nTokens: number, statsStart: number, statsRows: number, sampling: SamplingParams,
    keep: readonly TokenInput[] = [], headFor?: (heads: HeadCalls) => KernelCall[],
  ): Promise<StepStats[]> {
    encodeStep(this.stepUniform, {
      nTokens, statsRowStart: statsStart, statsRows, seed: sampling.seed, counter: sampling.counter ?? 0,
      statsTemperature: sampling.statsTemperature ?? 1, sampleTemperature: sampling.temperature,
    });
    this.ctx.device.queue.writeBuffer(this.buffers.step, 0, this.stepUniform);

    const wide = (sampling.candidates ?? 0) > this.topK;
    const topK = wide ? MAX_TOP_K : this.topK;
    const heads = wide ? await this.wide() : this.graph;
    const encoder = this.ctx.device.createCommandEncoder({ label: 'step' });
    const shape = { nTokens, statsRows };
    // No stats rows (a prompt chunk before them): the body alone, nothing read back.
    const head = statsRows === 0 ? [] : headFor ? headFor(heads) : statsRows === 1 ? heads.head : heads.batchedHead;
    if (body.length > 0) this.lastStepTokens = nTokens;
    // A head of our own (headFor) leaves row 0 with W·x of its first stats row, as the split head does.
    const writesLogits = statsRows > 0 && (headFor !== undefined || head === heads.batchedHead || this.head === 'split');
    if (writesLogits) this.logitsRow0 = statsStart;
    else if (body.length > 0 || statsRows > 0) this.logitsRow0 = null;
    if (this.profiler) {
      this.profiler.encode(encoder, [...body, ...head], shape);
    } else {
      const pass = encoder.beginComputePass({ label: 'forward' });
      encodeCalls(pass, body, shape);
      encodeCalls(pass, head, shape);
      pass.end();
    }
    this.keepHidden(encoder, keep);
    if (statsRows === 0) {
      this.ctx.device.queue.submit([encoder.finish()]);
      return [];
    }
    const bytes = statsRows * statsRecordBytes(topK);
    // The pacer's kind: launches of one shape take about as long as each other (a head alone, as
    // score()'s later stats rows or headOver, is far shorter than a step with the graph body; the
    // attention statistics lengthen a step).
    const withAttention = body.length > 0 && this.attention ? ' attention' : '';
    const kind = `${body.length > 0 ? `step ${nTokens}` : 'head'}x${statsRows} top${topK}${headFor ? ' own head' : ''}${withAttention}`;
    const pending = await this.readback.enqueue(encoder, this.buffers.stats, 0, bytes, kind);
    const a = body.length > 0 ? this.attention : null;
    const nHeads = this.config.nHeads;
    const attention = a ? await this.readback.enqueue(encoder, a.records, 0, statsRows * attentionRecordWords(nHeads) * 4, 'attention') : null;
    this.ctx.device.queue.submit([encoder.finish()]);
    const stats = parseStats(await pending.read(), statsRows, topK);
    if (a && attention) parseAttention(await attention.read(), statsRows, nHeads, a.layer).forEach((x, i) => (stats[i].attention = x));
    return stats;
  }

  /**
   * Copies the final-normed hidden rows of row 0's tokens into `hiddenHistory` at their positions
   * (GPU copies in the step's encoder, one per run of consecutive positions; nothing is read back).
   */
  private keepHidden(encoder: GPUCommandEncoder, tokens: readonly TokenInput[]): void {
    const history = this.hiddenHistory;
    if (!history) return;
    const rowBytes = this.config.dim * 4;
    for (let i = 0; i < tokens.length; i++) {
      if (tokens[i].row !== 0) continue;
      let j = i;
      while (j + 1 < tokens.length && tokens[j + 1].row === 0 && tokens[j + 1].pos === tokens[j].pos + 1) j++;
      const first = tokens[i].pos;
      encoder.copyBufferToBuffer(this.buffers.hidden, i * rowBytes, history, first * rowBytes, (j - i + 1) * rowBytes);
      // Kept logits from `first` on were of other hidden states.
      this.logitsKept = Math.min(this.logitsKept, first);
      // Positions before `first` are kept only if nothing is missing in between.
      if (first <= this.hiddenKept) this.hiddenKept = tokens[j].pos + 1;
      i = j;
    }
  }

  /** Leading positions of row 0 whose final hidden state is kept on the GPU (for SRGen). */
  get keptHiddenPositions(): number {
    return Math.min(this.hiddenKept, this.kv.lengths[0]);
  }

  private async xentKernels(): Promise<XentState> {
    if (!this.hiddenHistory) throw new InvalidArgumentError('xent needs the hidden states: call keepHiddenStates() before the prompt');
    if (this.weights.classifier.length > 1) {
      throw new InvalidArgumentError('SRGen reflection needs the classifier in one storage binding (it is split into tiles on this device)');
    }
    const hidden = this.hiddenHistory;
    this.xentState ??= (async () => {
      const c = this.config;
      const context = this.context;
      const get = (label: string, bytes: number, usage = STORAGE) => this.pool.acquire(label, bytes, usage);
      const b = {
        params: await get('xent_params', XENT_PARAMS_BYTES, UNIFORM),
        delta: await get('xent_delta', c.dim * 4),
        targets: await get('xent_targets', context * 4),
        partials: await get('xent_partials', xentPartialsBytes(c.dim, context)),
        stats: await get('xent_stats', xentStatsBytes(context)),
        grad: await get('xent_grad', c.dim * 4),
      };
      const shape = { dim: c.dim, vocab: c.vocabSize };
      const io = { ...b, hidden, wcls: await this.weights.denseClassifier(this.kernels) };
      const [forward, backward] = await Promise.all([
        this.kernels.xentForward('xent', shape, io),
        this.kernels.xentBackward('xent', shape, io),
      ]);
      return { ...b, forward, backward, wcls: io.wcls };
    })();
    return this.xentState;
  }

  /** Positions of row 0 the kept-logits path (XentMode 'linear') can take on this device. */
  get keptLogitsCapacity(): number {
    const limits = this.ctx.device.limits;
    const rowBytes = Math.ceil(this.config.vocabSize / 4) * 16;
    const bytes = Math.min(KEPT_LOGITS_MAX_BYTES, limits.maxStorageBufferBindingSize, limits.maxBufferSize);
    return Math.min(this.context, Math.floor(bytes / rowBytes));
  }

  private linearKernels(): Promise<LinearXentState> {
    this.linearState ??= (async () => {
      const x = await this.xentKernels();
      const c = this.config;
      const v4 = Math.ceil(c.vocabSize / 4);
      const capacity = this.keptLogitsCapacity;
      if (capacity < 1) throw new InvalidArgumentError('the kept logits of one position exceed a storage binding');
      const get = (label: string, bytes: number, usage = STORAGE) => this.pool.acquire(label, bytes, usage);
      const b = {
        kept: await get('xent_kept_logits', capacity * v4 * 16),
        rowMax: await get('xent_kept_max', capacity * 4),
        u: await get('xent_u', v4 * 16),
        shift: await get('xent_shift', (v4 + 1) * 16),
        coef: await get('xent_coef', v4 * 16),
        fillStep: await get('xent_fill_step', STEP_UNIFORM_BYTES, UNIFORM),
        fillOut: await get('xent_fill_out', FILL_ROWS * v4 * 16),
        oneRowStep: await get('xent_one_row_step', STEP_UNIFORM_BYTES, UNIFORM),
      };
      const step = new ArrayBuffer(STEP_UNIFORM_BYTES);
      encodeStep(step, { nTokens: 1, statsRowStart: 0, statsRows: 1, seed: 0, counter: 0, statsTemperature: 1, sampleTemperature: 0 });
      this.ctx.device.queue.writeBuffer(b.oneRowStep, 0, step);
      const io = { ...x, ...b, wcls: x.wcls };
      const shape = { dim: c.dim, vocab: c.vocabSize };
      const [gemm, keep, forward, backward, lastRow] = await Promise.all([
        // Logits of the kept hidden rows stats_row_start.. (the GEMM of the LM head's batched path).
        this.kernels.matmul('xent.fill', {
          k: c.dim, n: c.vocabSize, accumulate: false, rowsPerInvocation: 4, statsRowsOnly: true, yN: 4 * v4,
        }, { step: b.fillStep, x: this.hiddenHistory!, w: x.wcls, y: b.fillOut }),
        this.kernels.xentKeep('xent_linear.keep', shape, { step: b.fillStep, fillOut: b.fillOut, kept: b.kept, rowMax: b.rowMax }),
        this.kernels.xentLinear('xent_linear', { ...shape, backward: false }, io),
        this.kernels.xentLinear('xent_linear', { ...shape, backward: true }, io),
        this.kernels.xentLastRow('xent_linear.last_row', shape, { params: x.params, kept: b.kept, rowMax: b.rowMax, u: b.u, out: this.buffers.logits }),
      ]);
      return { capacity, ...b, fill: [gemm, keep], forward, backward, lastRow };
    })();
    return this.linearState;
  }

  /** Computes the kept logits of row 0's positions [logitsKept, positions), FILL_ROWS per GEMM. */
  private async fillKeptLogits(l: LinearXentState, positions: number): Promise<void> {
    const step = new ArrayBuffer(STEP_UNIFORM_BYTES);
    for (let first = this.logitsKept; first < positions; first += FILL_ROWS) {
      const rows = Math.min(FILL_ROWS, positions - first);
      encodeStep(step, { nTokens: rows, statsRowStart: first, statsRows: rows, seed: 0, counter: 0, statsTemperature: 1, sampleTemperature: 0 });
      this.ctx.device.queue.writeBuffer(l.fillStep, 0, step);
      const encoder = this.ctx.device.createCommandEncoder({ label: 'xent fill' });
      const pass = encoder.beginComputePass({ label: 'xent fill' });
      encodeCalls(pass, l.fill, { nTokens: rows, statsRows: rows });
      pass.end();
      this.ctx.device.queue.submit([encoder.finish()]);
    }
    this.logitsKept = Math.max(this.logitsKept, positions);
  }

  /**
   * SRGen's loss over row 0's first `positions` kept hidden states h_t shifted by δ (targets
   * y_t = targets[t], t < positions − 1; the entropy term at the last position, temperature
   * `temperature`), and with `backward` its gradient dloss/dδ. Fused kernels (xent.wgsl): the
   * positions × vocab logits are never stored; 16 B (+ dim floats with the gradient) read back.
   */
  async xent(
    positions: number, targets: readonly number[], delta: Float32Array,
    o: { lambda: number; temperature: number; backward: boolean; mode?: XentMode },
  ): Promise<XentResult> {
    this.ctx.assertAlive();
    const c = this.config;
    if (delta.length !== c.dim) throw new InvalidArgumentError(`δ must have ${c.dim} entries, got ${delta.length}`);
    const { x, linear } = await this.prepareXent(positions, targets, o);
    this.ctx.device.queue.writeBuffer(x.delta, 0, delta.buffer, delta.byteOffset, delta.byteLength);
    const encoder = this.ctx.device.createCommandEncoder({ label: 'xent' });
    const zeroDelta = linear !== null && delta.every((d) => d === 0);
    if (this.profiler) {
      // Every launch timed in its own pass (bench/reflect-cost.ts --profile); read() it before the next.
      if (linear && zeroDelta) encoder.clearBuffer(linear.u);
      this.profiler.encode(encoder, xentCalls(x, linear, o.backward), { positions, zeroDelta });
    } else {
      this.encodeXent(encoder, x, linear, positions, o.backward, zeroDelta);
    }
    const kind = `xent ${linear ? 'linear' : 'fused'} ${positions}${o.backward ? ' backward' : ''}`;
    const reads = [await this.readback.enqueue(encoder, x.stats, 0, 16, kind)];
    if (o.backward) reads.push(await this.readback.enqueue(encoder, x.grad, 0, c.dim * 4, kind));
    this.ctx.device.queue.submit([encoder.finish()]);
    const [summary, grad] = await Promise.all(reads.map((r) => r.read()));
    const s = new Float32Array(summary);
    return { loss: s[0], ce: s[1], entropy: s[2], grad: grad ? new Float32Array(grad) : null, mode: linear ? 'linear' : 'fused' };
  }

  /**
   * SRGen's reflection (algorithms.md §4) over row 0's first `positions` kept hidden states: from
   * δ = 0, `steps` AdamW steps on the loss of xent() (same targets, λ, temperature, mode), all on
   * the GPU in one submit (xent kernels, adamw.wgsl) with one readback at the end: the losses, δ
   * and h_{T−1} + δ. With 'linear', the kept logits' u = W·δ is of the final δ afterwards
   * (headOverKeptLogits).
   */
  async reflect(
    positions: number, targets: readonly number[],
    o: { lambda: number; temperature: number; steps: number; adam: AdamWOptions; mode?: XentMode },
  ): Promise<ReflectResult> {
    if (!Number.isInteger(o.steps) || o.steps < 0 || o.steps > MAX_REFLECT_STEPS) {
      throw new InvalidArgumentError(`reflect: steps must be an integer in 0..${MAX_REFLECT_STEPS}, got ${o.steps}`);
    }
    const { x, linear } = await this.prepareXent(positions, targets, o);
    const a = await this.adamKernels();
    const q = this.ctx.device.queue;
    q.writeBuffer(a.params, 0, adamwUniform(o.adam));
    const corrections = biasCorrections(o.adam, o.steps);
    q.writeBuffer(a.corrections, 0, corrections.buffer, 0, corrections.byteLength);
    const encoder = this.ctx.device.createCommandEncoder({ label: 'reflect' });
    encoder.clearBuffer(x.delta);
    encoder.clearBuffer(a.moments);
    encoder.clearBuffer(a.count);
    for (let s = 0; s <= o.steps; s++) {
      const backward = s < o.steps;
      this.encodeXent(encoder, x, linear, positions, backward, s === 0, backward ? [a.step] : []);
      encoder.copyBufferToBuffer(x.stats, 0, a.losses, 16 * s, 16);
    }
    const dim = this.config.dim;
    // The fused recompute takes tens of times the kept-logits kernels' time: kinds of their own.
    const kind = `reflect ${linear ? 'linear' : 'fused'} ${positions}x${o.steps}`;
    const reads = [
      await this.readback.enqueue(encoder, a.losses, 0, 16 * (o.steps + 1), kind),
      await this.readback.enqueue(encoder, x.delta, 0, dim * 4, kind),
      await this.readback.enqueue(encoder, this.hiddenHistory!, (positions - 1) * dim * 4, dim * 4, kind),
    ];
    q.submit([encoder.finish()]);
    const [losses, delta, hidden] = (await Promise.all(reads.map((r) => r.read()))).map((b) => new Float32Array(b));
    const input = hidden.map((h, i) => h + delta[i]);
    return { losses: Array.from({ length: o.steps + 1 }, (_, s) => losses[4 * s]), delta, input, mode: linear ? 'linear' : 'fused' };
  }

  /** Checks an xent evaluation's arguments and writes its params and targets; the kept logits filled for 'linear'. */
  private async prepareXent(
    positions: number, targets: readonly number[], o: { lambda: number; temperature: number; mode?: XentMode },
  ): Promise<{ x: XentState; linear: LinearXentState | null }> {
    this.ctx.assertAlive();
    if (!Number.isInteger(positions) || positions < 1 || positions > this.keptHiddenPositions) {
      throw new InvalidArgumentError(`xent needs 1..${this.keptHiddenPositions} kept positions of row 0, got ${positions}`);
    }
    if (targets.length !== positions - 1) throw new InvalidArgumentError(`xent needs ${positions - 1} targets, got ${targets.length}`);
    const x = await this.xentKernels();
    const linear = (o.mode ?? 'linear') === 'linear' && positions <= this.keptLogitsCapacity ? await this.linearKernels() : null;
    const q = this.ctx.device.queue;
    q.writeBuffer(x.params, 0, xentParams(positions, o.lambda, o.temperature));
    if (positions > 1) {
      const t = Uint32Array.from(targets);
      q.writeBuffer(x.targets, 0, t.buffer, 0, t.byteLength);
    }
    if (linear) await this.fillKeptLogits(linear, positions);
    return { x, linear };
  }

  /**
   * One evaluation of the loss at the δ in x.delta (with `backward` its gradient into x.grad) in
   * its own compute pass, then `after` in the same pass. `zeroDelta`: δ is 0 (linear: u = 0, no GEMV).
   */
  private encodeXent(
    encoder: GPUCommandEncoder, x: XentState, linear: LinearXentState | null, positions: number, backward: boolean,
    zeroDelta: boolean, after: readonly KernelCall<null>[] = [],
  ): void {
    if (linear && zeroDelta) encoder.clearBuffer(linear.u);
    const shape = { positions, zeroDelta: linear !== null && zeroDelta };
    const pass = encoder.beginComputePass({ label: 'xent' });
    encodeCalls(pass, xentCalls(x, linear, backward), shape);
    encodeCalls(pass, after, null);
    pass.end();
  }

  private adamKernels(): Promise<AdamState> {
    this.adamState ??= (async () => {
      const x = await this.xentKernels();
      const get = (label: string, bytes: number, usage = STORAGE) => this.pool.acquire(label, bytes, usage);
      const dim = this.config.dim;
      const b = {
        params: await get('adamw_params', ADAMW_PARAMS_BYTES, UNIFORM),
        moments: await get('adamw_moments', dim * 8),
        count: await get('adamw_count', 16),
        corrections: await get('adamw_corrections', MAX_REFLECT_STEPS * 8),
        losses: await get('reflect_losses', 16 * (MAX_REFLECT_STEPS + 1)),
      };
      const step = await this.kernels.adamw('adamw', dim, { ...b, grad: x.grad, theta: x.delta });
      return { ...b, step };
    })();
    return this.adamState;
  }

  /** The kept final hidden state of row 0 at `pos` (dim floats read back). */
  async keptHidden(pos: number): Promise<Float32Array> {
    this.ctx.assertAlive();
    if (!Number.isInteger(pos) || pos < 0 || pos >= this.keptHiddenPositions) {
      throw new InvalidArgumentError(`no kept hidden state of row 0 at position ${pos}`);
    }
    const rowBytes = this.config.dim * 4;
    const encoder = this.ctx.device.createCommandEncoder({ label: 'kept hidden' });
    const pending = await this.readback.enqueue(encoder, this.hiddenHistory!, pos * rowBytes, rowBytes, 'hidden row');
    this.ctx.device.queue.submit([encoder.finish()]);
    return new Float32Array(await pending.read());
  }

  /**
   * Replaces hidden row `hiddenRow` of the last step with `x` (dim floats) and runs the LM head on
   * it with that row's token slot: the StepStats (and GPU draw, keyed as the step's) of W·x.
   * Later fullStats/logits calls for that row see `x` too, until the next step.
   */
  async headOver(hiddenRow: number, x: Float32Array, sampling: SamplingParams): Promise<StepStats> {
    this.ctx.assertAlive();
    const c = this.config;
    if (x.length !== c.dim) throw new InvalidArgumentError(`a hidden row has ${c.dim} entries, got ${x.length}`);
    if (!Number.isInteger(hiddenRow) || hiddenRow < 0 || hiddenRow >= this.maxStepTokens) {
      throw new InvalidArgumentError(`hidden row ${hiddenRow} does not exist`);
    }
    this.ctx.device.queue.writeBuffer(this.buffers.hidden, hiddenRow * c.dim * 4, x.buffer, x.byteOffset, x.byteLength);
    const [stats] = await this.run([], hiddenRow + 1, hiddenRow, 1, sampling);
    return stats;
  }

  /**
   * headOver for x = h_{T−1} + δ right after a 'linear' xent() over T positions with that δ: the
   * statistics come from its logits z_{T−1} + W·δ (already computed: no classifier pass) through the
   * batched head's statistics kernels, keyed as the step's. `x` is written over hidden row
   * `hiddenRow` for later fullStats/logits calls, as headOver does.
   */
  async headOverKeptLogits(hiddenRow: number, x: Float32Array, sampling: SamplingParams): Promise<StepStats> {
    this.ctx.assertAlive();
    const c = this.config;
    if (!this.linearState) throw new InvalidArgumentError('headOverKeptLogits needs a linear xent() first');
    if (x.length !== c.dim) throw new InvalidArgumentError(`a hidden row has ${c.dim} entries, got ${x.length}`);
    if (!Number.isInteger(hiddenRow) || hiddenRow < 0 || hiddenRow >= this.maxStepTokens) {
      throw new InvalidArgumentError(`hidden row ${hiddenRow} does not exist`);
    }
    const l = await this.linearState;
    this.ctx.device.queue.writeBuffer(this.buffers.hidden, hiddenRow * c.dim * 4, x.buffer, x.byteOffset, x.byteLength);
    const [stats] = await this.run([], hiddenRow + 1, hiddenRow, 1, sampling, [], (heads) => [l.lastRow, ...this.statsKernels(heads)]);
    return stats;
  }

  /**
   * The statistics (and GPU draw, keyed as the step's) of hidden row `hiddenRow` of the last step
   * again, under other sampling parameters: another statistics or draw temperature, more
   * candidates. When the logits buffer still holds that row's logits, only the statistics kernels
   * run over them; otherwise the LM head runs again on the hidden row. Only the step record is read
   * back. Adaptive temperature draws at a T′ known only after the step this way.
   */
  async statsUnder(hiddenRow: number, sampling: SamplingParams): Promise<StepStats> {
    this.ctx.assertAlive();
    if (!Number.isInteger(hiddenRow) || hiddenRow < 0 || hiddenRow >= this.lastStepTokens) {
      throw new InvalidArgumentError(`hidden row ${hiddenRow} is not one of the last step's ${this.lastStepTokens}`);
    }
    const statsOnly = this.logitsRow0 === hiddenRow ? (heads: HeadCalls) => this.statsKernels(heads) : undefined;
    const [stats] = await this.run([], hiddenRow + 1, hiddenRow, 1, sampling, [], statsOnly);
    return stats;
  }

  /** The statistics kernels over the logits buffer: the batched head without its classifier GEMM. */
  private statsKernels(heads: HeadCalls): KernelCall[] {
    return heads.batchedHead.slice(this.graph.logits.length);
  }

  private wide(): ReturnType<typeof buildHeads> {
    this.wideHeads ??= buildHeads(this.kernels, this.weights, this.buffers, MAX_TOP_K, this.graph, this.head);
    return this.wideHeads;
  }

  /**
   * The full logits row of token row `hiddenRow` of the last step (128 KB for stories15M): only
   * for the rare step where a decoder's statistics cannot decide (samplers.ts), or a caller that
   * explicitly asks for logits. Re-runs the classifier GEMM on the kept hidden state.
   */
  async logits(hiddenRow: number): Promise<Float32Array> {
    this.ctx.assertAlive();
    const u = new DataView(this.stepUniform);
    u.setUint32(4, hiddenRow, true);
    u.setUint32(8, 1, true);
    this.ctx.device.queue.writeBuffer(this.buffers.step, 0, this.stepUniform);
    const encoder = this.ctx.device.createCommandEncoder({ label: 'logits' });
    const pass = encoder.beginComputePass({ label: 'logits' });
    encodeCalls(pass, this.graph.logits, { nTokens: hiddenRow + 1, statsRows: 1 });
    pass.end();
    this.logitsRow0 = hiddenRow;
    const bytes = this.config.vocabSize * 4;
    const pending = await this.readback.enqueue(encoder, this.buffers.logits, 0, bytes, 'logits row');
    this.ctx.device.queue.submit([encoder.finish()]);
    return new Float32Array(await pending.read());
  }

  /** Copies row `src`'s KV prefix into each row of `dsts` (one submit of GPU copies). */
  fork(src: number, dsts: readonly number[]): void {
    this.ctx.assertAlive();
    const encoder = this.ctx.device.createCommandEncoder({ label: 'kv fork' });
    this.kv.fork(this.ctx.device.queue, encoder, src, dsts);
    // Row 0's positions become another row's, whose hidden states were not kept.
    if (src !== 0 && dsts.includes(0)) this.hiddenKept = this.logitsKept = 0;
    this.ctx.device.queue.submit([encoder.finish()]);
  }

  /**
   * Keeps only the positions `keep` of row 0 (ascending), re-positioned to 0.. (KvCache.compact):
   * a streaming memory's eviction. Every other row is emptied; kept hidden states and logits are
   * forgotten.
   */
  async compact(keep: readonly number[]): Promise<void> {
    this.ctx.assertAlive();
    const rope = { table: this.weights.rope, half: this.config.ropeLayout === 'half' };
    await this.kv.compact(this.pool, this.kernels, this.ctx.device, keep, rope);
    this.hiddenKept = this.logitsKept = 0;
  }

  /** Makes `row` the main sequence (row 0): its KV prefix is copied there. */
  commit(row: number): void {
    if (row !== 0) this.fork(row, [0]);
  }

  /** Bytes mapped back to the CPU so far. */
  get bytesRead(): number {
    return this.readback.bytesRead;
  }

  /** Keeps the first `n` positions of row 0 and empties every other row (n 0: reset()). */
  keepPrefix(n: number): void {
    if (n <= 0) {
      this.reset();
      return;
    }
    this.kv.rollback(0, n);
    for (let r = 1; r < this.kv.rows; r++) this.kv.rollback(r, 0);
  }

  /**
   * Keeps the longest prefix of row 0 that equals `tokens` (at most all but the last, whose
   * statistics a step must produce), empties every other row, and returns its length.
   */
  keepCommonPrefix(tokens: readonly number[]): number {
    const kept = Math.max(0, Math.min(this.kv.commonPrefix(0, tokens), tokens.length - 1));
    this.keepPrefix(kept);
    return kept;
  }

  reset(): void {
    this.kv.clear();
    this.hiddenKept = 0;
    this.logitsKept = 0;
    this.lastStepTokens = 0;
    this.logitsRow0 = null;
  }

  dispose(): void {
    const b = this.buffers;
    [b.step, b.tokens, b.x, b.xb, b.qkv, b.att, b.hb, b.hb2, b.hidden, b.partials, b.partialTopK, b.stats, b.logits]
      .forEach((x) => this.pool.release(x));
    if (this.hiddenHistory) this.pool.release(this.hiddenHistory);
    this.hiddenHistory = null;
    this.xentState?.then((x) => [x.params, x.delta, x.targets, x.partials, x.stats, x.grad].forEach((y) => this.pool.release(y)), () => {});
    this.xentState = null;
    this.linearState?.then((x) => [x.kept, x.rowMax, x.u, x.shift, x.coef, x.fillStep, x.fillOut, x.oneRowStep].forEach((y) => this.pool.release(y)), () => {});
    this.linearState = null;
    this.adamState?.then((x) => [x.params, x.moments, x.count, x.corrections, x.losses].forEach((y) => this.pool.release(y)), () => {});
    this.adamState = null;
    this.releaseAttention();
    this.kv.release(this.pool);
    this.readback.destroy();
  }
}

function kvShape(w: GpuWeights) {
  return { nLayers: w.config.nLayers, nKvHeads: w.config.nKvHeads, headDim: w.config.headDim, context: w.contextLength };
}
