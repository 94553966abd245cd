// `npm run bench:profile`: where one decode step's GPU time goes, per kernel family, in Node on
// the `webgpu` package (Dawn; SwiftShader where there is no GPU), with timestamp queries
// (src/gpu/profile.ts: while profiling, every launch of the step runs in its own compute pass with
// timestamp writes at its beginning and end).
//
// For each model variant asked for (bench/node-models.ts; default: the bundled f32 stories15M and
// the GGUF fixtures Q8_0, Q4_0 in their own types; q8, q4, f16: loadModel's `weights` option), it prefills a prompt, then profiles `--steps` greedy decode steps from position
// `--pos` on and takes per launch the median over the steps. Per family (embed, rmsnorm, qkv,
// rope_kv, attention, wo, ffn w13, swiglu, w2, lm head, merge): GPU ms per step, share of the
// step, the bytes it must read (weights in their GPU format from the buffers' sizes; the KV
// cache up to the position for attention; activations for the small kernels), the achieved
// bytes/s and its ratio to the copy kernel's read bandwidth (Kernels.copy over 36.9 MB, timed the
// same way on the same device, one copy after every profiled step, medians): the roofline. Writes
// bench/results/profile-<date>.json and .md, and bench/report/profile.md (REPORT.md includes it).
// Run it before and after a kernel change and compare the two files.
//
// `--attention-stats 32,200` adds, per model, what attention statistics (GenerationStep.attention,
// the last layer) cost a decode step at those positions: steps alternate stats off / on, and the
// extra GPU time of the on steps (the statistics' attention launch and its head-agreement
// reduction, against the plain attention launch) is taken as a share of the off step.
//
// Usage: npm run bench:profile [-- --steps 16 --pos 32 --models f32,gguf-q8,gguf-q4,q8,q4 --out FILE.json]
//        npm run bench:profile -- --models f32 --attention-stats 32,200 --steps 24
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import type { Engine } from '../src/engine.ts';
import { STORAGE } from '../src/gpu/buffers.ts';
import type { GpuContext } from '../src/gpu/device.ts';
import type { Kernels } from '../src/gpu/kernels.ts';
import type { KernelCall } from '../src/gpu/pipelines.ts';
import { KERNEL_FAMILIES, KernelProfiler, type KernelFamily, type KernelTiming } from '../src/gpu/profile.ts';
import type { Session } from '../src/runtime/session.ts';
import type { GpuWeights } from '../src/model/weights.ts';
import { createNodeEngine } from '../src/node/index.ts';
import { PROJECT_ROOT } from '../test/support/browser.ts';
import { machineInfo } from './machine.ts';
import { modelVariants } from './node-models.ts';

const { values: args } = parseArgs({
  options: {
    steps: { type: 'string', default: '16' },
    pos: { type: 'string', default: '32' },
    models: { type: 'string', default: 'f32,gguf-q8,gguf-q4' },
    'attention-stats': { type: 'string' },
    out: { type: 'string' },
  },
});
const STEPS = Number(args.steps);
const START_POS = Number(args.pos);
const COPY_BYTES = 288 * 32000 * 4;

/** What the bench reaches inside the engine (private fields: this is a benchmark of internals). */
interface EngineInternals {
  ctx: GpuContext;
  kernels: Kernels;
  loaded: { session: Session; weights: GpuWeights } | null;
}
const internals = (e: Engine) => e as unknown as EngineInternals;

const median = (xs: number[]) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** GPU bytes of a weight part: a float32 buffer or a WeightMatrix in another format. */
function partBytes(w: unknown): number {
  const x = w as { size?: number; buffer?: { size: number } };
  return x.buffer?.size ?? x.size ?? 0;
}
/** A matrix as MatrixPart[] (one per format), or a single buffer. */
const partsBytes = (parts: unknown) =>
  Array.isArray(parts) ? parts.reduce((s: number, p: { w: unknown }) => s + partBytes(p.w), 0) : partBytes(parts);

