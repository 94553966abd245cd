// The TextTokenizers of real models against independent oracles:
//  - test/fixtures/tokenizer-goldens.json, from the Rust `tokenizers` and jinja2 as transformers
//    applies chat templates: ids with and without special tokens, decode, chat renderings;
//  - GGUF vocabularies (llama.cpp's conversion of the same models) must encode exactly as the
//    model's tokenizer.json does, and stories15M's SentencePiece vocabulary as llama2.c's run.c
//    does (the token-exact llama2.c Tokenizer on tokenizer.bin);
//  - streaming decode must give the whole sequence's decode, for any split into prompt + generation.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { InvalidArgumentError, TokenizerFormatError } from '../../src/errors.ts';
import { mergesFromScores, tokenizerFromGguf } from '../../src/tokenizer/gguf-vocab.ts';
import { HfTokenizer } from '../../src/tokenizer/hf-tokenizer.ts';
import { Llama2cTextTokenizer } from '../../src/tokenizer/llama2c-text-tokenizer.ts';
import { buildTokenizer } from '../../src/tokenizer/load.ts';
import { Tokenizer } from '../../src/tokenizer/tokenizer.ts';
import type { ChatMessage, TextTokenizer } from '../../src/tokenizer/types.ts';
import { readGgufTokenizerMetadata } from '../support/gguf-metadata.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const fixtures = join(root, 'test', 'fixtures');

interface Golden {
  encodings: { text: string; ids: number[]; ids_with_special: number[]; decoded: string }[];
  chat: { messages: ChatMessage[]; add_generation_prompt: boolean; text: string; ids: number[] }[];
}
const goldens = JSON.parse(readFileSync(join(fixtures, 'tokenizer-goldens.json'), 'utf8')).tokenizers as Record<string, Golden>;

const parsed = new Map<string, unknown>();
/** A fixture's JSON, parsed once (the tokenizer does not modify it). */
function readJson(path: string): unknown {
  if (!parsed.has(path)) parsed.set(path, JSON.parse(readFileSync(join(fixtures, path), 'utf8')));
  return parsed.get(path);
}
const cache = new Map<string, TextTokenizer>();
function cached(key: string, make: () => TextTokenizer): TextTokenizer {
  let tokenizer = cache.get(key);
  if (!tokenizer) cache.set(key, (tokenizer = make()));
  return tokenizer;
}
const hf = (model: string): HfTokenizer =>
  cached(`hf:${model}`, () =>
    HfTokenizer.fromJson(readJson(`${model}/tokenizer.json`), readJson(`${model}/tokenizer_config.json`) as Record<string, unknown>),
  ) as HfTokenizer;
const metadataCache = new Map<string, Record<string, unknown>>();
/** A GGUF file's tokenizer.* keys, read once (tokenizerFromGguf does not modify them). */
function ggufMetadata(file: string): Record<string, unknown> {
  if (!metadataCache.has(file)) metadataCache.set(file, readGgufTokenizerMetadata(join(fixtures, file)));
  return metadataCache.get(file) as Record<string, unknown>;
}
const LLAMA3_GGUF = 'tiny-llama3-gguf/tiny-llama3-F16.gguf';
const STORIES_GGUF = 'stories15M-gguf/stories15M-Q8_0.gguf';
const gguf = (file: string): HfTokenizer => cached(`gguf:${file}`, () => tokenizerFromGguf(ggufMetadata(file))) as HfTokenizer;
const llama2c = (): Llama2cTextTokenizer =>
  cached('llama2c', () => Llama2cTextTokenizer.fromBytes(readFileSync(join(root, 'public', 'models', 'tokenizer.bin')), 32000)) as Llama2cTextTokenizer;

