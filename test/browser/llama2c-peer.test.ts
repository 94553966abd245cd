// Validates the benchmark peer (llama2.c compiled to WASM, bench/peers/llama2c.ts): greedy
// generation for "Once upon a time" must reproduce the golden reference from native run.c
// (test/fixtures/reference/greedy-once-upon-a-time.json), token for token and as text.
//
// The reference lives outside the repository. Where it is absent (a bare clone), the full
// comparison is skipped, and the first 60 generated tokens are still checked against the copy
// embedded below (which, where the file is present, is itself checked against the file).
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import type { Llama2cResult } from '../../bench/peers/llama2c.ts';
import { PROJECT_ROOT, startBrowserSession, waitForGlobal, type BrowserSession } from '../support/browser.ts';

interface Golden {
  prompt: string;
  steps: number;
  tokens: number[];
  prompt_token_count: number;
  stopped_on_bos: boolean;
  text: string;
}

const REFERENCE_NAME = 'greedy-once-upon-a-time.json';
const referenceCandidates = [
  process.env.FORKWISE_REFERENCE_DIR,
  join(PROJECT_ROOT, 'test', 'fixtures', 'reference'),
]
  .filter((d): d is string => !!d)
  .map((d) => join(d, REFERENCE_NAME));
const referencePath = referenceCandidates.find((p) => existsSync(p));
const golden: Golden | undefined = referencePath ? JSON.parse(readFileSync(referencePath, 'utf8')) : undefined;

/** From the golden reference: prompt "Once upon a time", 256 steps, BOS + prompt tokens, then
 *  the first 60 greedy tokens ("Once upon a time, there was a little girl named Lily. …"). */
const EMBEDDED = {
  prompt: 'Once upon a time',
  steps: 256,
  promptTokens: [1, 9038, 2501, 263, 931],
  first60: [
    29892, 727, 471, 263, 2217, 7826, 4257, 365, 2354, 29889, 2296, 18012, 304, 1708, 5377, 297, 278, 6575, 845,
    457, 29889, 3118, 2462, 29892, 1183, 4446, 263, 4802, 29892, 2654, 8287, 297, 278, 14744, 29889, 739, 471, 278,
    6575, 29991, 2296, 2714, 372, 471, 577, 5051, 29889, 13, 29931, 2354, 5131, 304, 1708, 411, 278, 8287, 29892,
    541, 372, 471,
  ],
  textStart: 'Once upon a time, there was a little girl named Lily. She loved to play outside in the sunshine.',
};

let session: BrowserSession;
let page: Page;
let full: Llama2cResult;

const run = (prompt: string, steps: number) =>
  page.evaluate(({ prompt, steps }) => window.runLlama2c({ prompt, steps, temperature: 0 }), { prompt, steps });

before(async () => {
  session = await startBrowserSession();
  page = await session.newPage('/bench/pages/llama2c.html');
  await waitForGlobal(page, 'runLlama2c');
  const { loadMs } = await page.evaluate(() => window.loadLlama2c());
  full = await run(EMBEDDED.prompt, EMBEDDED.steps);
  console.log(
    `# llama2.c WASM: load ${loadMs.toFixed(0)} ms; ${full.tokens.length} tokens, prefill ` +
      `${full.prefillMs.toFixed(1)} ms (${full.prefillTokens} tok), decode ${full.decodeTokPerSec.toFixed(1)} tok/s`,
  );
});

after(async () => {
  await session?.close();
});

test('the embedded prefix agrees with the golden reference file', { skip: golden ? false : noReference() }, () => {
  assert.ok(golden);
  assert.equal(golden.prompt, EMBEDDED.prompt);
  assert.equal(golden.steps, EMBEDDED.steps);
  assert.deepEqual(golden.tokens.slice(0, golden.prompt_token_count), EMBEDDED.promptTokens);
  assert.deepEqual(golden.tokens.slice(golden.prompt_token_count, golden.prompt_token_count + 60), EMBEDDED.first60);
  assert.ok(golden.text.startsWith(EMBEDDED.textStart));
});

test('greedy "Once upon a time": prompt tokens and the first 60 tokens match run.c', () => {
  assert.deepEqual(full.promptTokens, EMBEDDED.promptTokens);
  assert.deepEqual(full.tokens.slice(0, 60), EMBEDDED.first60);
  assert.ok(full.text.startsWith(EMBEDDED.textStart), full.text.slice(0, 120));
});

test('greedy "Once upon a time": all 256 steps match the golden reference', { skip: golden ? false : noReference() }, () => {
  assert.ok(golden);
  assert.deepEqual(full.tokens, golden.tokens.slice(golden.prompt_token_count));
  assert.equal(full.stoppedOnBos, golden.stopped_on_bos);
  assert.equal(full.text, golden.text);
});

test('steps counts positions like run.c: a short run is a prefix', async () => {
  const steps = 30;
  const r = await run(EMBEDDED.prompt, steps);
  const expectedCount = steps - (EMBEDDED.promptTokens.length - 1); // positions 0..steps-1 forwarded
  assert.equal(r.tokens.length, expectedCount);
  assert.deepEqual(r.tokens, EMBEDDED.first60.slice(0, expectedCount));
  assert.equal(r.stoppedOnBos, false);
  assert.equal(r.prefillTokens, EMBEDDED.promptTokens.length);
  assert.equal(r.decodeTokens, expectedCount - 1);
  assert.ok(full.text.startsWith(r.text), 'the short text is a prefix of the long one');
  for (const k of ['prefillMs', 'decodeMs', 'ttftMs', 'decodeTokPerSec', 'prefillTokPerSec'] as const) {
    assert.ok(Number.isFinite(r[k]) && r[k] > 0, `${k} = ${r[k]}`);
  }
});

test('no console errors or page errors', () => {
  assert.deepEqual(session.errors, []);
});

function noReference(): string {
  return `golden reference not found (looked at ${referenceCandidates.join(', ')}; set FORKWISE_REFERENCE_DIR)`;
}
