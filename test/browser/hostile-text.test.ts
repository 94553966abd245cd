// Hostile text stays text, in headless Chromium. Two tiny models whose every generated token is
// markup, a javascript: URL, a bidi override or NUL — a llama2.c checkpoint with such a
// tokenizer.bin, and a Hugging Face folder with such a tokenizer.json — are loaded in the demo
// (the first served in place of the bundled model, the second picked as a folder whose own name
// is an <img onerror>), and the first once more through the <forkwise-generate> element of
// src/embed.ts. After generating, nothing was interpreted: no dialog, no script ran (window.__pwned
// stays unset), no element was injected, and the page shows the tokens' text literally
// (textContent equals the decoded text, character for character, NUL and U+202E included).
//
// The models are built so that greedy decoding walks the hostile tokens in order: every layer's
// weights are zero (the residual stream is the embedding), token H_j's embedding is the basis
// vector e_j and the classifier row of H_j+1 is 10·e_j, so after H_j the largest logit is H_j+1's
// (the last wraps around to the first; every other token, the prompt's, embeds as e_15 → H_0).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { buildTokenizer } from '../../src/tokenizer/load.ts';
import { ByteWriter, byteLevel, byteLevelChars, llama2cPieces, tinyModels } from '../fuzz/build.ts';
import { type BrowserSession, startBrowserSession, waitForGlobal } from '../support/browser.ts';

/** The token texts, in the order the models generate them. */
const HOSTILE = [
  '<img src=x onerror="window.__pwned=1">',
  '<script>window.__pwned=2</script>',
  ' javascript:window.__pwned=3 ',
  '<a href="javascript:window.__pwned=4">click</a>',
  '\u202e',
  '\u0000',
  '<b>bold</b>',
  '&lt;&amp;',
  '<svg onload="window.__pwned=5">',
  '<iframe src="javascript:window.__pwned=6"></iframe>',
  '{{constructor.constructor("window.__pwned=7")()}}',
  '<style>*{display:none}</style>',
];
const DIM = 16;
const VOCAB = 300;
const MAX_TOKENS = 2 * HOSTILE.length + 3;
/** The expected completion: the hostile texts in order, wrapping around. */
const COMPLETION = Array.from({ length: MAX_TOKENS }, (_, i) => HOSTILE[i % HOSTILE.length]).join('');
/** A folder name the demo shows (its label): markup too. */
const FOLDER_NAME = '<img src=x onerror=window.__pwned=8>';

/** Embedding and classifier rows ([vocab][dim]) that make greedy walk ids[0], ids[1], … in a cycle. */
function walk(ids: number[]): { embedding: Float32Array; classifier: Float32Array } {
  const embedding = new Float32Array(VOCAB * DIM);
  const classifier = new Float32Array(VOCAB * DIM);
  for (let t = 0; t < VOCAB; t++) embedding[t * DIM + DIM - 1] = 1; // every token: e_15 ...
  ids.forEach((id, j) => {
    embedding.fill(0, id * DIM, (id + 1) * DIM);
    embedding[id * DIM + j] = 1; // ... but H_j: e_j
    const next = ids[(j + 1) % ids.length];
    classifier[next * DIM + j] = 10; // after H_j, H_j+1
  });
  classifier[ids[0] * DIM + DIM - 1] = 10; // after any other token, H_0
  return { embedding, classifier };
}

const ones = (n: number) => new Float32Array(n).fill(1);
const zeros = (n: number) => new Float32Array(n);

