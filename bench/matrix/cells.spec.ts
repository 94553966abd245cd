// One Playwright test per matrix cell (bench/matrix/matrix.ts), each in fresh browser contexts:
// load the model(s), `warmup` discarded rounds, `runs` measured rounds, every round running each
// prompt of the cell's set. Greedy cells alternate forkwise and the peers of the cell's weights
// (llama2.c, transformers.js on f32; wllama on the GGUF files) A B C A B C, check that llama2.c
// produced the same tokens and report the others' agreement; B > 1 cells alternate a B-row run with a single-row run of
// the same batched path. The cell's numbers go to the reporter (reporter.ts) as a JSON attachment.
import { type Browser, type BrowserContext, type Page, type TestInfo, test } from '@playwright/test';
import type { ForkwiseRun } from '../peers/forkwise.ts';
import type { BatchedRun } from '../peers/batched.ts';
import { type BenchMetrics, firstDifference, median, pageMetrics, summarize } from '../run.ts';
import { machineInfo } from '../machine.ts';
import { waitForGlobal } from '../../test/support/browser.ts';
import { type Cell, type MatrixDef, type PeerName, WEIGHTS, cells, matrixFromEnv } from './matrix.ts';
import { PEERS, type PeerLoad, type PeerRun, type PeerRunner } from './peers.ts';
import { CELL_ATTACHMENT, type CellExtras, type CellResult, type PeerResult, type SystemSummary } from './result.ts';

const def = matrixFromEnv();
// Cells are independent, so Playwright may spread them over shards one by one (the config keeps
// one worker: two cells measured at once on two cores would measure each other).
test.describe.configure({ mode: 'parallel' });

for (const cell of cells(def)) {
  test(cell.id, async ({ browser }, testInfo) => {
    const base = cellBase(def, cell);
    if (cell.notApplicable) {
      await attach(testInfo, { ...base, status: 'skipped', reason: cell.notApplicable });
      test.skip(true, cell.notApplicable);
    }
    const errors: string[] = [];
    const contexts: Awaited<ReturnType<Browser['newContext']>>[] = [];
    const open = async (path: string, setup?: (c: BrowserContext) => Promise<void>) => {
      const context = await browser.newContext();
      contexts.push(context);
      await setup?.(context);
      return openPage(context, path, errors);
    };
    const t0 = Date.now();
    const info = { startedAt: new Date(t0).toISOString(), machine: machineInfo(), browserVersion: browser.version() };
    try {
      const measured = cell.batch > 1 ? await measureBatched(def, cell, open) : await measureSingle(def, cell, open);
      if (errors.length > 0) throw new Error(`page errors:\n${errors.join('\n')}`);
      await attach(testInfo, { ...base, ...info, ...measured, status: 'ok', durationMs: Date.now() - t0 });
      if (measured.sameTokens === false) throw new Error(`forkwise and llama2.c produced different tokens: ${JSON.stringify(measured.mismatches)}`);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (error instanceof SkipCell) {
        await attach(testInfo, { ...base, ...info, status: 'skipped', reason: message });
        test.skip(true, message);
      }
      if (!testInfo.attachments.some((a) => a.name === CELL_ATTACHMENT)) {
        await attach(testInfo, { ...base, ...info, status: 'failed', error: message, durationMs: Date.now() - t0 });
      }
      throw error;
    } finally {
      await Promise.allSettled(contexts.map((c) => c.close()));
    }
  });
}

type Open = (path: string, setup?: (c: BrowserContext) => Promise<void>) => Promise<Page>;
type Measured = Partial<CellResult>;

function cellBase(def: MatrixDef, cell: Cell): CellResult {
  return {
    id: cell.id, matrix: def.name, decoder: cell.decoder.label, params: { ...cell.decoder.options }, batch: cell.batch,
    promptSet: cell.promptSet.name, prompts: cell.promptSet.prompts, weights: cell.weights,
    maxTokens: def.maxTokens, warmup: def.warmup, runs: def.runs, seed: def.seed, status: 'failed',
  };
}

