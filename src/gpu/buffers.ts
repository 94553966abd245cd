// GPU buffers: allocation inside error scopes (so out-of-memory becomes a typed error instead of a
// silently invalid buffer), and a pool that hands out reusable buffers by (usage, size).
import { GpuAllocationError } from '../errors.ts';
import type { GpuContext } from './device.ts';

// The WebGPU spec's flag values, spelled out so importing this module needs no WebGPU globals
// (a page without WebGPU must still load the library and get a typed error).
const USAGE = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80 } as const;
export const MAP_MODE_READ = 0x1;
export const STORAGE = USAGE.STORAGE | USAGE.COPY_DST | USAGE.COPY_SRC;
export const UNIFORM = USAGE.UNIFORM | USAGE.COPY_DST;
export const READBACK = USAGE.MAP_READ | USAGE.COPY_DST;

const align4 = (n: number) => Math.ceil(n / 4) * 4;

/** Creates a buffer; rejects with GpuAllocationError if the device refuses it. */
export async function createBufferChecked(ctx: GpuContext, label: string, size: number, usage: GPUBufferUsageFlags): Promise<GPUBuffer> {
  ctx.assertAlive();
  const limit = ctx.device.limits.maxBufferSize;
  if (size > limit) throw new GpuAllocationError(`buffer ${label} needs ${size} bytes, over the device limit of ${limit}`);
  ctx.device.pushErrorScope('out-of-memory');
  ctx.device.pushErrorScope('validation');
  const buffer = ctx.device.createBuffer({ label, size: Math.max(16, align4(size)), usage });
  const validation = await ctx.device.popErrorScope();
  const oom = await ctx.device.popErrorScope();
  const error = oom ?? validation;
  if (error) {
    buffer.destroy();
    throw new GpuAllocationError(`could not allocate ${label} (${size} bytes): ${error.message}`);
  }
  return buffer;
}

/** Uploads `data` into a new storage buffer. */
export async function uploadStorage(ctx: GpuContext, label: string, data: Float32Array | Uint32Array): Promise<GPUBuffer> {
  const buffer = await createBufferChecked(ctx, label, data.byteLength, STORAGE);
  ctx.device.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, data.byteLength);
  return buffer;
}

/**
 * Reusable buffers keyed by usage and size: sessions release their activations here, so a new
 * session of the same shape allocates nothing.
 */
export class BufferPool {
  private free = new Map<string, GPUBuffer[]>();
  private owned = new Set<GPUBuffer>();
  constructor(private readonly ctx: GpuContext) {}

  async acquire(label: string, size: number, usage: GPUBufferUsageFlags = STORAGE): Promise<GPUBuffer> {
    const key = `${usage}:${Math.max(16, align4(size))}`;
    const reused = this.free.get(key)?.pop();
    if (reused) return reused;
    const buffer = await createBufferChecked(this.ctx, label, size, usage);
    this.owned.add(buffer);
    return buffer;
  }

  release(buffer: GPUBuffer): void {
    if (!this.owned.has(buffer)) return;
    const key = `${buffer.usage}:${buffer.size}`;
    const list = this.free.get(key) ?? [];
    list.push(buffer);
    this.free.set(key, list);
  }

  /** Destroys a buffer of the pool at once (one that will not be wanted again at this size). */
  discard(buffer: GPUBuffer): void {
    if (!this.owned.delete(buffer)) return;
    const list = this.free.get(`${buffer.usage}:${buffer.size}`);
    if (list?.includes(buffer)) list.splice(list.indexOf(buffer), 1);
    buffer.destroy();
  }

  /** Bytes held by the pool, in use or free. */
  get bytes(): number {
    let total = 0;
    for (const b of this.owned) total += b.size;
    return total;
  }

  destroy(): void {
    for (const b of this.owned) b.destroy();
    this.owned.clear();
    this.free.clear();
  }
}
