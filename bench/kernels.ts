// `npm run bench:kernels`: the kernel micro-benchmark (bench/kernel-bench.ts) in Node on the
// `webgpu` package (Dawn; SwiftShader on a machine without a GPU) and in headless Chromium on
// navigator.gpu (bench/pages/kernels.html), then one table per environment and
// bench/results/kernels-<ISO date>.json (+ .md). `npm run bench` runs it after the end-to-end part.
//
// Usage: npm run bench:kernels [-- --reps 20 --warmup 3 --no-browser --no-node --out FILE.json
//                               --copy-workgroups 64,256,2048,36000 --read-workgroups 64,256,2048
//                               --launches-per-pass 1]
// Runs under scripts/node-hooks/register.mjs (tsx + `?raw` shader imports), as the tests do.
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { acquireGpu } from '../src/gpu/device.ts';
import { PROJECT_ROOT, startBrowserSession, waitForGlobal } from '../test/support/browser.ts';
import { machineInfo } from './machine.ts';
import { type KernelBenchOptions, type KernelBenchReport, kernelHeader, kernelTable, runKernelBench } from './kernel-bench.ts';

/** Chromium quantizes timestamp queries (to 100 µs) unless WebGPU developer features are on. */
export const KERNEL_BENCH_CHROMIUM_ARGS = ['--enable-webgpu-developer-features'];

export interface KernelsFile {
  date: string;
  protocol: Required<Pick<KernelBenchOptions, 'reps' | 'warmup'>> & { method: string };
  machine: Record<string, unknown>;
  environments: KernelBenchReport[];
  errors: Record<string, string>;
}

async function nodeReport(options: KernelBenchOptions): Promise<KernelBenchReport> {
  process.env.VK_ICD_FILENAMES ??= '/usr/lib/chromium/vk_swiftshader_icd.json';
  process.env.XDG_RUNTIME_DIR ??= os.tmpdir(); // else the Vulkan loader complains on every start
  const { create } = await import('webgpu');
  // Dawn may quantize timestamp queries (to 2^16 ns on some drivers); the bench wants them exact.
  const ctx = await acquireGpu({ gpu: create(['disable-dawn-features=timestamp_quantization']), mapWait: 'paced' });
  try {
    return await runKernelBench(ctx, 'node (webgpu package, Dawn)', options);
  } finally {
    ctx.device.destroy();
  }
}

async function browserReport(options: KernelBenchOptions): Promise<KernelBenchReport & { browser: string }> {
  const session = await startBrowserSession({ extraArgs: KERNEL_BENCH_CHROMIUM_ARGS });
  try {
    const page = await session.newPage('/bench/pages/kernels.html');
    await waitForGlobal(page, 'runKernelBench');
    const report = await page.evaluate((o) => window.runKernelBench(o), options);
    if (session.errors.length > 0) throw new Error(`page errors:\n${session.errors.join('\n')}`);
    return { ...report, env: `chromium ${session.browser.version()} (navigator.gpu)`, browser: session.browser.version() };
  } finally {
    await session.close();
  }
}

/** Runs the benchmark in the chosen environments, prints the tables, writes the JSON; returns it. */
export async function main(argv = process.argv.slice(2)): Promise<{ file: KernelsFile; path: string }> {
  const { values } = parseArgs({
    args: argv,
    options: {
      reps: { type: 'string', default: '20' },
      warmup: { type: 'string', default: '3' },
      'no-node': { type: 'boolean', default: false },
      'no-browser': { type: 'boolean', default: false },
      'copy-workgroups': { type: 'string' },
      'read-workgroups': { type: 'string' },
      'launches-per-pass': { type: 'string', default: '1' },
      out: { type: 'string' },
    },
  });
  const list = (v: string | undefined) => (v ? v.split(',').map(Number) : undefined);
  const options: KernelBenchOptions & { reps: number; warmup: number } = {
    reps: Number(values.reps),
    warmup: Number(values.warmup),
    launchesPerPass: Number(values['launches-per-pass']),
    ...(values['copy-workgroups'] ? { copyWorkgroups: list(values['copy-workgroups']) } : {}),
    ...(values['read-workgroups'] ? { readWorkgroups: list(values['read-workgroups']) } : {}),
  };
  const started = new Date();
  const environments: KernelBenchReport[] = [];
  const errors: Record<string, string> = {};
  const run = async (name: string, f: () => Promise<KernelBenchReport>) => {
    console.log(`kernels: ${name} …`);
    try {
      const r = await f();
      environments.push(r);
      console.log(`\n${kernelHeader(r)}\n\n${kernelTable(r)}\n`);
      if (!r.allChecksOk) console.log(`WARNING: ${name}: a kernel's output disagreed with the CPU reference (see check)`);
    } catch (error) {
      errors[name] = (error as Error).stack ?? String(error);
      console.error(`kernels: ${name} failed: ${errors[name]}`);
    }
  };
  if (!values['no-node']) await run('node', () => nodeReport(options));
  if (!values['no-browser']) await run('chromium', () => browserReport(options));

  const file: KernelsFile = {
    date: started.toISOString(),
    protocol: {
      ...options,
      method:
        'each launch recorded beforehand, submitted alone, awaited with onSubmittedWorkDone; timestamp queries at the ' +
        'pass boundaries when available; medians over reps; GB/s = counted bytes / time',
    },
    machine: machineInfo(),
    environments,
    errors,
  };
  const path = values.out ?? join(PROJECT_ROOT, 'bench', 'results', `kernels-${started.toISOString().replace(/:/g, '-')}.json`);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(file, null, 2) + '\n');
  const md = environments.map((r) => `${kernelHeader(r)}\n\n${kernelTable(r)}\n`).join('\n');
  writeFileSync(path.replace(/\.json$/, '') + '.md', `# forkwise kernel bench ${file.date}\n\n${md}`);
  console.log(`wrote ${relative(PROJECT_ROOT, path)} and .md`);
  if (Object.keys(errors).length > 0 || environments.some((r) => !r.allChecksOk)) process.exitCode = 1;
  return { file, path };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main()
    .then(() => process.exit(process.exitCode ?? 0)) // Dawn keeps the event loop alive
    .catch((err) => {
      console.error(err);
      process.exit(1);
    });
}
