// The KV cache: per layer, one key and one value buffer laid out [row][kvHead][context][headDim].
// Rows are the outermost axis, so growing the cache by rows (CNTP's trials, batched sequences) is
// one copy of the old buffer into the start of a larger one; a session starts with one row and
// grows only when a decoder asks. A row's length is the number of positions it holds; positions at
// or beyond the context are an error, never a silent wrap.
import { ContextOverflowError, InvalidArgumentError } from '../errors.ts';
import { type BufferPool, UNIFORM } from '../gpu/buffers.ts';
import { FORK_UNIFORM_BYTES, type ForkShape, type Kernels, MAX_FORK_ROWS } from '../gpu/kernels.ts';
import { type KernelCall, encodeCalls } from '../gpu/pipelines.ts';

export interface KvShape {
  nLayers: number;
  nKvHeads: number;
  headDim: number;
  /** Positions per row. */
  context: number;
}

/** The RoPE table keys were rotated with ([context][headDim/2] (cos, sin)) and its pairing. */
export interface RopeBinding {
  table: GPUBuffer;
  /** Pairs (i, i + headDim/2) instead of (2i, 2i + 1). */
  half: boolean;
}

interface CompactState {
  params: GPUBuffer;
  keep: GPUBuffer;
  scratch: GPUBuffer;
  /** Per layer: the key gather, then the value gather. */
  calls: KernelCall<{ count: number }>[];
}

export class KvCache {
  readonly keys: GPUBuffer[] = [];
  readonly values: GPUBuffer[] = [];
  /** Filled positions per row. */
  readonly lengths: number[];
  /**
   * The token id at each filled position of each row, as the steps wrote them: what a later
   * generation may reuse (commonPrefix) instead of recomputing.
   */
  private readonly ids: number[][];
  private forkParams: GPUBuffer | null = null;
  /** kv_compact's buffers and launches, made on the first compact(). */
  private compactState: Promise<CompactState> | null = null;
  /** One kv_fork launch per key and value buffer. */
  private forkCalls: KernelCall<ForkShape>[] = [];
  private readonly forkUniform = new Uint32Array(FORK_UNIFORM_BYTES / 4);

  private constructor(readonly shape: KvShape, readonly rows: number, lengths: number[], ids: number[][]) {
    this.lengths = [...lengths, ...new Array(rows - lengths.length).fill(0)];
    this.ids = Array.from({ length: rows }, (_, r) => [...(ids[r] ?? [])]);
  }

  /** Bytes of one row in one layer's key (or value) buffer. */
  static rowBytes(s: KvShape): number {
    return s.nKvHeads * s.context * s.headDim * 4;
  }

  static async create(pool: BufferPool, kernels: Kernels, shape: KvShape, rows: number, lengths: number[] = [], ids: number[][] = []): Promise<KvCache> {
    const cache = new KvCache(shape, rows, lengths, ids);
    const bytes = rows * KvCache.rowBytes(shape);
    try {
      for (let l = 0; l < shape.nLayers; l++) {
        cache.keys.push(await pool.acquire(`l${l}.k_cache`, bytes));
        cache.values.push(await pool.acquire(`l${l}.v_cache`, bytes));
      }
      if (rows > 1) {
        cache.forkParams = await pool.acquire('kv_fork_params', FORK_UNIFORM_BYTES, UNIFORM);
        const fork = { nKvHeads: shape.nKvHeads, seqLen: shape.context, headDim: shape.headDim };
        cache.forkCalls = await Promise.all([...cache.keys, ...cache.values].map((buffer, i) =>
          kernels.kvFork(`kv_fork.${i}`, fork, { params: cache.forkParams!, cache: buffer })));
      }
    } catch (error) {
      cache.discard(pool);
      throw error;
    }
    return cache;
  }

