// `node --import ./scripts/node-hooks/register.mjs bench/reflect-cost.ts`: what one SRGen
// reflection costs on stories15M, in decode steps of the same session, at T = 32, 128, 256 kept
// positions (the default 3 AdamW steps), and what attention statistics add to a decode step.
// `--profile`: also each kernel's GPU time in one linear loss + gradient evaluation (timestamps).
// Medians of interleaved repeats; SwiftShader numbers move with the machine's load, so compare
// ratios measured in one run.
import { parseArgs } from 'node:util';
import { KernelProfiler } from '../src/gpu/profile.ts';
import { SessionRuntime } from '../src/runtime/decode-runtime.ts';
import { modelSession } from '../test/support/engine.ts';

const { values: args } = parseArgs({ options: { reps: { type: 'string', default: '5' }, positions: { type: 'string', default: '32,128,256' }, 'no-fused': { type: 'boolean', default: false }, profile: { type: 'boolean', default: false } } });
const REPS = Number(args.reps);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const { ctx, session, destroy } = await modelSession(1);
await session.keepHiddenStates();
const runtime = new SessionRuntime(session);
const sampling = { temperature: 0.6, seed: 1, statsTemperature: 0.6 };
const ids = (n: number) => Array.from({ length: n }, (_, i) => (i === 0 ? 1 : 300 + ((i * 7919) % 20000)));

async function stepMs(tokens: number[], from: number): Promise<number> {
  const times: number[] = [];
  for (let i = from; i < from + 8; i++) {
    const t0 = performance.now();
    await runtime.feed([tokens[i]], sampling);
    times.push(performance.now() - t0);
  }
  return median(times);
}

const rows: Record<string, number | string>[] = [];
const reflect = (n: number, mode: 'fused' | 'linear') => runtime.reflect({ tokens: ids(n), lambda: 0.05, steps: 3, temperature: 0.6, sampling, mode });
async function timedMs(f: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
}
for (const T of args.positions!.split(',').map(Number)) {
  const tokens = ids(T);
  const fused: number[] = [];
  const cold: number[] = [];
  const warm: number[] = [];
  const steps: number[] = [];
  for (let r = 0; r < REPS; r++) {
    session.reset();
    // T − 9 prompt positions, 8 decode steps (timed), a first reflection (its kept logits: one
    // GEMM over all T − 1 positions), one more step, a second reflection (one new position), fused.
    await runtime.feed(tokens.slice(0, T - 9), sampling);
    steps.push(await stepMs(tokens, T - 9));
    cold.push(await timedMs(() => reflect(T - 1, 'linear')));
    await runtime.feed([tokens[T - 1]], sampling);
    warm.push(await timedMs(() => reflect(T, 'linear')));
    if (!args['no-fused']) fused.push(await timedMs(() => reflect(T, 'fused')));
  }
  if (args.profile) {
    // One evaluation per profiled submit: δ ≠ 0, so every kernel runs.
    const delta = Float32Array.from({ length: session.config.dim }, (_, i) => 0.01 * Math.sin(i));
    const o = { lambda: 0.05, temperature: 0.6, backward: true, mode: 'linear' as const };
    session.profiler = new KernelProfiler(ctx);
    const ms = new Map<string, number[]>();
    for (let r = 0; r < REPS; r++) {
      await session.xent(T, tokens.slice(1, T), delta, o);
      for (const k of await session.profiler.read()) ms.set(k.label, [...(ms.get(k.label) ?? []), k.ms]);
    }
    session.profiler.destroy();
    session.profiler = null;
    console.log(JSON.stringify({ T, kernelMs: Object.fromEntries([...ms].map(([k, v]) => [k, +median(v).toFixed(2)])) }));
  }
  const s = median(steps);
  const row = {
    T, stepMs: s.toFixed(1),
    fusedSteps: fused.length ? (median(fused) / s).toFixed(1) : '-',
    linearFirstSteps: (median(cold) / s).toFixed(2),
    linearNextSteps: (median(warm) / s).toFixed(2),
  };
  rows.push(row);
  console.log(JSON.stringify(row));
}
console.table(rows);

// Attention statistics (last layer) on vs off: decode steps at position ~100, alternating blocks.
{
  session.reset();
  const tokens = ids(120);
  await runtime.feed(tokens.slice(0, 100), sampling);
  const off: number[] = [];
  const on: number[] = [];
  for (let r = 0; r < 2 * REPS; r++) {
    await session.setAttentionStats(r % 2 ? session.config.nLayers - 1 : null);
    session.kv.rollback(0, 100);
    (r % 2 ? on : off).push(await stepMs(tokens, 100));
  }
  await session.setAttentionStats(null);
  console.log(JSON.stringify({ attentionStats: { offMs: median(off).toFixed(1), onMs: median(on).toFixed(1), ratio: (median(on) / median(off)).toFixed(3) } }));
}
destroy();
process.exit(0);
