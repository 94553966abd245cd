// The fuzz worker thread: runs the cases the main thread sends, one at a time, and answers each
// with its outcome (run.ts watches the clock and the worker's memory).
import { parentPort } from 'node:worker_threads';
import { type FuzzFormat, REGRESSIONS, makeCase, runCase, runRegression } from './cases.ts';

parentPort!.on('message', async ({ format, seed, index }: { format: FuzzFormat | 'regression'; seed: number; index: number }) => {
  let what = '';
  try {
    if (format === 'regression') {
      what = REGRESSIONS[index].name;
      parentPort!.postMessage({ kind: 'start', what });
      parentPort!.postMessage({ kind: 'result', what, ...(await runRegression(index)) });
      return;
    }
    const c = makeCase(format, seed, index);
    what = c.what;
    parentPort!.postMessage({ kind: 'start', what });
    const outcome = await runCase(c);
    parentPort!.postMessage({ kind: 'result', what, ...outcome });
  } catch (e) {
    // the case could not even be built: a bug of the fuzzer, reported as such
    parentPort!.postMessage({ kind: 'result', what, outcome: 'fuzzer-bug', message: String((e as Error)?.stack ?? e), ms: 0 });
  }
});
