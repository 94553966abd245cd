// `npm run bench:gpu`: the matrix's greedy decode/prefill measurements in Node on Dawn (the
// `webgpu` package) on whatever adapter is present — a real GPU where there is one, SwiftShader's
// Vulkan ICD otherwise (the adapter is printed and recorded; VK_ICD_FILENAMES picks the ICD, as
// for every Node bench). Per weight format (bench/node-models.ts: the bundled f32 stories15M, the
// GGUF fixtures Q8_0/Q4_0 in their own types, loadModel's `weights` q8/q4 where it exists): one
// engine each, loaded once and kept; `--warmup` short discarded generations per format, then
// `--runs` measured rounds, each running every format in turn (the order rotating) on every prompt; medians of decode tok/s,
// prefill tok/s, TTFT; load ms, GPU bytes, readback bytes per step, and greedy agreement with f32
// (tokens until the first difference). Under 5 minutes on SwiftShader: measured rounds stop when
// the next would end past `--budget-s` (150 s) from the start; at least one is run.
// Writes bench/results/gpu-<ISO date>.json and .md.
//
// Usage: npm run bench:gpu [-- --models f32,gguf-q8,gguf-q4,q8,q4 --tokens 24 --runs 3 --warmup 1 --budget-s 150 --out FILE.json]
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import type { Engine } from '../src/engine.ts';
import { createNodeEngine } from '../src/node/index.ts';
import { PROJECT_ROOT } from '../test/support/browser.ts';
import { machineInfo } from './machine.ts';
import { modelVariants } from './node-models.ts';

const { values: args } = parseArgs({
  options: {
    models: { type: 'string', default: 'f32,gguf-q8,gguf-q4,q8,q4' },
    tokens: { type: 'string', default: '24' },
    runs: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '1' },
    'budget-s': { type: 'string', default: '150' },
    out: { type: 'string' },
  },
});
const TOKENS = Number(args.tokens);
const RUNS = Number(args.runs);
const WARMUP = Number(args.warmup);
/** Measured rounds stop early (at least one is run) when the next would end past this many seconds from the start. */
const BUDGET_MS = Number(args['budget-s']) * 1000;
/** The matrix's prompt sets (bench/matrix/matrix.ts): short and long. */
const PROMPTS = [
  'Once upon a time',
  'Lily and Ben were best friends and one sunny day they went to the park with their mom and saw a big red ball under a tree',
];

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

interface Run {
  prompt: number;
  decodeTokPerSec: number;
  prefillTokPerSec: number;
  ttftMs: number;
  readbackBytesPerStep: number;
  tokens: number[];
}

async function run(engine: Engine, prompt: number, maxTokens = TOKENS): Promise<Run> {
  const t0 = performance.now();
  const g = engine.generate(PROMPTS[prompt], { decoder: 'greedy', maxTokens, topK: 0, reuse: false });
  let ttftMs = 0;
  for await (const step of g) if (step.index === 0) ttftMs = performance.now() - t0;
  const r = await g.result;
  const t = r.timing;
  return {
    prompt, ttftMs,
    decodeTokPerSec: t.decodeTokens / (t.decodeMs / 1000),
    prefillTokPerSec: t.prefillTokens / (t.prefillMs / 1000),
    readbackBytesPerStep: t.readbackBytesPerStep,
    tokens: r.tokens.slice(r.promptTokenCount),
  };
}

