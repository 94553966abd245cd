// `npm run bench:models`: every model fixture (test/fixtures) and the bundled stories15M in Node
// (the `webgpu` package; SwiftShader here), in one process:
//   1. per model: load time, GPU bytes, parameter count, dtype, architecture, and greedy prefill
//      and decode tok/s. Each model gets its own engine, loaded once (so every load compiles its
//      kernels, as a fresh page would) and kept loaded; then `--warmup` discarded and `--runs`
//      measured rounds, each round running every model once in turn (interleaved), medians;
//   2. stories15M-hf-bf16 loaded from a URL (an HTTP server with Range support in a child process,
//      so its memory is not counted) versus from bytes (every file read into a Uint8Array first,
//      those bytes counted), alternately, a new engine each time: load + time to first token, TTFT,
//      and peak JS memory (heapUsed, arrayBuffers, their sum) over the baseline, sampled every
//      ~5 ms and at every load progress event; global.gc() before each measurement.
// Writes bench/results/models-<ISO date>.json and .md; prints the same tables.
//
// Usage: npm run bench:models [-- --runs 3 --warmup 1 --tokens 32 --load-runs 3 --only models,load
//                              --models llama2.c,Q4_0 (names containing one of these)]
import { type ChildProcess, fork } from 'node:child_process';
import { createReadStream, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, normalize, relative, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { Engine, GenerationResult, LoadModelOptions, ModelInfo } from '../src/engine.ts';
import { folderFromMap } from '../src/model/formats/hf.ts';
import { bytesReader } from '../src/model/readers.ts';
import type { ByteReader } from '../src/model/tensors.ts';
import { bundledModel, createNodeEngine, modelFromPath } from '../src/node/index.ts';
import { machineInfo } from './machine.ts';
import { MODEL_FIXTURES } from '../test/support/fixtures.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const FIXTURES = join(ROOT, 'test', 'fixtures');

/** The model fixtures (test/support/fixtures.ts: path relative to test/fixtures). */
const FIXTURE_MODELS = MODEL_FIXTURES;

/** ~30 tokens for the Llama/stories tokenizers (each model's count is reported). */
const PROMPT = 'Once upon a time, there was a little girl named Lily. She lived in a small house near the big forest with her mom and her dog';
const LOAD_MODEL = 'stories15M-hf-bf16';
const LOAD_PROMPT = 'Once upon a time';

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const MiB = (n: number) => (n / 2 ** 20).toFixed(1);
const gc = (globalThis as { gc?: () => void }).gc;

// ---------------------------------------------------------------------------------------------
// The file server (child process): GET/HEAD with single Range requests, 404 outside the root.

function serve(root: string): void {
  const server = createServer((req, res) => {
    const path = normalize(join(root, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)));
    let size: number;
    try {
      if (!path.startsWith(root + sep)) throw new Error('outside');
      const st = statSync(path);
      if (!st.isFile()) throw new Error('not a file');
      size = st.size;
    } catch {
      res.writeHead(404).end('not found');
      return;
    }
    const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '');
    let start = 0;
    let end = size - 1;
    if (range) {
      if (range[1] === '') start = Math.max(0, size - Number(range[2]));
      else {
        start = Number(range[1]);
        if (range[2] !== '') end = Math.min(end, Number(range[2]));
      }
      if (start >= size || start > end) {
        res.writeHead(416, { 'Content-Range': `bytes */${size}` }).end();
        return;
      }
    }
    const headers = { 'Accept-Ranges': 'bytes', 'Content-Length': String(end - start + 1), 'Content-Type': 'application/octet-stream' };
    res.writeHead(range ? 206 : 200, range ? { ...headers, 'Content-Range': `bytes ${start}-${end}/${size}` } : headers);
    if (req.method === 'HEAD' || size === 0) res.end();
    else createReadStream(path, { start, end }).pipe(res);
  });
  server.listen(0, '127.0.0.1', () => process.send?.((server.address() as AddressInfo).port));
}

