// The golden test once more, in real Chromium through Playwright (page served from 127.0.0.1):
// greedy tokens exactly, per-step lse and entropy within STAT_TOLERANCE; and a seeded sample
// that must equal the same seed's sample in Node (same RNG, same kernels).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import type { GenerateOptions } from '../../src/engine.ts';
import { type BrowserSession, startBrowserSession, waitForGlobal } from '../support/browser.ts';
import { STAT_TOLERANCE, goldens, loadedEngine } from '../support/engine.ts';

describe('stories15M against llama2.c in Chromium (WebGPU)', () => {
  let session: BrowserSession;
  let page: Page;

  before(async () => {
    session = await startBrowserSession();
    page = await session.newPage('/test/browser/pages/engine.html');
    await waitForGlobal(page, 'forkwisePage');
    const loaded = await page.evaluate(() => window.forkwisePage.load());
    console.log(`# adapter ${JSON.stringify(loaded.adapter)}; load ${loaded.info.loadMs.toFixed(0)} ms`);
    assert.equal(loaded.progress.last?.fraction, 1, 'progress reaches 100%');
    // Weights stream tensor by tensor (read by HTTP ranges, then uploaded): one 'upload' phase in
    // bytes of the tensors follows the headers' 'parse'.
    assert.ok(loaded.progress.phases.includes('parse') && loaded.progress.phases.includes('upload'));
  });
  after(async () => {
    await session?.close();
  });

  // The full context (every position of the cache, the 'context' finish). Node's golden test
  // decodes the BOS finish; the two paths differ only in how the loop ends.
  for (const golden of goldens().filter((g) => g.name === 'greedy-context-full.json')) {
    test(`${golden.name}: greedy tokens, text and per-step stats`, async () => {
      const r = await page.evaluate(({ prompt }) => window.forkwisePage.generate(prompt, { decoder: 'greedy' }), { prompt: golden.prompt });
      assert.deepEqual(r.tokens, golden.tokens);
      assert.equal(r.text, golden.text);
      assert.equal(r.finish, golden.stopped_on_bos ? 'bos' : 'context');
      let worst = 0;
      for (const s of r.steps) {
        const ref = golden.per_position[s.pos];
        assert.equal(s.tokenId, ref.argmax);
        worst = Math.max(worst, Math.abs(s.lse - ref.lse), Math.abs(s.entropy - ref.entropy_nats));
      }
      assert.ok(worst < STAT_TOLERANCE, `worst ${worst}`);
      console.log(`# ${golden.name}: worst |Δ| ${worst.toExponential(2)}, decode ${r.timing.decodeTokPerSec.toFixed(1)} tok/s`);
    });
  }

  test('seeded samples are the same in Chromium and in Node (GPU draw, CPU draw after top-p, CNTP, the new decoders)', async () => {
    const cases: GenerateOptions[] = [
      { decoder: 'sample', temperature: 0.9, seed: 1234, maxTokens: 16 }, // full vocabulary: GPU Gumbel-max
      { decoder: 'sample', temperature: 1, topP: 0.9, seed: 99, maxTokens: 16 }, // truncated: CPU draw from top-64
      { decoder: 'cntp', temperature: 1, topP: 0.9, seed: 5, maxTokens: 12 }, // trials as batched rows
      // this round's decoders: entropix (attention statistics, branch draws), HAPO's adaptive
      // temperature (statistics again at T′), PURE's entropy top-k. The additive penalties are a CPU
      // stage over the same top-K record as the top-p case (test/model/choices.test.ts checks them).
      { decoder: 'entropix', seed: 3, maxTokens: 8 },
      { decoder: 'adaptive-temperature', seed: 4, maxTokens: 10, adaptiveTemperature: { warmup: 4 } },
      { decoder: 'entropy-top-k', seed: 6, maxTokens: 8 },
    ];
    const engine = await loadedEngine();
    try {
      for (const options of cases) {
        const inPage = await page.evaluate((o) => window.forkwisePage.generate('Once upon a time', o), options);
        const inNode = await engine.generate('Once upon a time', options).complete();
        assert.deepEqual(inPage.tokens, inNode.tokens, JSON.stringify(options));
        assert.equal(inPage.text, inNode.text);
      }
    } finally {
      engine.dispose();
    }
    assert.deepEqual(session.errors, []);
  });
});
