// The demo page as a person uses it, in headless Chromium: load, generate, stop, inspect a token,
// every decoder, and model-controlled text that must stay text.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import type { Engine } from '../../src/engine.ts';
import { type BrowserSession, startBrowserSession } from '../support/browser.ts';
import { loadedEngine } from '../support/engine.ts';

const idle = (page: Page) =>
  page.waitForFunction(() => (document.getElementById('stop') as HTMLButtonElement).disabled
    && !(document.getElementById('generate') as HTMLButtonElement).disabled, null, { timeout: 300_000 });

async function generate(page: Page, fields: Record<string, string>, decoder = 'greedy') {
  await page.selectOption('#decoder', decoder);
  for (const [id, value] of Object.entries(fields)) await page.fill(`#${id}`, value);
  await page.click('#generate');
  await page.waitForFunction(() => !(document.getElementById('stop') as HTMLButtonElement).disabled || document.querySelectorAll('#output .tok').length > 0);
  await idle(page);
}

describe('demo page', () => {
  let session: BrowserSession;
  let page: Page;
  let engine: Engine;
  const dialogs: string[] = [];

  before(async () => {
    session = await startBrowserSession();
    page = await session.newPage('/demo/');
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await idle(page);
    engine = await loadedEngine();
  });
  after(async () => {
    engine?.dispose();
    await session?.close();
  });

  test('loads the model with progress reaching 100% and shows the adapter', async () => {
    assert.equal(await page.$eval('#load-progress', (p) => (p as HTMLProgressElement).value), 1);
    assert.match(await page.textContent('#load-status') ?? '', /stories15M ready/);
    assert.match(await page.textContent('#adapter') ?? '', /adapter: /);
  });

  test('greedy text equals the engine\u2019s, and a token shows the API\u2019s entropy', async () => {
    await generate(page, { prompt: 'Once upon a time', 'max-tokens': '30' });
    const expected = await engine.generate('Once upon a time', { maxTokens: 30 }).complete();
    assert.equal(await page.textContent('#output'), expected.text);
    const shown = await page.$$eval('#output .tok', (spans) => spans.map((s) => Number((s as HTMLElement).dataset.entropy)));
    assert.equal(shown.length, expected.steps.length);
    shown.forEach((e, i) => assert.ok(Math.abs(e - expected.steps[i].entropy) < 1e-4, `token ${i}`));
    await page.locator('#output .tok').nth(3).focus();
    assert.match(await page.textContent('#details') ?? '', new RegExp(`entropy ${expected.steps[3].entropy.toFixed(3)} nats`));
  });

  test('Stop halts within one step', async () => {
    await page.fill('#max-tokens', '200');
    await page.click('#generate');
    await page.waitForFunction(() => document.querySelectorAll('#output .tok').length >= 3);
    // Count the tokens when the click reaches the page (Playwright's click takes a while itself).
    await page.evaluate(() => document.getElementById('stop')!.addEventListener('click', () => {
      (window as unknown as { tokensAtStop: number }).tokensAtStop = document.querySelectorAll('#output .tok').length;
    }, { capture: true, once: true }));
    await page.click('#stop');
    await idle(page);
    const atClick = await page.evaluate(() => (window as unknown as { tokensAtStop: number }).tokensAtStop);
    const after = await page.$$eval('#output .tok', (s) => s.length);
    assert.ok(after <= atClick + 1, `${after} tokens after stopping at ${atClick}`);
    assert.match(await page.textContent('#stats') ?? '', /stopped after/);
  });

  test('every decoder runs from the page', async () => {
    for (const decoder of ['sample', 'cntp', 'ead', 'srgen']) {
      await generate(page, { prompt: 'Lily', 'max-tokens': '8', 'top-p': '0.9' }, decoder);
      assert.match(await page.textContent('#stats') ?? '', /finish: (max_tokens|bos)/, decoder);
      assert.equal(await page.isHidden('#error'), true, `${decoder}: ${await page.textContent('#error')}`);
    }
  });

  test('a prompt with HTML appears literally and runs nothing', async () => {
    const prompt = 'Hi <img src=x onerror=alert(1)><script>alert(2)</script>';
    await generate(page, { prompt, 'max-tokens': '3', 'top-p': '1' });
    const output = await page.textContent('#output');
    assert.ok(output?.startsWith(prompt), output ?? '');
    assert.equal(await page.$$eval('#output img, #output script', (n) => n.length), 0);
    assert.deepEqual(dialogs, []);
    assert.deepEqual(session.errors.filter((e) => !/favicon/.test(e)), []);
  });

  test('a reload reads the weights from browser storage: no model request goes out', async () => {
    const requests: string[] = [];
    page.on('request', (r) => {
      if (/\/models\//.test(r.url())) requests.push(r.url());
    });
    await page.reload();
    await idle(page);
    assert.match(await page.textContent('#load-status') ?? '', /stories15M ready/);
    assert.deepEqual(requests, []);
  });
});