/** A llama2.c checkpoint (dim 16, 1 layer, 2 heads, untied classifier) walking the ids. */
function llama2cModel(ids: number[]): Uint8Array {
  const { embedding, classifier } = walk(ids);
  const seqLen = 256;
  const w = new ByteWriter();
  for (const v of [DIM, DIM, 1, 2, 2, -VOCAB, seqLen]) w.i32(v);
  const put = (a: Float32Array) => w.bytes(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  put(embedding);
  put(ones(DIM)); // attention norm
  for (let i = 0; i < 4; i++) put(zeros(DIM * DIM)); // wq, wk, wv, wo
  put(ones(DIM)); // ffn norm
  for (let i = 0; i < 3; i++) put(zeros(DIM * DIM)); // w1, w2, w3 (hidden = dim)
  put(ones(DIM)); // final norm
  put(zeros(seqLen * 4)); // legacy RoPE tables (head dim 8)
  put(zeros(seqLen * 4));
  put(classifier);
  return w.done(0).bytes;
}

/** tokenizer.bin: the tiny vocabulary with the hostile texts as pieces 270… (raw UTF-8 bytes). */
function hostileTokenizerBin(): { bytes: Uint8Array; ids: number[] } {
  const pieces = llama2cPieces(VOCAB);
  const ids = HOSTILE.map((_, j) => 270 + j);
  ids.forEach((id, j) => (pieces[id] = HOSTILE[j]));
  const utf8 = pieces.map((p) => new TextEncoder().encode(p));
  const w = new ByteWriter();
  w.i32(Math.max(...utf8.map((p) => p.length)));
  utf8.forEach((p, id) => {
    w.f32(id < 259 ? 0 : -id);
    w.i32(p.length);
    w.bytes(p);
  });
  return { bytes: w.done(0).bytes, ids };
}

/** A Hugging Face Llama folder (F32 safetensors) with a byte-level tokenizer.json whose pieces 256… are the hostile texts. */
function hostileHfFolder(dir: string): { ids: number[] } {
  const ids = HOSTILE.map((_, j) => 256 + j);
  const { embedding, classifier } = walk(ids);
  const tensors: [string, number[], Float32Array][] = [
    ['model.embed_tokens.weight', [VOCAB, DIM], embedding],
    ['lm_head.weight', [VOCAB, DIM], classifier],
    ['model.norm.weight', [DIM], ones(DIM)],
    ['model.layers.0.input_layernorm.weight', [DIM], ones(DIM)],
    ['model.layers.0.post_attention_layernorm.weight', [DIM], ones(DIM)],
    ...['q_proj', 'k_proj', 'v_proj', 'o_proj'].map((n): [string, number[], Float32Array] => [`model.layers.0.self_attn.${n}.weight`, [DIM, DIM], zeros(DIM * DIM)]),
    ...['gate_proj', 'up_proj', 'down_proj'].map((n): [string, number[], Float32Array] => [`model.layers.0.mlp.${n}.weight`, [DIM, DIM], zeros(DIM * DIM)]),
  ];
  const header: Record<string, unknown> = {};
  let at = 0;
  for (const [name, shape, data] of tensors) {
    header[name] = { dtype: 'F32', shape, data_offsets: [at, at + data.byteLength] };
    at += data.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const w = new ByteWriter();
  w.u64(json.length);
  w.bytes(json);
  for (const [, , data] of tensors) w.bytes(new Uint8Array(data.buffer));
  writeFileSync(join(dir, 'model.safetensors'), w.done(0).bytes);

  writeFileSync(join(dir, 'config.json'), JSON.stringify({
    architectures: ['LlamaForCausalLM'], hidden_size: DIM, intermediate_size: DIM, num_hidden_layers: 1,
    num_attention_heads: 2, num_key_value_heads: 2, vocab_size: VOCAB, max_position_embeddings: 256,
    rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: false, hidden_act: 'silu', eos_token_id: 299,
  }));
  const vocab: Record<string, number> = {};
  byteLevelChars().forEach((c, id) => (vocab[c] = id));
  HOSTILE.forEach((text, j) => (vocab[byteLevel(text)] = ids[j]));
  const byteLevelStep = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: true };
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify({
    version: '1.0', truncation: null, padding: null,
    added_tokens: [{ id: 299, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
    normalizer: null, pre_tokenizer: byteLevelStep, post_processor: null, decoder: byteLevelStep,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges: [] },
  }));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ add_bos_token: false, bos_token: null, eos_token: '<|endoftext|>' }));
  return { ids };
}

