// `npm run bench:quant`: what keeping weights quantised on the GPU costs and saves, in Node (the
// `webgpu` package; SwiftShader on a machine without a GPU), in one process:
//   1. GEMV per weight format (f32, f16, bf16, q8_0, q4_0, q4_k, q5_k, q6_k) at stories15M's
//      decode shapes (in × out): 288×864 q|k|v, 288×1536 w1|w3, 768×288 w2, 288×32000 classifier;
//      K-quants at k = 256 where stories15M has 288 (their 256-value super-blocks do not divide
//      288). Time per launch, weight bytes read per second (the format's bytes), values per
//      second, the ratio to the f32 GEMV of the same shape and to the copy kernel's read GB/s
//      (Kernels.copy over 36.9 MB, the best of several workgroup counts) on the same adapter.
//   2. End-to-end greedy decode of stories15M with weights f32, q8 and q4 (three engines, loaded
//      once), rounds interleaved (the order rotates each round), medians of decode tok/s.
// Timing: each launch recorded beforehand, submitted alone, awaited with onSubmittedWorkDone;
// timestamp queries at the pass boundaries when the device has them, else wall time minus an
// empty pass; repetitions interleaved across kernels; medians. Writes bench/results/quant-<date>.json
// and .md.
//
// Usage: npm run bench:quant [-- --reps 10 --rounds 5 --tokens 48 --no-kernels --no-e2e --out FILE.json]
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { STORAGE, UNIFORM, READBACK, MAP_MODE_READ, createBufferChecked } from '../src/gpu/buffers.ts';
import { type GpuContext, acquireGpu } from '../src/gpu/device.ts';
import { Kernels, type MatrixFormat, STEP_UNIFORM_BYTES, type WeightMatrix } from '../src/gpu/kernels.ts';
import { type KernelCall, encodeCalls } from '../src/gpu/pipelines.ts';
import { tensorBytes } from '../src/model/dequant.ts';
import { floatToBf16, floatToHalf, quantizeQ4_0, quantizeQ8_0 } from '../src/model/quantize.ts';
import type { TensorType } from '../src/model/tensors.ts';
import { type EncodedRows, FORMAT_SOURCE, asWeightMatrix, packMatrix } from '../src/model/weight-types.ts';
import { transposeConcat } from '../src/model/weights.ts';
import { bundledModel, createNodeEngine } from '../src/node/index.ts';
import { PROJECT_ROOT } from '../test/support/browser.ts';
import { machineInfo } from './machine.ts';

const { values: args } = parseArgs({
  options: {
    reps: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '5' },
    tokens: { type: 'string', default: '48' },
    'no-kernels': { type: 'boolean', default: false },
    'no-e2e': { type: 'boolean', default: false },
    out: { type: 'string' },
  },
});
const REPS = Number(args.reps);
const ROUNDS = Number(args.rounds);
const TOKENS = Number(args.tokens);
const QUERY_RESOLVE = 0x200;
const COPY_SRC = 0x4;
const COPY_BYTES = 288 * 32000 * 4;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const FORMATS: MatrixFormat[] = ['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_k', 'q5_k', 'q6_k'];
const SHAPES = [
  { name: 'q,k,v', k: 288, n: 864 },
  { name: 'w1,w3', k: 288, n: 1536 },
  { name: 'w2', k: 768, n: 288 },
  { name: 'classifier', k: 288, n: 32000 },
];
const kOf = (format: MatrixFormat, k: number) => (format.endsWith('_k') && k % 256 ? 256 : k);

/** Gaussian-ish values (mulberry32, Irwin–Hall of 4). */
function values(n: number, seed: number, scale = 0.05): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (let i = 0; i < n; i++) out[i] = (next() + next() + next() + next() - 2) * scale;
  return out;
}

