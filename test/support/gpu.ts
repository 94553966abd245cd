// Helpers for the kernel unit tests: a WebGPU device from the `webgpu` package (SwiftShader when
// the machine has no GPU), buffers filled from typed arrays, the per-step uniform and token slots
// the graph kernels read, one-encoder runs with readback, a seeded PRNG, float64 references and a
// closeness assertion that names the worst element.
//
//   let gpu: GpuTest;
//   before(async () => { gpu = await GpuTest.create(); });
//   after(() => gpu.destroy());
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { create } from 'webgpu';
import { STORAGE, UNIFORM, createBufferChecked } from '../../src/gpu/buffers.ts';
import { type GpuContext, acquireGpu } from '../../src/gpu/device.ts';
import { Kernels, NO_TOKEN, STEP_UNIFORM_BYTES, TOKEN_SLOT_BYTES } from '../../src/gpu/kernels.ts';
import { type KernelCall, type StepShape, encodeCalls } from '../../src/gpu/pipelines.ts';
import { mulberry32 } from './random.ts';

export { mulberry32 };
import { ReadbackRing } from '../../src/gpu/readback.ts';

/** Unit roundoff of float32: round-to-nearest has relative error ≤ U; 1 ulp ≤ 2U relative. */
export const U = 2 ** -24;

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

/** The uniform `Step` of the graph kernels (32 bytes; see src/runtime/session.ts). */
export interface StepParams {
  nTokens: number;
  statsRowStart?: number;
  statsRows?: number;
  seed?: number;
  counter?: number;
  /** 1 / T_stats: lse, entropy and varentropy are those of s = z · invStatsTemp. */
  invStatsTemp?: number;
  /** 1 / T_sample; 0 = no GPU sampling (the sampled id is the argmax). */
  invSampleTemp?: number;
}

export interface TokenSlot {
  id: number;
  pos: number;
  row: number;
  /** The following token's id (teacher forcing); omitted: unknown (NO_TOKEN). */
  next?: number;
}

export function stepBytes(p: StepParams): ArrayBuffer {
  const bytes = new ArrayBuffer(STEP_UNIFORM_BYTES);
  const u = new DataView(bytes);
  u.setUint32(0, p.nTokens, true);
  u.setUint32(4, p.statsRowStart ?? 0, true);
  u.setUint32(8, p.statsRows ?? 0, true);
  u.setUint32(12, (p.seed ?? 0) >>> 0, true);
  u.setUint32(16, (p.counter ?? 0) >>> 0, true);
  u.setFloat32(20, p.invStatsTemp ?? 1, true);
  u.setFloat32(24, p.invSampleTemp ?? 0, true);
  return bytes;
}

/** Token slots (id, pos, row, next) as the shaders' `TokenSlot` array. */
export function slotWords(slots: readonly TokenSlot[]): Uint32Array {
  const words = new Uint32Array(Math.max(1, slots.length) * (TOKEN_SLOT_BYTES / 4));
  slots.forEach((s, i) => words.set([s.id, s.pos, s.row, s.next ?? NO_TOKEN], 4 * i));
  return words;
}

/** One device per test file, with the project's kernels and the buffers the tests created. */
export class GpuTest {
  readonly kernels: Kernels;
  private readonly owned = new Set<GPUBuffer>();
  private readonly readback: ReadbackRing;

  private constructor(readonly ctx: GpuContext) {
    this.kernels = new Kernels(ctx);
    this.readback = new ReadbackRing(ctx, 256);
  }

  /**
   * Dawn zero-fills workgroup memory at the start of every kernel that declares it. On SwiftShader
   * that makes the LM-head merge pipeline (16 KB of workgroup arrays) take 7–17 s to compile
   * instead of under 1 s, once per (dim, vocab, topK) specialisation, which alone would blow the
   * test budget; so the tests turn it off (Dawn's `disable_workgroup_init`). Results cannot change:
   * every kernel here writes each workgroup element before the barrier that precedes its reads
   * (merge: wg_partials[l], wg_topk[l·K + j]; softmax: wg_max[l], wg_sum[l]); a kernel that read
   * unwritten workgroup memory would now see garbage rather than zeros, which a test would notice
   * more readily. KERNELS_WORKGROUP_INIT=1 restores Dawn's default.
   */
  static async create(): Promise<GpuTest> {
    process.env.VK_ICD_FILENAMES ??= SWIFTSHADER_ICD;
    process.env.XDG_RUNTIME_DIR ??= tmpdir(); // else the Vulkan loader complains on every start
    const toggles = process.env.KERNELS_WORKGROUP_INIT ? [] : ['enable-dawn-features=disable_workgroup_init'];
    return new GpuTest(await acquireGpu({ gpu: create(toggles), mapWait: 'paced' }));
  }

  get device(): GPUDevice {
    return this.ctx.device;
  }

  /** A storage buffer holding `data`. */
  async upload(data: Float32Array | Uint32Array, label = 'data'): Promise<GPUBuffer> {
    const buffer = await createBufferChecked(this.ctx, label, data.byteLength, STORAGE);
    this.owned.add(buffer);
    this.write(buffer, data);
    return buffer;
  }

