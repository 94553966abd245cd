// `npm run soak`, in-page part (scripts/soak.mjs runs it after test/soak/main.ts): 200 model
// load/unload cycles of stories15M in one Chromium page (test/browser/pages/soak.ts), each with
// one generation, the decoders in turn (greedy, sample, cntp, srgen). Prints engine.memory() with
// the model loaded and the JS heap after a forced GC at cycles 1, 10, 100, 200 (and every 25th);
// exits non-zero if the GPU bytes by owner of any cycle differ from the first cycle with the same
// decoder, anything is left after dispose(), or the heap at any cycle from 10 on exceeds its
// size at cycle 10 by more than --page-heap-slack-mb (default 8; the first cycles warm caches:
// compiled pipelines, JIT).
//   --cycles N (default 200)  --page-heap-slack-mb N
import { parseArgs } from 'node:util';
import type { CycleReport } from '../browser/pages/soak.ts';
import { startBrowserSession, waitForGlobal } from '../support/browser.ts';

const { values } = parseArgs({
  options: { cycles: { type: 'string', default: '200' }, 'page-heap-slack-mb': { type: 'string', default: '8' } },
  strict: false, // the Node part's options (--generations …) pass by
});
const CYCLES = Number(values.cycles);
const SLACK = Number(values['page-heap-slack-mb']) * 2 ** 20;
const WARM = Math.min(10, CYCLES);
const marks = new Set([1, WARM, 100, CYCLES]);
const mb = (n: number | null) => (n === null ? '-' : (n / 2 ** 20).toFixed(2));

const session = await startBrowserSession({ extraArgs: ['--js-flags=--expose-gc', '--enable-precise-memory-info'] });
const problems: string[] = [];
const firstByDecoder = new Map<string, string>();
let heapAtWarm: number | null = null;
let maxHeap = 0;
const t0 = performance.now();
try {
  const page = await session.newPage('/test/browser/pages/soak.html');
  await waitForGlobal(page, 'soakPage');
  console.log('\nin-page: cycle  decoder  GPU bytes   by owner (model loaded)                                   after dispose  heap MB  UA MB  s');
  for (let cycle = 1; cycle <= CYCLES; cycle++) {
    const r: CycleReport = await page.evaluate((i) => window.soakPage.cycle(i), cycle - 1);
    if (r.steps === 0) problems.push(`cycle ${cycle}: ${r.decoder} generated nothing`);
    if (r.afterDispose !== 0) problems.push(`cycle ${cycle}: ${r.afterDispose} B left after dispose()`);
    const loaded = JSON.stringify(r.loaded);
    const first = firstByDecoder.get(r.decoder) ?? (firstByDecoder.set(r.decoder, loaded), loaded);
    if (loaded !== first) problems.push(`cycle ${cycle} (${r.decoder}): ${loaded} differs from the first ${r.decoder} cycle's ${first}`);
    if (r.heap !== null) {
      if (cycle === WARM) heapAtWarm = r.heap;
      if (cycle >= WARM) maxHeap = Math.max(maxHeap, r.heap);
    }
    if (marks.has(cycle) || cycle % 25 === 0) {
      console.log(`${String(cycle).padStart(14)}  ${r.decoder.padEnd(7)}  ${String(r.loaded.total).padStart(9)}   ${JSON.stringify(r.loaded.byOwner).padEnd(58)}  ` +
        `${String(r.afterDispose).padStart(13)}  ${mb(r.heap).padStart(7)}  ${mb(r.uaMemory).padStart(5)}  ${((performance.now() - t0) / 1000).toFixed(0)}`);
    }
  }
  if (heapAtWarm === null) problems.push('no JS heap figure: performance.memory or gc() missing in the page');
  else if (maxHeap > heapAtWarm + SLACK) problems.push(`page heap grew to ${mb(maxHeap)} MB from ${mb(heapAtWarm)} MB at cycle ${WARM}`);
  problems.push(...session.errors);
} finally {
  await session.close();
}
console.log(`\n${CYCLES} in-page load/unload cycles, ${((performance.now() - t0) / 1000).toFixed(0)} s; heap max ${mb(maxHeap)} MB from cycle ${WARM} on ` +
  `(${mb(heapAtWarm)} MB at cycle ${WARM}, bound +${mb(SLACK)} MB)`);
console.log(problems.length === 0 ? 'flat: no problems' : problems.join('\n'));
process.exit(problems.length === 0 ? 0 : 1);
