// A matrix result file → REPORT.md (tables, regressions against the previous result file, how
// it was produced) + two hand-written SVG charts. Used by the reporter after every run, and alone:
//   node --import tsx bench/matrix/report.ts [result.json]   (default: the newest in bench/results/matrix)
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PROJECT_ROOT } from '../../test/support/browser.ts';
import { type CellResult, type MatrixResult, RESULT_KIND } from './result.ts';

export const DEFAULT_RESULTS_DIR = join(PROJECT_ROOT, 'bench', 'results', 'matrix');
/** A cell regresses when its metric drops by more than this fraction (BENCH_REGRESSION_THRESHOLD). */
export const DEFAULT_THRESHOLD = 0.15;

export interface ReportPaths {
  resultsDir: string;
  reportFile: string;
  chartsDir: string;
}

/** Where results and the report go: BENCH_OUT puts everything in one folder (the npm test uses a temp dir). */
export function reportPaths(env = process.env): ReportPaths {
  const out = env.BENCH_OUT;
  if (out) return { resultsDir: out, reportFile: join(out, 'REPORT.md'), chartsDir: join(out, 'report') };
  return { resultsDir: DEFAULT_RESULTS_DIR, reportFile: join(PROJECT_ROOT, 'bench', 'REPORT.md'), chartsDir: join(PROJECT_ROOT, 'bench', 'report') };
}

export interface Regression {
  id: string;
  /** `ratio to <peer>` (the cell's first peer: llama2.c-wasm, wllama) or 'decode tok/s'. */
  metric: string;
  /** Date of the result file the cell was compared with. */
  previousDate: string;
  previous: number;
  current: number;
  /** current / previous − 1 (negative: worse). */
  change: number;
  flagged: boolean;
}

/**
 * The matrix results in `dir` of the same matrix size dated before `date`, newest first (older
 * non-matrix files are ignored; other sizes differ in tokens and rounds, so are not comparable).
 */
