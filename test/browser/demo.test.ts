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

async function generate(page: Page, fields: Record<string, string>, decoder = 'greedy', compare = '') {
  await page.selectOption('#decoder', decoder);
  await page.selectOption('#compare', compare);
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
    assert.match(await page.textContent('#adapter') ?? '', /adapter: .* · engine in a Web Worker/);
  });

  // With the engine on the page (/demo/?engine=page) this machine shows main-thread tasks of
  // 270–870 ms while the model loads (parsing, pipeline creation); in the worker none passes 100 ms.
  test('the engine runs in a worker: no main-thread task over 200 ms while loading or generating', async () => {
    assert.ok(await page.evaluate(() => PerformanceObserver.supportedEntryTypes.includes('longtask')));
    await page.evaluate(() => {
      const w = window as unknown as { longTasks: number[] };
      w.longTasks = [];
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) w.longTasks.push(e.duration);
      }).observe({ type: 'longtask', buffered: true }); // buffered: the model load before this test too
    });
    await generate(page, { prompt: 'Once upon a time', 'max-tokens': '40' });
    assert.equal(await page.$$eval('#output .tok', (s) => s.length), 40);
    const tasks = await page.evaluate(() => (window as unknown as { longTasks: number[] }).longTasks);
    assert.deepEqual(tasks.filter((d) => d > 200), [], `main-thread long tasks (ms): ${tasks.map((d) => d.toFixed(0))}`);
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

  test('the live chart has a point per token, and EAD\u2019s rolling mean and τ line; the stats line counts', async () => {
    await generate(page, { prompt: 'Once upon a time', 'max-tokens': '16', tau: '1' }, 'ead');
    const chart = await page.$eval('#chart svg', (svg) => {
      const points = (cls: string) => (svg.querySelector(`polyline.${cls}`)!.getAttribute('points') ?? '').split(' ').filter(Boolean)
        .map((p) => p.split(',').map(Number));
      return { entropy: points('entropy'), gauge: points('gauge'), threshold: points('threshold') };
    });
    const shown = await page.$$eval('#output .tok', (spans) => spans.map((s) => Number((s as HTMLElement).dataset.entropy)));
    assert.equal(chart.entropy.length, 16);
    assert.equal(chart.gauge.length, 16);
    assert.equal(new Set(chart.threshold.map(([, y]) => y)).size, 1, 'τ is one horizontal line');
    // Higher entropy is drawn higher (smaller y): the chart's order matches the tokens'.
    for (let i = 1; i < 16; i++) {
      if (Math.abs(shown[i] - shown[i - 1]) > 0.05) assert.equal(chart.entropy[i][1] < chart.entropy[i - 1][1], shown[i] > shown[i - 1], `token ${i}`);
    }
    const small = await page.$$eval('#output .tok.small', (s) => s.length);
    const stats = await page.textContent('#stats') ?? '';
    assert.match(stats, new RegExp(`16 tokens · finish: max_tokens .* large model ${Math.round(100 * (16 - small) / 16)}%`));
  });

  test('compare view: the same prompt and seed through two decoders side by side', async () => {
    await generate(page, { prompt: 'Lily', 'max-tokens': '12', seed: '5', 'top-p': '1', temperature: '1' }, 'greedy', 'sample');
    assert.equal(await page.isVisible('#panel-b'), true);
    assert.equal(await page.textContent('#title-a'), 'greedy');
    assert.equal(await page.textContent('#title-b'), 'sample');
    const greedy = await engine.generate('Lily', { maxTokens: 12 }).complete();
    const sampled = await engine.generate('Lily', { decoder: 'sample', seed: 5, temperature: 1, topP: 1, maxTokens: 12 }).complete();
    assert.notEqual(greedy.text, sampled.text);
    assert.equal(await page.textContent('#output'), greedy.text);
    assert.equal(await page.textContent('#output-b'), sampled.text);
    assert.match(await page.textContent('#stats-b') ?? '', /12 tokens · finish/);
    await page.selectOption('#compare', '');
    assert.equal(await page.isHidden('#panel-b'), true);
  });

  test('a marked token opens its details: CNTP trials with perplexities, SRGen\u2019s loss curve', async () => {
    await generate(page, { prompt: 'Once upon a time', 'max-tokens': '16', seed: '0', 'top-p': '0.9' }, 'cntp');
    const branch = page.locator('#output .tok.branch').first();
    await branch.click();
    assert.equal(await page.$eval('#event-dialog', (d) => (d as HTMLDialogElement).open), true);
    const rows = await page.$$eval('#event-body table.trials tr', (trs) => trs.slice(1).map((tr) => [...tr.children].map((td) => td.textContent)));
    assert.ok(rows.length >= 2, `${rows.length} trials`);
    const kept = rows.filter((r) => r[3] === 'kept');
    assert.equal(kept.length, 1);
    const ppl = rows.map((r) => Number(r[2]));
    assert.equal(Number(kept[0][2]), Math.min(...ppl));
    await page.keyboard.press('Escape');

    await generate(page, { prompt: 'Once upon a time', 'max-tokens': '4', theta0: '0', 'theta-min': '0' }, 'srgen');
    // The chart draws SRGen's θ for every monitored token (θ₀ = 0 here: fewer than N = 25
    // entropies known). SRGen never checks the first generated token (the authors' loop runs the
    // prefill forward with entropy control off), so 4 tokens give 3 points.
    const theta = await page.$eval('#chart polyline.threshold', (l) => (l.getAttribute('points') ?? '').split(' ').filter(Boolean));
    const floor = await page.$eval('#chart polyline.entropy', (l) => Math.max(...(l.getAttribute('points') ?? '').split(' ').filter(Boolean).map((p) => Number(p.split(',')[1]))));
    assert.equal(theta.length, 3);
    for (const p of theta) assert.ok(Number(p.split(',')[1]) >= floor, `θ = 0 is drawn at the bottom: ${p}`);
    await page.locator('#output .tok.reflect').first().press('Enter');
    const label = await page.$eval('#event-body svg.loss-curve', (svg) => svg.getAttribute('aria-label') ?? '');
    const losses = label.split(': ')[1].split(', ').map(Number);
    assert.equal(losses.length, 4, label); // before + 3 AdamW steps
    assert.ok(losses[3] < losses[0], label);
    await page.keyboard.press('Escape');
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
    // ERR_ABORTED: a response body the engine's URL reader cancels (its size probe's).
    assert.deepEqual(session.errors.filter((e) => !/favicon|requestfailed: GET .*\/models\/.*: net::ERR_ABORTED$/.test(e)), []);
  });

  test('memory: a prompt past the context runs under SirLLM, and the indicator shows what is kept', async () => {
    await page.selectOption('#memory', 'sirllm');
    const prompt = `A wizard named Zorblax hid a key.${' The cat sat on the mat.'.repeat(40)}`;
    await generate(page, { prompt, 'max-tokens': '4', 'top-p': '1' });
    assert.equal(await page.isHidden('#error'), true, await page.textContent('#error') ?? '');
    const summary = await page.textContent('#panel-a details.memory summary') ?? '';
    const m = /the model sees (\d+) of (\d+) tokens; (\d+) evicted/.exec(summary);
    assert.ok(m, `memory indicator: ${JSON.stringify(summary)}; stats: ${await page.textContent("#stats")}`);
    assert.ok(Number(m[1]) <= 256 && Number(m[2]) > 256 && Number(m[3]) > 0, summary);
    await page.click('#panel-a details.memory summary');
    assert.match(await page.textContent('#panel-a details.memory p') ?? '', /Zorblax/, 'the surprising name is kept');
    await page.selectOption('#memory', 'none');
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

describe('demo page without WebGPU', () => {
  let session: BrowserSession;
  before(async () => {
    session = await startBrowserSession({ extraArgs: ['--host-resolver-rules=MAP insecure.forkwise.test 127.0.0.1'] });
  });
  after(async () => {
    await session?.close();
  });

  test('an insecure origin (no navigator.gpu) gets the explanation page, not a broken form', async () => {
    // The same server under a name that is not localhost: not a secure context, so no WebGPU.
    const page = await session.browser.newPage();
    await page.goto(`${session.baseUrl.replace('127.0.0.1', 'insecure.forkwise.test')}/demo/`);
    await page.waitForSelector('#no-webgpu', { state: 'visible', timeout: 60_000 });
    assert.equal(await page.evaluate(() => isSecureContext), false);
    assert.match(await page.textContent('#no-webgpu-reason') ?? '', /navigator\.gpu is missing.*secure context/);
    assert.equal(await page.isHidden('#controls'), true);
    assert.equal(await page.isHidden('#load'), true);
    await page.close();
  });
});
