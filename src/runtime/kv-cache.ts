// The KV cache: per layer, one key and one value buffer laid out [row][kvHead][seqLen][headSize],
// preallocated for the whole context. A row's length is the number of positions it holds;
// positions at or beyond the context are an error, never a silent wrap.
import { ContextOverflowError } from '../errors.ts';
import type { BufferPool } from '../gpu/buffers.ts';
import { type ModelConfig, headSize } from '../model/checkpoint.ts';

export class KvCache {
  readonly keys: GPUBuffer[] = [];
  readonly values: GPUBuffer[] = [];
  /** Filled positions per row. */
  readonly lengths: number[];

  private constructor(private readonly config: ModelConfig, readonly rows: number) {
    this.lengths = new Array(rows).fill(0);
  }

  static async create(pool: BufferPool, config: ModelConfig, rows: number): Promise<KvCache> {
    const cache = new KvCache(config, rows);
    const bytes = rows * config.nKvHeads * config.seqLen * headSize(config) * 4;
    for (let l = 0; l < config.nLayers; l++) {
      cache.keys.push(await pool.acquire(`l${l}.k_cache`, bytes));
      cache.values.push(await pool.acquire(`l${l}.v_cache`, bytes));
    }
    return cache;
  }

  get seqLen(): number {
    return this.config.seqLen;
  }

  /** Throws unless `count` more positions fit in `row`. */
  checkRoom(row: number, count: number): void {
    if (this.lengths[row] + count > this.config.seqLen) {
      throw new ContextOverflowError(
        `row ${row} holds ${this.lengths[row]} positions; ${count} more exceed the context of ${this.config.seqLen}`,
      );
    }
  }

  /** Forgets positions ≥ `length` of a row (the data stays; attention never reads past pos). */
  rollback(row: number, length: number): void {
    if (length < 0 || length > this.lengths[row]) throw new RangeError(`cannot roll row ${row} back to ${length}`);
    this.lengths[row] = length;
  }

  release(pool: BufferPool): void {
    [...this.keys, ...this.values].forEach((b) => pool.release(b));
  }
}
