// Kernel micro-benchmark, the part that runs on a GpuContext wherever it came from: Node's
// `webgpu` package (bench/kernels.ts) or navigator.gpu in Chromium (bench/pages/kernels.html).
//
// What is timed, each launch on its own (one compute pass per repetition, its own submit):
//  copy          Kernels.copy over a 36.9 MB buffer (the size of stories15M's classifier): the
//                memory roofline. Read GB/s = bytes / time, read+write GB/s = 2 · bytes / time.
//                Several workgroup counts are tried; the fastest is the roofline.
//  read stream   a bench-local WGSL kernel that only reads the same 36.9 MB (vec4 sums, one
//                write per invocation): what reading alone costs, for comparison
//                (`ratioToReadStream`), since the copy also pays for writing 36.9 MB.
//  gemv          Kernels.matmul, rowsPerInvocation 1, at stories15M's decode shapes (in × out):
//                288×864 (q|k|v), 288×288 (wo, accumulating), 288×1536 (w1|w3), 768×288 (w2,
//                accumulating) and 288×32000 (the classifier as a plain GEMV).
//  lm_head       Kernels.lmHeadStats, dim 288, vocab 32000, topK 8, one stats row: the fused LM
//                head (SessionOptions.head 'fused': partials + merge), and each of its two launches.
//  logits_stats  Kernels.logitsStats over 32000 logits, and its partials launch alone: with
//                "gemv classifier", the split head a decode step runs by default.
// GB/s = the bytes named in `bytesWhat` (the weight bytes for gemv and lm_head) / time;
// `ratioToCopyRead` divides that by the copy roofline's read GB/s.
//
// How it is timed. Every kernel is set up and checked first; then each repetition is recorded
// beforehand, submitted alone and awaited with queue.onSubmittedWorkDone() (wall clock,
// performance.now()), repetitions interleaved across kernels (rep 1 of each, rep 2 of each, …)
// so that load from other processes hits all kernels alike; the same pass also writes
// timestamp queries at its beginning and end when the device has 'timestamp-query'. `ms` is the
// median timestamp duration when timestamps work, else the median wall time minus the median
// wall time of an empty pass (the submit + completion latency, reported as `empty`). Every
// kernel's output is checked once against a CPU reference before it is timed.
import type { GpuContext } from '../src/gpu/device.ts';
import { MAP_MODE_READ, READBACK, STORAGE, UNIFORM, createBufferChecked } from '../src/gpu/buffers.ts';
import {
  Kernels, LM_PARTIALS_PER_ROW, LM_PARTIAL_BYTES, STEP_UNIFORM_BYTES, TOKEN_SLOT_BYTES, statsRecordWords,
} from '../src/gpu/kernels.ts';
import { type KernelCall, type StepShape, encodeCalls } from '../src/gpu/pipelines.ts';
import { parseStats } from '../src/runtime/stats.ts';

const QUERY_RESOLVE = 0x200;

const COPY_SRC = 0x4;

/** stories15M's shapes. */
export const MODEL = { dim: 288, hidden: 768, layers: 6, vocab: 32000, qkv: 864 } as const;
const COPY_BYTES = MODEL.dim * MODEL.vocab * 4; // 36,864,000: the classifier's size
const TOP_K = 8;

export interface KernelBenchOptions {
  /** Measured repetitions per kernel (≥ 10; default 20). */
  reps?: number;
  /** Unmeasured launches before them (default 3). */
  warmup?: number;
  /** Workgroup counts tried for the copy kernel (64 invocations each, grid-stride loop). */
  copyWorkgroups?: number[];
  /** Workgroup counts tried for the bench-local read-only stream. */
  readWorkgroups?: number[];
  /**
   * Launches recorded back to back in each timed pass, the time divided by it (default 1). On a
   * real GPU single launches of these sizes take microseconds, below the submit latency; more
   * launches per pass amortise it (but a 36.9 MB operand may then stay in a large L2).
   */
  launchesPerPass?: number;
}

export interface Stat {
  median: number;
  min: number;
  max: number;
  n: number;
}

