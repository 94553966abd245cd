// `npm run fuzz` (scripts/fuzz.mjs): many seeded cases per format; prints outcome counts by error
// code and every failure (leak, hang, crash, wrong code) with the case that reproduces it.
//   --cases N (per format, default 1000)  --seed S (default 1)  --from I  --format NAME (repeatable)
//   --timeout MS (per case, default 5000)
import { parseArgs } from 'node:util';
import { FORMATS, type FuzzFormat } from './cases.ts';
import { formatCounts, runFuzz } from './run.ts';

const { values } = parseArgs({
  options: {
    cases: { type: 'string', default: '1000' },
    seed: { type: 'string', default: '1' },
    from: { type: 'string', default: '0' },
    format: { type: 'string', multiple: true },
    timeout: { type: 'string', default: '5000' },
  },
});
const formats = (values.format ?? [...FORMATS]) as FuzzFormat[];
for (const f of formats) if (!FORMATS.includes(f)) throw new Error(`unknown format ${f} (${FORMATS.join(', ')})`);
let done = 0;
const total = Number(values.cases) * formats.length;
const report = await runFuzz({
  formats,
  seed: Number(values.seed),
  cases: Number(values.cases),
  from: Number(values.from),
  timeoutMs: Number(values.timeout),
  onResult: (r) => {
    done++;
    if (!['ok', 'model-format', 'tokenizer-format', 'model-fetch'].includes(r.outcome)) {
      console.log(`FAIL ${r.format} #${r.index} (${r.what}): ${r.outcome} ${r.message ?? ''}`);
    }
    if (done % 500 === 0) console.error(`${done}/${total}`);
  },
});
console.log(`\n${report.cases} cases, seed ${report.seed}, ${(report.ms / 1000).toFixed(1)} s`);
console.log(formatCounts(report));
console.log('slowest:', report.slowest.map((r) => `${r.format} #${r.index} ${r.ms.toFixed(0)} ms (${r.what})`).join('\n         '));
console.log(report.failures.length === 0 ? 'no failures' : `${report.failures.length} failures`);
process.exit(report.failures.length === 0 ? 0 : 1);