/** Every tokenizer under test, built lazily. */
const ALL: Record<string, () => TextTokenizer> = {
  'tiny-llama3': () => hf('tiny-llama3'),
  'tiny-qwen3': () => hf('tiny-qwen3'),
  'stories15M-hf-bf16': () => hf('stories15M-hf-bf16'),
  'tiny-llama3-gguf': () => gguf(LLAMA3_GGUF),
  'stories15M-gguf': () => gguf(STORIES_GGUF),
  llama2c,
};

/** A decode golden less the text of the special tokens among its ids (decode drops them; the goldens keep them). */
function withoutSpecials(tokenizer: HfTokenizer, ids: number[], decoded: string): string {
  let text = decoded;
  for (const id of ids) {
    const piece = tokenizer.pieceOf(id);
    if (!tokenizer.isVisible(id) && piece !== undefined) text = text.replace(piece, '');
  }
  return text;
}

for (const [model, golden] of Object.entries(goldens)) {
  describe(`${model} tokenizer.json against the goldens`, () => {
    test('encodes every golden string, with and without special tokens', () => {
      const tokenizer = hf(model);
      for (const e of golden.encodings) {
        assert.deepEqual(tokenizer.encode(e.text, { special: false }), e.ids, JSON.stringify(e.text));
        // The Rust library adds what the post-processor adds; a prompt also starts with BOS where
        // the config has one and does not turn it off (tiny-llama3's tokenizer.json adds none itself).
        const bos = tokenizer.addsBos && e.ids_with_special[0] !== tokenizer.bosId ? [tokenizer.bosId!] : [];
        assert.deepEqual(tokenizer.encode(e.text), [...bos, ...e.ids_with_special], JSON.stringify(e.text));
      }
    });

    test('decodes the golden ids back (special tokens decode to nothing)', () => {
      const tokenizer = hf(model);
      for (const e of golden.encodings) {
        const want = withoutSpecials(tokenizer, e.ids, e.decoded);
        assert.equal(tokenizer.decode(e.ids), want, JSON.stringify(e.text));
        assert.equal(tokenizer.decode(e.ids_with_special), want, JSON.stringify(e.text));
      }
    });

    test('renders every chat golden and encodes it', () => {
      const tokenizer = hf(model);
      if (golden.chat.length === 0) {
        assert.equal(tokenizer.chatTemplate, null);
        assert.throws(() => tokenizer.applyChatTemplate([{ role: 'user', content: 'hi' }]), InvalidArgumentError);
      }
      for (const c of golden.chat) {
        const text = tokenizer.applyChatTemplate(c.messages, { addGenerationPrompt: c.add_generation_prompt });
        assert.equal(text, c.text);
        assert.deepEqual(tokenizer.encode(text, { special: false }), c.ids);
      }
    });
  });
}