  /** A storage buffer of `words` 32-bit words, every one set to `fill` (NaN: "never written"). */
  async alloc(words: number, fill = Number.NaN, label = 'out'): Promise<GPUBuffer> {
    return this.upload(new Float32Array(words).fill(fill), label);
  }

  /** A storage buffer of `words` u32 words all equal to `fill`. */
  async allocU32(words: number, fill: number, label = 'out'): Promise<GPUBuffer> {
    return this.upload(new Uint32Array(words).fill(fill >>> 0), label);
  }

  write(buffer: GPUBuffer, data: Float32Array | Uint32Array | ArrayBuffer, offset = 0): void {
    if (data instanceof ArrayBuffer) this.device.queue.writeBuffer(buffer, offset, data);
    else this.device.queue.writeBuffer(buffer, offset, data.buffer, data.byteOffset, data.byteLength);
  }

  /** A uniform buffer of `bytes` bytes (16 at least). */
  async uniform(bytes: number | ArrayBuffer, label = 'uniform'): Promise<GPUBuffer> {
    const size = typeof bytes === 'number' ? bytes : bytes.byteLength;
    const buffer = await createBufferChecked(this.ctx, label, Math.max(16, size), UNIFORM);
    this.owned.add(buffer);
    if (typeof bytes !== 'number') this.write(buffer, bytes);
    return buffer;
  }

  /** The uniform `Step`, written with `p`. */
  async step(p: StepParams): Promise<GPUBuffer> {
    return this.uniform(stepBytes(p), 'step');
  }

  writeStep(buffer: GPUBuffer, p: StepParams): void {
    this.write(buffer, stepBytes(p));
  }

  /** A storage buffer of token slots. */
  async tokens(slots: readonly TokenSlot[]): Promise<GPUBuffer> {
    return this.upload(slotWords(slots), 'tokens');
  }

  /**
   * Records `calls` for `shape` into one compute pass of one encoder, copies `reads` (whole
   * buffers) to staging buffers in the same encoder, submits, and returns their bytes. Any
   * validation error of the recording or submission fails the test.
   */
  async run(calls: readonly KernelCall[], shape: StepShape, reads: readonly GPUBuffer[] = []): Promise<ArrayBuffer[]> {
    this.device.pushErrorScope('validation');
    const encoder = this.device.createCommandEncoder({ label: 'test' });
    const pass = encoder.beginComputePass({ label: 'test' });
    encodeCalls(pass, calls, shape);
    pass.end();
    const pending = [];
    for (const b of reads) pending.push(await this.readback.enqueue(encoder, b, 0, b.size));
    this.device.queue.submit([encoder.finish()]);
    const error = await this.device.popErrorScope();
    if (error) throw new Error(`WebGPU validation error: ${error.message}`);
    const out: ArrayBuffer[] = [];
    for (const p of pending) out.push(await p.read());
    await this.device.queue.onSubmittedWorkDone();
    return out;
  }

  /** The whole contents of `buffer`. */
  async read(buffer: GPUBuffer): Promise<ArrayBuffer> {
    const [bytes] = await this.run([], { nTokens: 0, statsRows: 0 }, [buffer]);
    return bytes;
  }

  async readF32(buffer: GPUBuffer): Promise<Float32Array> {
    return new Float32Array(await this.read(buffer));
  }

  async readU32(buffer: GPUBuffer): Promise<Uint32Array> {
    return new Uint32Array(await this.read(buffer));
  }

  /** Destroys the buffers a test made (call in afterEach or at the end of a test). */
  release(): void {
    for (const b of this.owned) b.destroy();
    this.owned.clear();
  }

  destroy(): void {
    this.release();
    this.readback.destroy();
    this.device.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// Test data


export type Rng = () => number;

/** n standard normal floats (Box–Muller), scaled, rounded to float32. */
export function randn(rng: Rng, n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - rng()));
    const th = 2 * Math.PI * rng();
    out[i] = scale * r * Math.cos(th);
    if (i + 1 < n) out[i + 1] = scale * r * Math.sin(th);
  }
  return out;
}

/** n floats uniform in [lo, hi), rounded to float32. */
export function randu(rng: Rng, n: number, lo = -1, hi = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * rng();
  return out;
}

/**
 * n dyadic floats: integers in [−range, range] divided by `denom` (a power of two). Sums of their
 * products are exact in float32 while they stay below 2^24 units of the finest step, so a GPU dot
 * product of such data has no rounding error at all.
 */
export function dyadic(rng: Rng, n: number, range: number, denom: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (Math.floor(rng() * (2 * range + 1)) - range) / denom;
  return out;
}

export function randInt(rng: Rng, n: number): number {
  return Math.floor(rng() * n);
}

// ---------------------------------------------------------------------------------------------
// float64 references

/** y[t][o] = Σ_k x[t][k]·W[o][k] in float64 (W row-major [n][k], as in llama2.c). */
export function matmulRef(x: ArrayLike<number>, w: ArrayLike<number>, rows: number, k: number, n: number): Float64Array {
  const y = new Float64Array(rows * n);
  for (let t = 0; t < rows; t++) {
    for (let o = 0; o < n; o++) {
      let s = 0;
      for (let j = 0; j < k; j++) s += x[t * k + j] * w[o * k + j];
      y[t * n + o] = s;
    }
  }
  return y;
}

