// The KV cache: per layer, one key and one value buffer laid out [row][kvHead][seqLen][headSize],
// preallocated for the whole context. A row's length is the number of positions it holds;
// positions at or beyond the context are an error, never a silent wrap.
import { ContextOverflowError, InvalidArgumentError } from '../errors.ts';
import { type BufferPool, UNIFORM } from '../gpu/buffers.ts';
import { FORK_UNIFORM_BYTES, type ForkShape, type Kernels, MAX_FORK_ROWS } from '../gpu/kernels.ts';
import { type KernelCall, encodeCalls } from '../gpu/pipelines.ts';
import { type ModelConfig, headSize } from '../model/checkpoint.ts';

export class KvCache {
  readonly keys: GPUBuffer[] = [];
  readonly values: GPUBuffer[] = [];
  /** Filled positions per row. */
  readonly lengths: number[];
  private forkParams!: GPUBuffer;
  /** One kv_fork launch per key and value buffer. */
  private forkCalls: KernelCall<ForkShape>[] = [];
  private readonly forkUniform = new Uint32Array(FORK_UNIFORM_BYTES / 4);

  private constructor(private readonly config: ModelConfig, readonly rows: number) {
    this.lengths = new Array(rows).fill(0);
  }

  static async create(pool: BufferPool, kernels: Kernels, config: ModelConfig, rows: number): Promise<KvCache> {
    const cache = new KvCache(config, rows);
    const bytes = rows * config.nKvHeads * config.seqLen * headSize(config) * 4;
    for (let l = 0; l < config.nLayers; l++) {
      cache.keys.push(await pool.acquire(`l${l}.k_cache`, bytes));
      cache.values.push(await pool.acquire(`l${l}.v_cache`, bytes));
    }
    if (rows > 1) {
      cache.forkParams = await pool.acquire('kv_fork_params', FORK_UNIFORM_BYTES, UNIFORM);
      const shape = { nKvHeads: config.nKvHeads, seqLen: config.seqLen, headSize: headSize(config) };
      cache.forkCalls = await Promise.all([...cache.keys, ...cache.values].map((buffer, i) =>
        kernels.kvFork(`kv_fork.${i}`, shape, { params: cache.forkParams, cache: buffer })));
    }
    return cache;
  }

  /** Throws unless `count` more positions fit in `row`. */
  checkRoom(row: number, count: number): void {
    if (this.lengths[row] + count > this.config.seqLen) {
      throw new ContextOverflowError(
        `row ${row} holds ${this.lengths[row]} positions; ${count} more exceed the context of ${this.config.seqLen}`,
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
    for (const d of targets) this.lengths[d] = positions;
    if (targets.length === 0 || positions === 0) return;
    this.forkUniform.fill(0);
    this.forkUniform.set([src, positions, targets.length, 0, ...targets]);
    queue.writeBuffer(this.forkParams, 0, this.forkUniform);
    const pass = encoder.beginComputePass({ label: 'kv fork' });
    encodeCalls(pass, this.forkCalls, { positions, destinations: targets.length });
    pass.end();
  }

  private checkRow(row: number): void {
    if (!Number.isInteger(row) || row < 0 || row >= this.rows) throw new RangeError(`KV row ${row} does not exist (rows: ${this.rows})`);
  }

  /** Forgets positions ≥ `length` of a row (the data stays; attention never reads past pos). */
  rollback(row: number, length: number): void {
    this.checkRow(row);
    if (length < 0 || length > this.lengths[row]) throw new RangeError(`cannot roll row ${row} back to ${length}`);
    this.lengths[row] = length;
  }

  release(pool: BufferPool): void {
    [...this.keys, ...this.values].forEach((b) => pool.release(b));
    if (this.forkParams) pool.release(this.forkParams);
  }
}