/** A stored tensor of `rows` × k in the format's source type (K-quants: random bytes, small scales). */
function stored(format: Exclude<MatrixFormat, 'f32'>, rows: number, k: number, seed: number): EncodedRows {
  const v = values(rows * k, seed);
  switch (format) {
    case 'q8_0':
      return quantizeQ8_0(v, k);
    case 'q4_0':
      return quantizeQ4_0(v, k);
    case 'f16':
    case 'bf16': {
      const h = new Uint16Array(v.length);
      for (let i = 0; i < v.length; i++) h[i] = format === 'f16' ? floatToHalf(v[i]) : floatToBf16(v[i]);
      return { type: FORMAT_SOURCE[format], bytes: new Uint8Array(h.buffer), rows };
    }
    default: {
      const type: TensorType = FORMAT_SOURCE[format];
      const bytes = new Uint8Array(tensorBytes(type, rows * k));
      for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 24;
      const d = floatToHalf(1e-3);
      for (let at = 0; at < bytes.length; at += tensorBytes(type, 256)) {
        const put = (o: number) => ((bytes[at + o] = d & 0xff), (bytes[at + o + 1] = d >> 8));
        if (type === 'Q6_K') put(208);
        else (put(0), put(2));
      }
      return { type, bytes, rows };
    }
  }
}

interface GemvRow {
  format: MatrixFormat;
  shape: string;
  k: number;
  n: number;
  bytes: number;
  ms: number;
  gbps: number;
  /** Weight values per second (k·n / time), in G/s. */
  gvals: number;
  vsF32?: number;
  vsCopyRead?: number;
}

/** Times each set of calls: one pass per repetition, reps interleaved; ms per launch (medians). */
async function timeAll(ctx: GpuContext, sets: readonly (readonly KernelCall[])[]): Promise<{ ms: number[]; method: string }> {
  const { device } = ctx;
  const shape = { nTokens: 1, statsRows: 1 };
  const queries = sets.length * REPS;
  const ts = ctx.hasTimestamps;
  const querySet = ts ? device.createQuerySet({ type: 'timestamp', count: 2 * queries }) : null;
  const encode = (calls: readonly KernelCall[], q?: number) => {
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass(querySet && q !== undefined
      ? { timestampWrites: { querySet, beginningOfPassWriteIndex: 2 * q, endOfPassWriteIndex: 2 * q + 1 } } : {});
    encodeCalls(pass, calls, shape);
    pass.end();
    return enc.finish();
  };
  for (const calls of sets) {
    device.queue.submit([encode(calls)]);
    await device.queue.onSubmittedWorkDone();
  }
  const walls: number[][] = sets.map(() => []);
  const empty: number[] = [];
  for (let r = 0; r < REPS; r++) {
    for (let s = 0; s < sets.length; s++) {
      const cb = encode(sets[s], s * REPS + r);
      const t0 = performance.now();
      device.queue.submit([cb]);
      await device.queue.onSubmittedWorkDone();
      walls[s].push(performance.now() - t0);
    }
    const cb = encode([]);
    const t0 = performance.now();
    device.queue.submit([cb]);
    await device.queue.onSubmittedWorkDone();
    empty.push(performance.now() - t0);
  }
  if (!querySet) return { ms: walls.map((w) => median(w) - median(empty)), method: 'wall − empty pass' };
  const resolve = device.createBuffer({ size: 16 * queries, usage: QUERY_RESOLVE | COPY_SRC });
  const read = device.createBuffer({ size: 16 * queries, usage: READBACK });
  const enc = device.createCommandEncoder();
  enc.resolveQuerySet(querySet, 0, 2 * queries, resolve, 0);
  enc.copyBufferToBuffer(resolve, 0, read, 0, 16 * queries);
  device.queue.submit([enc.finish()]);
  await read.mapAsync(MAP_MODE_READ);
  const t = new BigUint64Array(read.getMappedRange().slice(0));
  read.unmap();
  [querySet, resolve, read].forEach((b) => b.destroy());
  return {
    ms: sets.map((_, s) => median(Array.from({ length: REPS }, (_, r) => Number(t[2 * (s * REPS + r) + 1] - t[2 * (s * REPS + r)]) / 1e6))),
    method: 'timestamp queries',
  };
}

