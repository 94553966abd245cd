// The bench matrix (`npm run bench`, bench/playwright.config.ts) at its smallest size, for real:
// one greedy cell of forkwise against llama2.c (WASM) in headless Chromium, written to a temp
// folder. Its JSON must carry what REPORT.md needs, and the report must flag a regression against
// a previous file whose ratio to llama2.c was much better (and none against an identical one).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type ReportPaths, writeReport } from '../../bench/matrix/report.ts';
import type { CellResult, MatrixResult } from '../../bench/matrix/result.ts';
import { PROJECT_ROOT } from '../support/browser.ts';

const PLAYWRIGHT_CLI = join(PROJECT_ROOT, 'node_modules', '@playwright', 'test', 'cli.js');

describe('bench matrix (smallest)', () => {
  let out: string;
  let result: MatrixResult;
  let cell: CellResult;

  before(() => {
    out = mkdtempSync(join(tmpdir(), 'forkwise-bench-'));
    const run = spawnSync(process.execPath, [PLAYWRIGHT_CLI, 'test', '-c', 'bench/playwright.config.ts'], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, BENCH_MATRIX: 'smallest', BENCH_OUT: out },
      encoding: 'utf8',
      timeout: 180_000,
    });
    assert.equal(run.status, 0, `playwright test exited with ${run.status}:\n${run.stdout}\n${run.stderr}`);
    const files = readdirSync(out).filter((f) => f.endsWith('.json'));
    assert.equal(files.length, 1, `result files: ${files.join(', ')}`);
    result = JSON.parse(readFileSync(join(out, files[0]), 'utf8'));
    cell = result.cells[0];
  });
  after(() => rmSync(out, { recursive: true, force: true }));

  test('the result file describes the run: kind, matrix, machine, browser, adapter', () => {
    assert.equal(result.kind, 'matrix');
    assert.equal(result.schema, 1);
    assert.ok(!Number.isNaN(Date.parse(result.date)));
    assert.equal(result.matrix.name, 'smallest');
    assert.equal(result.cells.length, 1);
    assert.ok(Number(result.machine?.cores) > 0);
    assert.match(result.browser?.version ?? '', /^\d+\.\d+/);
    assert.equal(typeof (result.adapter as { architecture?: unknown })?.architecture, 'string');
  });

  test('its one greedy cell has real forkwise and llama2.c numbers and the same tokens', () => {
    assert.equal(cell.status, 'ok', cell.error);
    assert.equal(cell.decoder, 'greedy');
    assert.equal(cell.batch, 1);
    const fw = cell.forkwise!;
    const peer = cell.peer!;
    for (const s of [fw, peer]) {
      assert.ok(s.decodeTokPerSec!.median > 0 && s.decodeTokPerSec!.n === result.matrix.runs, `${s.name} decode`);
      assert.ok(s.prefillTokPerSec!.median > 0 && s.ttftMs!.median > 0 && s.loadMs > 0, `${s.name} prefill/ttft/load`);
      assert.ok(s.tokensPerRun! > 0 && s.tokensPerRun! <= result.matrix.maxTokens, `${s.name} tokens`);
    }
    assert.equal(peer.name, 'llama2.c-wasm');
    assert.ok(fw.readbackBytesPerStep!.median > 0);
    assert.equal(cell.sameTokens, true);
    assert.ok(Math.abs(cell.ratio!.decodeTokPerSec! - fw.decodeTokPerSec!.median / peer.decodeTokPerSec!.median) < 1e-12);
  });

  test('REPORT.md has the cell\u2019s row and no regression (no previous file)', () => {
    const report = readFileSync(join(out, 'REPORT.md'), 'utf8');
    const row = report.split('\n').find((l) => l.startsWith('| greedy | 1 | short | ok |'));
    assert.ok(row, report);
    assert.ok(row.includes(cell.forkwise!.decodeTokPerSec!.median.toFixed(1)) && row.includes(`×${cell.ratio!.decodeTokPerSec!.toFixed(3)}`), row);
    assert.match(report, /No previous matrix result of this size/);
    assert.match(readFileSync(join(out, 'report', 'decode-tok-s.svg'), 'utf8'), /^<svg[^>]*>.*greedy · B1 · short/s);
  });

  test('a previous file with a much better ratio to llama2.c is flagged; an identical one is not', () => {
    const regressionFor = (ratioFactor: number) => {
      const dir = mkdtempSync(join(tmpdir(), 'forkwise-bench-prev-'));
      try {
        const previous: MatrixResult = structuredClone(result);
        previous.date = new Date(Date.parse(result.date) - 3_600_000).toISOString();
        previous.cells[0].ratio!.decodeTokPerSec! *= ratioFactor;
        writeFileSync(join(dir, 'previous.json'), JSON.stringify(previous));
        // An older non-matrix result in the same folder must be ignored.
        writeFileSync(join(dir, 'e2e.json'), JSON.stringify({ date: previous.date, summary: [] }));
        const paths: ReportPaths = { resultsDir: dir, reportFile: join(dir, 'REPORT.md'), chartsDir: join(dir, 'report') };
        const regs = writeReport(result, join(dir, 'current.json'), paths, {});
        return { regs, report: readFileSync(paths.reportFile, 'utf8') };
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    };
    const worse = regressionFor(2);
    assert.equal(worse.regs.length, 1);
    assert.equal(worse.regs[0].metric, 'ratio to llama2.c-wasm');
    assert.ok(worse.regs[0].flagged && Math.abs(worse.regs[0].change + 0.5) < 1e-9, JSON.stringify(worse.regs));
    assert.match(worse.report, /\*\*1 regression\(s\)\*\*/);
    assert.match(worse.report, /^\| ⚠ \*\*REGRESSION\*\* greedy · B1 · short · f32 \| ratio to llama2\.c-wasm \| /m);
    const same = regressionFor(1);
    assert.equal(same.regs.length, 1);
    assert.equal(same.regs[0].flagged, false);
    assert.match(same.report, /no regression\./);
    assert.doesNotMatch(same.report, /REGRESSION/);
  });
});