describe('special ids from tokenizer_config', () => {
  test('BOS, EOS and extra EOS ids', () => {
    assert.equal(hf('tiny-llama3').bosId, 128000);
    assert.deepEqual(hf('tiny-llama3').eosIds, [128001]);
    assert.equal(hf('tiny-qwen3').bosId, null);
    assert.deepEqual(hf('tiny-qwen3').eosIds, [151645]);
    assert.equal(hf('stories15M-hf-bf16').bosId, 1);
    assert.deepEqual(hf('stories15M-hf-bf16').eosIds, [2]);
    const json = readJson('tiny-llama3/tokenizer.json');
    const config = readJson('tiny-llama3/tokenizer_config.json') as Record<string, unknown>;
    const withExtra = HfTokenizer.fromJson(json, config, { eosIds: [128009, 128001] });
    assert.deepEqual(withExtra.eosIds, [128001, 128009]);
    assert.throws(() => HfTokenizer.fromJson(json, config, { eosIds: [-1] }), InvalidArgumentError);
  });

  test('a list of named templates: the default one', () => {
    const json = readJson('stories15M-hf-bf16/tokenizer.json');
    const config = {
      ...(readJson('stories15M-hf-bf16/tokenizer_config.json') as Record<string, unknown>),
      chat_template: [
        { name: 'tool_use', template: 'tools' },
        { name: 'default', template: '{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}{% endfor %}' },
      ],
    };
    const tokenizer = HfTokenizer.fromJson(json, config);
    assert.equal(tokenizer.applyChatTemplate([{ role: 'user', content: 'hi' }]), '<s>[user] hi');
  });

  test("a template's raise_exception is an InvalidArgumentError, strftime_now works", () => {
    const json = readJson('stories15M-hf-bf16/tokenizer.json');
    const config = {
      ...(readJson('stories15M-hf-bf16/tokenizer_config.json') as Record<string, unknown>),
      chat_template:
        "{% if messages[0].role != 'user' %}{{ raise_exception('first must be user') }}{% endif %}" +
        "{{ strftime_now('%Y') }}|{% for x in range(2) %}{{ x }}{% endfor %}|{{ eos_token }}{% if add_generation_prompt %}>{% endif %}",
    };
    const tokenizer = HfTokenizer.fromJson(json, config);
    assert.throws(() => tokenizer.applyChatTemplate([{ role: 'assistant', content: 'x' }]), (e: unknown) => {
      return e instanceof InvalidArgumentError && e.message.includes('first must be user');
    });
    const year = String(new Date().getFullYear());
    assert.equal(tokenizer.applyChatTemplate([{ role: 'user', content: 'x' }]), `${year}|01|</s>>`);
    assert.equal(tokenizer.applyChatTemplate([{ role: 'user', content: 'x' }], { addGenerationPrompt: false }), `${year}|01|</s>`);
    assert.throws(() => tokenizer.applyChatTemplate([{ role: 'user' } as ChatMessage]), InvalidArgumentError);
  });

  test('a template the engine cannot parse is a TokenizerFormatError', () => {
    const json = readJson('stories15M-hf-bf16/tokenizer.json');
    const tokenizer = HfTokenizer.fromJson(json, { chat_template: '{% for %}' });
    assert.throws(() => tokenizer.applyChatTemplate([{ role: 'user', content: 'x' }]), TokenizerFormatError);
  });
});