/** Bytes each family must read in one decode step at position `pos` (row 0). */
function familyBytes(w: GpuWeights, session: Session, pos: number): Record<KernelFamily, number> {
  const c = w.config;
  const f32 = 4;
  const kv = session.kv as unknown as { keys: GPUBuffer[]; rows: number };
  const kvBytesPerPos = kv.keys[0].size / (kv.rows * w.contextLength);
  const qkvN = c.nHeads * c.headDim + 2 * c.nKvHeads * c.headDim;
  const embedRow = partBytes(w.embedding) / c.vocabSize;
  const sum = (f: (l: GpuWeights['layers'][number]) => number) => w.layers.reduce((s, l) => s + f(l), 0);
  return {
    embed: embedRow + c.dim * f32,
    rmsnorm: (2 * c.nLayers + 1) * 3 * c.dim * f32,
    qkv: sum((l) => partsBytes(l.wqkv)) + c.nLayers * (c.dim + qkvN) * f32,
    rope_kv: c.nLayers * 2 * qkvN * f32,
    // K and V of every position up to this one, every layer, plus q and the output.
    attention: c.nLayers * (2 * (pos + 1) * kvBytesPerPos + 2 * c.nHeads * c.headDim * f32),
    wo: sum((l) => partsBytes(l.wo)) + c.nLayers * (c.nHeads * c.headDim + 2 * c.dim) * f32,
    'ffn w13': sum((l) => partsBytes(l.w13)) + c.nLayers * (c.dim + 2 * c.hiddenDim) * f32,
    swiglu: c.nLayers * 3 * c.hiddenDim * f32,
    w2: sum((l) => partsBytes(l.w2)) + c.nLayers * (c.hiddenDim + 2 * c.dim) * f32,
    'lm head': w.classifier.reduce((s, t) => s + partBytes((t as { matrix?: unknown }).matrix ?? t.buffer), 0) + c.dim * f32,
    merge: 0,
    other: 0,
  };
}

/**
 * The copy roofline on this device: Kernels.copy and readStream over 36.9 MB, timed by the same
 * profiler. The workgroup count is picked once (best of two); `measure()` then times one launch
 * of each, so the profiled steps can alternate with it (both see the same load of the machine).
 */
async function copyRoofline(ctx: GpuContext, kernels: Kernels, profiler: KernelProfiler) {
  const src = ctx.device.createBuffer({ label: 'profile copy src', size: COPY_BYTES, usage: STORAGE });
  const dst = ctx.device.createBuffer({ label: 'profile copy dst', size: COPY_BYTES, usage: STORAGE });
  const time = async (call: KernelCall) => {
    const encoder = ctx.device.createCommandEncoder();
    profiler.encode(encoder, [call], { nTokens: 1, statsRows: 1 });
    ctx.device.queue.submit([encoder.finish()]);
    return (await profiler.read())[0].ms;
  };
  const pick = async (make: (wg: number) => Promise<KernelCall>) => {
    let best: { workgroups: number; call: KernelCall; ms: number } | null = null;
    for (const workgroups of [256, 2048]) {
      const call = await make(workgroups);
      await time(call);
      const ms = Math.min(await time(call), await time(call));
      if (!best || ms < best.ms) best = { workgroups, call, ms };
    }
    return best!;
  };
  const copy = await pick((wg) => kernels.copy(`copy/${wg}`, { src, dst }, wg));
  const stream = await pick((wg) => kernels.readStream(`read_stream/${wg}`, { src, dst }, wg));
  return {
    bytes: COPY_BYTES, copyWorkgroups: copy.workgroups, readStreamWorkgroups: stream.workgroups,
    measure: async () => ({ copyMs: await time(copy.call), readStreamMs: await time(stream.call) }),
    destroy: () => (src.destroy(), dst.destroy()),
  };
}

interface FamilyRow {
  family: KernelFamily;
  launches: number;
  ms: number;
  share: number;
  bytes: number;
  gbps: number;
  ofCopy: number;
}