function attach(testInfo: TestInfo, result: CellResult): Promise<void> {
  return testInfo.attach(CELL_ATTACHMENT, { body: JSON.stringify(result), contentType: 'application/json' });
}

/** A page of the dev server started by global-setup.ts, with its errors collected. */
async function openPage(context: Awaited<ReturnType<Browser['newContext']>>, path: string, errors: string[]): Promise<Page> {
  const page = await context.newPage();
  page.on('pageerror', (e) => errors.push(`[${path}] ${e.message}`));
  // As in test/support/browser.ts: failed loads are reported by URL below (the favicon aside).
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(`[${path}] console: ${m.text()}`);
  });
  page.on('response', (r) => void (r.status() >= 400 && !r.url().endsWith('/favicon.ico') && errors.push(`[${path}] HTTP ${r.status()} ${r.url()}`)));
  page.on('crash', () => errors.push(`[${path}] crashed`));
  const base = process.env.BENCH_BASE_URL;
  if (!base) throw new Error('BENCH_BASE_URL is not set: run through bench/playwright.config.ts (its globalSetup starts the dev server)');
  const response = await page.goto(base + path, { waitUntil: 'load', timeout: 120_000 });
  if (!response?.ok()) throw new Error(`GET ${path} -> ${response?.status() ?? 'no response'}`);
  return page;
}

/** Each measured round's runs, the warm-up rounds left out. */
async function rounds<T>(def: MatrixDef, prompts: string[], run: (prompt: string) => Promise<T>): Promise<T[]> {
  const measured: T[] = [];
  for (let round = 0; round < def.warmup + def.runs; round++) {
    for (const prompt of prompts) {
      const r = await run(prompt);
      if (round >= def.warmup) measured.push(r);
    }
  }
  return measured;
}

function systemSummary(name: string, loadMs: number, ms: BenchMetrics[]): SystemSummary {
  return {
    name, loadMs,
    decodeTokPerSec: summarize(ms.map((m) => m.decodeTokPerSec)),
    prefillTokPerSec: summarize(ms.map((m) => m.prefillTokPerSec)),
    ttftMs: summarize(ms.map((m) => m.ttftMs)),
    readbackBytesPerStep: summarize(ms.map((m) => m.readbackBytesPerStep)),
    tokensPerRun: median(ms.map((m) => m.generatedTokens)),
  };
}

const ratioOf = (a?: { median: number }, b?: { median: number }) => (a && b ? a.median / b.median : undefined);

/**
 * B = 1: forkwise's public API with the cell's decoder and weights; greedy cells also run the
 * weights' peers (bench/matrix/peers.ts), each in its own page, alternating A B C … per prompt.
 */