/** Σ_k |x[t][k]·W[o][k]|: the scale of the rounding error of the float32 dot product. */
export function matmulAbsRef(x: ArrayLike<number>, w: ArrayLike<number>, rows: number, k: number, n: number): Float64Array {
  const y = new Float64Array(rows * n);
  for (let t = 0; t < rows; t++) {
    for (let o = 0; o < n; o++) {
      let s = 0;
      for (let j = 0; j < k; j++) s += Math.abs(x[t * k + j] * w[o * k + j]);
      y[t * n + o] = s;
    }
  }
  return y;
}

export function rmsnormRef(x: ArrayLike<number>, weight: ArrayLike<number>, rows: number, dim: number): Float64Array {
  const out = new Float64Array(rows * dim);
  for (let t = 0; t < rows; t++) {
    let ss = 0;
    for (let j = 0; j < dim; j++) ss += x[t * dim + j] ** 2;
    const scale = 1 / Math.sqrt(ss / dim + 1e-5);
    for (let j = 0; j < dim; j++) out[t * dim + j] = weight[j] * scale * x[t * dim + j];
  }
  return out;
}

/** softmax(z · invTemp) of one row. */
export function softmaxRef(z: ArrayLike<number>, invTemp = 1): Float64Array {
  let m = -Infinity;
  for (let i = 0; i < z.length; i++) m = Math.max(m, z[i] * invTemp);
  const p = new Float64Array(z.length);
  let sum = 0;
  for (let i = 0; i < z.length; i++) sum += p[i] = Math.exp(z[i] * invTemp - m);
  for (let i = 0; i < z.length; i++) p[i] /= sum;
  return p;
}

export interface StatsRef {
  /** log Σ e^s over s = z·invTemp. */
  lse: number;
  entropy: number;
  varentropy: number;
  /** Σ_i p_i·|s_i − E_p[s]|, bounded by √varentropy; for error propagation. */
  meanAbsDev: number;
  /** E_p[max s − s]: the mass-weighted size of the exp arguments of the online reduction. */
  meanGap: number;
  maxLogit: number;
  /** The first index of the maximum logit. */
  argmax: number;
  /** Ids by descending logit, ties by lower id (all of them). */
  order: number[];
}

/** The StepStats of one logits row in float64 (algorithms.md §2). */
export function statsRef(z: ArrayLike<number>, invTemp = 1): StatsRef {
  const n = z.length;
  let maxLogit = -Infinity;
  let argmax = -1;
  for (let i = 0; i < n; i++) {
    if (z[i] > maxLogit) {
      maxLogit = z[i];
      argmax = i;
    }
  }
  const s = Array.from({ length: n }, (_, i) => z[i] * invTemp);
  const m = s.reduce((a, b) => Math.max(a, b), -Infinity);
  let zsum = 0;
  for (let i = 0; i < n; i++) zsum += Math.exp(s[i] - m);
  const lse = m + Math.log(zsum);
  let mean = 0;
  let meanGap = 0;
  for (let i = 0; i < n; i++) {
    const p = Math.exp(s[i] - lse);
    mean += p * s[i];
    meanGap += p * (m - s[i]);
  }
  let varentropy = 0;
  let meanAbsDev = 0;
  for (let i = 0; i < n; i++) {
    const p = Math.exp(s[i] - lse);
    varentropy += p * (s[i] - mean) ** 2;
    meanAbsDev += p * Math.abs(s[i] - mean);
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => z[b] - z[a] || a - b);
  return { lse, entropy: lse - mean, varentropy, meanAbsDev, meanGap, maxLogit, argmax, order };
}

// ---------------------------------------------------------------------------------------------
// Assertions

/**
 * Asserts |got[i] − want[i]| ≤ tol(i) for every i (and that got has no NaN). The message names
 * the worst element relative to its tolerance.
 */
export function assertClose(
  got: ArrayLike<number>, want: ArrayLike<number>, tol: number | ((i: number) => number), what: string,
): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let worst = -1;
  let worstRatio = 0;
  for (let i = 0; i < want.length; i++) {
    const t = typeof tol === 'number' ? tol : tol(i);
    const err = Math.abs(got[i] - want[i]);
    const ratio = Number.isNaN(got[i]) || Number.isNaN(err) ? Infinity : err === 0 ? 0 : err / t;
    if (ratio > worstRatio || (ratio > 1 && worst < 0)) {
      worstRatio = ratio;
      worst = i;
    }
  }
  if (process.env.KERNELS_VERBOSE) console.log(`  ${what}: worst error ${worstRatio.toPrecision(3)}× the tolerance`);
  if (worstRatio > 1) {
    const t = typeof tol === 'number' ? tol : tol(worst);
    assert.fail(`${what}: element ${worst} is ${got[worst]}, expected ${want[worst]} ± ${t.toExponential(2)} (error ${(worstRatio).toFixed(2)}× the tolerance)`);
  }
}