  /**
   * A cache of `rows` rows holding this one's rows first (a GPU copy recorded into `encoder`);
   * the caller discards this one once the encoder is submitted.
   */
  async grow(pool: BufferPool, kernels: Kernels, encoder: GPUCommandEncoder, rows: number): Promise<KvCache> {
    const grown = await KvCache.create(pool, kernels, this.shape, rows, this.lengths, this.ids);
    const bytes = this.rows * KvCache.rowBytes(this.shape);
    this.keys.forEach((b, l) => encoder.copyBufferToBuffer(b, 0, grown.keys[l], 0, bytes));
    this.values.forEach((b, l) => encoder.copyBufferToBuffer(b, 0, grown.values[l], 0, bytes));
    return grown;
  }

  /** Throws unless `count` more positions fit in `row`. */
  checkRoom(row: number, count: number): void {
    if (this.lengths[row] + count > this.shape.context) {
      throw new ContextOverflowError(
        `row ${row} holds ${this.lengths[row]} positions; ${count} more exceed the context of ${this.shape.context}`,
      );
    }
  }

  /**
   * Records copies of `src`'s filled prefix into each of `dsts` (GPU copies, no recompute): the
   * rows then continue independently, e.g. as CNTP trials. Lengths update immediately; the data
   * is in place once the encoder is submitted.
   */
  fork(queue: GPUQueue, encoder: GPUCommandEncoder, src: number, dsts: readonly number[]): void {
    this.checkRow(src);
    dsts.forEach((d) => this.checkRow(d));
    const targets = [...new Set(dsts)].filter((d) => d !== src);
    if (targets.length > MAX_FORK_ROWS) throw new InvalidArgumentError(`fork to at most ${MAX_FORK_ROWS} rows at once`);
    const positions = this.lengths[src];
    for (const d of targets) {
      this.lengths[d] = positions;
      this.ids[d] = this.ids[src].slice(0, positions);
    }
    if (targets.length === 0 || positions === 0 || !this.forkParams) return;
    this.forkUniform.fill(0);
    this.forkUniform.set([src, positions, targets.length, 0, ...targets]);
    queue.writeBuffer(this.forkParams, 0, this.forkUniform);
    const pass = encoder.beginComputePass({ label: 'kv fork' });
    encodeCalls(pass, this.forkCalls, { positions, destinations: targets.length });
    pass.end();
  }

  private checkRow(row: number): void {
    if (!Number.isInteger(row) || row < 0 || row >= this.rows) {
      throw new InvalidArgumentError(`KV row ${row} does not exist (rows: ${this.rows})`);
    }
  }

  /** Forgets positions ≥ `length` of a row (the data stays; attention never reads past pos). */
  rollback(row: number, length: number): void {
    this.checkRow(row);
    if (!Number.isInteger(length) || length < 0 || length > this.lengths[row]) {
      throw new InvalidArgumentError(`cannot roll row ${row} back to ${length} (it holds ${this.lengths[row]})`);
    }
    this.lengths[row] = length;
    this.ids[row].length = Math.min(this.ids[row].length, length);
  }

  /** Records that a step wrote token `id` at `pos` of `row` (the row now holds pos + 1 positions). */
  written(row: number, pos: number, id: number): void {
    this.lengths[row] = pos + 1;
    const ids = this.ids[row];
    if (pos <= ids.length) {
      ids.length = pos;
      ids.push(id);
    }
  }

  /** Empties every row. */
  clear(): void {
    this.lengths.fill(0);
    this.ids.forEach((ids) => (ids.length = 0));
  }

  /** The token ids `row` holds, position by position (shorter than its length if some are unknown). */
  tokens(row: number): readonly number[] {
    this.checkRow(row);
    return this.ids[row].slice(0, this.lengths[row]);
  }

  /** How many leading positions of `row` hold exactly `ids`' first tokens (a longest common prefix). */
  commonPrefix(row: number, ids: readonly number[]): number {
    const held = this.tokens(row);
    let n = 0;
    while (n < held.length && n < ids.length && held[n] === ids[n]) n++;
    return n;
  }