describe('GGUF vocabularies', () => {
  test('tiny-llama3 gpt2/llama-bpe vocabulary encodes every golden as its tokenizer.json', () => {
    const tokenizer = gguf(LLAMA3_GGUF);
    const reference = hf('tiny-llama3');
    assert.equal(tokenizer.vocabSize, 128256);
    assert.equal(tokenizer.bosId, 128000);
    // llama.cpp's end-of-generation set: eos_token_id (<|eot_id|>) and <|end_of_text|> by its text.
    assert.deepEqual(tokenizer.eosIds, [128001, 128009]);
    for (const e of goldens['tiny-llama3'].encodings) {
      assert.deepEqual(tokenizer.encode(e.text, { special: false }), e.ids, JSON.stringify(e.text));
      // add_bos_token is true in the GGUF (llama.cpp adds BOS); this tokenizer.json adds none.
      assert.deepEqual(tokenizer.encode(e.text), [128000, ...e.ids], JSON.stringify(e.text));
      assert.equal(tokenizer.decode(e.ids), reference.decode(e.ids));
    }
    for (const c of goldens['tiny-llama3'].chat) {
      const text = tokenizer.applyChatTemplate(c.messages, { addGenerationPrompt: c.add_generation_prompt });
      assert.equal(text, c.text);
      assert.deepEqual(tokenizer.encode(text, { special: false }), c.ids);
    }
  });

  test("stories15M SentencePiece vocabulary: the merges of stories15M's tokenizer.json", () => {
    const metadata = ggufMetadata(STORIES_GGUF);
    const merges = mergesFromScores(metadata['tokenizer.ggml.tokens'] as string[], metadata['tokenizer.ggml.scores'] as number[]);
    const reference = (readJson('stories15M-hf-bf16/tokenizer.json') as { model: { merges: [string, string][] } }).model.merges;
    assert.equal(merges.length, reference.length);
    assert.deepEqual(merges, reference);
  });

  const storiesExtras = [
    'Once upon a time, there was a little girl named Lily. She loved to play outside.',
    'a',
    ' ',
    '  two leading spaces',
    'tabs\tand\nnewlines\n\n',
    'ünïcödé ☃ 𝄞 music',
    'Hello,world!!  ...?',
    '"Quoted" (parens) [brackets] {braces}',
  ];

  test('stories15M SentencePiece vocabulary encodes as its tokenizer.json and as llama2.c', () => {
    const tokenizer = gguf(STORIES_GGUF);
    const reference = hf('stories15M-hf-bf16');
    const run = llama2c();
    assert.equal(tokenizer.vocabSize, 32000);
    assert.equal(tokenizer.bosId, 1);
    assert.deepEqual(tokenizer.eosIds, [2]);
    assert.equal(tokenizer.chatTemplate, null);
    for (const e of goldens['stories15M-hf-bf16'].encodings) {
      assert.deepEqual(tokenizer.encode(e.text, { special: false }), e.ids, JSON.stringify(e.text));
      assert.deepEqual(tokenizer.encode(e.text), e.ids_with_special, JSON.stringify(e.text));
      assert.deepEqual(tokenizer.encode(e.text), run.encode(e.text), `llama2.c: ${JSON.stringify(e.text)}`);
      assert.equal(tokenizer.decode(e.ids), e.decoded);
    }
    for (const text of storiesExtras) {
      assert.deepEqual(tokenizer.encode(text), reference.encode(text), JSON.stringify(text));
      assert.deepEqual(tokenizer.encode(text), run.encode(text), `llama2.c: ${JSON.stringify(text)}`);
      assert.equal(tokenizer.decode(tokenizer.encode(text)), text);
    }
  });

  test('add_space_prefix false: no dummy prefix, no stripped space', () => {
    const tokenizer = tokenizerFromGguf({ ...ggufMetadata(STORIES_GGUF), 'tokenizer.ggml.add_space_prefix': false });
    const ids = tokenizer.encode('Hello world', { special: false });
    assert.notEqual(ids[0], tokenizer.tokenIdOf('▁Hello'));
    assert.equal(tokenizer.decode(ids), 'Hello world');
    const spaced = tokenizer.encode(' Hello', { special: false });
    assert.equal(spaced[0], tokenizer.tokenIdOf('▁Hello'));
    assert.equal(tokenizer.decode(spaced), ' Hello');
  });

  test('an unknown pre-tokenizer or tokenizer model is a TokenizerFormatError naming it', () => {
    const metadata = ggufMetadata(LLAMA3_GGUF);
    assert.throws(() => tokenizerFromGguf({ ...metadata, 'tokenizer.ggml.pre': 'falcon' }), (e: unknown) => {
      return e instanceof TokenizerFormatError && e.message.includes('"falcon"');
    });
    assert.throws(() => tokenizerFromGguf({ ...metadata, 'tokenizer.ggml.model': 't5' }), (e: unknown) => {
      return e instanceof TokenizerFormatError && e.message.includes('"t5"');
    });
    assert.throws(() => tokenizerFromGguf({ ...metadata, 'tokenizer.ggml.merges': undefined }), TokenizerFormatError);
    assert.throws(() => tokenizerFromGguf({ ...metadata, 'tokenizer.ggml.tokens': 7 }), TokenizerFormatError);
    assert.throws(() => tokenizerFromGguf({ ...ggufMetadata(STORIES_GGUF), 'tokenizer.ggml.scores': [1, 2] }), TokenizerFormatError);
  });

  test('qwen2 pre-tokenizer: single digits, no BOS by default', () => {
    // The Llama 3 vocabulary with Qwen's pre-tokenizer: digits split one by one (llama-bpe: up to three).
    const tokenizer = tokenizerFromGguf({ ...ggufMetadata(LLAMA3_GGUF), 'tokenizer.ggml.pre': 'qwen2', 'tokenizer.ggml.add_bos_token': undefined });
    const digits = tokenizer.encode('1234', { special: true });
    assert.deepEqual(digits, ['1', '2', '3', '4'].map((d) => tokenizer.tokenIdOf(d)));
    assert.deepEqual(gguf(LLAMA3_GGUF).encode('1234', { special: false }), hf('tiny-llama3').encode('1234', { special: false }));
  });
});