export interface KernelMeasurement {
  name: string;
  group: 'copy' | 'read_stream' | 'gemv' | 'lm_head' | 'logits_stats';
  /** in × out for matmuls, e.g. 288×864. */
  shape: string;
  launches: number;
  bytes: number;
  bytesWhat: string;
  /** Timestamp-query duration of the pass, when the device has timestamps. */
  gpuMs?: Stat;
  /** Submit → onSubmittedWorkDone, wall clock. */
  wallMs: Stat;
  /** Median wall time minus the median empty-pass wall time. */
  wallNetMs: number;
  /** The time GB/s is computed from (see `method`). */
  ms: number;
  method: 'timestamp' | 'wall-minus-empty';
  gbps: number;
  /** For the copy: 2 · bytes / ms. */
  readWriteGbps?: number;
  ratioToCopyRead?: number;
  /** gbps / the fastest read stream's GB/s. */
  ratioToReadStream?: number;
  check: { ok: boolean; detail: string };
  /** Only for copy: this workgroup count is the roofline. */
  roofline?: boolean;
}

export interface KernelBenchReport {
  env: string;
  date: string;
  adapter: GpuContext['adapter'];
  features: string[];
  timestamps: boolean;
  /** Why timestamps were not used, if they exist but look wrong. */
  timestampNote?: string;
  reps: number;
  warmup: number;
  /** Launches per timed pass; every time is per launch. */
  launchesPerPass: number;
  empty: { wallMs: Stat; gpuMs?: Stat };
  copy: { readGbps: number; readWriteGbps: number; workgroups: number; bytes: number };
  /** The fastest bench-local read-only stream (reads the same 36.9 MB, writes almost nothing). */
  readStream?: { readGbps: number; workgroups: number };
  /**
   * Weight bytes one stories15M decode step reads, and the decode rates that reading them at the
   * copy's read GB/s, or at the read stream's, would allow (activations and KV cache ignored).
   */
  decodeRoofline: { weightBytesPerToken: number; tokPerSecAtCopyRead: number; tokPerSecAtReadStream?: number };
  kernels: KernelMeasurement[];
  allChecksOk: boolean;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const stat = (xs: number[]): Stat => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length });