async function startServer(root: string): Promise<{ base: string; child: ChildProcess }> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve', root], { stdio: 'inherit' });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m) => resolve(Number(m)));
    child.once('exit', (code) => reject(new Error(`file server exited (${code})`)));
  });
  return { base: `http://127.0.0.1:${port}/`, child };
}

// ---------------------------------------------------------------------------------------------
// 1. Every model.

interface ModelRow {
  name: string;
  source: string;
  architecture: string;
  format: string;
  dtype: string;
  parameterCount: number;
  contextLength: number;
  gpuBytes: number;
  loadMs: number;
  prefillTokens: number;
  decodeTokens: number;
  ttftMs: number;
  prefillTokPerSec: number;
  decodeTokPerSec: number;
  /** Per measured round. */
  runs: { ttftMs: number; prefillTokPerSec: number; decodeTokPerSec: number; decodeTokens: number }[];
}

async function benchModels(runs: number, warmup: number, tokens: number, filter: string[] | null): Promise<ModelRow[]> {
  const all: { name: string; source: string; options: () => Promise<LoadModelOptions> }[] = [
    {
      name: 'stories15M (llama2.c f32)', source: relative(ROOT, bundledModel.model),
      options: async () => ({ model: await modelFromPath(bundledModel.model), tokenizer: new Uint8Array(readFileSync(bundledModel.tokenizer)) }),
    },
    ...FIXTURE_MODELS.map((f) => ({
      name: f.name, source: `test/fixtures/${f.model}`,
      options: async () => ({ model: await modelFromPath(join(FIXTURES, f.model)) }),
    })),
  ];
  const models = filter ? all.filter((m) => filter.some((f) => m.name.includes(f))) : all;
  const loaded: { name: string; source: string; engine: Engine; info: ModelInfo; results: GenerationResult[] }[] = [];
  for (const m of models) {
    const engine = await createNodeEngine();
    const info = await engine.loadModel(await m.options());
    console.log(`# loaded ${m.name}: ${info.loadMs.toFixed(0)} ms, ${MiB(info.gpuBytes)} MiB on the GPU`);
    loaded.push({ ...m, engine, info, results: [] });
  }
  for (let round = 0; round < warmup + runs; round++) {
    for (const m of loaded) {
      const r = await m.engine.generate(PROMPT, { decoder: 'greedy', maxTokens: tokens, reuse: false }).complete();
      if (round >= warmup) m.results.push(r);
    }
    console.log(`# round ${round + 1}/${warmup + runs}${round < warmup ? ' (warm-up)' : ''} done`);
  }
  return loaded.map(({ name, source, engine, info, results }) => {
    engine.dispose();
    const t = results.map((r) => r.timing);
    return {
      name, source,
      architecture: info.config.architecture, format: info.format, dtype: info.dtype,
      parameterCount: info.parameterCount, contextLength: info.contextLength, gpuBytes: info.gpuBytes, loadMs: info.loadMs,
      prefillTokens: t[0].prefillTokens, decodeTokens: median(t.map((x) => x.decodeTokens)),
      ttftMs: median(t.map((x) => x.ttftMs)),
      prefillTokPerSec: median(t.map((x) => x.prefillTokPerSec)),
      decodeTokPerSec: median(t.map((x) => x.decodeTokPerSec)),
      runs: t.map((x) => ({ ttftMs: x.ttftMs, prefillTokPerSec: x.prefillTokPerSec, decodeTokPerSec: x.decodeTokPerSec, decodeTokens: x.decodeTokens })),
    };
  });
}

