// `npm run screenshots`: the README's pictures, taken from the real demo in headless Chromium
// (SwiftShader here): docs/demo-generation.png (mid-generation, EAD, with the entropy chart),
// docs/demo-compare.png (greedy beside CNTP, same prompt and seed), docs/embed.png (the
// script-tag page; run `npm run build:embed` first).
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { PROJECT_ROOT, startBrowserSession } from '../test/support/browser.ts';

const docs = (name: string) => join(PROJECT_ROOT, 'docs', name);
const ready = (page: Page) =>
  page.waitForFunction(() => !(document.getElementById('generate') as HTMLButtonElement).disabled, null, { timeout: 300_000 });
const idle = (page: Page) =>
  page.waitForFunction(() => (document.getElementById('stop') as HTMLButtonElement).disabled, null, { timeout: 300_000 });

async function setUp(page: Page, decoder: string, compare: string, fields: Record<string, string>) {
  await page.setViewportSize({ width: 1280, height: 900 });
  await ready(page);
  await page.selectOption('#decoder', decoder);
  await page.selectOption('#compare', compare);
  for (const [id, value] of Object.entries(fields)) await page.fill(`#${id}`, value);
}

const session = await startBrowserSession();
try {
  const demo = await session.newPage('/demo/');
  await setUp(demo, 'ead', '', { prompt: 'Once upon a time', 'max-tokens': '120', tau: '1.5' });
  await demo.click('#generate');
  await demo.waitForFunction(() => document.querySelectorAll('#output .tok').length >= 60, null, { timeout: 300_000 });
  await demo.locator('#output .tok').nth(20).hover();
  await demo.screenshot({ path: docs('demo-generation.png'), fullPage: true });
  await demo.click('#stop');
  await idle(demo);

  await setUp(demo, 'greedy', 'cntp', { prompt: 'Lily and Ben', 'max-tokens': '48', seed: '3', 'top-p': '0.9' });
  await demo.click('#generate');
  await idle(demo);
  await demo.locator('#output-b .tok.branch').first().hover();
  await demo.screenshot({ path: docs('demo-compare.png'), fullPage: true });

  const embed = await session.newPage('/demo/embed.html');
  await embed.setViewportSize({ width: 900, height: 500 });
  await embed.waitForFunction(() => document.getElementById('api-output')?.dataset.state === 'done'
    && document.querySelector('forkwise-generate')?.getAttribute('state') === 'done', null, { timeout: 300_000 });
  await embed.screenshot({ path: docs('embed.png'), fullPage: true });
  console.log('wrote docs/demo-generation.png, docs/demo-compare.png, docs/embed.png');
} finally {
  await session.close();
}