/** Deterministic uniform(-scale, scale) floats (mulberry32). */
function randomFloats(n: number, seed: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

/**
 * Times sets of launches: one pass per repetition, its own submit, timestamps when available.
 * Repetitions are interleaved across the sets (rep 1 of every set, then rep 2, …), so drift on
 * the shared machine hits every kernel alike.
 */
class Timer {
  private querySet?: GPUQuerySet;
  private resolveBuf?: GPUBuffer;
  private readBuf?: GPUBuffer;
  constructor(
    private readonly ctx: GpuContext,
    private readonly reps: number,
    private readonly warmup: number,
    private readonly perPass = 1,
  ) {}

  private encode(calls: readonly KernelCall[], shape: StepShape, query?: number): GPUCommandBuffer {
    const enc = this.ctx.device.createCommandEncoder({ label: 'bench' });
    const pass = enc.beginComputePass(
      this.querySet && query !== undefined
        ? { label: 'bench', timestampWrites: { querySet: this.querySet, beginningOfPassWriteIndex: 2 * query, endOfPassWriteIndex: 2 * query + 1 } }
        : { label: 'bench' },
    );
    for (let i = 0; i < this.perPass; i++) encodeCalls(pass, calls, shape);
    pass.end();
    return enc.finish();
  }

  async measureAll(sets: readonly (readonly KernelCall[])[], shape: StepShape): Promise<{ wall: number[]; gpu?: number[] }[]> {
    const { device } = this.ctx;
    const queries = sets.length * this.reps;
    if (this.ctx.hasTimestamps) {
      this.querySet = device.createQuerySet({ label: 'bench timestamps', type: 'timestamp', count: 2 * queries });
      this.resolveBuf = device.createBuffer({ label: 'bench timestamps resolve', size: 16 * queries, usage: QUERY_RESOLVE | COPY_SRC });
      this.readBuf = device.createBuffer({ label: 'bench timestamps read', size: 16 * queries, usage: READBACK });
    }
    for (const calls of sets) {
      for (let i = 0; i < this.warmup; i++) {
        device.queue.submit([this.encode(calls, shape)]);
        await device.queue.onSubmittedWorkDone();
      }
    }
    const walls: number[][] = sets.map(() => []);
    for (let r = 0; r < this.reps; r++) {
      for (let k = 0; k < sets.length; k++) {
        const cb = this.encode(sets[k], shape, k * this.reps + r);
        const t0 = performance.now();
        device.queue.submit([cb]);
        await device.queue.onSubmittedWorkDone();
        walls[k].push((performance.now() - t0) / this.perPass);
      }
    }
    if (!this.querySet) return walls.map((wall) => ({ wall }));
    const enc = device.createCommandEncoder({ label: 'bench resolve' });
    enc.resolveQuerySet(this.querySet, 0, 2 * queries, this.resolveBuf!, 0);
    enc.copyBufferToBuffer(this.resolveBuf!, 0, this.readBuf!, 0, 16 * queries);
    device.queue.submit([enc.finish()]);
    await this.readBuf!.mapAsync(MAP_MODE_READ);
    const t = new BigUint64Array(this.readBuf!.getMappedRange().slice(0));
    this.readBuf!.unmap();
    return walls.map((wall, k) => {
      const gpu: number[] = [];
      for (let r = 0; r < this.reps; r++) {
        const q = k * this.reps + r;
        gpu.push(Number(t[2 * q + 1] - t[2 * q]) / 1e6 / this.perPass);
      }
      return { wall, gpu };
    });
  }

  destroy(): void {
    this.querySet?.destroy();
    this.resolveBuf?.destroy();
    this.readBuf?.destroy();
  }
}

/** Copies [offset, offset + size) of a GPU buffer to the CPU. */
async function readBack(ctx: GpuContext, src: GPUBuffer, offset: number, size: number): Promise<ArrayBuffer> {
  const staging = await createBufferChecked(ctx, 'bench readback', size, READBACK);
  const enc = ctx.device.createCommandEncoder();
  enc.copyBufferToBuffer(src, offset, staging, 0, size);
  ctx.device.queue.submit([enc.finish()]);
  await staging.mapAsync(MAP_MODE_READ);
  const bytes = staging.getMappedRange().slice(0);
  staging.unmap();
  staging.destroy();
  return bytes;
}

async function upload(ctx: GpuContext, label: string, data: Float32Array | Uint32Array, usage = STORAGE): Promise<GPUBuffer> {
  const b = await createBufferChecked(ctx, label, data.byteLength, usage);
  ctx.device.queue.writeBuffer(b, 0, data.buffer, data.byteOffset, data.byteLength);
  return b;
}

async function runOnce(ctx: GpuContext, calls: readonly KernelCall[], shape: StepShape): Promise<void> {
  const enc = ctx.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  encodeCalls(pass, calls, shape);
  pass.end();
  ctx.device.queue.submit([enc.finish()]);
  await ctx.device.queue.onSubmittedWorkDone();
}

/** y = x·W in float64, W stored [k][n] row-major (the kernels' transposed layout). */
function cpuGemv(x: Float32Array, w: Float32Array, k: number, n: number): Float64Array {
  const y = new Float64Array(n);
  for (let i = 0; i < k; i++) {
    const xi = x[i];
    const row = i * n;
    for (let j = 0; j < n; j++) y[j] += xi * w[row + j];
  }
  return y;
}

function cpuStats(z: ArrayLike<number>) {
  let m = -Infinity;
  let argmax = 0;
  for (let i = 0; i < z.length; i++) if (z[i] > m) ((m = z[i]), (argmax = i));
  let s = 0;
  let a = 0;
  for (let i = 0; i < z.length; i++) {
    const e = Math.exp(z[i] - m);
    s += e;
    a += e * (z[i] - m);
  }
  const lse = m + Math.log(s);
  return { lse, entropy: Math.log(s) - a / s, argmax };
}

function checkStats(bytes: ArrayBuffer, z: ArrayLike<number>): { ok: boolean; detail: string } {
  const [s] = parseStats(bytes, 1, TOP_K);
  const ref = cpuStats(z);
  const dl = Math.abs(s.lse - ref.lse);
  const dh = Math.abs(s.entropy - ref.entropy);
  const ok = s.argmax === ref.argmax && dl < 1e-3 && dh < 1e-3 && s.topK.length === TOP_K && s.topK[0].id === ref.argmax;
  return { ok, detail: `argmax ${s.argmax} (cpu ${ref.argmax}), |Δlse| ${dl.toExponential(1)}, |Δentropy| ${dh.toExponential(1)}` };
}

export async function runKernelBench(ctx: GpuContext, env: string, options: KernelBenchOptions = {}): Promise<KernelBenchReport> {
  const reps = Math.max(10, options.reps ?? 20);
  const warmup = options.warmup ?? 3;
  const copyWorkgroups = options.copyWorkgroups ?? [64, 256, 2048, COPY_BYTES / 16 / 64];
  const readWorkgroups = options.readWorkgroups ?? [64, 256, 2048];
  const kernels = new Kernels(ctx);
  const launchesPerPass = options.launchesPerPass ?? 1;
  const timer = new Timer(ctx, reps, warmup, launchesPerPass);
  const device = ctx.device;
  const owned: GPUBuffer[] = [];
  const keep = <T extends GPUBuffer>(b: T) => (owned.push(b), b);

  // The Step uniform and one token slot, as a session writes them for a one-token decode step.
  const u = new DataView(new ArrayBuffer(STEP_UNIFORM_BYTES));
  u.setUint32(0, 1, true); // n_tokens
  u.setUint32(4, 0, true); // stats_row_start
  u.setUint32(8, 1, true); // stats_rows
  u.setFloat32(20, 1, true); // inv_stats_temp
  u.setFloat32(24, 0, true); // inv_sample_temp: no sampling
  const step = keep(await createBufferChecked(ctx, 'bench step', STEP_UNIFORM_BYTES, UNIFORM));
  device.queue.writeBuffer(step, 0, u.buffer);
  const tokens = keep(await upload(ctx, 'bench tokens', new Uint32Array(TOKEN_SLOT_BYTES / 4)));
  const shape: StepShape = { nTokens: 1, statsRows: 1 };

  type Raw = Omit<KernelMeasurement, 'wallNetMs' | 'ms' | 'method' | 'gbps' | 'ratioToCopyRead' | 'gpuMs' | 'wallMs'> & { wall: number[]; gpu?: number[] };
  // Every kernel is set up and checked first, then all are timed together (interleaved).
  const pending: { meta: Omit<Raw, 'wall' | 'gpu'>; calls: readonly KernelCall[] }[] = [];
  const measure = (meta: Omit<Raw, 'wall' | 'gpu'>, calls: readonly KernelCall[]) => {
    pending.push({ meta, calls });
  };

  try {

    // (a) copy: the roofline; and a read-only stream for comparison (bench-local WGSL).
    {
      // Small integers as floats: the copy is checked bit for bit, the read stream's sums exactly.
      const data = new Float32Array(COPY_BYTES / 4);
      for (let i = 0; i < data.length; i++) data[i] = i % 7;
      const src = keep(await upload(ctx, 'bench copy src', data));
      const dst = keep(await createBufferChecked(ctx, 'bench copy dst', COPY_BYTES, STORAGE));
      {
        for (const workgroups of copyWorkgroups) {
          const call = await kernels.copy(`copy/${workgroups}`, { src, dst }, workgroups);
          device.queue.writeBuffer(dst, 0, new Float32Array(16).fill(-1));
          await runOnce(ctx, [call], shape);
          const probe = async (offset: number) => {
            const got = new Float32Array(await readBack(ctx, dst, offset, 64));
            return got.every((v, i) => v === data[offset / 4 + i]);
          };
          const ok = (await probe(0)) && (await probe(COPY_BYTES / 2)) && (await probe(COPY_BYTES - 64));
          measure({
            name: `copy (${workgroups} workgroups × 64)`, group: 'copy', shape: `${(COPY_BYTES / 1e6).toFixed(1)} MB`,
            launches: 1, bytes: COPY_BYTES, bytesWhat: 'bytes read (as many written)',
            check: { ok, detail: ok ? 'dst == src at start, middle, end' : 'dst != src' },
          }, [call]);
        }
        for (const workgroups of readWorkgroups) {
          const call = await kernels.readStream(`read_stream/${workgroups}`, { src, dst }, workgroups);
          await runOnce(ctx, [call], shape);
          const sums = new Float32Array(await readBack(ctx, dst, 0, workgroups * 64 * 16));
          let total = 0;
          for (const v of sums) total += v;
          let expected = 0;
          for (let i = 0; i < data.length; i++) expected += data[i];
          const ok = total === expected;
          measure({
            name: `read stream (${workgroups} workgroups × 64)`, group: 'read_stream', shape: `${(COPY_BYTES / 1e6).toFixed(1)} MB`,
            launches: 1, bytes: COPY_BYTES, bytesWhat: 'bytes read (bench-local WGSL: vec4 sums, one write per invocation)',
            check: { ok, detail: `Σ ${total} (cpu ${expected})` },
          }, [call]);
        }
      }
    }

    // (b) GEMV at the model's decode shapes, and the classifier as a plain GEMV.
    const wclsHost = randomFloats(MODEL.dim * MODEL.vocab, 7, 0.1);
    const wcls = keep(await upload(ctx, 'bench wcls', wclsHost));
    const hiddenHost = randomFloats(MODEL.dim, 11);
    const gemvs = [
      { name: 'gemv q,k,v', k: MODEL.dim, n: MODEL.qkv, accumulate: false },
      { name: 'gemv wo (+=)', k: MODEL.dim, n: MODEL.dim, accumulate: true },
      { name: 'gemv w1,w3', k: MODEL.dim, n: 2 * MODEL.hidden, accumulate: false },
      { name: 'gemv w2 (+=)', k: MODEL.hidden, n: MODEL.dim, accumulate: true },
      { name: 'gemv classifier', k: MODEL.dim, n: MODEL.vocab, accumulate: false },
    ];
    for (const g of gemvs) {
      const isCls = g.n === MODEL.vocab;
      const wHost = isCls ? wclsHost : randomFloats(g.k * g.n, g.k * 31 + g.n, 0.1);
      const xHost = isCls ? hiddenHost : randomFloats(g.k, g.n);
      const w = isCls ? wcls : keep(await upload(ctx, `bench ${g.name} w`, wHost));
      const x = keep(await upload(ctx, `bench ${g.name} x`, xHost));
      const y = keep(await createBufferChecked(ctx, `bench ${g.name} y`, g.n * 4, STORAGE));
      const call = await kernels.matmul(g.name, { k: g.k, n: g.n, accumulate: g.accumulate, rowsPerInvocation: 1 }, { step, x, w, y });
      device.queue.writeBuffer(y, 0, new Float32Array(g.n));
      await runOnce(ctx, [call], shape);
      const got = new Float32Array(await readBack(ctx, y, 0, g.n * 4));
      const ref = cpuGemv(xHost, wHost, g.k, g.n);
      let err = 0;
      for (let j = 0; j < g.n; j++) err = Math.max(err, Math.abs(got[j] - ref[j]));
      const ok = err < 1e-4;
      measure({
        name: g.name, group: 'gemv', shape: `${g.k}×${g.n}`, launches: 1, bytes: g.k * g.n * 4, bytesWhat: 'weight bytes',
        check: { ok, detail: `max |y − cpu| ${err.toExponential(1)}` },
      }, [call]);
    }

    // (c) the fused LM head + statistics, one stats row.
    const hidden = keep(await upload(ctx, 'bench hidden', hiddenHost));
    const partials = keep(await createBufferChecked(ctx, 'bench partials', LM_PARTIALS_PER_ROW * LM_PARTIAL_BYTES, STORAGE));
    const partialTopK = keep(await createBufferChecked(ctx, 'bench partial topk', LM_PARTIALS_PER_ROW * 2 * TOP_K * 4, STORAGE));
    const stats = keep(await createBufferChecked(ctx, 'bench stats', statsRecordWords(TOP_K) * 4, STORAGE));
    const statsBytes = statsRecordWords(TOP_K) * 4;
    const partialBytes = LM_PARTIALS_PER_ROW * (LM_PARTIAL_BYTES + 2 * TOP_K * 4);
    {
      const head = await kernels.lmHeadStats('lm_head', { dim: MODEL.dim, topK: TOP_K }, {
        step, tokens, hidden, tiles: [{ buffer: wcls, firstId: 0, vocab: MODEL.vocab }], partials, partialTopK, stats,
      });
      await runOnce(ctx, head, shape);
      const check = checkStats(await readBack(ctx, stats, 0, statsBytes), cpuGemv(hiddenHost, wclsHost, MODEL.dim, MODEL.vocab));
      const base = { group: 'lm_head' as const, shape: `${MODEL.dim}×${MODEL.vocab}`, check };
      measure({ ...base, name: 'lm_head fused (partials + merge)', launches: 2, bytes: MODEL.dim * MODEL.vocab * 4, bytesWhat: 'weight bytes' }, head);
      measure({ ...base, name: 'lm_head partials only', launches: 1, bytes: MODEL.dim * MODEL.vocab * 4, bytesWhat: 'weight bytes' }, [head[0]]);
      measure({
        ...base, name: 'lm_head merge only', shape: `${LM_PARTIALS_PER_ROW} partials`, launches: 1, bytes: partialBytes,
        bytesWhat: 'partials + partial top-K bytes',
      }, [head[1]]);
    }

    // (d) the standalone statistics over 32000 logits.
    {
      const logitsHost = randomFloats(MODEL.vocab, 13, 8);
      const logits = keep(await upload(ctx, 'bench logits', logitsHost));
      const ls = await kernels.logitsStats('logits_stats', { vocab: MODEL.vocab, topK: TOP_K }, {
        step, tokens, logits, partials, partialTopK, stats,
      });
      await runOnce(ctx, ls, shape);
      const check = checkStats(await readBack(ctx, stats, 0, statsBytes), logitsHost);
      const base = { group: 'logits_stats' as const, shape: `${MODEL.vocab} logits`, check, bytes: MODEL.vocab * 4, bytesWhat: 'logit bytes' };
      measure({ ...base, name: 'logits_stats (partials + merge)', launches: 2 }, ls);
      measure({ ...base, name: 'logits_stats partials only', launches: 1 }, [ls[0]]);
    }

    const [empty, ...times] = await timer.measureAll([[], ...pending.map((p) => p.calls)], shape);
    const raws: Raw[] = pending.map((p, i) => ({ ...p.meta, ...times[i] }));

    // Which clock: timestamps, if they exist and agree with the wall clock on the big copies.
    const emptyWall = median(empty.wall);
    let useTimestamps = Boolean(empty.gpu);
    let timestampNote: string | undefined;
    if (useTimestamps) {
      const copies = raws.filter((r) => r.group === 'copy');
      const bad = raws.find((r) => !r.gpu || r.gpu.some((v) => !Number.isFinite(v) || v < 0));
      const ratio = median(copies.map((r) => median(r.gpu!) / Math.max(1e-6, median(r.wall) - emptyWall)));
      if (bad) timestampNote = `invalid timestamps for ${bad.name}`;
      else if (!(ratio > 0.3 && ratio < 1.5)) timestampNote = `copy timestamp / (wall − empty) = ${ratio.toFixed(2)}, outside [0.3, 1.5]`;
      if (timestampNote) useTimestamps = false;
    }
    const measured: KernelMeasurement[] = raws.map(({ wall, gpu, ...m }) => {
      const wallNetMs = Math.max(median(wall) - emptyWall, 1e-6);
      const ms = useTimestamps && gpu ? median(gpu) : wallNetMs;
      return {
        ...m,
        ...(gpu ? { gpuMs: stat(gpu) } : {}),
        wallMs: stat(wall),
        wallNetMs,
        ms,
        method: useTimestamps && gpu ? 'timestamp' : 'wall-minus-empty',
        gbps: m.bytes / (ms / 1000) / 1e9,
        ...(m.group === 'copy' ? { readWriteGbps: (2 * m.bytes) / (ms / 1000) / 1e9 } : {}),
      };
    });
    const copies = measured.filter((k) => k.group === 'copy');
    const best = copies.reduce((a, b) => (b.gbps > a.gbps ? b : a));
    best.roofline = true;
    const streams = measured.filter((k) => k.group === 'read_stream');
    const bestStream = streams.length ? streams.reduce((a, b) => (b.gbps > a.gbps ? b : a)) : undefined;
    for (const k of measured) {
      k.ratioToCopyRead = k.gbps / best.gbps;
      if (bestStream) k.ratioToReadStream = k.gbps / bestStream.gbps;
    }
    const workgroupsOf = (k: KernelMeasurement) => Number(/\((\d+)/.exec(k.name)?.[1]);
    const weightBytesPerToken = 4 * (MODEL.layers * (MODEL.dim * MODEL.qkv + MODEL.dim * MODEL.dim + MODEL.dim * 2 * MODEL.hidden + MODEL.hidden * MODEL.dim) + MODEL.dim * MODEL.vocab);
    return {
      env,
      date: new Date().toISOString(),
      adapter: ctx.adapter,
      features: [...device.features].map(String).sort(),
      timestamps: useTimestamps,
      ...(timestampNote ? { timestampNote } : {}),
      reps,
      warmup,
      launchesPerPass,
      empty: { wallMs: stat(empty.wall), ...(empty.gpu ? { gpuMs: stat(empty.gpu) } : {}) },
      copy: { readGbps: best.gbps, readWriteGbps: best.readWriteGbps!, workgroups: workgroupsOf(best), bytes: COPY_BYTES },
      ...(bestStream ? { readStream: { readGbps: bestStream.gbps, workgroups: workgroupsOf(bestStream) } } : {}),
      decodeRoofline: {
        weightBytesPerToken,
        tokPerSecAtCopyRead: (best.gbps * 1e9) / weightBytesPerToken,
        ...(bestStream ? { tokPerSecAtReadStream: (bestStream.gbps * 1e9) / weightBytesPerToken } : {}),
      },
      kernels: measured,
      allChecksOk: measured.every((k) => k.check.ok),
    };
  } finally {
    timer.destroy();
    owned.forEach((b) => b.destroy());
  }
}

/** The Markdown table of one report. */
export function kernelTable(r: KernelBenchReport): string {
  const f = (x: number | undefined, d = 3) => (x === undefined ? '—' : x.toFixed(d));
  const mb = (b: number) => (b >= 1e6 ? `${(b / 1e6).toFixed(2)} MB` : `${(b / 1e3).toFixed(1)} KB`);
  return [
    '| kernel | shape | bytes counted | GPU ms (timestamps) | wall ms | wall − empty ms | GB/s | × copy read | × read stream | check |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---|',
    ...r.kernels.map(
      (k) =>
        `| ${k.name}${k.roofline ? ' **roofline**' : ''} | ${k.shape} | ${mb(k.bytes)} | ${f(k.gpuMs?.median)} | ${f(k.wallMs.median)} ` +
        `| ${f(k.wallNetMs)} | ${f(k.gbps, 2)}${k.readWriteGbps !== undefined ? ` (r+w ${f(k.readWriteGbps, 2)})` : ''} ` +
        `| ${f(k.ratioToCopyRead, 2)} | ${f(k.ratioToReadStream, 2)} | ${k.check.ok ? 'ok' : 'FAILED: ' + k.check.detail} |`,
    ),
  ].join('\n');
}

/** One-paragraph header of a report: environment, clock, empty-submit latency, roofline. */
export function kernelHeader(r: KernelBenchReport): string {
  const a = r.adapter;
  return (
    `${r.env}: adapter ${a.vendor}/${a.architecture}${a.description ? ` (${a.description})` : ''}; ` +
    `${r.reps} reps (median) after ${r.warmup} warm-up${r.launchesPerPass > 1 ? `, ${r.launchesPerPass} launches per pass` : ''}; GB/s from ${r.timestamps ? 'timestamp queries' : 'wall clock − empty submit'}` +
    `${r.timestampNote ? ` (timestamps not used: ${r.timestampNote})` : ''}; ` +
    `empty submit→done ${r.empty.wallMs.median.toFixed(3)} ms wall` +
    `${r.empty.gpuMs ? `, ${r.empty.gpuMs.median.toFixed(3)} ms timestamps` : ''}; ` +
    `copy roofline ${r.copy.readGbps.toFixed(2)} GB/s read, ${r.copy.readWriteGbps.toFixed(2)} GB/s read+write ` +
    `${r.readStream ? `(read-only stream ${r.readStream.readGbps.toFixed(2)} GB/s) ` : ''}` +
    `→ stories15M decode bound ${r.decodeRoofline.tokPerSecAtCopyRead.toFixed(0)} tok/s at copy read` +
    `${r.decodeRoofline.tokPerSecAtReadStream ? `, ${r.decodeRoofline.tokPerSecAtReadStream.toFixed(0)} tok/s at read stream` : ''} ` +
    `(${(r.decodeRoofline.weightBytesPerToken / 1e6).toFixed(1)} MB of weights per token)`
  );
}