async function measureSingle(def: MatrixDef, cell: Cell, open: Open): Promise<Measured> {
  const weights = WEIGHTS[cell.weights];
  if (!weights) throw new Error(`unknown weight format ${cell.weights} (bench/matrix/matrix.ts WEIGHTS)`);
  const fw = await open('/bench/pages/forkwise.html');
  await waitForGlobal(fw, 'runForkwise');
  let load: Awaited<ReturnType<typeof window.loadForkwise>>;
  try {
    load = await fw.evaluate((o) => window.loadForkwise(o), { smallModel: cell.decoder.smallModel ?? false, ...weights.forkwise });
  } catch (error) {
    // A format forkwise cannot load yet (loadModel without the `weights` option) is reported, not failed.
    const message = error instanceof Error ? error.message : String(error);
    if (weights.forkwise.weights && /weights/i.test(message)) throw new SkipCell(`forkwise cannot load weights ${cell.weights}: ${message.split('\n')[0]}`);
    throw error;
  }
  const wanted = cell.decoder.peer ? weights.peers.filter((p) => !def.peers || def.peers.includes(p)) : [];
  const peers: { runner: PeerRunner; page: Page; load: PeerLoad; maxTokens: number }[] = [];
  const results: PeerResult[] = [];
  for (const name of wanted) {
    const runner = PEERS[name];
    const unavailable = runner.unavailable?.();
    if (unavailable) {
      results.push({ name, status: 'skipped', reason: unavailable });
      continue;
    }
    try {
      const page = await open(runner.page, runner.setup);
      peers.push({ runner, page, load: await runner.load(page, weights), maxTokens: Math.min(def.maxTokens, def.peerMaxTokens?.[name] ?? Infinity) });
    } catch (error) {
      if (runner.mustMatch) throw error;
      results.push({ name, status: 'failed', reason: error instanceof Error ? error.message.split('\n')[0] : String(error) });
    }
  }
  const generate = { ...cell.decoder.options, seed: def.seed };

  const rows = await rounds(def, cell.promptSet.prompts, async (prompt) => {
    const raw: ForkwiseRun = await fw.evaluate((p) => window.runForkwise(p), { prompt, maxTokens: def.maxTokens, generate });
    const a = { ...pageMetrics(raw), readbackBytesPerStep: raw.readbackBytesPerStep };
    const b: (PeerRun | undefined)[] = [];
    for (const peer of peers) {
      const r = await peer.runner.run(peer.page, { prompt, maxTokens: peer.maxTokens, forkwisePrefillTokens: raw.prefillTokens });
      if (peer.runner.mustMatch && r.promptTokens && r.promptTokens.join() !== raw.promptTokens.join()) {
        throw new Error(`${peer.runner.name} encodes ${JSON.stringify(prompt)} as ${r.promptTokens} and forkwise as ${raw.promptTokens}: ` +
          "the peer's July-2023 tokenizer differs on some characters; pick a prompt without them (bench/matrix/matrix.ts)");
      }
      if ((r.tokens?.length ?? 0) === 0 && r.text.length > prompt.length) {
        // A peer that streams text only: its continuation's ids under forkwise's tokenizer.
        const ids = await fw.evaluate((t) => window.encodeForkwise(t), r.text);
        r.tokens = ids.slice(raw.promptTokens.length);
        r.generatedTokens = r.tokens.length;
        r.tokensFromText = true;
      }
      b.push(r);
    }
    return { raw, a, b };
  });

  const forkwise = { ...systemSummary('forkwise', load.loadMs, rows.map((r) => r.a)), gpuBytes: load.gpuBytes, details: { weightBytes: load.weightBytes, model: weights.forkwise } };
  const out: Measured = {
    forkwise, adapter: load.adapter, extras: extrasOf(rows.map((r) => r.raw), cell.decoder.options.decoder),
    ...(cell.decoder.peer ? { tokens: cell.promptSet.prompts.map((_, i) => rows[i]?.a.tokens ?? []) } : {}),
  };
  if (!cell.decoder.peer) return out;
  let mismatches: { peer: string; run: number; difference: unknown }[] = [];
  peers.forEach((peer, k) => {
    const runs = rows.map((r) => r.b[k]!);
    const summary = { ...systemSummary(peer.runner.label ?? peer.runner.name, peer.load.loadMs, runs), details: peer.load.details };
    let agree = Infinity;
    let of = 0;
    rows.forEach((r, run) => {
      const mine = r.a.tokens ?? [];
      const theirs = runs[run].tokens ?? [];
      const n = Math.min(mine.length, theirs.length);
      let same = 0;
      while (same < n && mine[same] === theirs[same]) same++;
      agree = Math.min(agree, same);
      of = Math.max(of, n);
      if (peer.runner.mustMatch) {
        const difference = firstDifference(r.a, runs[run]);
        if (difference) mismatches.push({ peer: peer.runner.name, run: run + 1, difference });
      }
    });
    results.push({
      name: peer.runner.name, status: 'ok', summary, maxTokens: peer.maxTokens,
      ratio: {
        decodeTokPerSec: ratioOf(forkwise.decodeTokPerSec, summary.decodeTokPerSec),
        prefillTokPerSec: ratioOf(forkwise.prefillTokPerSec, summary.prefillTokPerSec),
        ttftMs: ratioOf(forkwise.ttftMs, summary.ttftMs),
      },
      agreement: { tokens: Number.isFinite(agree) ? agree : 0, of, ...(runs.some((r) => r.tokensFromText) ? { fromText: true } : {}) },
    });
  });
  results.sort((x, y) => wanted.indexOf(x.name as PeerName) - wanted.indexOf(y.name as PeerName));
  // The first peer that ran is the cell's `peer` (what regressions compare the ratio with).
  const primary = results.find((r) => r.status === 'ok');
  mismatches = mismatches.filter((m) => m.peer === 'llama2.c');
  return {
    ...out,
    peers: results,
    ...(primary ? { peer: primary.summary, ratio: primary.ratio } : {}),
    ...(peers.some((p) => p.runner.mustMatch) ? { sameTokens: mismatches.length === 0, mismatches } : {}),
  };
}