async function kernelSection(): Promise<{ adapter: unknown; method: string; copy: { readGbps: number; workgroups: number }; gemv: GemvRow[] }> {
  process.env.VK_ICD_FILENAMES ??= '/usr/lib/chromium/vk_swiftshader_icd.json';
  process.env.XDG_RUNTIME_DIR ??= os.tmpdir();
  const { create } = await import('webgpu');
  const ctx = await acquireGpu({ gpu: create(['disable-dawn-features=timestamp_quantization']), mapWait: 'paced' });
  const kernels = new Kernels(ctx);
  const owned: GPUBuffer[] = [];
  const buffer = async (label: string, data: Float32Array | Uint32Array | number) => {
    const size = typeof data === 'number' ? data : data.byteLength;
    const b = await createBufferChecked(ctx, label, size, STORAGE);
    if (typeof data !== 'number') ctx.device.queue.writeBuffer(b, 0, data.buffer, data.byteOffset, data.byteLength);
    owned.push(b);
    return b;
  };
  try {
    const stepBytes = new DataView(new ArrayBuffer(STEP_UNIFORM_BYTES));
    stepBytes.setUint32(0, 1, true);
    const step = await createBufferChecked(ctx, 'step', STEP_UNIFORM_BYTES, UNIFORM);
    owned.push(step);
    ctx.device.queue.writeBuffer(step, 0, stepBytes.buffer);
    const src = await buffer('copy src', values(COPY_BYTES / 4, 1));
    const dst = await buffer('copy dst', COPY_BYTES);
    const copyGroups = [256, 2048];
    const sets: KernelCall[][] = [];
    for (const g of copyGroups) sets.push([await kernels.copy(`copy ${g}`, { src, dst }, g)]);
    const rows: Omit<GemvRow, 'ms' | 'gbps' | 'gvals'>[] = [];
    const x = await buffer('x', values(768, 2, 1));
    const y = await buffer('y', 32000 * 4);
    let seed = 10;
    for (const s of SHAPES) {
      for (const format of FORMATS) {
        const k = kOf(format, s.k);
        let w: GPUBuffer | WeightMatrix;
        let bytes: number;
        if (format === 'f32') {
          const t = transposeConcat([values(s.n * k, seed++)], k);
          w = await buffer(`${s.name} f32`, t);
          bytes = t.byteLength;
        } else {
          const p = packMatrix(format, k, [stored(format, s.n, k, seed++)]);
          w = asWeightMatrix(p, await buffer(`${s.name} ${format}`, p.words));
          bytes = p.words.byteLength;
        }
        sets.push([await kernels.matmul(`${s.name} ${format}`, { k, n: s.n, accumulate: false, rowsPerInvocation: 1 }, { step, x, w, y })]);
        rows.push({ format, shape: s.name, k, n: s.n, bytes });
      }
    }
    console.log(`bench:quant: timing ${sets.length} kernels × ${REPS} reps …`);
    const { ms, method } = await timeAll(ctx, sets);
    const copyMs = ms.slice(0, copyGroups.length);
    const best = copyMs.indexOf(Math.min(...copyMs));
    const copyRead = COPY_BYTES / copyMs[best] / 1e6;
    const gemv: GemvRow[] = rows.map((r, i) => {
      const t = ms[copyGroups.length + i];
      return { ...r, ms: t, gbps: r.bytes / t / 1e6, gvals: (r.k * r.n) / t / 1e6 };
    });
    for (const r of gemv) {
      const f32 = gemv.find((q) => q.shape === r.shape && q.format === 'f32')!;
      r.vsF32 = r.k === f32.k ? f32.ms / r.ms : (f32.ms * r.k) / f32.k / r.ms;
      r.vsCopyRead = r.gbps / copyRead;
    }
    return { adapter: ctx.adapter, method, copy: { readGbps: copyRead, workgroups: copyGroups[best] }, gemv };
  } finally {
    owned.forEach((b) => b.destroy());
    ctx.device.destroy();
  }
}

interface E2eRow {
  weights: string;
  weightBytes: number;
  gpuBytes: number;
  decodeTokPerSec: number[];
  median: number;
  /** Generated tokens equal to f32's, of each round's output (from the first round). */
  sameAsF32: number;
}

