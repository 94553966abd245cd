// The demo page's model sources, in headless Chromium: the picker over the bundled stories15M and
// the model fixtures the dev server lists, files and folders from disk, Hugging Face ids (through
// the dev server's stand-in hub over the fixtures, ?hub=/fixtures/hub), chat mode for a model
// with a chat template, and failed loads that keep the previous model.
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import type { Engine } from '../../src/engine.ts';
import { createNodeEngine, modelFromPath } from '../../src/node/index.ts';
import { type BrowserSession, PROJECT_ROOT, startBrowserSession } from '../support/browser.ts';

const FIXTURES = join(PROJECT_ROOT, 'test', 'fixtures');
const PUBLIC_MODELS = join(PROJECT_ROOT, 'public', 'models');

/** No generation or load in flight, and a model ready to generate. */
const idle = (page: Page) =>
  page.waitForFunction(() => (document.getElementById('stop') as HTMLButtonElement).disabled
    && !(document.getElementById('generate') as HTMLButtonElement).disabled, null, { timeout: 300_000 });

/** Waits for the load that `start` begins to end (in success or failure): the model controls come back. */
async function loading(page: Page, start: () => Promise<unknown>) {
  await page.evaluate(() => {
    const w = window as unknown as { loadsEnded: number };
    w.loadsEnded = 0;
    const select = document.getElementById('model') as HTMLSelectElement;
    let was = select.disabled;
    new MutationObserver(() => {
      if (was && !select.disabled) w.loadsEnded++;
      was = select.disabled;
    }).observe(select, { attributes: true, attributeFilter: ['disabled'] });
  });
  await start();
  await page.waitForFunction(() => (window as unknown as { loadsEnded: number }).loadsEnded > 0, null, { timeout: 300_000 });
}

async function generate(page: Page, prompt: string, maxTokens: number) {
  await page.selectOption('#decoder', 'greedy');
  await page.selectOption('#compare', '');
  await page.fill('#prompt', prompt);
  await page.fill('#max-tokens', String(maxTokens));
  await page.click('#generate');
  await page.waitForFunction(() => !(document.getElementById('stop') as HTMLButtonElement).disabled
    || !(document.getElementById('error') as HTMLElement).hidden || document.querySelectorAll('#output .tok').length > 0);
  await idle(page);
  assert.equal(await page.isHidden('#error'), true, await page.textContent('#error') ?? '');
}

const status = (page: Page) => page.textContent('#load-status').then((s) => s ?? '');

