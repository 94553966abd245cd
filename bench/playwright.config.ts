// Playwright Test config of the bench matrix (`npm run bench`; see bench/README.md).
//   npx playwright test -c bench/playwright.config.ts                  # whole matrix, report
//   npx playwright test -c bench/playwright.config.ts --shard 1/2      # a shard: a blob report
//   npm run bench:merge                                                # shards' blobs → report
// Debian's Chromium with the harness's WebGPU flags (never `npx playwright install`).
import { join } from 'node:path';
import { defineConfig } from '@playwright/test';
import { CHROMIUM_ARGS, DEFAULT_CHROMIUM_PATH, PROJECT_ROOT } from '../test/support/browser.ts';

/** `--shard i/n` from the command line: Playwright does not hand it to the config. */
const shard = process.argv.join(' ').match(/--shard[= ](\d+)\/(\d+)/);
/**
 * A shard writes a blob report for `npm run bench:merge`, under its own file name: the blob
 * reporter would otherwise empty its folder when it finishes, deleting another shard's blob.
 */
const blobDir = process.env.BENCH_BLOB_DIR ?? join(PROJECT_ROOT, 'bench', 'results', 'blob');
const reporter: NonNullable<Parameters<typeof defineConfig>[0]['reporter']> = shard
  ? [['list'], ['blob', { outputFile: join(blobDir, `report-${shard[1]}-of-${shard[2]}.zip`) }]]
  : [['list'], ['./matrix/reporter.ts']];

export default defineConfig({
  testDir: './matrix',
  testMatch: 'cells.spec.ts',
  globalSetup: './matrix/global-setup.ts',
  // One cell at a time: two cells measured at once on a 2-core machine would measure each other.
  workers: 1,
  fullyParallel: true,
  retries: 0,
  // A full-matrix cell (128 tokens × 6 rounds of SRGen) takes minutes on SwiftShader.
  timeout: 15 * 60_000,
  outputDir: join(PROJECT_ROOT, 'test-results', 'bench'),
  // Every cell is slow on purpose; Playwright's "slow test file" hint does not apply.
  reportSlowTests: null,
  reporter,
  use: {
    browserName: 'chromium',
    headless: process.env.FORKWISE_HEADED !== '1',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? DEFAULT_CHROMIUM_PATH,
      args: [...CHROMIUM_ARGS],
    },
    trace: 'off',
    video: 'off',
    screenshot: 'off',
  },
});