async function profileModel(label: string, load: Parameters<Engine['loadModel']>[0]) {
  const engine = await createNodeEngine();
  try {
    const t0 = performance.now();
    const info = await engine.loadModel(load);
    const loadMs = performance.now() - t0;
    const { ctx, kernels, loaded } = internals(engine);
    if (!ctx.hasTimestamps) throw new Error(`${ctx.adapter.description || ctx.adapter.architecture}: no timestamp-query, nothing to profile`);
    const session = loaded!.session;
    const weights = loaded!.weights;
    const profiler = new KernelProfiler(ctx);
    try {
      const roofline = await copyRoofline(ctx, kernels, profiler);
      const prompt = engine.tokenizer.encode('Once upon a time there was a little girl named Lily and she loved to play outside in the sun');
      const prefill = prompt.slice(0, Math.min(prompt.length, START_POS));
      session.reset();
      let stats = await session.step(prefill.map((id, pos) => ({ id, pos, row: 0 })));
      let next = stats[0].argmax;
      // Up to the profiled position with the normal path.
      for (let pos = prefill.length; pos < START_POS; pos++) {
        stats = await session.step([{ id: next, pos, row: 0 }]);
        next = stats[0].argmax;
      }
      const perStep: KernelTiming[][] = [];
      const wall: number[] = [];
      const copies: { copyMs: number; readStreamMs: number }[] = [];
      session.profiler = profiler;
      try {
        for (let s = 0; s < STEPS + 1; s++) {
          const w0 = performance.now();
          stats = await session.step([{ id: next, pos: START_POS + s, row: 0 }]);
          const timings = await profiler.read();
          wall.push(performance.now() - w0);
          next = stats[0].argmax;
          if (s > 0) perStep.push(timings); // the first profiled step warms the passes up
          copies.push(await roofline.measure());
        }
      } finally {
        session.profiler = null;
        roofline.destroy();
      }
      const gbps = (ms: number) => COPY_BYTES / (ms / 1000) / 1e9;
      const copy = {
        bytes: COPY_BYTES, copyWorkgroups: roofline.copyWorkgroups, readStreamWorkgroups: roofline.readStreamWorkgroups,
        copyReadGbps: gbps(median(copies.map((c) => c.copyMs))), readStreamGbps: gbps(median(copies.map((c) => c.readStreamMs))),
      };
      // Median per launch over the steps, then summed by family.
      const launches = perStep[0].map((t, i) => ({ ...t, ms: median(perStep.map((p) => p[i]?.ms ?? NaN)) }));
      const stepMs = launches.reduce((s, t) => s + t.ms, 0);
      const bytes = familyBytes(weights, session, START_POS + STEPS / 2);
      const families: FamilyRow[] = KERNEL_FAMILIES.map((family) => {
        const of = launches.filter((t) => t.family === family);
        const ms = of.reduce((s, t) => s + t.ms, 0);
        const gbps = bytes[family] / (ms / 1000) / 1e9;
        return { family, launches: of.length, ms, share: ms / stepMs, bytes: bytes[family], gbps, ofCopy: gbps / copy.copyReadGbps };
      }).filter((r) => r.launches > 0);
      const attentionStats = args['attention-stats'] ? await attentionStatsCost(engine, args['attention-stats'].split(',').map(Number)) : undefined;
      return {
        label, loadMs, gpuBytes: info.gpuBytes,
        weightBytes: (info as { weightBytes?: unknown }).weightBytes, adapter: ctx.adapter,
        position: START_POS, steps: STEPS, stepMs, wallStepMs: median(wall.slice(1)), copy, families,
        launches: launches.map((t) => ({ label: t.label, family: t.family, ms: t.ms })),
        ...(attentionStats ? { attentionStats } : {}),
      };
    } finally {
      profiler.destroy();
    }
  } finally {
    engine.dispose();
  }
}

/**
 * Attention statistics' cost at decode positions `positions`: from each, STEPS steps alternating
 * statistics off and on (same machine load for both), medians per launch. Extra = the on step's
 * layer-L attention launches (main_stats + agree) minus the off step's plain attention launch.
 */
async function attentionStatsCost(engine: Engine, positions: number[]) {
  const { ctx, loaded } = internals(engine);
  const session = loaded!.session;
  const layer = session.config.nLayers - 1;
  const profiler = new KernelProfiler(ctx);
  const rows = [];
  try {
    for (const pos of positions) {
      session.reset();
      const ids = Array.from({ length: pos + STEPS + 2 }, (_, i) => (i === 0 ? 1 : 300 + ((i * 37) % 5000)));
      await session.step(ids.slice(0, pos).map((id, p) => ({ id, pos: p, row: 0 })));
      const steps: Record<'off' | 'on', KernelTiming[][]> = { off: [], on: [] };
      session.profiler = profiler;
      try {
        for (let s = 0; s < STEPS + 2; s++) {
          const on = s % 2 === 1;
          await session.setAttentionStats(on ? layer : null);
          await session.step([{ id: ids[pos + s], pos: pos + s, row: 0 }]);
          const timings = await profiler.read();
          if (s >= 2) steps[on ? 'on' : 'off'].push(timings); // the first pair warms both up
        }
      } finally {
        session.profiler = null;
        await session.setAttentionStats(null);
      }
      const total = (k: 'off' | 'on') => median(steps[k].map((t) => t.reduce((a, x) => a + x.ms, 0)));
      const attn = (k: 'off' | 'on') => median(steps[k].map((t) => t.filter((x) => x.label.startsWith(`l${layer}.attention`)).reduce((a, x) => a + x.ms, 0)));
      const row = {
        pos, layer, pairs: steps.on.length, offStepMs: total('off'), onStepMs: total('on'),
        attentionOffMs: attn('off'), attentionOnMs: attn('on'),
        extraMs: attn('on') - attn('off'), extraShare: (attn('on') - attn('off')) / total('off'),
      };
      rows.push(row);
      console.log(`attention statistics at position ${pos}: layer ${layer} attention ${num(row.attentionOffMs, 3)} → ${num(row.attentionOnMs, 3)} ms ` +
        `(+${num(row.extraMs, 3)} ms, ${pct(row.extraShare)} of a ${num(row.offStepMs, 1)} ms step; whole step on/off ${num(row.onStepMs / row.offStepMs, 3)})`);
    }
  } finally {
    profiler.destroy();
  }
  return rows;
}