describe('demo page: models', () => {
  let session: BrowserSession;
  let page: Page;
  let qwen2: Engine;
  const dialogs: string[] = [];
  let bundledText = '';

  before(async () => {
    session = await startBrowserSession();
    page = await session.newPage('/demo/?hub=/fixtures/hub');
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    qwen2 = await createNodeEngine();
    await qwen2.loadModel({ model: await modelFromPath(join(FIXTURES, 'tiny-qwen2')) });
    await idle(page);
  });
  after(async () => {
    qwen2?.dispose();
    await session?.close();
  });

  test('the picker lists stories15M (default) and every model fixture; the server reads them by ranges', async () => {
    const expected: string[] = [];
    for (const dir of readdirSync(FIXTURES).sort()) {
      if (!statSync(join(FIXTURES, dir)).isDirectory()) continue;
      const names = readdirSync(join(FIXTURES, dir));
      if (names.includes('config.json')) expected.push(`/test/fixtures/${dir}/`);
      for (const f of names.filter((n) => n.endsWith('.gguf')).sort()) expected.push(`/test/fixtures/${dir}/${f}`);
    }
    const listed = await (await fetch(`${session.baseUrl}/fixtures/models.json`)).json() as { id: string; label: string; url: string }[];
    assert.deepEqual(listed.map((m) => m.url).sort(), expected.sort());
    const options = await page.$$eval('#model option', (os) => os.map((o) => ({ value: (o as HTMLOptionElement).value, text: o.textContent })));
    assert.deepEqual(options.map((o) => o.value), ['bundled', ...listed.map((m) => `fixture:${m.id}`)]);
    assert.deepEqual(options.slice(1).map((o) => o.text), listed.map((m) => m.label));
    assert.equal(await page.inputValue('#model'), 'bundled');
    assert.match(await status(page), /^stories15M ready: llama2c · F32 · 15\.2 M parameters · context 256 · \d+ MiB on the GPU · loaded in [\d.]+ s$/);
    assert.equal(await page.isHidden('#chat-toggle'), true, 'stories15M has no chat template');

    // The engine's size probe and reads: 206 with the asked bytes, 416 past the end, 404 when absent.
    const url = `${session.baseUrl}/test/fixtures/tiny-qwen2/config.json`;
    const size = statSync(join(FIXTURES, 'tiny-qwen2', 'config.json')).size;
    const probe = await fetch(url, { headers: { Range: 'bytes=0-0' } });
    assert.equal(probe.status, 206);
    assert.equal(probe.headers.get('content-range'), `bytes 0-0/${size}`);
    assert.equal((await probe.arrayBuffer()).byteLength, 1);
    const tail = await fetch(url, { headers: { Range: 'bytes=10-' } });
    assert.equal(tail.status, 206);
    assert.equal((await tail.arrayBuffer()).byteLength, size - 10);
    assert.equal((await fetch(url, { headers: { Range: `bytes=${size}-` } })).status, 416);
    assert.equal((await fetch(url, { method: 'HEAD' })).headers.get('content-length'), String(size));
    assert.equal((await fetch(`${session.baseUrl}/test/fixtures/tiny-qwen2/absent.json`)).status, 404);
    assert.equal((await fetch(`${session.baseUrl}/test/fixtures/%2e%2e/package.json`)).status, 404);
    const bundled = await fetch(`${session.baseUrl}/models/tokenizer.bin`, { headers: { Range: 'bytes=0-0' } });
    assert.equal(bundled.status, 206);
    assert.equal((await bundled.arrayBuffer()).byteLength, 1);

    await generate(page, 'Once upon a time', 8);
    bundledText = await page.textContent('#output') ?? '';
    assert.equal(await page.$$eval('#output .tok', (s) => s.length), 8);
  });

  test('choosing tiny-qwen2 loads it; greedy text and entropies equal the Node engine\u2019s', async () => {
    await loading(page, () => page.selectOption('#model', 'fixture:tiny-qwen2'));
    assert.equal(await page.$eval('#load-progress', (p) => (p as HTMLProgressElement).value), 1);
    assert.match(await status(page), /^tiny-qwen2 ready: qwen2 · hf · F16 · [\d.]+ M parameters · context \d+ · \d+ MiB on the GPU · loaded in [\d.]+ s$/);
    assert.equal(await page.inputValue('#model'), 'fixture:tiny-qwen2');
    assert.equal(await page.isVisible('#chat-toggle'), true, 'tiny-qwen2 has a chat template');
    assert.equal(await page.$eval('#decoder option[value="ead"]', (o) => (o as HTMLOptionElement).disabled), true, 'no small model for EAD');

    await generate(page, 'Once upon a time', 12);
    const expected = await qwen2.generate('Once upon a time', { maxTokens: 12 }).complete();
    assert.equal(await page.textContent('#output'), 'Once upon a time' + expected.completion);
    const shown = await page.$$eval('#output .tok', (spans) => spans.map((s) => Number((s as HTMLElement).dataset.entropy)));
    assert.equal(shown.length, expected.steps.length);
    shown.forEach((e, i) => assert.ok(Math.abs(e - expected.steps[i].entropy) < 1e-3, `token ${i}: ${e} vs ${expected.steps[i].entropy}`));
  });

  test('chat mode sends the conversation so far through the template; Stop ends a turn', async () => {
    await page.check('#chat');
    assert.equal(await page.textContent('#prompt-label'), 'Message');
    await generate(page, 'Hi there', 6);
    const first = await qwen2.generate({ messages: [{ role: 'user', content: 'Hi there' }] }, { maxTokens: 6 }).complete();
    assert.equal(await page.textContent('#output'), 'Hi there' + first.completion);
    assert.equal(await page.inputValue('#prompt'), '', 'the message box is cleared for the next turn');

    await generate(page, 'And then?', 5);
    const turns = [
      { role: 'user', content: 'Hi there' }, { role: 'assistant', content: first.completion }, { role: 'user', content: 'And then?' },
    ];
    const second = await qwen2.generate({ messages: turns }, { maxTokens: 5 }).complete();
    assert.equal(await page.textContent('#output'), 'And then?' + second.completion);
    const log = await page.$$eval('#messages li', (lis) => lis.map((li) => [li.querySelector('.role')!.textContent, li.querySelector('.content')!.textContent]));
    assert.deepEqual(log, [['user', 'Hi there'], ['assistant', first.completion]]);

    await page.fill('#prompt', 'Tell me more');
    await page.fill('#max-tokens', '200');
    await page.click('#generate');
    await page.waitForFunction(() => document.querySelectorAll('#output .tok').length >= 2);
    await page.click('#stop');
    await idle(page);
    assert.match(await page.textContent('#stats') ?? '', /stopped after \d+ tokens/);

    await page.click('#new-chat');
    assert.equal(await page.$$eval('#messages li', (l) => l.length), 0);
    await page.uncheck('#chat');
    assert.equal(await page.isHidden('#chat-log'), true);
    assert.equal(await page.textContent('#prompt-label'), 'Prompt');
  });

  test('a model that fails to load shows why, and the previous model still generates', async () => {
    const before = await status(page);
    const failures: [() => Promise<unknown>, RegExp][] = [
      // Not on the hub (the stand-in hub answers 404 as the hub does for a missing repository).
      [async () => {
        await page.fill('#hf-id', 'nobody/missing');
        await page.click('#hf-load');
      }, /^Could not load hf:nobody\/missing: .*config\.json/],
      // Not a model; its name is shown as text.
      [() => page.setInputFiles('#open-files', { name: '<img src=x onerror=alert(1)>.gguf', mimeType: 'application/octet-stream', buffer: Buffer.from('this is not a model file at all') }),
        /^Could not load <img src=x onerror=alert\(1\)>\.gguf: /],
      // A llama2.c checkpoint without its tokenizer.bin.
      [() => page.setInputFiles('#open-files', join(PUBLIC_MODELS, 'stories-student.bin')), /^Could not load stories-student\.bin: .*tokenizer/],
    ];
    for (const [start, message] of failures) {
      await loading(page, start);
      assert.equal(await page.isVisible('#error'), true);
      assert.match(await page.textContent('#error') ?? '', message);
      assert.equal(await status(page), before);
      assert.equal(await page.inputValue('#model'), 'fixture:tiny-qwen2');
    }
    assert.equal(await page.$$eval('#load img, #error img', (n) => n.length), 0);

    await page.fill('#hf-id', 'no-slash');
    await page.click('#hf-load');
    assert.match(await page.textContent('#error') ?? '', /Owner\/Name/);

    await generate(page, 'Once upon a time', 12);
    const expected = await qwen2.generate('Once upon a time', { maxTokens: 12 }).complete();
    assert.equal(await page.textContent('#output'), 'Once upon a time' + expected.completion);
  });

  test('a Hugging Face id loads from the hub, and a folder from disk', async () => {
    await loading(page, async () => {
      await page.fill('#hf-id', 'fixtures/tiny-qwen3');
      await page.click('#hf-load');
    });
    assert.equal(await page.isHidden('#error'), true, await page.textContent('#error') ?? '');
    assert.match(await status(page), /^hf:fixtures\/tiny-qwen3 ready: qwen3 · hf · BF16 /);
    assert.equal(await page.inputValue('#model'), await page.$eval('#opened-models option:last-child', (o) => (o as HTMLOptionElement).value));

    await loading(page, () => page.setInputFiles('#open-folder', join(FIXTURES, 'tiny-llama3')));
    assert.equal(await page.isHidden('#error'), true, await page.textContent('#error') ?? '');
    assert.match(await status(page), /^tiny-llama3 ready: llama · hf · BF16 /);
    assert.equal(await page.isVisible('#chat-toggle'), true);
    await generate(page, 'Once upon a time', 4);
    assert.equal(await page.$$eval('#output .tok', (s) => s.length), 4);
  });

  test('a llama2.c .bin with its tokenizer.bin from disk generates as the bundled model; back to the bundled one', async () => {
    await loading(page, () => page.setInputFiles('#open-files', [join(PUBLIC_MODELS, 'stories15M.bin'), join(PUBLIC_MODELS, 'tokenizer.bin')]));
    assert.equal(await page.isHidden('#error'), true, await page.textContent('#error') ?? '');
    assert.match(await status(page), /^stories15M\.bin ready: llama2c · F32 · 15\.2 M parameters/);
    assert.equal(await page.isHidden('#chat-toggle'), true);
    await generate(page, 'Once upon a time', 8);
    assert.equal(await page.textContent('#output'), bundledText);

    await loading(page, () => page.selectOption('#model', 'bundled'));
    assert.match(await status(page), /^stories15M ready: /);
    assert.equal(await page.$eval('#decoder option[value="ead"]', (o) => (o as HTMLOptionElement).disabled), false);
    assert.deepEqual(dialogs, []);
    // 404s are how the folder reader learns that an optional file is absent; ERR_ABORTED, a
    // response body the reader cancels (its size probe's, a 404's).
    assert.deepEqual(session.errors.filter((e) => !/favicon| http: 404 |requestfailed: GET .*: net::ERR_ABORTED$/.test(e)), []);
  });
});