  /**
   * Keeps only the positions `keep` of row 0 (ascending), moved to 0..keep.length − 1 with their
   * keys re-rotated to the new positions (kv_cache.wgsl kv_compact), and empties every other row:
   * the cache then holds what a prefill of those tokens at those positions would, up to the
   * rounding of one more rotation. One submit; nothing is read back.
   */
  async compact(pool: BufferPool, kernels: Kernels, device: GPUDevice, keep: readonly number[], rope: RopeBinding): Promise<void> {
    const queue = device.queue;
    const held = this.lengths[0];
    keep.forEach((p, i) => {
      if (!Number.isInteger(p) || p < 0 || p >= held || (i > 0 && p <= keep[i - 1])) {
        throw new InvalidArgumentError(`compact: keep must be ascending positions below ${held}; got ${p} at ${i}`);
      }
    });
    if (keep.length === held) return;
    const state = await (this.compactState ??= this.compactKernels(pool, kernels, rope));
    if (keep.length > 0) {
      queue.writeBuffer(state.params, 0, new Uint32Array([keep.length, 0, 0, 0]));
      queue.writeBuffer(state.keep, 0, new Uint32Array(keep));
      const encoder = device.createCommandEncoder({ label: 'kv compact' });
      const bytes = KvCache.rowBytes(this.shape);
      state.calls.forEach((call, i) => {
        const pass = encoder.beginComputePass({ label: call.label });
        encodeCalls(pass, [call], { count: keep.length });
        pass.end();
        encoder.copyBufferToBuffer(state.scratch, 0, i % 2 === 0 ? this.keys[i >> 1] : this.values[i >> 1], 0, bytes);
      });
      queue.submit([encoder.finish()]);
    }
    const ids = this.ids[0];
    this.ids[0] = keep.length && keep.every((p) => p < ids.length) ? keep.map((p) => ids[p]) : [];
    this.lengths.fill(0);
    this.lengths[0] = keep.length;
    for (let r = 1; r < this.rows; r++) this.ids[r] = [];
  }

  private async compactKernels(pool: BufferPool, kernels: Kernels, rope: RopeBinding): Promise<CompactState> {
    const s = this.shape;
    const params = await pool.acquire('kv_compact_params', 16, UNIFORM);
    const keep = await pool.acquire('kv_compact_keep', 4 * s.context);
    const scratch = await pool.acquire('kv_compact_scratch', KvCache.rowBytes(s));
    const shape = { nKvHeads: s.nKvHeads, seqLen: s.context, headDim: s.headDim, ropeHalf: rope.half };
    const calls = await Promise.all(this.keys.flatMap((k, l) => [
      kernels.kvCompact(`l${l}.k_compact`, { ...shape, keys: true }, { params, keep, rope: rope.table, cache: k, scratch }),
      kernels.kvCompact(`l${l}.v_compact`, { ...shape, keys: false }, { params, keep, rope: rope.table, cache: this.values[l], scratch }),
    ]));
    return { params, keep, scratch, calls };
  }

  private compactBuffers(): Promise<GPUBuffer[]> {
    return this.compactState ? this.compactState.then((c) => [c.params, c.keep, c.scratch], () => []) : Promise.resolve([]);
  }

  /** Returns the buffers to the pool (for a session of the same shape). */
  release(pool: BufferPool): void {
    [...this.keys, ...this.values].forEach((b) => pool.release(b));
    if (this.forkParams) pool.release(this.forkParams);
    void this.compactBuffers().then((bs) => bs.forEach((b) => pool.release(b)));
  }

  /** Frees the buffers (a cache replaced by a larger one). */
  discard(pool: BufferPool): void {
    [...this.keys, ...this.values].forEach((b) => pool.discard(b));
    if (this.forkParams) pool.discard(this.forkParams);
    void this.compactBuffers().then((bs) => bs.forEach((b) => pool.discard(b)));
  }
}