export function findPrevious(dir: string, date: string, matrix: string): MatrixResult[] {
  const found: MatrixResult[] = [];
  for (const name of safeList(dir)) {
    if (!name.endsWith('.json')) continue;
    try {
      const r: MatrixResult = JSON.parse(readFileSync(join(dir, name), 'utf8'));
      if (r?.kind === RESULT_KIND && r.matrix?.name === matrix && r.date < date) found.push(r);
    } catch {
      // not JSON: not a result file
    }
  }
  return found.sort((a, b) => b.date.localeCompare(a.date));
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/**
 * Every ok cell against the newest earlier file where that cell was ok too (a partial run,
 * e.g. with --grep, leaves the other cells' last values in force). Compared on the ratio to the
 * cell's peer (llama2.c for f32, wllama for q8/q4) when both runs have one against the same peer
 * (both systems measured in the same minutes: less sensitive to the shared machine's load), else
 * on decode tok/s.
 */
export function compare(current: MatrixResult, previous: MatrixResult[], threshold = DEFAULT_THRESHOLD): Regression[] {
  return current.cells.flatMap((c) => {
    const prevFile = previous.find((r) => r.cells.some((x) => x.id === c.id && x.status === 'ok'));
    const p = prevFile?.cells.find((x) => x.id === c.id);
    if (c.status !== 'ok' || !prevFile || !p) return [];
    const byRatio = c.ratio?.decodeTokPerSec !== undefined && p.ratio?.decodeTokPerSec !== undefined && c.peer?.name === p.peer?.name;
    const cur = byRatio ? c.ratio!.decodeTokPerSec! : c.forkwise?.decodeTokPerSec?.median;
    const prev = byRatio ? p.ratio!.decodeTokPerSec! : p.forkwise?.decodeTokPerSec?.median;
    if (cur === undefined || prev === undefined || prev <= 0) return [];
    const change = cur / prev - 1;
    return [{
      id: c.id, metric: byRatio ? `ratio to ${c.peer!.name}` : 'decode tok/s', previousDate: prevFile.date,
      previous: prev, current: cur, change, flagged: change < -threshold,
    }];
  });
}

const f = (x: number | undefined, digits = 1) => (x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(digits));

function extrasText(c: CellResult): string {
  const parts = Object.entries(c.extras?.eventsPerRun ?? {}).map(([type, n]) => `${type} ${f(n, 0)}/run`);
  if (c.extras?.largeShare !== undefined) parts.push(`large share ${f(c.extras.largeShare, 2)}`);
  if (c.extras?.costRatio !== undefined) parts.push(`cost ×${f(c.extras.costRatio, 2)}`);
  if (c.batched) {
    parts.push(`${f(c.batched.perRowTokPerSec)} tok/s/row`, `row cost ×${f(c.batched.perRowRelative, 2)} of B=1`, `${c.batched.distinctRows} distinct rows`);
  }
  return parts.join(', ') || '—';
}

function mainTable(cells: CellResult[]): string {
  const rows = cells.filter((c) => c.status !== 'skipped').map((c) => {
    const fw = c.forkwise;
    const same = c.sameTokens === undefined ? '—' : c.sameTokens ? 'yes' : '**NO**';
    const status = c.status === 'ok' ? 'ok' : `**failed**: ${(c.error ?? '').split('\n')[0].slice(0, 120)}`;
    return `| ${c.decoder} | ${c.batch} | ${c.promptSet} | ${status} | ${c.weights} | ${f(fw?.decodeTokPerSec?.median)} (${f(fw?.decodeTokPerSec?.min)}–${f(fw?.decodeTokPerSec?.max)}) ` +
      `| ${f(c.peer?.decodeTokPerSec?.median)} | ${c.ratio ? `×${f(c.ratio.decodeTokPerSec, 3)}` : '—'} | ${f(fw?.prefillTokPerSec?.median)} ` +
      `| ${f(fw?.ttftMs?.median)} | ${f(fw?.tokensPerRun, 0)} | ${f(fw?.readbackBytesPerStep?.median, 0)} | ${extrasText(c)} | ${same} |`;
  });
  return [
    '| decoder | B | prompts | status | weights | decode tok/s (min–max) | peer tok/s | ratio | prefill tok/s | TTFT ms | tokens/run | readback B/step | extras | same tokens |',
    '|---|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|',
    ...rows,
  ].join('\n');
}

/** Generated tokens equal to the f32 greedy cell's (same prompt set) before the first difference, per prompt. */
function agreementWithF32(c: CellResult, all: CellResult[]): string {
  if (c.weights === 'f32' || !c.tokens) return c.weights === 'f32' && c.tokens ? 'golden' : '—';
  const ref = all.find((x) => x.status === 'ok' && x.weights === 'f32' && x.decoder === c.decoder && x.batch === c.batch && x.promptSet === c.promptSet);
  if (!ref?.tokens) return '—';
  return c.tokens.map((mine, i) => {
    const theirs = ref.tokens![i] ?? [];
    let same = 0;
    while (same < Math.min(mine.length, theirs.length) && mine[same] === theirs[same]) same++;
    return `${same}/${theirs.length}`;
  }).join(', ');
}

const mib = (b?: number) => (b === undefined ? '—' : (b / 2 ** 20).toFixed(1));

/** One row per system of every greedy cell that has peers: forkwise first, then each peer with forkwise ÷ peer. */
export function peersTable(cells: CellResult[]): string {
  const rows = cells.filter((c) => c.status === 'ok' && c.peers).flatMap((c) => {
    const fw = c.forkwise!;
    const head = `| ${c.weights} | ${c.promptSet} | **forkwise** (WebGPU) | ${f(fw.decodeTokPerSec?.median)} | ${f(fw.prefillTokPerSec?.median)} | ${f(fw.ttftMs?.median)} ` +
      `| ${f(fw.loadMs, 0)} | ${mib(fw.gpuBytes)} | ${f(fw.readbackBytesPerStep?.median, 0)} | ${f(fw.tokensPerRun, 0)} | — | f32: ${agreementWithF32(c, cells)} |`;
    const peers = (c.peers ?? []).map((p) => {
      if (p.status !== 'ok') return `| ${c.weights} | ${c.promptSet} | ${p.name} | ${p.status}: ${(p.reason ?? '').slice(0, 140)} | | | | | | | | |`;
      const s = p.summary!;
      const d = s.details ?? {};
      const how = [d.threads !== undefined ? `${d.threads} thread${d.threads === 1 ? '' : 's'}` : '', d.device ? String(d.device) : ''].filter(Boolean).join(', ');
      const agree = p.agreement ? `${p.agreement.tokens}/${p.agreement.of}${p.agreement.fromText ? ' (re-encoded text)' : ''}` : '—';
      return `| ${c.weights} | ${c.promptSet} | ${p.name}${how ? ` (${how})` : ''} | ${f(s.decodeTokPerSec?.median)} | ${f(s.prefillTokPerSec?.median)} | ${f(s.ttftMs?.median)} ` +
        `| ${f(s.loadMs, 0)} | — | — | ${f(s.tokensPerRun, 0)} | ×${f(p.ratio?.decodeTokPerSec, 2)} / ×${f(p.ratio?.prefillTokPerSec, 2)} / ×${f(p.ratio?.ttftMs, 2)} | with forkwise: ${agree} |`;
    });
    return [head, ...peers];
  });
  if (rows.length === 0) return 'No greedy cell with peers in this run.';
  return [
    '| weights | prompts | system | decode tok/s | prefill tok/s | TTFT ms | load ms | GPU MiB | readback B/step | tokens/run | forkwise ÷ peer (decode / prefill / TTFT) | greedy agreement (tokens) |',
    '|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|',
    ...rows,
  ].join('\n');
}

/** Decode tok/s of forkwise and every peer, one group of bars per greedy cell with peers. */
export function peersChart(r: MatrixResult): string {
  const groups = r.cells.filter((c) => c.status === 'ok' && c.peers && c.forkwise?.decodeTokPerSec).map((c) => ({
    label: `${c.weights} · ${c.promptSet}`,
    bars: [{ name: 'forkwise', value: c.forkwise!.decodeTokPerSec!.median },
      ...(c.peers ?? []).filter((p) => p.status === 'ok' && p.summary?.decodeTokPerSec).map((p) => ({ name: p.name, value: p.summary!.decodeTokPerSec!.median }))],
  }));
  const colors: Record<string, string> = { forkwise: '#3f6fb5', 'llama2.c': '#9e9e9e', wllama: '#e08a2c', 'transformers.js wasm': '#5aa469', 'transformers.js webgpu': '#a05aa4' };
  const barH = 11, left = 160, width = 760, barW = width - left - 190, top = 44;
  const max = Math.max(1e-9, ...groups.flatMap((g) => g.bars.map((b) => b.value)));
  const esc = (x: string) => x.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  let y = top;
  const body = groups.map((g) => {
    const parts = [`<text x="${left - 6}" y="${y + 10}" font-size="11" text-anchor="end">${esc(g.label)}</text>`];
    for (const b of g.bars) {
      const w = Math.max(1, (b.value / max) * barW);
      parts.push(`<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${barH - 2}" fill="${colors[b.name] ?? '#333'}"/>` +
        `<text x="${(left + w + 4).toFixed(1)}" y="${y + 8}" font-size="9">${f(b.value)} ${esc(b.name)}</text>`);
      y += barH;
    }
    y += 10;
    return parts.join('');
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y + 10}" font-family="sans-serif">` +
    '<rect width="100%" height="100%" fill="white"/>' +
    `<text x="10" y="20" font-size="14" font-weight="bold">${esc(`Greedy decode tok/s: forkwise and its peers on the same weights (${r.matrix.name}, ${r.date.slice(0, 16)})`)}</text>` +
    `<text x="${left}" y="36" font-size="10" fill="#555">median decode tok/s; same browser, alternating runs in one cell</text>` +
    body.join('') + '</svg>\n';
}

function regressionSection(regs: Regression[], previous: MatrixResult[], threshold: number): string {
  if (previous.length === 0) return 'No previous matrix result of this size to compare with.';
  const flagged = regs.filter((r) => r.flagged);
  const head = `Each cell against the newest earlier \`${previous[0].matrix.name}\` result where it was ok ` +
    `(${previous.length} earlier file(s), newest \`${previous[0].date}\`), threshold −${(threshold * 100).toFixed(0)} %: ` +
    (flagged.length ? `**${flagged.length} regression(s)**.` : 'no regression.');
  // Cell ids contain '|': shown with '·' so they stay one table cell.
  const rows = regs.map((r) => `| ${r.flagged ? '⚠ **REGRESSION**' : ''} ${r.id.replaceAll(' | ', ' · ')} | ${r.metric} ` +
    `| ${f(r.previous, 3)} (${r.previousDate.slice(0, 16)}) | ${f(r.current, 3)} | ${(r.change * 100).toFixed(1)} % |`);
  if (rows.length === 0) return head + ' (No cell in common.)';
  return [head, '', '| cell | compared on | previous (date) | now | change |', '|---|---|---:|---:|---:|', ...rows].join('\n');
}

interface Bar {
  label: string;
  value: number;
  peer?: number;
}

/** A horizontal bar chart: one bar per row, a second (grey) bar for the peer when there is one. */
export function barChart(title: string, unit: string, bars: Bar[]): string {
  const rowH = 22, left = 230, width = 720, top = 40, barW = width - left - 70;
  const max = Math.max(1e-9, ...bars.flatMap((b) => [b.value, b.peer ?? 0]));
  const height = top + bars.length * rowH * 1.6 + 30;
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const body = bars.map((b, i) => {
    const y = top + i * rowH * 1.6;
    const w = (v: number) => Math.max(1, (v / max) * barW).toFixed(1);
    const peer = b.peer === undefined ? '' :
      `<rect x="${left}" y="${y + 11}" width="${w(b.peer)}" height="9" fill="#9e9e9e"/>` +
      `<text x="${left + Number(w(b.peer)) + 4}" y="${y + 19}" font-size="10">${f(b.peer)} peer</text>`;
    return `<text x="${left - 6}" y="${y + 12}" font-size="11" text-anchor="end">${esc(b.label)}</text>` +
      `<rect x="${left}" y="${y}" width="${w(b.value)}" height="${b.peer === undefined ? 16 : 10}" fill="#3f6fb5"/>` +
      `<text x="${left + Number(w(b.value)) + 4}" y="${y + 9}" font-size="10">${f(b.value)}</text>` + peer;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height.toFixed(0)}" font-family="sans-serif">` +
    `<rect width="100%" height="100%" fill="white"/>` +
    `<text x="10" y="20" font-size="14" font-weight="bold">${esc(title)}</text>` +
    `<text x="${left}" y="34" font-size="10" fill="#555">${esc(unit)}${bars.some((b) => b.peer !== undefined) ? ' (blue: forkwise, grey: the first peer of the cell, llama2.c or wllama)' : ''}</text>` +
    body.join('') + '</svg>\n';
}

/** Chart files (name → SVG) for a result. */
export function charts(r: MatrixResult): Record<string, string> {
  const ok = r.cells.filter((c) => c.status === 'ok' && c.forkwise?.decodeTokPerSec);
  const decode = barChart(`Decode tok/s per cell (${r.matrix.name} matrix, ${r.date.slice(0, 16)})`, 'median decode tok/s',
    ok.map((c) => ({ label: `${c.decoder} · B${c.batch} · ${c.promptSet} · ${c.weights}`, value: c.forkwise!.decodeTokPerSec!.median, peer: c.peer?.decodeTokPerSec?.median })));
  // The batch axis: aggregate tok/s of the decoders that have B > 1 cells, B = 1 included.
  const batchable = new Set(ok.filter((c) => c.batch > 1).map((c) => c.decoder));
  const scaling = barChart('Aggregate decode tok/s by batch size (batched KV rows; B = 1 via the public API)', 'rows × decode steps / s',
    ok.filter((c) => batchable.has(c.decoder)).map((c) => ({ label: `${c.decoder} · ${c.promptSet} · B${c.batch}`, value: c.forkwise!.decodeTokPerSec!.median })));
  return { 'decode-tok-s.svg': decode, 'batch-scaling.svg': scaling, 'peers.svg': peersChart(r) };
}

export function renderReport(r: MatrixResult, previous: MatrixResult[], regs: Regression[], chartLinks: string[], threshold: number, resultFile: string): string {
  const skipped = r.cells.filter((c) => c.status === 'skipped');
  const ok = r.cells.filter((c) => c.status === 'ok').length;
  const failed = r.cells.filter((c) => c.status === 'failed').length;
  const m = r.machine ?? {};
  return [
    `# forkwise bench matrix — ${r.date}`,
    '',
    `\`${r.matrix.name}\` matrix: ${r.cells.length} cells — ${ok} ok, ${failed} failed, ${skipped.length} not applicable. ` +
      `${r.matrix.maxTokens} tokens per run (per row for B > 1), ${r.matrix.warmup} warm-up + ${r.matrix.runs} measured rounds per cell, seed ${r.matrix.seed}, weights ${r.matrix.weightFormats.join(', ')}.`,
    '',
    '## Results',
    '',
    mainTable(r.cells),
    '',
    'decode tok/s: medians over the measured runs (B > 1: all rows together). peer, ratio: the cell\'s first peer (f32: llama2.c WASM; q8, q4: wllama) and forkwise / peer decode tok/s, run alternating in the same cell on the same prompt; greedy only (every peer: Peers below). same tokens: every run of forkwise and llama2.c produced identical token ids.',
    '',
    ...chartLinks.filter((l) => !l.endsWith('peers.svg')).map((l) => `![chart](${l})`),
    '',
    '## Peers',
    '',
    peersTable(r.cells),
    '',
    'Every system runs in the same headless Chromium, on the same weights, alternating with forkwise per prompt within the cell: ' +
      'f32 — llama2.c (WASM, stories15M.bin), transformers.js (onnxruntime-web, the ONNX export of the same f32 weights) on WASM and on WebGPU; ' +
      'q8 / q4 — wllama (llama.cpp WASM) on the GGUF file forkwise loads (Q8_0 / Q4_0 in their own types). ' +
      'transformers.js on WebGPU runs ≈ 0.7 tok/s on SwiftShader: it gets a smaller token budget (tokens/run). ' +
      'Greedy agreement: generated tokens equal before the first difference (min over runs) — with forkwise for a peer, with the f32 cell for forkwise on another format.',
    '',
    ...chartLinks.filter((l) => l.endsWith('peers.svg')).map((l) => `![chart](${l})`),
    '',
    '## Regressions',
    '',
    regressionSection(regs, previous, threshold),
    '',
    '## Not applicable',
    '',
    skipped.length ? skipped.map((c) => `- ${c.id}: ${c.reason}`).join('\n') : 'none',
    '',
    '## How this was produced',
    '',
    `- command: \`${r.command}\``,
    `- result file: \`${resultFile}\``,
    `- machine: ${m.cpu ?? '?'}, ${m.cores ?? '?'} cores, ${m.memGiB ?? '?'} GiB, ${m.platform ?? '?'}, Node ${m.node ?? '?'}; load average at the first cell ${Array.isArray(m.loadavg) ? (m.loadavg as number[]).map((x) => x.toFixed(1)).join(' ') : '?'}`,
    `- browser: Chromium ${r.browser?.version ?? '?'} (headless, ${r.browser?.flags ?? ''})`,
    `- adapter: \`${JSON.stringify(r.adapter ?? null)}\``,
    '',
  ].join('\n');
}

/** Writes REPORT.md and the charts for `r` (saved as `resultFile`), comparing with the previous file in its folder. */
export function writeReport(r: MatrixResult, resultFile: string, paths: ReportPaths, env = process.env): Regression[] {
  const threshold = Number(env.BENCH_REGRESSION_THRESHOLD ?? DEFAULT_THRESHOLD);
  const previous = findPrevious(paths.resultsDir, r.date, r.matrix.name);
  const regs = compare(r, previous, threshold);
  mkdirSync(paths.chartsDir, { recursive: true });
  const links = Object.entries(charts(r)).map(([name, svg]) => {
    writeFileSync(join(paths.chartsDir, name), svg);
    return relative(dirname(paths.reportFile), join(paths.chartsDir, name));
  });
  const shown = relative(PROJECT_ROOT, resultFile).startsWith('..') ? basename(resultFile) : relative(PROJECT_ROOT, resultFile);
  const report = renderReport(r, previous, regs, links, threshold, shown);
  // The Node benches' latest tables (bench:quality, bench:profile write them), before the regressions.
  const extra = ['quality.md', 'profile.md'].map((name) => join(PROJECT_ROOT, 'bench', 'report', name)).filter((f) => existsSync(f))
    .map((f) => readFileSync(f, 'utf8').trim() + '\n\n').join('');
  writeFileSync(paths.reportFile, report.replace('## Regressions\n', extra + '## Regressions\n'));
  return regs;
}

function newest(dir: string): string {
  const files = safeList(dir).filter((n) => n.endsWith('.json')).sort();
  if (files.length === 0) throw new Error(`no result file in ${dir}`);
  return join(dir, files[files.length - 1]);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const paths = reportPaths();
  const file = process.argv[2] ?? newest(paths.resultsDir);
  const regs = writeReport(JSON.parse(readFileSync(file, 'utf8')), file, paths);
  console.log(`wrote ${paths.reportFile}; ${regs.filter((r) => r.flagged).length} regression(s)`);
}