/** Whatever an injection would have left: dialogs, window.__pwned, elements model text must not create. */
async function untouched(page: Page, dialogs: string[]) {
  assert.deepEqual(dialogs, [], 'no dialog opened');
  assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: unknown }).__pwned), undefined, 'no injected script ran');
  const found = await page.evaluate(() => ({
    injected: [...document.querySelectorAll('img, iframe, a[href^="javascript"], [onerror], [onload], body style, body script:not([src])')]
      .map((e) => e.outerHTML.slice(0, 80)),
    // model text goes into token spans (and the prompt's span) as text only
    outputs: [...document.querySelectorAll('.output *, forkwise-generate *')].filter((e) => e.tagName !== 'SPAN' || e.children.length > 0)
      .map((e) => e.outerHTML.slice(0, 80)),
    scripts: document.querySelectorAll('script').length,
    before: (window as unknown as { scriptsAtStart: number }).scriptsAtStart,
  }));
  assert.deepEqual(found.injected, [], 'no element made from model text');
  assert.deepEqual(found.outputs, [], 'outputs hold text spans only');
  assert.equal(found.scripts, found.before, 'no script element added');
}

const idle = (page: Page) =>
  page.waitForFunction(() => (document.getElementById('stop') as HTMLButtonElement).disabled
    && !(document.getElementById('generate') as HTMLButtonElement).disabled, null, { timeout: 300_000 });

