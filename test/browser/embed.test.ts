// The script-tag build in Chromium: `npm run build:embed` emits dist/forkwise.iife.js, and
// demo/embed.html — a plain <script src> with no modules — streams 20 greedy tokens through both
// the <forkwise-generate> element and the global `forkwise` API. Both texts must equal the Node
// engine's greedy text for the same prompt (itself checked against llama2.c by the golden tests).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { type BrowserSession, PROJECT_ROOT, startBrowserSession } from '../support/browser.ts';
import { loadedEngine } from '../support/engine.ts';

const PROMPT = 'Once upon a time';
const MAX_TOKENS = 20;

describe('script-tag embed (dist/forkwise.iife.js, <forkwise-generate>) in Chromium', () => {
  let session: BrowserSession;
  let page: Page;
  let expected: string;

  before(async () => {
    // Only the library build: the page build (`npm run build`) also covers demo/index.html.
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const build = spawnSync(npm, ['run', 'build:embed'], { cwd: PROJECT_ROOT, encoding: 'utf8', timeout: 120_000 });
    assert.equal(build.status, 0, `npm run build:embed failed:\n${build.stdout}\n${build.stderr}`);
    assert.ok(existsSync(join(PROJECT_ROOT, 'dist', 'forkwise.iife.js')));

    const engine = await loadedEngine();
    try {
      expected = (await engine.generate(PROMPT, { decoder: 'greedy', maxTokens: MAX_TOKENS }).complete()).text;
    } finally {
      engine.dispose();
    }
    assert.ok(expected.startsWith(PROMPT) && expected.length > PROMPT.length);

    session = await startBrowserSession();
    page = await session.newPage('/demo/embed.html');
  });
  after(async () => {
    await session?.close();
  });

  test('the page loads nothing but the classic script', async () => {
    // (The dev server injects its own /@vite/client module; the page's own scripts are classic.)
    const scripts = await page.evaluate(() =>
      [...document.scripts]
        .map((s) => ({ src: s.getAttribute('src'), type: s.type }))
        .filter((s) => !s.src?.startsWith('/@vite/')),
    );
    assert.ok(scripts.every((s) => s.type === ''), JSON.stringify(scripts));
    assert.deepEqual(scripts.filter((s) => s.src).map((s) => s.src), ['/dist/forkwise.iife.js']);
    const api = await page.evaluate(() => {
      const g = (window as unknown as { forkwise: Record<string, unknown> }).forkwise;
      return ['createEngine', 'Engine', 'Generation', 'Tokenizer', 'ForkwiseError'].map((k) => typeof g?.[k]);
    });
    assert.deepEqual(api, ['function', 'function', 'function', 'function', 'function']);
  });

  test('<forkwise-generate> streams the greedy text', async () => {
    const element = page.locator('forkwise-generate');
    await page.waitForFunction(
      () => ['done', 'error'].includes(document.querySelector('forkwise-generate')?.getAttribute('state') ?? ''),
      undefined,
      { timeout: 60_000 },
    );
    assert.equal(await element.getAttribute('state'), 'done', await element.textContent() ?? '');
    assert.equal(await element.textContent(), expected);
    // Text nodes only: nothing the model writes becomes markup.
    assert.equal(await element.evaluate((e) => e.children.length), 0);
  });

  test('the global API writes the same text', async () => {
    const output = page.locator('#api-output');
    await page.waitForFunction(() => document.getElementById('api-output')?.dataset.state !== undefined, undefined, {
      timeout: 60_000,
    });
    assert.equal(await output.getAttribute('data-state'), 'done', await output.textContent() ?? '');
    assert.equal(await output.textContent(), expected);
  });

  test('forkwise-done carries the result (an element added by script; seed and temperature attributes accepted)', async () => {
    const r = await page.evaluate(async () => {
      const el = document.createElement('forkwise-generate');
      el.setAttribute('prompt', 'Once upon a time');
      el.setAttribute('decoder', 'greedy');
      el.setAttribute('max-tokens', '5');
      el.setAttribute('seed', '7');
      el.setAttribute('temperature', '0.8');
      const done = new Promise<CustomEvent>((resolve) => el.addEventListener('forkwise-done', (e) => resolve(e as CustomEvent)));
      document.body.append(el);
      const { detail } = await done;
      el.remove();
      return { state: el.getAttribute('state'), text: el.textContent, resultText: detail.result?.text, steps: detail.result?.steps.length };
    });
    assert.equal(r.state, 'done');
    assert.equal(r.steps, 5);
    assert.equal(r.resultText, r.text);
    assert.ok(expected.startsWith(r.text ?? '\0'), `${r.text} is not a prefix of ${expected}`);
  });

  test('a bad model URL ends in state=error with the message as text and in the event', async () => {
    const r = await page.evaluate(async () => {
      const el = document.createElement('forkwise-generate');
      el.setAttribute('model', '/models/missing.bin');
      el.setAttribute('prompt', '<b>x</b>');
      const done = new Promise<CustomEvent>((resolve) => el.addEventListener('forkwise-done', (e) => resolve(e as CustomEvent)));
      document.body.append(el);
      const event = await done;
      const error = event.detail.error as Error & { code?: string };
      return { state: el.getAttribute('state'), text: el.textContent, children: el.children.length, code: error?.code };
    });
    assert.equal(r.state, 'error');
    assert.equal(r.code, 'model-fetch');
    assert.match(r.text ?? '', /missing\.bin/);
    assert.equal(r.children, 0);
    // The 404 of the missing model is the only error the page reported.
    assert.deepEqual(session.errors.filter((e) => !e.includes('/models/missing.bin')), []);
  });
});
