// Model fixtures in real Chromium (WebGPU through Playwright): an HF folder URL and GGUF file URLs
// (the Vite dev server serves test/fixtures by HTTP ranges), greedy from each golden's first
// prompt: every token exact, per-step lse and entropy within 1e-5·max(20, |lse|) of the float64
// reference, as in Node (test/model/fixtures.test.ts).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { type BrowserSession, startBrowserSession, waitForGlobal } from '../support/browser.ts';
import { fixtureGoldens, statBound } from '../support/fixtures.ts';

const CASES = [
  { name: 'tiny-qwen2 (HF folder URL)', url: '/test/fixtures/tiny-qwen2/', golden: 'tiny-qwen2/golden.json', format: 'hf', dtype: 'F16' },
  { name: 'stories15M Q4_0 (GGUF URL)', url: '/test/fixtures/stories15M-gguf/stories15M-Q4_0.gguf', golden: 'stories15M-gguf/golden-Q4_0.json', format: 'gguf', dtype: 'Q4_0' },
  { name: 'tiny-kquant Q4_K_M (GGUF URL)', url: '/test/fixtures/tiny-kquant/tiny-kquant-Q4_K_M.gguf', golden: 'tiny-kquant/golden.json', format: 'gguf', dtype: 'Q4_K' },
];

describe('model fixtures by URL in Chromium (WebGPU)', () => {
  let session: BrowserSession;
  let page: Page;

  before(async () => {
    session = await startBrowserSession();
    page = await session.newPage('/test/browser/pages/fixtures.html');
    await waitForGlobal(page, 'fixturesPage');
  });
  after(async () => {
    await session?.close();
  });

  for (const c of CASES) {
    test(`${c.name}: golden greedy tokens and statistics`, async () => {
      const g = fixtureGoldens(c.golden)[0];
      const n = g.tokens.length - g.prompt_token_count;
      const r = await page.evaluate(({ url, prompt, n }) => window.fixturesPage.run(url, prompt, n), { url: c.url, prompt: g.prompt, n });
      assert.equal(r.info.format, c.format);
      assert.equal(r.info.dtype, c.dtype);
      assert.ok(r.phases.includes('upload') && r.phases.includes('ready'), r.phases.join(', '));
      assert.equal(r.promptTokenCount, g.prompt_token_count);
      assert.deepEqual(r.tokens, g.tokens);
      assert.equal(r.steps.length, n);
      let worst = 0;
      for (const s of r.steps) {
        const ref = g.per_position[s.pos];
        assert.equal(ref.pos, s.pos);
        const scale = Math.max(20, Math.abs(ref.lse));
        worst = Math.max(worst, Math.abs(s.lse - ref.lse) / scale, Math.abs(s.entropy - ref.entropy_nats) / scale);
        assert.ok(Math.abs(s.lse - ref.lse) <= statBound(ref.lse), `position ${s.pos}: lse ${s.lse} vs ${ref.lse}`);
        assert.ok(Math.abs(s.entropy - ref.entropy_nats) <= statBound(ref.lse), `position ${s.pos}: entropy ${s.entropy} vs ${ref.entropy_nats}`);
      }
      console.log(`# ${c.name}: load ${r.loadMs.toFixed(0)} ms, max |Δ|/max(20,|lse|) ${worst.toExponential(2)}, decode ${r.decodeTokPerSec.toFixed(1)} tok/s`);
    });
  }

  test('no page errors, failed requests or HTTP errors', () => {
    // ERR_ABORTED: the body of a URL reader's size probe (Range: bytes=0-0), which it cancels.
    assert.deepEqual(session.errors.filter((e) => !/requestfailed: GET .*\/test\/fixtures\/.*: net::ERR_ABORTED$/.test(e)), []);
  });
});