async function e2eSection(): Promise<E2eRow[]> {
  const variants = ['f32', 'q8', 'q4'] as const;
  const model = readFileSync(bundledModel.model);
  const tokenizer = readFileSync(bundledModel.tokenizer);
  const engines = [];
  for (const weights of variants) {
    const engine = await createNodeEngine();
    const info = await engine.loadModel({ model, tokenizer, weights });
    engines.push({ weights, engine, info, rates: [] as number[], tokens: [] as number[] });
  }
  const prompt = 'Once upon a time';
  for (let r = 0; r < ROUNDS; r++) {
    for (let i = 0; i < engines.length; i++) {
      const e = engines[(i + r) % engines.length];
      const g = await e.engine.generate(prompt, { maxTokens: TOKENS, reuse: false }).complete();
      e.rates.push(g.timing.decodeTokPerSec);
      if (r === 0) e.tokens = g.tokens;
      console.log(`  round ${r + 1} ${e.weights}: ${g.timing.decodeTokPerSec.toFixed(2)} tok/s`);
    }
  }
  const ref = engines[0].tokens;
  const rows = engines.map((e) => {
    let same = 0;
    while (same < e.tokens.length && e.tokens[same] === ref[same]) same++;
    return {
      weights: e.weights,
      weightBytes: Object.values(e.info.weightBytes).reduce((a, b) => a + (b ?? 0), 0),
      gpuBytes: e.info.gpuBytes,
      decodeTokPerSec: e.rates,
      median: median(e.rates),
      sameAsF32: same - (e.tokens.length - TOKENS) ,
    };
  });
  engines.forEach((e) => e.engine.dispose());
  return rows;
}

function markdown(file: { date: string; kernels?: Awaited<ReturnType<typeof kernelSection>>; e2e?: E2eRow[] }): string {
  const lines = [`# forkwise quantised weights bench ${file.date}`, ''];
  if (file.kernels) {
    const k = file.kernels;
    lines.push(
      `GEMV, one token row (${k.method}); copy kernel read ${k.copy.readGbps.toFixed(3)} GB/s (${k.copy.workgroups} workgroups, 36.9 MB).`, '',
      '| shape (in×out) | format | bytes | ms | GB/s | × copy read | G values/s | speed × f32 |',
      '|---|---|---:|---:|---:|---:|---:|---:|',
      ...k.gemv.map((r) => `| ${r.shape} ${r.k}×${r.n} | ${r.format} | ${(r.bytes / 1e6).toFixed(3)} MB | ${r.ms.toFixed(3)} | ${r.gbps.toFixed(3)} | ${r.vsCopyRead!.toFixed(2)} | ${r.gvals.toFixed(3)} | ${r.vsF32!.toFixed(2)} |`),
      '', '(speed × f32: the f32 GEMV time of the same shape over this one, per value where k differs.)', '',
    );
  }
  if (file.e2e) {
    lines.push(
      `stories15M greedy decode, ${TOKENS} tokens from "Once upon a time", ${ROUNDS} interleaved rounds.`, '',
      '| weights | weight bytes | GPU bytes (all) | decode tok/s (median) | rounds | tokens = f32 |',
      '|---|---:|---:|---:|---|---:|',
      ...file.e2e.map((r) => `| ${r.weights} | ${(r.weightBytes / 1e6).toFixed(2)} MB | ${(r.gpuBytes / 1e6).toFixed(2)} MB | ${r.median.toFixed(2)} | ${r.decodeTokPerSec.map((v) => v.toFixed(2)).join(' ')} | ${r.sameAsF32} of ${TOKENS} |`),
      '',
    );
  }
  return lines.join('\n');
}

const date = new Date().toISOString();
const file = {
  date,
  machine: machineInfo(),
  protocol: { reps: REPS, rounds: ROUNDS, tokens: TOKENS },
  kernels: args['no-kernels'] ? undefined : await kernelSection(),
  e2e: args['no-e2e'] ? undefined : await e2eSection(),
};
const md = markdown(file);
console.log(`\n${md}`);
const path = args.out ?? join(PROJECT_ROOT, 'bench', 'results', `quant-${date.replace(/:/g, '-')}.json`);
mkdirSync(dirname(path), { recursive: true });
writeFileSync(path, JSON.stringify(file, null, 2) + '\n');
writeFileSync(path.replace(/\.json$/, '') + '.md', md + '\n');
console.log(`wrote ${relative(PROJECT_ROOT, path)} and .md`);
process.exit(0);