describe('streaming decode', () => {
  const MIXED =
    'Once upon a time, a café in Zürich served naïve crème brûlée 🙂🚀👩‍💻 to 你好，世界！这是一个测试。 ' +
    'こんにちは、世界 and Привет, мир — ÿþ\u200b zero-width, 𝄞 clef, \ttab\n\nnew   lines 1234567 3.14159!';

  for (const [name, make] of Object.entries(ALL)) {
    test(`${name}: token by token equals the whole decode, for every prompt/generation split`, () => {
      const tokenizer = make();
      const ids = tokenizer.encode(MIXED);
      const whole = tokenizer.decode(ids);
      assert.equal(whole, MIXED);
      // from the start
      const stream = tokenizer.stream([]);
      let text = '';
      for (const id of ids) text += stream.push(id);
      text += stream.flush();
      assert.equal(text, whole);
      // after a prompt: the text after the prompt's decode
      for (let k = 1; k < ids.length; k++) {
        const prompt = tokenizer.decode(ids.slice(0, k));
        if (prompt.endsWith('\uFFFD') || !whole.startsWith(prompt)) continue; // the prompt ends mid-character
        const s = tokenizer.stream(ids.slice(0, k));
        let rest = '';
        for (const id of ids.slice(k)) rest += s.push(id);
        rest += s.flush();
        assert.equal(rest, whole.slice(prompt.length), `split at ${k}`);
      }
    });
  }

  test('a leading space after the prompt (SentencePiece ▁), none at the start', () => {
    for (const tokenizer of [hf('stories15M-hf-bf16'), gguf(STORIES_GGUF)]) {
      const prompt = tokenizer.encode('Once upon a time');
      const there = tokenizer.tokenIdOf('▁there') as number;
      assert.equal(tokenizer.stream(prompt).push(there), ' there');
      assert.equal(tokenizer.stream([1]).push(there), 'there');
      assert.equal(tokenizer.stream([]).push(there), 'there');
    }
    assert.equal(llama2c().stream(llama2c().encode('Once upon a time')).push(llama2c().tokenIdOf(' there') as number), ' there');
    assert.equal(llama2c().stream([1]).push(llama2c().tokenIdOf(' there') as number), 'there');
  });

  test('an emoji split over byte tokens comes out whole, once complete', () => {
    const tokenizer = hf('stories15M-hf-bf16');
    const ids = tokenizer.encode('🙂', { special: false }); // ▁ then four byte-fallback tokens
    const stream = tokenizer.stream([1]);
    const out = ids.map((id) => stream.push(id));
    assert.deepEqual(out.slice(1), ['', '', '', '🙂']);
    const llama = hf('tiny-llama3');
    const rocket = llama.encode('🚀', { special: false }); // byte-level pieces of its bytes
    assert.ok(rocket.length > 1);
    const s = llama.stream([]);
    assert.deepEqual(rocket.map((id) => s.push(id)).join('|'), `${'|'.repeat(rocket.length - 1)}🚀`);
  });

  test('special tokens and padded ids decode to nothing; an unfinished character flushes as U+FFFD', () => {
    const qwen = hf('tiny-qwen3');
    const stream = qwen.stream([]);
    assert.equal(stream.push(151645), ''); // <|im_end|>
    assert.equal(stream.push(151900), ''); // past the tokenizer, inside Qwen's padded embedding
    assert.equal(qwen.decode([9707, 151645, 151900]), 'Hello');
    const llama = hf('tiny-llama3');
    const bytes = llama.encode('🙂', { special: false }); // byte-level pieces of the emoji's bytes
    const s = llama.stream([]);
    assert.equal(s.push(bytes[0]), '');
    assert.equal(s.flush(), '\uFFFD');
    assert.throws(() => qwen.stream([]).push(-1), InvalidArgumentError);
    assert.throws(() => qwen.decode([1.5]), InvalidArgumentError);
  });

  test('a long generation decodes a small window per token', () => {
    const tokenizer = hf('tiny-llama3');
    const calls: number[] = [];
    const original = tokenizer.decodeVisible.bind(tokenizer);
    const spy = Object.create(tokenizer) as HfTokenizer;
    spy.decodeVisible = (ids: readonly number[]): string => {
      calls.push(ids.length);
      return original(ids);
    };
    const ids = tokenizer.encode(MIXED.repeat(20), { special: false });
    const stream = tokenizer.stream.call(spy, []);
    let text = '';
    for (const id of ids) text += stream.push(id);
    text += stream.flush();
    assert.equal(text, MIXED.repeat(20));
    assert.ok(ids.length > 1000);
    assert.ok(Math.max(...calls) <= 16, `largest window ${Math.max(...calls)}`);
  });
});