async function main() {
  const started = new Date();
  const systems: { label: string; engine: Engine; loadMs: number; gpuBytes: number; runs: Run[] }[] = [];
  let adapter: unknown;
  const failed: { label: string; error: string }[] = [];
  for (const v of modelVariants(args.models!)) {
    const engine = await createNodeEngine();
    try {
      const t0 = performance.now();
      const info = await engine.loadModel(await v.options());
      systems.push({ label: v.label, engine, loadMs: performance.now() - t0, gpuBytes: info.gpuBytes, runs: [] });
      adapter ??= engine.adapter;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      failed.push({ label: v.label, error: message });
      console.log(`${v.label}: not run: ${message.split('\n')[0]}`);
      await engine.dispose();
    }
  }
  console.log(`adapter: ${JSON.stringify(adapter)}`);
  if (systems.length === 0) process.exit(1);
  // Warm-up: a short generation per format (first launches of every pipeline), not a full round.
  for (let w = 0; w < WARMUP; w++) for (const sys of systems) await run(sys.engine, 0, 4);
  let measuredRounds = 0;
  for (let round = 0; round < RUNS; round++) {
    const r0 = Date.now();
    for (let i = 0; i < systems.length; i++) {
      const sys = systems[(i + round) % systems.length];
      for (let p = 0; p < PROMPTS.length; p++) sys.runs.push(await run(sys.engine, p));
    }
    measuredRounds++;
    const roundMs = Date.now() - r0;
    process.stdout.write(`round ${round + 1}/${RUNS}: ${(roundMs / 1000).toFixed(0)} s\n`);
    if (Date.now() - started.getTime() + roundMs > BUDGET_MS && round + 1 < RUNS) {
      console.log(`time budget (${BUDGET_MS / 1000} s, --budget-s): stopping after ${measuredRounds} measured round(s)`);
      break;
    }
  }
  const ref = systems.find((s) => s.label === 'f32');
  const rows = systems.flatMap((s) => PROMPTS.map((_, p) => {
    const rs = s.runs.filter((r) => r.prompt === p);
    const refTokens = ref?.runs.find((r) => r.prompt === p)?.tokens;
    let agreement: number | undefined;
    if (refTokens) {
      agreement = 0;
      while (agreement < refTokens.length && rs[0].tokens[agreement] === refTokens[agreement]) agreement++;
    }
    return {
      weights: s.label, prompt: p === 0 ? 'short' : 'long', loadMs: s.loadMs, gpuBytes: s.gpuBytes,
      decodeTokPerSec: median(rs.map((r) => r.decodeTokPerSec)),
      decodeMin: Math.min(...rs.map((r) => r.decodeTokPerSec)), decodeMax: Math.max(...rs.map((r) => r.decodeTokPerSec)),
      prefillTokPerSec: median(rs.map((r) => r.prefillTokPerSec)), ttftMs: median(rs.map((r) => r.ttftMs)),
      readbackBytesPerStep: median(rs.map((r) => r.readbackBytesPerStep)), tokensPerRun: median(rs.map((r) => r.tokens.length)),
      agreementWithF32: agreement,
      ratioToF32: ref ? median(rs.map((r) => r.decodeTokPerSec)) / median(ref.runs.filter((r) => r.prompt === p).map((r) => r.decodeTokPerSec)) : undefined,
    };
  }));
  await Promise.all(systems.map((s) => s.engine.dispose()));
  const f = (x: number | undefined, d = 1) => (x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(d));
  const md = [
    `adapter: \`${JSON.stringify(adapter)}\` · ${TOKENS} greedy tokens · ${WARMUP} short warm-up + ${measuredRounds} measured round(s) (of ${RUNS}), formats interleaved`,
    '',
    '| weights | prompts | decode tok/s (min–max) | × f32 | prefill tok/s | TTFT ms | load ms | GPU MiB | readback B/step | agrees with f32 for |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.weights} | ${r.prompt} | ${f(r.decodeTokPerSec)} (${f(r.decodeMin)}–${f(r.decodeMax)}) | ${f(r.ratioToF32, 2)} | ${f(r.prefillTokPerSec)} ` +
      `| ${f(r.ttftMs)} | ${f(r.loadMs, 0)} | ${f(r.gpuBytes / 2 ** 20)} | ${f(r.readbackBytesPerStep, 0)} | ${r.agreementWithF32 ?? '—'} / ${f(r.tokensPerRun, 0)} tokens |`),
    ...failed.map((x) => `| ${x.label} | — | not run: ${x.error.split('\n')[0].slice(0, 100)} | | | | | | | |`),
  ].join('\n');
  console.log('\n' + md);
  const file = args.out ?? join(PROJECT_ROOT, 'bench', 'results', `gpu-${started.toISOString().replace(/:/g, '-')}.json`);
  mkdirSync(join(file, '..'), { recursive: true });
  const result = {
    kind: 'gpu', date: started.toISOString(), command: `npm run bench:gpu -- ${process.argv.slice(2).join(' ')}`.trim(),
    machine: machineInfo(), adapter, icd: process.env.VK_ICD_FILENAMES, prompts: PROMPTS, tokens: TOKENS, warmup: WARMUP, runs: RUNS, measuredRounds,
    rows, failed, durationMs: Date.now() - started.getTime(),
  };
  writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
  writeFileSync(file.replace(/\.json$/, '.md'), `# bench:gpu — ${result.date}\n\n${md}\n`);
  console.log(`wrote ${relative(PROJECT_ROOT, file)} and .md in ${(result.durationMs / 1000).toFixed(0)} s`);
}

await main();
