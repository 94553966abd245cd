// A Session runs the forward graph of one model over a KV cache: it owns the activations, writes
// a step's few bytes of input (token slots + a 32-byte uniform), records the whole step into one
// command encoder, and maps back only the StepStats records.
import { BufferPool, STORAGE, UNIFORM } from '../gpu/buffers.ts';
import type { GpuContext } from '../gpu/device.ts';
import {
  Kernels, LM_PARTIALS_PER_ROW, LM_PARTIAL_BYTES, MAX_TOP_K, STEP_UNIFORM_BYTES, TOKEN_SLOT_BYTES,
} from '../gpu/kernels.ts';
import { type KernelCall, encodeCalls } from '../gpu/pipelines.ts';
import { ReadbackRing } from '../gpu/readback.ts';
import { InvalidArgumentError } from '../errors.ts';
import { kvDim } from '../model/checkpoint.ts';
import { type ForwardBuffers, type ForwardGraph, buildForward, buildHeads } from '../model/forward.ts';
import type { GpuWeights } from '../model/weights.ts';
import { KvCache } from './kv-cache.ts';
import { type StepStats, parseStats, statsRecordBytes } from './stats.ts';

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
  /** KV rows (independent sequences). */
  rows?: number;
  /** Top candidates returned per stats row, 1..64. */
  topK?: number;
  /** Most token rows one step may carry (prefill chunk); defaults to the context length. */
  maxStepTokens?: number;
  /** Most stats rows one launch of the LM head may produce. */
  maxStatsRows?: number;
}

const GREEDY: SamplingParams = { temperature: 0, seed: 0 };

export class Session {
  readonly topK: number;
  readonly maxStepTokens: number;
  readonly maxStatsRows: number;
  readonly kv: KvCache;
  private readonly stepUniform = new ArrayBuffer(STEP_UNIFORM_BYTES);
  private tokenSlots: Uint32Array;
  private readonly readback: ReadbackRing;
  /** Heads with MAX_TOP_K candidates, compiled on first use. */
  private wideHeads: ReturnType<typeof buildHeads> | null = null;

