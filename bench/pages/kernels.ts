// Page side of bench/kernels.ts: the kernel micro-benchmark on navigator.gpu.
import { acquireGpu } from '../../src/gpu/device.ts';
import { type KernelBenchOptions, type KernelBenchReport, runKernelBench } from '../kernel-bench.ts';

async function run(options: KernelBenchOptions): Promise<KernelBenchReport> {
  const ctx = await acquireGpu();
  try {
    return await runKernelBench(ctx, 'chromium (navigator.gpu)', options);
  } finally {
    ctx.device.destroy();
  }
}

declare global {
  interface Window {
    runKernelBench: typeof run;
  }
}
window.runKernelBench = run;