function attentionTable(rows: Awaited<ReturnType<typeof attentionStatsCost>>): string {
  return [
    '',
    `Attention statistics (layer ${rows[0]?.layer}), steps alternating off / on, medians:`,
    '',
    '| position | pairs | attention launch(es) off → on, GPU ms | extra ms | extra share of the step | step GPU ms off / on |',
    '|---:|---:|---|---:|---:|---|',
    ...rows.map((r) => `| ${r.pos} | ${r.pairs} | ${num(r.attentionOffMs, 3)} → ${num(r.attentionOnMs, 3)} | ${num(r.extraMs, 3)} | ${pct(r.extraShare)} | ${num(r.offStepMs, 1)} / ${num(r.onStepMs, 1)} |`),
    '',
  ].join('\n');
}

/** Why families sit where they do against the roofline (REPORT.md prints it under the tables). */
const READING = `
Reading the profile against the copy roofline. The f32 matmul families and the LM head run above 100 % of it: SwiftShader's copy kernel is
itself far below the machine's memory bandwidth, and the per-layer matrices (≤ 10 MB) stay in the CPU caches. The quantised families sit at
20–35 %: each weight is dequantised to its exact float32 before the multiply, several vector operations per weight on a CPU-emulated GPU,
so they are bound by arithmetic, not bytes. The small kernels (embed, rmsnorm, rope_kv, swiglu, merge; attention at short positions) read
well under 1 MB per step: their time is launch and latency, so GB/s says nothing about them.
`;

const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
const num = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '—');

function table(p: Awaited<ReturnType<typeof profileModel>>): string {
  return [
    `### ${p.label} — decode step at position ${p.position}, median of ${p.steps} steps`,
    '',
    `Sum of the launches ${num(p.stepMs, 3)} ms GPU (one pass per launch; the same step unprofiled is one pass) · ` +
      `wall per profiled step ${num(p.wallStepMs, 1)} ms · copy roofline ${num(p.copy.copyReadGbps)} GB/s read ` +
      `(read_stream ${num(p.copy.readStreamGbps)} GB/s) · GPU bytes ${(p.gpuBytes / 2 ** 20).toFixed(1)} MiB`,
    '',
    '| family | launches | GPU ms/step | share | bytes read | GB/s | of copy roofline |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...p.families.map((r) => `| ${r.family} | ${r.launches} | ${num(r.ms, 3)} | ${pct(r.share)} | ${(r.bytes / 1e6).toFixed(3)} MB | ` +
      `${r.bytes ? num(r.gbps) : '—'} | ${r.bytes ? pct(r.ofCopy) : '—'} |`),
    '',
  ].join('\n') + (p.attentionStats ? attentionTable(p.attentionStats) : '');
}

async function main() {
  const started = new Date();
  const profiles = [];
  for (const { label, options } of modelVariants(args.models!)) {
    process.stdout.write(`profiling ${label} …\n`);
    try {
      profiles.push(await profileModel(label, await options()));
      console.log('\n' + table(profiles[profiles.length - 1]));
    } catch (error) {
      console.log(`  ${label}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  if (profiles.length === 0) process.exit(1);
  const file = args.out ?? join(PROJECT_ROOT, 'bench', 'results', `profile-${started.toISOString().replace(/:/g, '-')}.json`);
  mkdirSync(join(file, '..'), { recursive: true });
  const result = { kind: 'profile', date: started.toISOString(), command: `npm run bench:profile -- ${process.argv.slice(2).join(' ')}`.trim(), machine: machineInfo(), profiles };
  writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
  writeFileSync(file.replace(/\.json$/, '.md'), `# Kernel profile — ${result.date}\n\n${profiles.map(table).join('\n')}`);
  // The tables REPORT.md includes (bench/matrix/report.ts), unless --out was given.
  if (!args.out) {
    writeFileSync(join(PROJECT_ROOT, 'bench', 'report', 'profile.md'), `## Kernel profile of a decode step\n\n` +
      `\`${result.command}\` (${result.date.slice(0, 16)}, Node + Dawn, ${JSON.stringify(profiles[0].adapter)}):\n\n` +
      profiles.map(table).join('\n').replace(/^### /gm, '#### ') + '\n' + READING);
  }
  console.log(`wrote ${relative(PROJECT_ROOT, file)} and .md`);
}

await main();
