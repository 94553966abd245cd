// `npm run soak` (scripts/soak.mjs), Node part: the memory test of test/model/memory.test.ts at length —
// 1,000 generations of mixed decoders (greedy, sample, cntp, ead, srgen in turn) over 200
// load/unload cycles of the tiny model in one engine. Prints GPU bytes (engine.memory()) and the
// JS heap after a forced GC at generations 1, 10, 100, 1000 (and every 100th); exits non-zero if
// the GPU bytes after any cycle differ from the first cycle's, anything is left after dispose(),
// or the heap grew by more than --heap-slack-mb (default 4) over its size at generation 100.
// (test/soak/page.ts, the in-page part, runs after it: 200 load/unload cycles in one Chromium page.)
//   --generations N (default 1000)  --cycles N (default 200)  --max-tokens N (default 4)
import { parseArgs } from 'node:util';
import type { DecoderName } from '../../src/engine.ts';
import { createNodeEngine } from '../../src/node/index.ts';
import { tinyModels } from '../fuzz/build.ts';
import { forceGc } from '../support/gc.ts';

const { values } = parseArgs({
  options: {
    generations: { type: 'string', default: '1000' },
    cycles: { type: 'string', default: '200' },
    'max-tokens': { type: 'string', default: '4' },
    'heap-slack-mb': { type: 'string', default: '4' },
    'page-heap-slack-mb': { type: 'string' }, // the in-page part's
  },
});
const GENERATIONS = Number(values.generations);
const CYCLES = Number(values.cycles);
const perCycle = Math.ceil(GENERATIONS / CYCLES);
const DECODERS: readonly DecoderName[] = ['greedy', 'sample', 'cntp', 'ead', 'srgen'];
const PROMPTS = ['Once upon a time', 'the end', 'Hello <b>world</b>', 'a', 'One day'];

const tiny = tinyModels();
const load = { model: tiny.model, tokenizer: tiny.tokenizer, smallModel: tiny.smallModel };
const engine = await createNodeEngine();
const mb = (n: number) => (n / 2 ** 20).toFixed(2);
const marks = new Set([1, 10, 100, 1000, GENERATIONS]);
const t0 = performance.now();
let generation = 0;
let firstCycle: string | null = null;
let heapAt100: number | null = null;
let maxHeap = 0;
const problems: string[] = [];
console.log('generation  cycle  GPU bytes   by owner                                                        heap MB  s');
for (let cycle = 0; cycle < CYCLES && generation < GENERATIONS; cycle++) {
  engine.dispose();
  if (engine.memory().total !== 0) problems.push(`cycle ${cycle}: ${engine.memory().total} B left after dispose()`);
  await engine.loadModel(load);
  for (let i = 0; i < perCycle && generation < GENERATIONS; i++) {
    const decoder = DECODERS[generation % DECODERS.length];
    await engine.generate(PROMPTS[generation % PROMPTS.length], { decoder, maxTokens: Number(values['max-tokens']), seed: generation }).complete();
    generation++;
    if (marks.has(generation) || generation % 100 === 0) {
      const heap = forceGc();
      if (generation === 100) heapAt100 = heap;
      maxHeap = Math.max(maxHeap, heap);
      const m = engine.memory();
      console.log(`${String(generation).padStart(10)}  ${String(cycle).padStart(5)}  ${String(m.total).padStart(9)}   ${JSON.stringify(m.byOwner).padEnd(62)}  ${mb(heap).padStart(7)}  ${((performance.now() - t0) / 1000).toFixed(0)}`);
    }
  }
  const after = JSON.stringify(engine.memory());
  firstCycle ??= after;
  if (after !== firstCycle) problems.push(`cycle ${cycle}: ${after} differs from the first cycle's ${firstCycle}`);
}
engine.dispose();
if (engine.memory().total !== 0) problems.push(`${engine.memory().total} B left after the last dispose()`);
const slack = Number(values['heap-slack-mb']) * 2 ** 20;
if (heapAt100 !== null && maxHeap > heapAt100 + slack) problems.push(`heap grew to ${mb(maxHeap)} MB from ${mb(heapAt100)} MB at generation 100`);
console.log(`\n${generation} generations, ${CYCLES} load/unload cycles, ${((performance.now() - t0) / 1000).toFixed(0)} s; GPU bytes after every cycle: ${firstCycle}`);
console.log(problems.length === 0 ? 'flat: no problems' : problems.join('\n'));
process.exit(problems.length === 0 ? 0 : 1);
