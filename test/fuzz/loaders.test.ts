// Loaders fuzzed (test/fuzz/cases.ts): seeded hostile llama2.c checkpoints, tokenizer.bin files,
// GGUF files, Hugging Face folders (config, index, safetensors shards, tokenizer files) and
// tokenizer.json files — truncated at every structural boundary, bits flipped in headers, integer
// fields set to 0 / 2^31 / 2^40 / 2^63 / 2^64 − 1, huge declared arrays, tensors and files,
// negative and overlapping offsets, 100k-deep JSON, non-UTF-8 and '__proto__' names — each run
// through openModel, buildTokenizer, the tokenizer's methods and every tensor's dequantisation
// in a worker thread. Each must end within 5 s in success or a ForkwiseError with a file's code
// (model-format, tokenizer-format, model-fetch): never a hang, a crash, or a TypeError,
// RangeError or plain Error from inside. `npm run fuzz` runs thousands (scripts/fuzz.mjs).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FORMATS, REGRESSIONS } from './cases.ts';
import { formatCounts, runFuzz, runRegressions } from './run.ts';

/** Cases per format in `npm test` (5 formats: 300 cases, ~10 s on two slow cores). */
const CASES = 60;

describe('loaders under fuzzing', () => {
  test(`${CASES} seeded cases per format end in success or a typed file error, within 5 s each`, async (t) => {
    const report = await runFuzz({ seed: 1, cases: CASES, timeoutMs: 5000 });
    t.diagnostic(`${report.cases} cases in ${(report.ms / 1000).toFixed(1)} s; outcomes by format:\n${formatCounts(report)}`);
    assert.deepEqual(Object.keys(report.counts).sort(), [...FORMATS].sort());
    const failures = report.failures.map((f) => `${f.format} #${f.index} (${f.what}): ${f.outcome} ${f.message ?? ''}`);
    assert.deepEqual(failures, [], failures.join('\n'));
    // the mutations reach past the first check: some inputs still load, and every format fails in more than one way
    for (const [format, counts] of Object.entries(report.counts)) {
      assert.ok((counts.ok ?? 0) > 0, `${format}: no mutated input loaded (${JSON.stringify(counts)})`);
    }
  });

  test('regressions: inputs that crashed, hung or got the wrong code end as they should', async () => {
    const results = await runRegressions(5000);
    assert.equal(results.length, REGRESSIONS.length);
    const wrong = results.filter((r) => r.outcome !== r.expect).map((r) => `${r.what}: ${r.outcome} (expected ${r.expect}) ${r.message ?? ''}`);
    assert.deepEqual(wrong, [], wrong.join('\n'));
  });
});