describe('hostile token text stays text (demo and <forkwise-generate>)', () => {
  let session: BrowserSession;
  let page: Page;
  let dir: string;
  const dialogs: string[] = [];
  const tokenizer = hostileTokenizerBin();
  const model = llama2cModel(tokenizer.ids);
  const small = tinyModels().smallModel; // EAD's partner of the bundled model: same vocabulary

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'forkwise-hostile-'));
    mkdirSync(join(dir, FOLDER_NAME));
    hostileHfFolder(join(dir, FOLDER_NAME));
    session = await startBrowserSession();
    page = await session.newPage('/test/browser/pages/hostile.html');
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    // The demo's bundled model, tokenizer and EAD partner are these (the worker's requests too).
    const files: Record<string, Uint8Array> = { 'stories15M.bin': model, 'tokenizer.bin': tokenizer.bytes, 'stories-student.bin': small };
    await page.context().route(/\/(models|hostile)\/[^/?]+\.bin$/, (route) => {
      const name = new URL(route.request().url()).pathname.split('/').pop()!;
      const body = files[name];
      return body ? route.fulfill({ status: 200, contentType: 'application/octet-stream', body: Buffer.from(body) }) : route.fulfill({ status: 404 });
    });
  });
  after(async () => {
    await session?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the texts decode as themselves (Node, no GPU)', () => {
    const t = buildTokenizer({ kind: 'llama2c', bytes: tokenizer.bytes }, { modelVocabSize: VOCAB });
    assert.equal(t.decode(Array.from({ length: MAX_TOKENS }, (_, i) => tokenizer.ids[i % HOSTILE.length])), COMPLETION);
  });

  test('demo: a llama2.c model with a hostile tokenizer.bin generates its tokens as text', async () => {
    await page.goto(`${session.baseUrl}/demo/`);
    await page.evaluate(() => ((window as unknown as { scriptsAtStart: number }).scriptsAtStart = document.querySelectorAll('script').length));
    await idle(page);
    assert.match(await page.textContent('#load-status') ?? '', /^stories15M ready: llama2c/);
    await page.selectOption('#decoder', 'greedy');
    await page.fill('#prompt', 'Hi <b>x</b>');
    await page.fill('#max-tokens', String(MAX_TOKENS));
    await page.click('#generate');
    await page.waitForFunction(() => document.querySelectorAll('#output .tok').length > 0, null, { timeout: 120_000 });
    await idle(page);
    assert.equal(await page.isHidden('#error'), true, await page.textContent('#error') ?? '');
    assert.equal(await page.$$eval('#output .tok', (s) => s.length), MAX_TOKENS);
    assert.equal(await page.$eval('#output', (e) => e.textContent), 'Hi <b>x</b>' + COMPLETION);
    // each token's span holds exactly its text, as a text node
    const spans = await page.$$eval('#output .tok', (s) => s.map((e) => ({ text: e.textContent, children: e.children.length })));
    spans.forEach((s, i) => assert.deepEqual(s, { text: HOSTILE[i % HOSTILE.length], children: 0 }, `token ${i}`));
    // the details of a token show its text and its candidates' as text
    await page.locator('#output .tok').nth(0).focus();
    const details = await page.textContent('#details') ?? '';
    assert.ok(details.includes(JSON.stringify(HOSTILE[0])) || details.includes(HOSTILE[0]), details);
    await untouched(page, dialogs);
  });

  test(`demo: a folder named ${JSON.stringify(FOLDER_NAME)} with a hostile tokenizer.json`, async () => {
    const loaded = page.waitForFunction((name) => (document.getElementById('load-status')?.textContent ?? '').startsWith(`${name} ready`)
      || !(document.getElementById('error') as HTMLElement).hidden, FOLDER_NAME, { timeout: 300_000 });
    await page.setInputFiles('#open-folder', join(dir, FOLDER_NAME));
    await loaded;
    assert.equal(await page.isHidden('#error'), true, await page.textContent('#error') ?? '');
    assert.match(await page.textContent('#load-status') ?? '', /ready: llama · hf · F32/);
    // the folder's name, as the label of the status and of the picker's option
    assert.ok((await page.textContent('#load-status'))!.startsWith(FOLDER_NAME));
    assert.equal(await page.$eval('#opened-models option:last-child', (o) => o.textContent), FOLDER_NAME);
    await idle(page);
    await page.fill('#prompt', 'Hi');
    await page.click('#generate');
    await page.waitForFunction(() => document.querySelectorAll('#output .tok').length > 0, null, { timeout: 120_000 });
    await idle(page);
    assert.equal(await page.$eval('#output', (e) => e.textContent), 'Hi' + COMPLETION);
    await untouched(page, dialogs);
  });

  test('<forkwise-generate>: the element shows the hostile tokens as text nodes', async () => {
    await page.goto(`${session.baseUrl}/test/browser/pages/hostile.html`);
    await waitForGlobal(page, 'embedReady');
    await page.evaluate(() => ((window as unknown as { scriptsAtStart: number }).scriptsAtStart = document.querySelectorAll('script').length));
    const r = await page.evaluate(async (maxTokens) => {
      const el = document.createElement('forkwise-generate');
      el.setAttribute('model', '/hostile/stories15M.bin');
      el.setAttribute('tokenizer', '/hostile/tokenizer.bin');
      el.setAttribute('prompt', '<img src=x onerror="window.__pwned=9">');
      el.setAttribute('max-tokens', String(maxTokens));
      const done = new Promise<CustomEvent>((resolve) => el.addEventListener('forkwise-done', (e) => resolve(e as CustomEvent)));
      document.body.append(el);
      const { detail } = await done;
      return {
        state: el.getAttribute('state'), text: el.textContent, resultText: detail.result?.text, error: String(detail.error ?? ''),
        children: el.children.length, textNodes: [...el.childNodes].every((n) => n.nodeType === Node.TEXT_NODE),
      };
    }, MAX_TOKENS);
    assert.equal(r.state, 'done', r.error);
    assert.equal(r.text, '<img src=x onerror="window.__pwned=9">' + COMPLETION);
    assert.equal(r.resultText, r.text);
    assert.equal(r.children, 0);
    assert.ok(r.textNodes);
    await untouched(page, dialogs);
    assert.deepEqual(session.errors.filter((e) => !/favicon/.test(e)), []);
  });
});
