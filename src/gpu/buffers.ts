// GPU buffers: allocation inside error scopes (so out-of-memory becomes a typed error instead of a
// silently invalid buffer), a pool that hands out reusable buffers by (usage, size), and a registry
// of every live buffer by owner, per device context (gpuMemory; Engine.memory()).
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

/**
 * Who a buffer belongs to: 'weights' (model tensors, RoPE table), 'kv' (KV cache and its fork
 * uniform), 'activations' (a session's per-step buffers), 'readback' (MAP_READ staging),
 * 'uniforms' (other uniform buffers, e.g. the Step), 'srgen' (SRGen's hidden-state history and
 * reflection buffers).
 */
export type BufferOwner = 'weights' | 'kv' | 'activations' | 'readback' | 'uniforms' | 'srgen';
// (A pool's released buffers count as 'pool' until they are acquired again.)

/** GPU memory held by live buffers: bytes in all and by owner. */
export interface GpuMemory {
  total: number;
  byOwner: Record<string, number>;
  /** Live buffers. */
  buffers: number;
}

/** The owner of a buffer its creator did not name: by usage, then by the labels the runtime gives. */
export function ownerOf(label: string, usage: GPUBufferUsageFlags): BufferOwner {
  if (usage & USAGE.MAP_READ) return 'readback';
  if (/(^|\.)[kv]_cache$|^kv_/.test(label)) return 'kv';
  if (/^(hidden_history|xent_)/.test(label)) return 'srgen';
  if (/^(embedding|classifier|rope|output_norm|l\d+\.(attn_norm|ffn_norm|wqkv|qkv_bias|qk_norm|wo|w13|w2))/.test(label)) return 'weights';
  if (usage & USAGE.UNIFORM) return 'uniforms';
  return 'activations';
}

interface Entry {
  owner: string;
  label: string;
  size: number;
}

/** Live buffers per device context; a buffer leaves when it is destroyed. */
const registries = new WeakMap<GpuContext, Map<GPUBuffer, Entry>>();

function registry(ctx: GpuContext): Map<GPUBuffer, Entry> {
  let r = registries.get(ctx);
  if (!r) registries.set(ctx, (r = new Map()));
  return r;
}

/** Counts `buffer` until its destroy() (whoever calls it: the pool, the weights, the readback ring). */
function register(ctx: GpuContext, buffer: GPUBuffer, owner: string, label: string): void {
  const live = registry(ctx);
  live.set(buffer, { owner, label, size: buffer.size });
  const destroy = buffer.destroy;
  buffer.destroy = function (this: GPUBuffer) {
    live.delete(buffer);
    return destroy.call(buffer);
  };
}

function relabel(ctx: GpuContext, buffer: GPUBuffer, owner: string, label: string): void {
  const e = registry(ctx).get(buffer);
  if (e) Object.assign(e, { owner, label });
}

/** Bytes of every live buffer created through createBufferChecked on `ctx`, by owner. */
export function gpuMemory(ctx: GpuContext): GpuMemory {
  const byOwner: Record<string, number> = {};
  let total = 0;
  let buffers = 0;
  for (const e of registry(ctx).values()) {
    byOwner[e.owner] = (byOwner[e.owner] ?? 0) + e.size;
    total += e.size;
    buffers++;
  }
  return { total, byOwner, buffers };
}

/** The live buffers of `ctx` (label, owner, bytes), largest first: what a leak consists of. */
export function liveBuffers(ctx: GpuContext): Entry[] {
  return [...registry(ctx).values()].sort((a, b) => b.size - a.size);
}

/**
 * Creates a buffer; rejects with GpuAllocationError if the device refuses it. It is counted in
 * gpuMemory(ctx) under `owner` (default: ownerOf(label, usage)) until destroyed.
 */
export async function createBufferChecked(
  ctx: GpuContext, label: string, size: number, usage: GPUBufferUsageFlags, owner: string = ownerOf(label, usage),
): Promise<GPUBuffer> {
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
  register(ctx, buffer, owner, label);
  return buffer;
}

/** Uploads `data` into a new storage buffer (owner 'weights' unless named). */
export async function uploadStorage(
  ctx: GpuContext, label: string, data: Float32Array | Uint32Array, owner: string = 'weights',
): Promise<GPUBuffer> {
  const buffer = await createBufferChecked(ctx, label, data.byteLength, STORAGE, owner);
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

  async acquire(
    label: string, size: number, usage: GPUBufferUsageFlags = STORAGE, owner: string = ownerOf(label, usage),
  ): Promise<GPUBuffer> {
    const key = `${usage}:${Math.max(16, align4(size))}`;
    const reused = this.free.get(key)?.pop();
    if (reused) {
      relabel(this.ctx, reused, owner, label);
      return reused;
    }
    const buffer = await createBufferChecked(this.ctx, label, size, usage, owner);
    this.owned.add(buffer);
    return buffer;
  }

  /** Returns a buffer for reuse; until then it counts as owner 'pool' (free, kept for reuse). */
  release(buffer: GPUBuffer): void {
    if (!this.owned.has(buffer)) return;
    const key = `${buffer.usage}:${buffer.size}`;
    const list = this.free.get(key) ?? [];
    if (list.includes(buffer)) return; // released twice: it must not be handed out twice
    relabel(this.ctx, buffer, 'pool', buffer.label);
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