function modelsTable(rows: ModelRow[]): string {
  const lines = [
    '| model | architecture | format | dtype | parameters | context | GPU MiB | load ms | prompt tokens | decoded | TTFT ms | prefill tok/s | decode tok/s |',
    '|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    lines.push(`| ${r.name} | ${r.architecture} | ${r.format} | ${r.dtype} | ${(r.parameterCount / 1e6).toFixed(2)} M | ${r.contextLength} | ` +
      `${MiB(r.gpuBytes)} | ${r.loadMs.toFixed(0)} | ${r.prefillTokens} | ${r.decodeTokens} | ${r.ttftMs.toFixed(0)} | ` +
      `${r.prefillTokPerSec.toFixed(1)} | ${r.decodeTokPerSec.toFixed(1)} |`);
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// 2. URL versus bytes.

interface Memory { heapUsed: number; arrayBuffers: number; sum: number }
interface LoadRun {
  way: 'url' | 'bytes';
  /** Bytes only: reading the folder's files into memory, before loadModel. */
  readMs: number;
  loadMs: number;
  /** From calling loadModel to the first generated token. */
  firstTokenMs: number;
  ttftMs: number;
  /** Peaks over the baseline taken (after gc) just before the files are read / loadModel is called. */
  peak: Memory;
  baseline: Memory;
  samples: number;
}

/** Samples heapUsed and arrayBuffers every ~5 ms (and on demand) until stopped. */
function memorySampler() {
  const now = (): Memory => {
    const m = process.memoryUsage();
    return { heapUsed: m.heapUsed, arrayBuffers: m.arrayBuffers, sum: m.heapUsed + m.arrayBuffers };
  };
  const baseline = now();
  const peak = { ...baseline };
  let samples = 0;
  const sample = () => {
    const m = now();
    samples++;
    peak.heapUsed = Math.max(peak.heapUsed, m.heapUsed);
    peak.arrayBuffers = Math.max(peak.arrayBuffers, m.arrayBuffers);
    peak.sum = Math.max(peak.sum, m.sum);
  };
  const timer = setInterval(sample, 5);
  return {
    sample,
    stop() {
      clearInterval(timer);
      sample();
      return {
        baseline, samples,
        peak: { heapUsed: peak.heapUsed - baseline.heapUsed, arrayBuffers: peak.arrayBuffers - baseline.arrayBuffers, sum: peak.sum - baseline.sum },
      };
    },
  };
}

async function loadOnce(way: 'url' | 'bytes', base: string): Promise<LoadRun> {
  const engine = await createNodeEngine();
  const dir = join(FIXTURES, LOAD_MODEL);
  gc?.();
  await new Promise((r) => setTimeout(r, 20));
  const sampler = memorySampler();
  let readMs = 0;
  let model: LoadModelOptions['model'];
  if (way === 'url') model = `${base}${LOAD_MODEL}/`;
  else {
    const t = performance.now();
    const files = new Map<string, ByteReader>();
    for (const name of readdirSync(dir)) {
      files.set(name, bytesReader(name, new Uint8Array(readFileSync(join(dir, name)))));
      sampler.sample();
    }
    model = folderFromMap(files);
    readMs = performance.now() - t;
  }
  const t0 = performance.now();
  const info = await engine.loadModel({ model, onProgress: sampler.sample });
  let firstTokenMs = 0;
  const generation = engine.generate(LOAD_PROMPT, { decoder: 'greedy', maxTokens: 4 });
  for await (const _ of generation) {
    if (!firstTokenMs) firstTokenMs = performance.now() - t0;
    sampler.sample();
  }
  const result = await generation.result;
  const memory = sampler.stop();
  engine.dispose();
  return { way, readMs, loadMs: info.loadMs, firstTokenMs, ttftMs: result.timing.ttftMs, ...memory };
}

async function benchLoads(runs: number) {
  const { base, child } = await startServer(FIXTURES);
  const all: LoadRun[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      for (const way of ['url', 'bytes'] as const) {
        const r = await loadOnce(way, base);
        console.log(`# ${way} load ${i + 1}/${runs}: first token ${r.firstTokenMs.toFixed(0)} ms, peak heap+ab +${MiB(r.peak.sum)} MiB (${r.samples} samples)`);
        all.push(r);
      }
    }
  } finally {
    child.kill();
  }
  const summary = (['url', 'bytes'] as const).map((way) => {
    const rs = all.filter((r) => r.way === way);
    const med = (f: (r: LoadRun) => number) => median(rs.map(f));
    return {
      way, n: rs.length,
      readMs: med((r) => r.readMs), loadMs: med((r) => r.loadMs), firstTokenMs: med((r) => r.firstTokenMs), ttftMs: med((r) => r.ttftMs),
      peakHeapUsed: med((r) => r.peak.heapUsed), peakArrayBuffers: med((r) => r.peak.arrayBuffers), peakSum: med((r) => r.peak.sum),
    };
  });
  return { runs: all, summary };
}