describe('tokenIdOf and firstTokenMidText', () => {
  const byteLevel = { '.': '.', ',': ',', '\n': 'Ċ', ' the': 'Ġthe', '!': '!' };
  const sentencePiece = { '.': '.', ',': ',', '\n': '<0x0A>', ' the': '▁the', '!': '!' };
  const cases: [string, () => TextTokenizer, Record<string, string>][] = [
    ['tiny-llama3', () => hf('tiny-llama3'), byteLevel],
    ['tiny-qwen3', () => hf('tiny-qwen3'), byteLevel],
    ['tiny-llama3-gguf', () => gguf(LLAMA3_GGUF), byteLevel],
    ['stories15M-hf-bf16', () => hf('stories15M-hf-bf16'), sentencePiece],
    ['stories15M-gguf', () => gguf(STORIES_GGUF), sentencePiece],
    ['llama2c', llama2c, { '.': '.', ',': ',', '\n': '\n', ' the': ' the', '!': '!' }],
  ];
  for (const [name, make, pieces] of cases) {
    test(`${name}: the piece each text is mid-text`, () => {
      const tokenizer = make();
      for (const [text, piece] of Object.entries(pieces)) {
        const id = tokenizer.tokenIdOf(piece);
        assert.notEqual(id, undefined, `${name} has ${JSON.stringify(piece)}`);
        assert.equal(tokenizer.firstTokenMidText(text), id, JSON.stringify(text));
      }
      assert.equal(tokenizer.firstTokenMidText(''), undefined);
      assert.equal(tokenizer.tokenIdOf('no such piece in any vocabulary ✗✗✗'), undefined);
    });
  }

  test('known ids', () => {
    assert.equal(hf('tiny-llama3').firstTokenMidText('.'), 13);
    assert.equal(hf('tiny-llama3').firstTokenMidText('\n'), 198);
    assert.equal(hf('tiny-qwen3').firstTokenMidText('.'), 13);
    assert.equal(hf('stories15M-hf-bf16').firstTokenMidText('.'), 29889);
    assert.equal(hf('stories15M-hf-bf16').firstTokenMidText('\n'), 13);
    assert.equal(llama2c().firstTokenMidText('.'), 29889);
    // a text that is no single piece: its first token
    assert.equal(hf('stories15M-hf-bf16').firstTokenMidText(' the end'), hf('stories15M-hf-bf16').tokenIdOf('▁the'));
    assert.equal(llama2c().firstTokenMidText(' the end'), llama2c().tokenIdOf(' the'));
  });
});