  private constructor(
    private readonly ctx: GpuContext,
    private readonly kernels: Kernels,
    private readonly pool: BufferPool,
    readonly weights: GpuWeights,
    private readonly buffers: ForwardBuffers,
    private readonly graph: ForwardGraph,
    kv: KvCache,
    o: Required<SessionOptions>,
  ) {
    this.kv = kv;
    this.topK = o.topK;
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
      maxStepTokens: options.maxStepTokens ?? c.seqLen,
      maxStatsRows: options.maxStatsRows ?? 16,
    };
    if (!Number.isInteger(o.topK) || o.topK < 1 || o.topK > MAX_TOP_K) {
      throw new InvalidArgumentError(`topK must be an integer in [1, ${MAX_TOP_K}], got ${o.topK}`);
    }
    const acquired: GPUBuffer[] = [];
    const get = async (label: string, floatsPerRow: number, rows = o.maxStepTokens, usage = STORAGE) => {
      const b = await pool.acquire(label, floatsPerRow * 4 * rows, usage);
      acquired.push(b);
      return b;
    };
    const kv = await KvCache.create(pool, kernels, c, o.rows);
    try {
      const buffers: ForwardBuffers = {
        step: await get('step', STEP_UNIFORM_BYTES / 4, 1, UNIFORM),
        tokens: await get('tokens', TOKEN_SLOT_BYTES / 4),
        x: await get('x', c.dim),
        xb: await get('xb', c.dim),
        qkv: await get('qkv', c.dim + 2 * kvDim(c)),
        att: await get('att', c.dim),
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
      const graph = await buildForward(kernels, weights, buffers, o.topK);
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

  /**
   * Runs the graph over `tokens` (each at its own row and position, which must be the row's next
   * position), then the LM head over the last `statsRows` of them, and returns their StepStats.
   */
  async step(tokens: readonly TokenInput[], statsRows = 1, sampling: SamplingParams = GREEDY): Promise<StepStats[]> {
    this.ctx.assertAlive();
    if (tokens.length === 0 || tokens.length > this.maxStepTokens) {
      throw new InvalidArgumentError(`a step carries 1..${this.maxStepTokens} tokens, got ${tokens.length}`);
    }
    this.checkTokens(tokens);
    const start = tokens.length - Math.min(statsRows, tokens.length);
    this.writeTokens(tokens);
    const body = tokens.length === 1 ? this.graph.decode : this.graph.prefill;
    const stats = await this.run(body, tokens.length, start, tokens.length - start, sampling);
    for (const t of tokens) this.kv.lengths[t.row] = t.pos + 1;
    return stats;
  }

  /**
   * Teacher forcing: runs `tokens` of one row (positions from the row's length on) and returns
   * the stats of every position, in chunks of maxStatsRows launches of the LM head.
   */
  async score(row: number, ids: readonly number[], sampling: SamplingParams = GREEDY): Promise<StepStats[]> {
    const tokens = ids.map((id, i) => ({ id, pos: this.kv.lengths[row] + i, row }));
    this.checkTokens(tokens);
    const out: StepStats[] = [];
    for (let i = 0; i < tokens.length; i += this.maxStepTokens) {
      const chunk = tokens.slice(i, i + this.maxStepTokens);
      this.writeTokens(chunk);
      const body = chunk.length === 1 ? this.graph.decode : this.graph.prefill;
      for (let s = 0; s < chunk.length; s += this.maxStatsRows) {
        const count = Math.min(this.maxStatsRows, chunk.length - s);
        out.push(...(await this.run(s === 0 ? body : [], chunk.length, s, count, sampling)));
      }
      for (const t of chunk) this.kv.lengths[t.row] = t.pos + 1;
    }
    return out;
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

  private writeTokens(tokens: readonly TokenInput[]): void {
    tokens.forEach((t, i) => this.tokenSlots.set([t.id, t.pos, t.row, 0], 4 * i));
    this.ctx.device.queue.writeBuffer(this.buffers.tokens, 0, this.tokenSlots.buffer, 0, tokens.length * TOKEN_SLOT_BYTES);
  }

  private async run(
    body: KernelCall[], nTokens: number, statsStart: number, statsRows: number, sampling: SamplingParams,
  ): Promise<StepStats[]> {
    const u = new DataView(this.stepUniform);
    u.setUint32(0, nTokens, true);
    u.setUint32(4, statsStart, true);
    u.setUint32(8, statsRows, true);
    u.setUint32(12, sampling.seed >>> 0, true);
    u.setUint32(16, (sampling.counter ?? 0) >>> 0, true);
    u.setFloat32(20, 1 / (sampling.statsTemperature ?? 1), true);
    u.setFloat32(24, sampling.temperature > 0 ? 1 / sampling.temperature : 0, true);
    this.ctx.device.queue.writeBuffer(this.buffers.step, 0, this.stepUniform);

    const wide = (sampling.candidates ?? 0) > this.topK;
    const topK = wide ? MAX_TOP_K : this.topK;
    const heads = wide ? await this.wide() : this.graph;
    const encoder = this.ctx.device.createCommandEncoder({ label: 'step' });
    const pass = encoder.beginComputePass({ label: 'forward' });
    const shape = { nTokens, statsRows };
    encodeCalls(pass, body, shape);
    encodeCalls(pass, statsRows === 1 ? heads.head : heads.batchedHead, shape);
    pass.end();
    const bytes = statsRows * statsRecordBytes(topK);
    const pending = await this.readback.enqueue(encoder, this.buffers.stats, 0, bytes);
    this.ctx.device.queue.submit([encoder.finish()]);
    return parseStats(await pending.read(), statsRows, topK);
  }

  private wide(): ReturnType<typeof buildHeads> {
    this.wideHeads ??= buildHeads(this.kernels, this.weights, this.buffers, MAX_TOP_K, this.graph.logits);
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
    encodeCalls(pass, [this.graph.logits], { nTokens: hiddenRow + 1, statsRows: 1 });
    pass.end();
    const bytes = this.config.vocabSize * 4;
    const pending = await this.readback.enqueue(encoder, this.buffers.logits, 0, bytes);
    this.ctx.device.queue.submit([encoder.finish()]);
    return new Float32Array(await pending.read());
  }

  /** Copies row `src`'s KV prefix into each row of `dsts` (one submit of GPU copies). */
  fork(src: number, dsts: readonly number[]): void {
    this.ctx.assertAlive();
    const encoder = this.ctx.device.createCommandEncoder({ label: 'kv fork' });
    this.kv.fork(this.ctx.device.queue, encoder, src, dsts);
    this.ctx.device.queue.submit([encoder.finish()]);
  }

  /** Makes `row` the main sequence (row 0): its KV prefix is copied there. */
  commit(row: number): void {
    if (row !== 0) this.fork(row, [0]);
  }

  /** Bytes mapped back to the CPU so far. */
  get bytesRead(): number {
    return this.readback.bytesRead;
  }

  reset(): void {
    this.kv.lengths.fill(0);
  }

  dispose(): void {
    const b = this.buffers;
    [b.step, b.tokens, b.x, b.xb, b.qkv, b.att, b.hb, b.hb2, b.hidden, b.partials, b.partialTopK, b.stats, b.logits].forEach((x) => this.pool.release(x));
    this.kv.release(this.pool);
    this.readback.destroy();
  }
}
