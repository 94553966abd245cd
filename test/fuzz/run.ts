// Runs fuzz cases in a worker thread with a time bound per case and a memory ceiling: a case
// that hangs is stopped (the worker is terminated and replaced) and reported as 'hang', one that
// exhausts the worker's heap as 'crash:…', next to ordinary outcomes ('ok' or a ForkwiseError
// code) and leaks ('leak:TypeError', …).
import { Worker } from 'node:worker_threads';
import { FILE_CODES, FORMATS, type FuzzFormat, REGRESSIONS } from './cases.ts';

export interface FuzzOptions {
  formats?: readonly FuzzFormat[];
  seed?: number;
  /** Cases per format. */
  cases: number;
  /** First case index (default 0): runs cases [from, from + cases). */
  from?: number;
  /** A case running longer than this is a hang (default 5 s). */
  timeoutMs?: number;
  /** Old-space ceiling of the worker's heap (default 1024 MB). */
  memoryMb?: number;
  onResult?: (r: FuzzResult) => void;
}

export interface FuzzResult {
  format: FuzzFormat | 'regression';
  index: number;
  what: string;
  outcome: string;
  message?: string;
  ms: number;
}

export interface FuzzReport {
  seed: number;
  counts: Record<string, Record<string, number>>;
  /** Outcomes that are neither 'ok' nor a file's error code: leaks, hangs, crashes, wrong codes. */
  failures: FuzzResult[];
  slowest: FuzzResult[];
  cases: number;
  ms: number;
}

/** Whether an outcome is what a hostile file may end in. */
export function acceptable(outcome: string): boolean {
  return outcome === 'ok' || FILE_CODES.includes(outcome);
}

class CaseRunner {
  private worker: Worker | null = null;
  constructor(private readonly memoryMb: number) {}

  private start(): Worker {
    this.worker ??= new Worker(new URL('./worker.ts', import.meta.url), {
      resourceLimits: { maxOldGenerationSizeMb: this.memoryMb, stackSizeMb: 4 },
      stdout: false,
      stderr: false,
    });
    return this.worker;
  }

  run(format: FuzzFormat | 'regression', seed: number, index: number, timeoutMs: number): Promise<FuzzResult> {
    const worker = this.start();
    return new Promise((resolve) => {
      let what = '';
      let timer: NodeJS.Timeout | undefined;
      const t0 = performance.now();
      const done = (r: Omit<FuzzResult, 'format' | 'index'>, kill: boolean) => {
        clearTimeout(timer);
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
        if (kill) {
          void worker.terminate();
          this.worker = null;
        }
        resolve({ format, index, ...r });
      };
      const onMessage = (m: { kind: string } & Omit<FuzzResult, 'format' | 'index'>) => {
        if (m.kind === 'start') {
          what = m.what;
          timer = setTimeout(() => done({ what, outcome: 'hang', message: `still running after ${timeoutMs} ms`, ms: performance.now() - t0 }, true), timeoutMs);
        } else {
          done({ what: m.what, outcome: m.outcome, message: m.message, ms: m.ms }, false);
        }
      };
      const onError = (e: Error & { code?: string }) => done({ what, outcome: `crash:${e.code ?? e.name}`, message: e.message, ms: performance.now() - t0 }, true);
      const onExit = (code: number) => done({ what, outcome: `crash:exit ${code}`, ms: performance.now() - t0 }, true);
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
      worker.postMessage({ format, seed, index });
    });
  }

  async close(): Promise<void> {
    await this.worker?.terminate();
    this.worker = null;
  }
}

export async function runFuzz(o: FuzzOptions): Promise<FuzzReport> {
  const seed = o.seed ?? 1;
  const formats = o.formats ?? FORMATS;
  const runner = new CaseRunner(o.memoryMb ?? 1024);
  const counts: Record<string, Record<string, number>> = {};
  const failures: FuzzResult[] = [];
  const all: FuzzResult[] = [];
  const t0 = performance.now();
  try {
    // interleaved, so a short run still covers every format
    for (let i = o.from ?? 0; i < (o.from ?? 0) + o.cases; i++) {
      for (const format of formats) {
        const r = await runner.run(format, seed, i, o.timeoutMs ?? 5000);
        counts[format] ??= {};
        counts[format][r.outcome] = (counts[format][r.outcome] ?? 0) + 1;
        if (!acceptable(r.outcome)) failures.push(r);
        all.push(r);
        o.onResult?.(r);
      }
    }
  } finally {
    await runner.close();
  }
  const slowest = [...all].sort((a, b) => b.ms - a.ms).slice(0, 5);
  return { seed, counts, failures, slowest, cases: all.length, ms: performance.now() - t0 };
}

/** Every regression case in the worker, with its expected outcome. */
export async function runRegressions(timeoutMs = 5000): Promise<(FuzzResult & { expect: string })[]> {
  const runner = new CaseRunner(1024);
  const out: (FuzzResult & { expect: string })[] = [];
  try {
    for (const [i, r] of REGRESSIONS.entries()) out.push({ ...(await runner.run('regression', 0, i, timeoutMs)), expect: r.expect });
  } finally {
    await runner.close();
  }
  return out;
}

/** The counts as a table: one line per format, outcomes by count. */
export function formatCounts(report: FuzzReport): string {
  const lines = Object.entries(report.counts).map(([format, c]) => {
    const parts = Object.entries(c).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`);
    return `${format.padEnd(15)} ${parts.join(', ')}`;
  });
  const total: Record<string, number> = {};
  for (const c of Object.values(report.counts)) for (const [k, n] of Object.entries(c)) total[k] = (total[k] ?? 0) + n;
  lines.push(`${'all'.padEnd(15)} ${Object.entries(total).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ')}`);
  return lines.join('\n');
}