describe('buildTokenizer', () => {
  const qwenSource = () => ({
    kind: 'hf' as const,
    tokenizer: readJson('tiny-qwen3/tokenizer.json'),
    config: readJson('tiny-qwen3/tokenizer_config.json') as Record<string, unknown>,
  });

  test('each kind; a model vocabulary larger than the tokenizer is fine (Qwen pads it)', () => {
    const qwen = buildTokenizer(qwenSource(), { modelVocabSize: 151936, eosIds: [151643, 151645] });
    assert.ok(qwen instanceof HfTokenizer);
    assert.deepEqual(qwen.eosIds, [151645, 151643]);
    const stories = buildTokenizer({ kind: 'gguf', metadata: ggufMetadata(STORIES_GGUF) }, { modelVocabSize: 32000 });
    assert.deepEqual(stories.encode('Hello world'), [1, 15043, 3186]);
    const bytes = new Uint8Array(readFileSync(join(root, 'public', 'models', 'tokenizer.bin')));
    const run = buildTokenizer({ kind: 'llama2c', bytes }, { modelVocabSize: 32000 });
    assert.ok(run instanceof Llama2cTextTokenizer);
    assert.deepEqual(run.encode('Hello world'), [1, 15043, 3186]);
    assert.deepEqual(run.eosIds, []);
    assert.equal(run.chatTemplate, null);
    assert.throws(() => run.applyChatTemplate([{ role: 'user', content: 'hi' }]), /this model has no chat template/);
  });

  test('a tokenizer with ids past the model vocabulary is a TokenizerFormatError', () => {
    assert.throws(() => buildTokenizer(qwenSource(), { modelVocabSize: 151643 }), (e: unknown) => {
      return e instanceof TokenizerFormatError && e.message.includes('the vocabulary is smaller than the token ids');
    });
    assert.throws(() => buildTokenizer({ kind: 'gguf', metadata: ggufMetadata(STORIES_GGUF) }, { modelVocabSize: 1000 }), TokenizerFormatError);
    assert.throws(() => buildTokenizer(qwenSource(), { modelVocabSize: 151936, eosIds: [200000] }), TokenizerFormatError);
    assert.throws(() => buildTokenizer(qwenSource(), { modelVocabSize: 0 }), InvalidArgumentError);
  });

  test('a tokenizer.json @huggingface/tokenizers cannot read is a TokenizerFormatError', () => {
    const broken: unknown[] = [
      {},
      { model: { type: 'NoSuchModel' }, decoder: null, post_processor: null, pre_tokenizer: null, normalizer: null, added_tokens: [] },
      { ...(readJson('stories15M-hf-bf16/tokenizer.json') as object), decoder: { type: 'NoSuchDecoder' } },
      { ...(readJson('stories15M-hf-bf16/tokenizer.json') as object), added_tokens: 5 },
      'not an object',
      null,
    ];
    for (const tokenizer of broken) {
      assert.throws(() => buildTokenizer({ kind: 'hf', tokenizer, config: {} }, { modelVocabSize: 32000 }), TokenizerFormatError);
    }
    assert.throws(() => buildTokenizer({ kind: 'nope' } as never, { modelVocabSize: 32000 }), InvalidArgumentError);
  });
});

describe('llama2.c adapter', () => {
  test('encode with and without BOS, decode, stream as TokenStreamDecoder', () => {
    const run = llama2c();
    const tokenizer = Tokenizer.fromBytes(readFileSync(join(root, 'public', 'models', 'tokenizer.bin')), 32000);
    const text = 'Once upon a time, café 🙂.';
    assert.deepEqual(run.encode(text), tokenizer.encode(text));
    assert.deepEqual(run.encode(text, { special: false }), tokenizer.encode(text, { bos: false }));
    assert.equal(run.decode(run.encode(text)), text);
    assert.equal(run.bosId, 1);
    assert.equal(run.vocabSize, 32000);
  });
});
