// Timestamp-query profiler of the forward graph's kernel launches (`npm run bench:profile`).
//
// While a Session has a profiler (`session.profiler = new KernelProfiler(ctx)`), each step
// encodes every kernel call in its own compute pass with timestamp writes at the pass's beginning
// and end (core WebGPU has no timestamps inside a pass), resolves the queries in the step's
// command encoder and copies them to a mappable buffer; `read()` after the step returns each
// launch's label and GPU time. One pass per launch adds pass boundaries the normal path does not
// have, so the sum is an upper bound of the fused step; the shares per kernel family are what
// the profile is for. Without the device feature 'timestamp-query' the profiler cannot be made.
import type { GpuContext } from './device.ts';
import { MAP_MODE_READ, READBACK } from './buffers.ts';
import type { KernelCall } from './pipelines.ts';

const QUERY_RESOLVE = 0x200;
const COPY_SRC = 0x4;

export interface KernelTiming {
  label: string;
  family: KernelFamily;
  ms: number;
}

export type KernelFamily =
  | 'embed' | 'rmsnorm' | 'qkv' | 'rope_kv' | 'attention' | 'wo' | 'ffn w13' | 'swiglu' | 'w2' | 'lm head' | 'merge' | 'other';

/** The families of one decode step, in graph order. */
export const KERNEL_FAMILIES: readonly KernelFamily[] = [
  'embed', 'rmsnorm', 'qkv', 'rope_kv', 'attention', 'wo', 'ffn w13', 'swiglu', 'w2', 'lm head', 'merge', 'other',
];

/** The family of a forward-graph launch, from its label (model/forward.ts, gpu/kernels.ts). */
export function kernelFamily(label: string): KernelFamily {
  if (label === 'embed') return 'embed';
  if (/(^|\.)(attn_norm|ffn_norm)$/.test(label) || label === 'output_norm') return 'rmsnorm';
  if (/\.merge$/.test(label)) return 'merge';
  if (label.startsWith('lm_head')) return 'lm head';
  const m = /^l\d+\.(qkv|rope_kv|attention|wo|w13|swiglu|w2)(\.\d+)?$/.exec(label);
  if (!m) return 'other';
  return m[1] === 'w13' ? 'ffn w13' : (m[1] as KernelFamily);
}

export class KernelProfiler {
  private readonly querySet: GPUQuerySet;
  private readonly resolveBuffer: GPUBuffer;
  private readonly readBuffer: GPUBuffer;
  private labels: string[] = [];
  private mapped = false;

  /** Room for `maxCalls` launches per step. */
  constructor(ctx: GpuContext, readonly maxCalls = 1024) {
    if (!ctx.hasTimestamps) throw new Error("the device has no 'timestamp-query' feature: kernels cannot be profiled");
    const d = ctx.device;
    this.querySet = d.createQuerySet({ label: 'profile', type: 'timestamp', count: 2 * maxCalls });
    this.resolveBuffer = d.createBuffer({ label: 'profile resolve', size: 16 * maxCalls, usage: QUERY_RESOLVE | COPY_SRC });
    this.readBuffer = d.createBuffer({ label: 'profile read', size: 16 * maxCalls, usage: READBACK });
  }

  /**
   * Records `calls` into `encoder`, one timed compute pass per dispatch, then the query resolve
   * and copy: the Session's step does this instead of its single pass while profiling.
   */
  encode<S>(encoder: GPUCommandEncoder, calls: readonly KernelCall<S>[], shape: S): void {
    if (this.mapped) throw new Error('KernelProfiler: read() the previous step before the next one');
    this.labels = [];
    for (const call of calls) {
      const [x, y, z] = call.grid(shape);
      if (x === 0 || y === 0 || z === 0) continue;
      const i = this.labels.length;
      if (i >= this.maxCalls) throw new Error(`KernelProfiler: more than ${this.maxCalls} launches in a step`);
      const pass = encoder.beginComputePass({
        label: call.label,
        timestampWrites: { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 },
      });
      pass.setPipeline(call.pipeline);
      pass.setBindGroup(0, call.bindGroup);
      pass.dispatchWorkgroups(x, y, z);
      pass.end();
      this.labels.push(call.label);
    }
    if (this.labels.length === 0) return;
    const bytes = 16 * this.labels.length;
    encoder.resolveQuerySet(this.querySet, 0, 2 * this.labels.length, this.resolveBuffer, 0);
    encoder.copyBufferToBuffer(this.resolveBuffer, 0, this.readBuffer, 0, bytes);
    this.mapped = true;
  }

  /** The last profiled step's launches (after its submit): label, family, GPU ms. */
  async read(): Promise<KernelTiming[]> {
    if (!this.mapped) return [];
    const n = this.labels.length;
    await this.readBuffer.mapAsync(MAP_MODE_READ, 0, 16 * n);
    try {
      const t = new BigUint64Array(this.readBuffer.getMappedRange(0, 16 * n).slice(0));
      return this.labels.map((label, i) => ({
        label, family: kernelFamily(label), ms: t[2 * i + 1] >= t[2 * i] ? Number(t[2 * i + 1] - t[2 * i]) / 1e6 : NaN,
      }));
    } finally {
      this.readBuffer.unmap();
      this.mapped = false;
    }
  }

  destroy(): void {
    this.querySet.destroy();
    this.resolveBuffer.destroy();
    this.readBuffer.destroy();
  }
}

/** Milliseconds per family, summed over launches. */
export function byFamily(timings: readonly KernelTiming[]): Map<KernelFamily, number> {
  const out = new Map<KernelFamily, number>();
  for (const t of timings) out.set(t.family, (out.get(t.family) ?? 0) + t.ms);
  return out;
}
