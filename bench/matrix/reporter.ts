// Playwright reporter of the bench matrix: collects every cell's JSON attachment (cells.spec.ts),
// writes <results dir>/<ISO date>.json and regenerates REPORT.md + charts (report.ts). Works on a
// live run and on `playwright merge-reports` of shards' blob reports alike (`npm run bench:merge`).
// Exit status: a flagged regression fails the run (BENCH_FAIL_ON_REGRESSION=0 turns that off).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { FullResult, Reporter, TestCase, TestResult } from '@playwright/test/reporter';
import { PROJECT_ROOT } from '../../test/support/browser.ts';
import { MATRICES, cells, matrixFromEnv } from './matrix.ts';
import { reportPaths, writeReport } from './report.ts';
import { CELL_ATTACHMENT, type CellResult, type MatrixResult, RESULT_KIND, RESULT_SCHEMA } from './result.ts';

export default class MatrixReporter implements Reporter {
  private readonly cells = new Map<string, CellResult>();

  printsToStdio(): boolean {
    return false;
  }

  onTestEnd(test: TestCase, result: TestResult): void {
    const cell = cellOf(test, result);
    if (result.status === 'skipped') {
      cell.status = 'skipped';
      cell.reason ??= test.annotations.find((a) => a.type === 'skip')?.description ?? 'skipped';
    } else if (result.status !== 'passed') {
      cell.status = 'failed';
      cell.error ??= result.error?.message ?? result.status;
    }
    this.cells.set(cell.id, cell); // a retry replaces the earlier attempt
  }

  async onEnd(result: FullResult): Promise<{ status?: FullResult['status'] } | void> {
    if (this.cells.size === 0) return;
    const file = buildResult([...this.cells.values()]);
    const paths = reportPaths();
    mkdirSync(paths.resultsDir, { recursive: true });
    const out = join(paths.resultsDir, `${file.date.replace(/:/g, '-')}.json`);
    writeFileSync(out, JSON.stringify(file, null, 2) + '\n');
    const regs = writeReport(file, out, paths);
    const flagged = regs.filter((r) => r.flagged);
    console.log(`\nbench matrix: wrote ${relative(PROJECT_ROOT, out)} and ${relative(PROJECT_ROOT, paths.reportFile)}` +
      (flagged.length ? `; ${flagged.length} REGRESSION(S): ${flagged.map((r) => r.id).join('; ')}` : '; no regression'));
    if (flagged.length && process.env.BENCH_FAIL_ON_REGRESSION !== '0' && result.status === 'passed') return { status: 'failed' };
  }
}

/** The cell's last attachment, or (a test that died before attaching) its definition, marked failed. */
function cellOf(test: TestCase, result: TestResult): CellResult {
  const attachment = [...result.attachments].reverse().find((a) => a.name === CELL_ATTACHMENT && a.body);
  if (attachment?.body) return JSON.parse(attachment.body.toString('utf8'));
  const cell = cells(matrixFromEnv()).find((c) => c.id === test.title);
  return {
    id: test.title, matrix: matrixFromEnv().name, decoder: cell?.decoder.label ?? '?', params: { ...cell?.decoder.options },
    batch: cell?.batch ?? 0, promptSet: cell?.promptSet.name ?? '?', prompts: cell?.promptSet.prompts ?? [], weights: cell?.weights ?? '?',
    maxTokens: 0, warmup: 0, runs: 0, seed: 0, status: 'failed',
  };
}

/** The file: cells in matrix order, dated by the first cell's start (the same for merged shards). */
export function buildResult(list: CellResult[]): MatrixResult {
  const name = list.find((c) => MATRICES[c.matrix])?.matrix ?? matrixFromEnv().name;
  const def = MATRICES[name];
  const order = new Map(cells(def).map((c, i) => [c.id, i]));
  const sorted = [...list].sort((a, b) => (order.get(a.id) ?? 1e9) - (order.get(b.id) ?? 1e9));
  const measured = sorted.filter((c) => c.startedAt).sort((a, b) => a.startedAt!.localeCompare(b.startedAt!));
  const first = measured[0];
  return {
    kind: RESULT_KIND,
    schema: RESULT_SCHEMA,
    date: first?.startedAt ?? new Date().toISOString(),
    command: `BENCH_MATRIX=${name} npx playwright ${process.argv.slice(2).join(' ')}`,
    matrix: def,
    machine: first?.machine,
    browser: { version: first?.browserVersion, flags: 'CHROMIUM_ARGS of test/support/browser.ts' },
    adapter: measured.find((c) => c.adapter)?.adapter,
    cells: sorted,
  };
}