/** Thrown by a cell that cannot run here for a reason that is not a fault: reported as skipped. */
class SkipCell extends Error {}

/** Event counts per run; the decoder's own event type is listed even when it never fired (e.g. 0 SRGen reflections). */
function extrasOf(runs: ForkwiseRun[], decoder?: string): CellExtras {
  const own = decoder === 'cntp' || decoder === 'ead' || decoder === 'srgen' ? [decoder] : [];
  const types = new Set([...own, ...runs.flatMap((r) => Object.keys(r.extras.events))]);
  const eventsPerRun = Object.fromEntries([...types].map((t) => [t, median(runs.map((r) => r.extras.events[t] ?? 0))]));
  const num = (k: string) => {
    const xs = runs.map((r) => r.extras.summary[k]).filter((x): x is number => typeof x === 'number');
    return xs.length ? median(xs) : undefined;
  };
  const largeShare = num('largeShare');
  const costRatio = num('costRatio');
  return { eventsPerRun, ...(largeShare === undefined ? {} : { largeShare }), ...(costRatio === undefined ? {} : { costRatio }) };
}

/** B > 1: batched KV rows (bench/peers/batched.ts), each B-row run after a single-row run. */
async function measureBatched(def: MatrixDef, cell: Cell, open: Open): Promise<Measured> {
  const page = await open('/bench/pages/batched.html');
  await waitForGlobal(page, 'runBatched');
  const load = await page.evaluate(() => window.loadBatched());
  const temperature = cell.decoder.options.temperature ?? 1;
  const run = (prompt: string, rows: number): Promise<BatchedRun> =>
    page.evaluate((p) => window.runBatched(p), { prompt, rows, maxTokens: def.maxTokens, temperature, seed: def.seed });
  const pairs = await rounds(def, cell.promptSet.prompts, async (prompt) => ({ one: await run(prompt, 1), many: await run(prompt, cell.batch) }));

  const many = pairs.map((p) => p.many);
  const forkwise: SystemSummary = {
    name: 'forkwise (batched rows)', loadMs: load.loadMs,
    decodeTokPerSec: summarize(many.map((r) => r.decodeTokPerSec)),
    prefillTokPerSec: summarize(many.map((r) => r.prefillTokPerSec)),
    ttftMs: summarize(many.map((r) => r.ttftMs)),
    readbackBytesPerStep: summarize(many.map((r) => r.readbackBytesPerStep)),
    tokensPerRun: def.maxTokens,
  };
  const stepMs = median(many.map((r) => r.stepMs));
  const singleRowStepMs = median(pairs.map((p) => p.one.stepMs));
  return {
    forkwise,
    adapter: load.adapter,
    batched: {
      perRowTokPerSec: forkwise.decodeTokPerSec!.median / cell.batch,
      stepMs, singleRowStepMs,
      perRowRelative: stepMs / cell.batch / singleRowStepMs,
      distinctRows: Math.min(...many.map((r) => r.distinctRows)),
    },
  };
}
