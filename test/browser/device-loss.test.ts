// Device loss in Chromium, through the worker engine the demo uses and the in-page engine the
// <forkwise-generate> element uses: the GPU device is destroyed (device.destroy(), as a driver
// reset does) in the middle of a generation and of a load. The call in flight rejects with
// DeviceLostError and Chromium's reason (across the worker with its class and code), and so does
// the next call, until recover() acquires a new device and loads stories15M again from its URL;
// greedy tokens then equal those from before the loss. (test/model/device-loss.test.ts: the same
// in Node, and autoRecover.)
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import type { ErrorSummary, Mode } from './pages/device-loss.ts';
import { type BrowserSession, startBrowserSession, waitForGlobal } from '../support/browser.ts';

const TOKENS = 8;
/** Far more than arrive: the loss ends the generation. */
const LONG = 200;

function assertLost(e: ErrorSummary | null, what: string) {
  assert.ok(e, `${what}: rejects`);
  assert.equal(e.deviceLost, true, `${what}: a DeviceLostError, got ${JSON.stringify(e)}`);
  assert.equal(e.code, 'device-lost');
  assert.match(e.message, /the GPU device was lost \(destroyed: /, `${what}: with Chromium's reason`);
}

let session: BrowserSession;
before(async () => {
  session = await startBrowserSession();
});
after(() => session?.close());

for (const mode of ['worker', 'page'] as const satisfies readonly Mode[]) describe(`device loss in Chromium, ${mode === 'worker' ? 'through the worker engine' : 'on the in-page engine'}`, () => {
  let page: Page;
  let reference: number[];

  before(async () => {
    page = await session.newPage('/test/browser/pages/device-loss.html');
    await waitForGlobal(page, 'deviceLossPage');
    assert.deepEqual(await page.evaluate((m) => window.deviceLossPage.start(m), mode), { vocabSize: 32000 });
    reference = await page.evaluate((n) => window.deviceLossPage.greedy(n), TOKENS);
    assert.equal(reference.length, 5 + TOKENS); // BOS + 4 prompt ids
  });
  after(() => page?.close());

  test('lost mid-generation: DeviceLostError, the next call too; recover() gives the same tokens', async (t) => {
    const r = await page.evaluate(({ n }) => window.deviceLossPage.loseMidGeneration(2, n), { n: LONG });
    assertLost(r.error, 'the generation in flight');
    // in the page the loss is at once; the worker's steps in flight may still arrive
    if (mode === 'page') assert.equal(r.steps, 2, 'no step after the loss');
    else assert.ok(r.steps >= 2 && r.steps < LONG, `${r.steps} steps: it stopped at the loss`);
    assertLost(r.next, 'the next generation');
    assert.equal(r.lost, true, 'the engine reports the loss');
    const recovered = await page.evaluate(() => window.deviceLossPage.recover());
    assert.deepEqual({ vocabSize: recovered.vocabSize, lost: recovered.lost }, { vocabSize: 32000, lost: false });
    assert.deepEqual(await page.evaluate((n) => window.deviceLossPage.greedy(n), TOKENS), reference, 'the same greedy tokens as before the loss');
    t.diagnostic(`${r.steps} steps before the loss ended it; recover (new device + reload by URL): ${recovered.ms.toFixed(0)} ms`);
  });

  test('lost mid-load: the load rejects, the previous model is what recover() restores', async (t) => {
    const r = await page.evaluate(() => window.deviceLossPage.loseMidLoad());
    assert.ok(r.destroyedAt, 'destroyed while uploading');
    assertLost(r.error, 'the load');
    assert.equal(r.lost, true);
    assert.equal(r.modelKept, true, 'no half-loaded model');
    const recovered = await page.evaluate(() => window.deviceLossPage.recover());
    assert.equal(recovered.lost, false);
    assert.deepEqual(await page.evaluate((n) => window.deviceLossPage.greedy(n), TOKENS), reference);
    t.diagnostic(`destroyed at ${r.destroyedAt}; recover: ${recovered.ms.toFixed(0)} ms`);
  });

  test('the page saw no uncaught error', () => {
    assert.deepEqual(session.errors, []);
  });
});
