// Validates the benchmark peer (llama2.c compiled to WASM, bench/peers/llama2c.ts): greedy
// generation for "Once upon a time" must reproduce the golden reference from native run.c
// (../shared/reference/greedy-once-upon-a-time.json), token for token and as text.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { PROJECT_ROOT, startBrowserSession, waitForGlobal, type BrowserSession } from '../support/browser.ts';

interface Golden {
  prompt: string;
  steps: number;
  tokens: number[];
  prompt_token_count: number;
  stopped_on_bos: boolean;
  text: string;
}

const golden: Golden = JSON.parse(
  readFileSync(join(PROJECT_ROOT, '..', 'shared', 'reference', 'greedy-once-upon-a-time.json'), 'utf8'),
);

let session: BrowserSession;
let page: Page;

before(async () => {
  session = await startBrowserSession();
  page = await session.newPage('/bench/pages/llama2c.html');
  await waitForGlobal(page, 'runLlama2c');
  const { loadMs } = await page.evaluate(() => window.loadLlama2c());
  console.log(`# llama2.c WASM loaded in ${loadMs.toFixed(0)} ms`);
});

after(async () => {
  await session?.close();
});

test('greedy "Once upon a time" matches the golden reference (all 256 steps)', async () => {
  const r = await page.evaluate(
    ({ prompt, steps }) => window.runLlama2c({ prompt, steps, temperature: 0 }),
    { prompt: golden.prompt, steps: golden.steps },
  );
  console.log(
    `# ${r.tokens.length} tokens; prefill ${r.prefillMs.toFixed(1)} ms (${r.prefillTokens} tok), ` +
      `decode ${r.decodeTokPerSec.toFixed(1)} tok/s over ${r.decodeTokens} forwards`,
  );
  assert.deepEqual(r.promptTokens, golden.tokens.slice(0, golden.prompt_token_count));
  assert.equal(r.stoppedOnBos, golden.stopped_on_bos);
  // The first 60 generated tokens first, for a readable failure, then all of them.
  const generated = golden.tokens.slice(golden.prompt_token_count);
  assert.deepEqual(r.tokens.slice(0, 60), generated.slice(0, 60));
  assert.deepEqual(r.tokens, generated);
  assert.equal(r.text, golden.text);
});

test('steps counts positions like run.c: a short run is a prefix of the golden tokens', async () => {
  const steps = 30;
  const r = await page.evaluate(
    ({ prompt, steps }) => window.runLlama2c({ prompt, steps, temperature: 0 }),
    { prompt: golden.prompt, steps },
  );
  const generated = golden.tokens.slice(golden.prompt_token_count);
  const expectedCount = steps - (golden.prompt_token_count - 1); // positions 0..steps-1 forwarded
  assert.equal(r.tokens.length, expectedCount);
  assert.deepEqual(r.tokens, generated.slice(0, expectedCount));
  assert.equal(r.stoppedOnBos, false);
  assert.equal(r.prefillTokens, golden.prompt_token_count);
  assert.equal(r.decodeTokens, expectedCount - 1);
  assert.ok(golden.text.startsWith(r.text), 'short text is a prefix of the golden text');
  for (const k of ['prefillMs', 'decodeMs', 'ttftMs', 'decodeTokPerSec', 'prefillTokPerSec'] as const) {
    assert.ok(Number.isFinite(r[k]) && r[k] > 0, `${k} = ${r[k]}`);
  }
});

test('no console errors or page errors', () => {
  assert.deepEqual(session.errors, []);
});