function loadsTable(summary: Awaited<ReturnType<typeof benchLoads>>['summary']): string {
  const lines = [
    '| from | n | read files ms | load ms | loadModel → first token ms | TTFT ms | peak heapUsed MiB | peak arrayBuffers MiB | peak heapUsed + arrayBuffers MiB |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const s of summary) {
    lines.push(`| ${s.way === 'url' ? 'URL (HTTP Range)' : 'bytes (Uint8Array per file)'} | ${s.n} | ${s.way === 'url' ? '–' : s.readMs.toFixed(0)} | ` +
      `${s.loadMs.toFixed(0)} | ${s.firstTokenMs.toFixed(0)} | ${s.ttftMs.toFixed(1)} | +${MiB(s.peakHeapUsed)} | +${MiB(s.peakArrayBuffers)} | +${MiB(s.peakSum)} |`);
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const { values: args } = parseArgs({
    options: {
      runs: { type: 'string', default: '3' },
      warmup: { type: 'string', default: '1' },
      tokens: { type: 'string', default: '32' },
      'load-runs': { type: 'string', default: '3' },
      only: { type: 'string', default: 'models,load' },
      models: { type: 'string' },
      out: { type: 'string' },
    },
  });
  const only = new Set(args.only.split(','));
  const runs = Number(args.runs);
  const warmup = Number(args.warmup);
  const tokens = Number(args.tokens);
  const loadRuns = Number(args['load-runs']);
  const started = new Date();
  const report: Record<string, unknown> = {
    kind: 'models',
    date: started.toISOString(),
    command: `npm run bench:models${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    machine: machineInfo(),
    gcForced: Boolean(gc),
  };
  const sections: string[] = [];

  if (only.has('models')) {
    const rows = await benchModels(runs, warmup, tokens, args.models ? args.models.split(',') : null);
    const protocol = `greedy, prompt ${JSON.stringify(PROMPT)}, up to ${tokens} new tokens; one engine per model, loaded once ` +
      `(load ms includes compiling its kernels); ${warmup} warm-up + ${runs} measured rounds, each round every model in turn; medians`;
    report.models = { protocol, rows };
    sections.push(`## Models\n\n${protocol}.\n\n${modelsTable(rows)}`);
  }
  if (only.has('load')) {
    const loads = await benchLoads(loadRuns);
    const protocol = `${LOAD_MODEL} from a URL (node:http with Range, in a child process) vs from bytes (each file read into a ` +
      `Uint8Array, folderFromMap + bytesReader); alternately, ${loadRuns} each, a new engine each time (kernels compile every load); ` +
      `greedy "${LOAD_PROMPT}"; memory = peak over the baseline just before reading/loading, sampled every ~5 ms and on each ` +
      `progress event; ${gc ? 'global.gc() before each baseline' : 'GC not forced (no --expose-gc)'}; medians`;
    report.load = { protocol, ...loads };
    sections.push(`## URL vs bytes\n\n${protocol}.\n\n${loadsTable(loads.summary)}`);
  }

  const md = `# forkwise models bench ${report.date}\n\n${sections.join('\n\n')}\n`;
  console.log(`\n${md}`);
  const path = args.out ?? join(ROOT, 'bench', 'results', `models-${started.toISOString().replace(/:/g, '-')}.json`);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(report, null, 2) + '\n');
  writeFileSync(path.replace(/\.json$/, '') + '.md', md);
  console.log(`wrote ${relative(ROOT, path)} and .md`);
}

if (process.argv[2] === '--serve') serve(process.argv[3]);
else if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main()
    .then(() => process.exit(process.exitCode ?? 0)) // Dawn keeps the event loop alive
    .catch((err) => {
      console.error(err);
      process.exit(1);
    });
}
