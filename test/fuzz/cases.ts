// Fuzz cases: a format, a seed and an index give one hostile input (the same one every run) and
// the loader pipeline it goes through — openModel on a reader, buildTokenizer, the tokenizer's
// methods on a few texts, every tensor dequantised — which must end in success or a ForkwiseError.
import { ForkwiseError } from '../../src/errors.ts';
import type { ModelConfig } from '../../src/model/config.ts';
import { readTensorF32 } from '../../src/model/dequant.ts';
import { type HfFolder, readJson } from '../../src/model/formats/hf.ts';
import { openModel } from '../../src/model/load.ts';
import { bytesReader } from '../../src/model/readers.ts';
import type { ByteReader, TokenizerSource } from '../../src/model/tensors.ts';
import { TokenizerFormatError } from '../../src/errors.ts';
import { buildTokenizer } from '../../src/tokenizer/load.ts';
import type { TextTokenizer } from '../../src/tokenizer/types.ts';
import { mulberry32 } from '../support/random.ts';
import {
  type Built, GGML, GT, type GgufScalar, type GgufSpec, type GgufValue, type HfShape, LLAMA2C_SHAPE, type Rng, TOKENIZER_JSON_VOCAB, byteLevel,
  ggufModelSpec, hfConfig, hfTensors, int, llama2cCheckpoint, pick, safetensorsHeader, tokenizerBin, tokenizerJson,
  writeGguf, writeSafetensors,
} from './build.ts';
import { deepJson, jsonBytes, jsonText, mutateBinary, mutateJson } from './mutate.ts';

export const FORMATS = ['llama2c', 'tokenizer.bin', 'gguf', 'hf', 'tokenizer.json'] as const;
export type FuzzFormat = (typeof FORMATS)[number];

/** Codes a hostile file may end in (anything else, e.g. invalid-argument, names the wrong culprit). */
export const FILE_CODES: readonly string[] = ['model-format', 'tokenizer-format', 'model-fetch'];

export interface FuzzCase {
  format: FuzzFormat;
  index: number;
  what: string;
  run(): Promise<void>;
}

/** Tensors larger than this are not dequantised (a virtual file's tensor would be gigabytes). */
const MAX_READ_BYTES = 16 << 20;

const TEXTS = [
  'Once upon a time',
  'Hello <b>world</b> é 😀 \u202e\u0000 tab\tnewline\n',
  '<|im_start|>user\nhi<|im_end|>',
  '__proto__ constructor toString',
  '\ud800 lone surrogate',
  '',
];

/** Everything a generation does with a tokenizer, on hostile and ordinary texts. */
export function exerciseTokenizer(t: TextTokenizer, modelVocab: number): void {
  const limit = Math.min(t.vocabSize, modelVocab, 512);
  for (const text of TEXTS) {
    for (const special of [true, false]) {
      const ids = t.encode(text, { special });
      for (const id of ids) if (!(Number.isInteger(id) && id >= 0 && id < modelVocab)) throw new Error(`encode gave id ${id}`);
      t.decode(ids);
      const stream = t.stream(ids.slice(0, 2));
      for (const id of ids.slice(2)) stream.push(id);
      stream.flush();
    }
    t.tokenIdOf(text);
    t.firstTokenMidText(text);
  }
  const all = Array.from({ length: limit }, (_, i) => i);
  t.decode(all);
  const stream = t.stream([]);
  for (const id of all) stream.push(id);
  stream.flush();
  if (t.chatTemplate !== null) {
    try {
      t.applyChatTemplate([{ role: 'user', content: TEXTS[1] }, { role: 'assistant', content: 'ok' }]);
    } catch (e) {
      // a template may refuse messages (raise_exception): that is its right; its other failures are the file's
      if (!(e instanceof ForkwiseError) || e.code !== 'invalid-argument') throw e;
    }
  }
}

/** openModel, the tokenizer (from the model, or `tokenizer` for llama2.c) and every tensor's values. */
async function loadPipeline(model: Parameters<typeof openModel>[0], tokenizer?: TokenizerSource): Promise<void> {
  const { files } = await openModel(model);
  const source = files.tokenizer ?? tokenizer;
  if (source) {
    const t = buildTokenizer(source, { modelVocabSize: files.config.vocabSize, eosIds: files.config.eosIds });
    exerciseTokenizer(t, files.config.vocabSize);
  }
  checkConfig(files.config);
  for (const info of files.tensors.values()) {
    if (info.byteLength > MAX_READ_BYTES) continue;
    const values = await readTensorF32(info);
    const count = info.shape.reduce((a, b) => a * b, 1);
    if (values.length !== count) throw new Error(`tensor ${info.name}: ${values.length} values, shape says ${count}`);
  }
}

function checkConfig(c: ModelConfig): void {
  for (const k of ['dim', 'hiddenDim', 'nLayers', 'nHeads', 'nKvHeads', 'headDim', 'vocabSize', 'trainedContext'] as const) {
    if (!Number.isSafeInteger(c[k]) || c[k] <= 0) throw new Error(`config.${k} = ${c[k]} passed validation`);
  }
}

/**
 * A file of `size` bytes (up to 2^53) whose first bytes are `head` and the rest zeros: headers
 * that claim gigabytes, read through the same ByteReader contract as a URL or a Blob.
 */
export function virtualReader(name: string, head: Uint8Array, size: number): ByteReader {
  const inner = bytesReader(name, head);
  return {
    name,
    size,
    async read(offset, length, signal) {
      if (offset + length <= head.length) return inner.read(offset, length, signal);
      if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
        return inner.read(offset, length, signal); // the ordinary reader's error
      }
      if (length > 256 << 20) throw new Error(`the fuzz reader was asked for ${length} bytes at once`);
      const out = new Uint8Array(length);
      if (offset < head.length) out.set(head.subarray(offset));
      return out;
    },
  };
}

const HUGE_SIZES = [2 ** 32 + 7, 2 ** 40, 2 ** 50, Number.MAX_SAFE_INTEGER];

/** A reader of the mutated bytes: usually exact, sometimes a file that claims to be huge. */
function readerOf(rng: Rng, name: string, bytes: Uint8Array): { reader: ByteReader; what: string } {
  if (rng() < 0.12) {
    const size = pick(rng, HUGE_SIZES);
    return { reader: virtualReader(name, bytes, size), what: `, as a ${size}-byte file` };
  }
  return { reader: bytesReader(name, bytes), what: '' };
}

// ---------------------------------------------------------------------------------------------

function llama2cCase(rng: Rng): { what: string; run: () => Promise<void> } {
  const r = rng();
  const shape = { ...LLAMA2C_SHAPE, tied: rng() < 0.7 };
  let built: Built;
  let what = '';
  if (r < 0.2) {
    // a header of extreme values, and a file of exactly the size it implies where that is possible
    const h = [shape.dim, shape.hidden, shape.layers, shape.heads, shape.kvHeads, shape.tied ? shape.vocab : -shape.vocab, shape.seqLen];
    const i = int(rng, 7);
    h[i] = pick(rng, [0, -1, 1, 3, -(2 ** 31), 2 ** 31 - 1, 1 << 20, (1 << 20) + 1, 7, 4096]);
    const head = new Uint8Array(new Int32Array(h).buffer);
    const [dim, hidden, layers, heads, kvHeads, vocab, seqLen] = h;
    const kv = heads > 0 ? (dim / heads) * kvHeads : 0;
    const perLayer = dim + dim * dim + 2 * kv * dim + dim * dim + dim + 3 * hidden * dim;
    const floats = Math.abs(vocab) * dim * (vocab > 0 ? 1 : 2) + layers * perLayer + dim + (heads > 0 ? (seqLen * dim) / heads : 0);
    const size = 28 + 4 * floats;
    what = `header field ${i} = ${h[i]}`;
    const reader = Number.isSafeInteger(size) && size > 28 ? virtualReader('model.bin', head, size) : bytesReader('model.bin', head);
    return { what, run: () => loadPipeline(reader, { kind: 'llama2c', bytes: tokenizerBin(rng).bytes }) };
  }
  built = llama2cCheckpoint(rng, shape);
  const m = mutateBinary(rng, built);
  const { reader, what: how } = readerOf(rng, 'model.bin', m.bytes);
  what = m.what + how;
  const tokenizer = tokenizerBin(rng).bytes;
  return { what, run: () => loadPipeline(reader, { kind: 'llama2c', bytes: tokenizer }) };
}

function tokenizerBinCase(rng: Rng): { what: string; run: () => Promise<void> } {
  const built = tokenizerBin(rng);
  const vocab = rng() < 0.6 ? 300 : pick(rng, [299, 301, 259, 258, 100, 1, 32000]);
  const m = rng() < 0.1 ? { bytes: built.bytes, what: 'unchanged' } : mutateBinary(rng, built);
  return {
    what: `${m.what}, model vocabulary ${vocab}`,
    run: async () => {
      const t = buildTokenizer({ kind: 'llama2c', bytes: m.bytes }, { modelVocabSize: vocab });
      exerciseTokenizer(t, vocab);
    },
  };
}

// GGUF: structure-aware edits of the spec, or byte-level edits of the written file.

const BAD_NAMES: (string | Uint8Array)[] = [
  new Uint8Array([0xff, 0xfe, 0x41]), new Uint8Array([0xc0, 0x80]), new Uint8Array([0xed, 0xa0, 0x80]), new Uint8Array(0),
  '__proto__', 'constructor', 'blk.0.attn_q.weight', 'token_embd.weight', 'x'.repeat(70_000), '\u202e<script>',
];

function mutateGgufSpec(rng: Rng, spec: GgufSpec): string {
  const kvIndex = () => int(rng, spec.kvs.length);
  const tensorIndex = () => int(rng, spec.tensors.length);
  const arrays = () => spec.kvs.filter(([, v]) => v.type === GT.ARRAY);
  const key = (k: string) => spec.kvs.find(([name]) => typeof name === 'string' && name.endsWith(k));
  switch (int(rng, 16)) {
    case 0: {
      const a = pick(rng, arrays());
      const count = pick(rng, [2n ** 31n, 2n ** 32n, 2n ** 40n, 2n ** 63n, 2n ** 64n - 1n, BigInt(1 << 24)]);
      (a[1] as { count?: bigint }).count = count;
      return `array ${String(a[0])} declares ${count} entries`;
    }
    case 1: {
      const t = spec.tensors[tensorIndex()];
      t.ne = pick(rng, [[2n ** 40n], [2n ** 20n, 2n ** 20n], [2n ** 63n], [0n], [1n, 1n, 1n, 1n, 1n], [2n ** 32n, 2n ** 32n], [32n, 2n ** 50n]]);
      return `tensor ${String(t.name)} has ne [${t.ne}]`;
    }
    case 2: {
      const i = tensorIndex();
      const t = spec.tensors[i];
      t.offset = pick(rng, [2n ** 64n - 32n, 2n ** 63n, 2n ** 53n, 1n, 0n, 2n ** 40n, BigInt(spec.tensors[Math.max(0, i - 1)].data.length)]);
      return `tensor ${String(t.name)} at offset ${t.offset}`;
    }
    case 3: {
      // two tensors overlapping
      const i = 1 + int(rng, spec.tensors.length - 1);
      spec.tensors[i].offset = 0;
      return `tensor ${String(spec.tensors[i].name)} overlaps the first`;
    }
    case 4: {
      const name = pick(rng, BAD_NAMES);
      if (rng() < 0.5) spec.kvs[kvIndex()][0] = name;
      else spec.tensors[tensorIndex()].name = name;
      return `a name set to ${typeof name === 'string' ? JSON.stringify(name.slice(0, 20)) : `bytes ${[...name]}`}`;
    }
    case 5: {
      const i = kvIndex();
      const types: GgufValue[] = [
        { type: GT.STRING, value: 'x' }, { type: GT.F32, value: NaN }, { type: GT.F32, value: -Infinity },
        { type: GT.U64, value: 2n ** 63n }, { type: GT.I64, value: -(2n ** 63n) }, { type: GT.I32, value: -1 },
        { type: GT.BOOL, value: true }, { type: GT.F64, value: 1e308 }, { type: GT.U32, value: 0 },
        { type: GT.U32, value: 0xffffffff }, { type: GT.ARRAY, elem: GT.U8, items: [] },
        { type: 13 as GT.U32, value: 0 }, { type: GT.ARRAY, elem: 13 as GT, items: [] },
      ];
      const v = pick(rng, types);
      spec.kvs[i][1] = v;
      return `${String(spec.kvs[i][0])} set to type ${v.type}`;
    }
    case 6:
      spec.alignment = pick(rng, [1, 3, 64, 1 << 20]);
      spec.kvs = spec.kvs.map(([k, v]) => (k === 'general.alignment'
        ? [k, pick(rng, [{ type: GT.U32, value: spec.alignment }, { type: GT.U32, value: 0 }, { type: GT.U32, value: 3 },
          { type: GT.U64, value: 2n ** 63n }, { type: GT.U32, value: 2 ** 31 }])]
        : [k, v]));
      return `alignment ${spec.alignment}`;
    case 7: {
      let v: GgufValue = { type: GT.ARRAY, elem: GT.U8, items: [1, 2] };
      const depth = 1 + int(rng, 7);
      for (let d = 0; d < depth; d++) v = { type: GT.ARRAY, elem: GT.ARRAY, items: [v, v] };
      spec.kvs.splice(kvIndex(), 0, ['fuzz.nested', v]);
      return `arrays nested ${depth + 1} deep`;
    }
    case 8: {
      const which = pick(rng, ['tensorCount', 'kvCount'] as const);
      const base = which === 'tensorCount' ? spec.tensors.length : spec.kvs.length;
      spec[which] = pick(rng, [base + 1, base - 1, 0, 2 ** 31, 2n ** 63n, 2n ** 64n - 1n]);
      return `${which} ${spec[which]}`;
    }
    case 9:
      spec.version = pick(rng, [0, 1, 2, 4, 0xffffffff]);
      return `version ${spec.version}`;
    case 10: {
      if (rng() < 0.5) {
        const [k] = spec.kvs.splice(kvIndex(), 1)[0];
        return `${String(k)} removed`;
      }
      const [t] = spec.tensors.splice(tensorIndex(), 1);
      return `tensor ${String(t.name)} removed`;
    }
    case 11: {
      const dup = rng() < 0.5;
      if (dup) spec.kvs.push(spec.kvs[kvIndex()]);
      else spec.tensors.push(spec.tensors[tensorIndex()]);
      return dup ? 'a key twice' : 'a tensor twice';
    }
    case 12: {
      // the vocabulary
      const tokens = key('tokenizer.ggml.tokens')!;
      const items = (tokens[1] as { items: GgufScalar[] }).items;
      const edits: [string, () => void][] = [
        ['a 1 MiB token', () => (items[items.length - 1 - int(rng, 20)] = 'a'.repeat(1 << 20))],
        ['a 64 KiB token', () => (items[items.length - 1 - int(rng, 20)] = '\u2581'.repeat(1 << 16))],
        ['a number among the tokens', () => (tokens[1] = { type: GT.ARRAY, elem: GT.U32, items: items.map((_, i) => i) })],
        ['no tokens', () => (tokens[1] = { type: GT.ARRAY, elem: GT.STRING, items: [] })],
        ['duplicate tokens', () => items.fill(items[5], 260)],
        ['a __proto__ token everywhere', () => items.fill('__proto__', 259)],
        ['more tokens than embedding rows', () => items.push(...Array.from({ length: 50 }, (_, i) => `extra${i}`))],
        ['invalid UTF-8 tokens', () => (tokens[1] = { type: GT.ARRAY, elem: GT.STRING, items: items.map((s, i) => (i % 7 === 0 ? new Uint8Array([0xff, i & 0xff]) : s)) })],
        ['bidi and NUL tokens', () => items.forEach((_, i) => i > 260 && (items[i] = `\u202e\u0000<img src=x onerror=alert(${i})>`))],
      ];
      const [what, edit] = pick(rng, edits);
      edit();
      return what;
    }
    case 13: {
      const fields = ['tokenizer.ggml.scores', 'tokenizer.ggml.token_type', 'tokenizer.ggml.merges', 'tokenizer.ggml.bos_token_id',
        'tokenizer.ggml.eos_token_id', 'tokenizer.ggml.model', 'tokenizer.ggml.pre', 'tokenizer.chat_template', 'tokenizer.ggml.add_bos_token'];
      const k = pick(rng, fields);
      const values: GgufValue[] = [
        { type: GT.U32, value: 99999 }, { type: GT.STRING, value: 'unknown' }, { type: GT.ARRAY, elem: GT.F32, items: [1, 2] },
        { type: GT.ARRAY, elem: GT.STRING, items: ['a', 'ab', ' b', ''] }, { type: GT.BOOL, value: true },
        { type: GT.STRING, value: '{% for %}' }, { type: GT.STRING, value: '{{ raise_exception("no") }}' },
        { type: GT.STRING, value: '{% for i in range(1000000000) %}x{% endfor %}' }, { type: GT.I32, value: -5 },
      ];
      const v = pick(rng, values);
      const at = spec.kvs.findIndex(([name]) => name === k);
      if (at >= 0) spec.kvs[at][1] = v;
      else spec.kvs.push([k, v]);
      return `${k} set to a ${v.type === GT.ARRAY ? 'array' : JSON.stringify((v as { value: unknown }).value)}`;
    }
    case 14: {
      const t = spec.tensors[tensorIndex()];
      const to = pick(rng, [4, 5, 6, 7, 9, 10, 11, 15, 16, 99, 0xffffffff, GGML.Q4_K.id, GGML.F16.id]);
      t.type = to;
      return `tensor ${String(t.name)} of type ${to}`;
    }
    default: {
      const arch = key('general.architecture')!;
      const values = ['llama', 'qwen2', 'qwen3', 'gpt2', '', '__proto__', 'toString', 'constructor', 'mistral'];
      const a = pick(rng, values);
      arch[1] = { type: GT.STRING, value: a };
      // model keys of a given arch, to reach other architectures' rules
      if (rng() < 0.5) {
        const block = key('.block_count')!;
        block[1] = { type: GT.U32, value: pick(rng, [1 << 24, 1 << 20, 0, 2 ** 31, 2, 4096]) };
      }
      return `architecture ${JSON.stringify(a)}`;
    }
  }
}

function ggufCase(rng: Rng): { what: string; run: () => Promise<void> } {
  const spec = ggufModelSpec(rng, { arch: pick(rng, ['llama', 'qwen2', 'qwen3'] as const), tokenizer: rng() < 0.5 ? 'llama' : 'gpt2' });
  let what: string;
  let bytes: Uint8Array;
  if (rng() < 0.5) {
    what = mutateGgufSpec(rng, spec);
    if (rng() < 0.3) what += `; ${mutateGgufSpec(rng, spec)}`;
    bytes = writeGguf(spec).bytes;
  } else {
    const m = mutateBinary(rng, writeGguf(spec));
    what = m.what;
    bytes = m.bytes;
  }
  const { reader, what: how } = readerOf(rng, 'model.gguf', bytes);
  return { what: what + how, run: () => loadPipeline(reader) };
}

// Hugging Face folders: one file edited (JSON-level or byte-level), removed, or a shard renamed.

const FOLDER_FILES = ['config.json', 'generation_config.json', 'model.safetensors.index.json', 'model-00001-of-00002.safetensors',
  'model-00002-of-00002.safetensors', 'tokenizer.json', 'tokenizer_config.json'] as const;

function hfCase(rng: Rng): { what: string; run: () => Promise<void> } {
  const arch = pick(rng, ['LlamaForCausalLM', 'Qwen2ForCausalLM', 'Qwen3ForCausalLM', 'MistralForCausalLM'] as const);
  const shape: HfShape = { arch, dim: 16, hidden: 32, layers: 2, heads: 2, kvHeads: 1, headDim: 8, vocab: 300, tied: rng() < 0.5 };
  const config = hfConfig(shape, rng);
  const tensors = hfTensors(shape, rng);
  const split = 1 + int(rng, tensors.length - 1);
  const shards = [tensors.slice(0, split), tensors.slice(split)];
  const headers = shards.map((s) => safetensorsHeader(s));
  const index = {
    metadata: { total_size: 0 },
    weight_map: Object.fromEntries(shards.flatMap((s, i) => s.map((t) => [t.name, FOLDER_FILES[3 + i]]))),
  };
  const tok = tokenizerJson(rng);
  const json: Record<string, unknown> = {
    'config.json': config, 'generation_config.json': { bos_token_id: config.bos_token_id, eos_token_id: config.eos_token_id },
    'model.safetensors.index.json': index, 'tokenizer.json': tok.tokenizer, 'tokenizer_config.json': tok.config,
  };
  const files = new Map<string, Uint8Array | null>();
  const target = pick(rng, FOLDER_FILES);
  let what: string = target;
  let shardBuilt: (Built | null)[] = [null, null];
  const r = rng();
  if (target.endsWith('.json')) {
    if (r < 0.1) {
      files.set(target, null);
      what += ' missing';
    } else {
      const m = mutateJson(rng, json[target]);
      const b = jsonBytes(rng, m.value);
      files.set(target, b.bytes);
      what += `: ${m.what}${b.what ? `, ${b.what}` : ''}`;
      if (target === 'model.safetensors.index.json' && rng() < 0.3) {
        const escape = pick(rng, ['../config.json', '/etc/passwd', 'sub/dir.safetensors', '', 'model.safetensors.index.json', 'tokenizer.json', 'C:\\x.safetensors']);
        files.set(target, new TextEncoder().encode(jsonText({ ...index, weight_map: { ...index.weight_map, 'model.norm.weight': escape } })));
        what = `${target}: a shard named ${JSON.stringify(escape)}`;
      }
    }
  } else {
    const i = target === FOLDER_FILES[3] ? 0 : 1;
    if (r < 0.1) {
      files.set(target, null);
      what += ' missing';
    } else if (r < 0.55) {
      const m = mutateJson(rng, headers[i]);
      shardBuilt[i] = writeSafetensors(rng, jsonText(m.value), sizeOf(headers[i]));
      what += ` header: ${m.what}`;
    } else {
      const m = mutateBinary(rng, writeSafetensors(rng, headers[i]));
      files.set(target, m.bytes);
      what += `: ${m.what}`;
    }
  }
  shardBuilt = shardBuilt.map((b, i) => b ?? writeSafetensors(rng, headers[i]));
  const huge = rng() < 0.1 ? pick(rng, HUGE_SIZES) : null;
  if (huge) what += `, shards as ${huge}-byte files`;
  const readers = new Map<string, ByteReader>();
  for (const name of FOLDER_FILES) {
    const bytes = files.has(name) ? files.get(name)! : name.endsWith('.json')
      ? new TextEncoder().encode(jsonText(json[name]))
      : shardBuilt[name === FOLDER_FILES[3] ? 0 : 1]!.bytes;
    if (bytes === null) continue;
    readers.set(name, huge && name.endsWith('.safetensors') ? virtualReader(name, bytes, huge) : bytesReader(name, bytes));
  }
  const folder: HfFolder = { get: async (name) => readers.get(name) ?? null };
  return { what, run: () => loadPipeline(folder) };
}

function sizeOf(header: Record<string, unknown>): number {
  let size = 0;
  for (const [k, v] of Object.entries(header)) if (k !== '__metadata__') size = Math.max(size, (v as { data_offsets: number[] }).data_offsets[1]);
  return size;
}

function tokenizerJsonCase(rng: Rng): { what: string; run: () => Promise<void> } {
  const tok = tokenizerJson(rng);
  const r = rng();
  let what: string;
  let tokenizerBytes: Uint8Array;
  let config: unknown = tok.config;
  if (r < 0.6) {
    const m = mutateJson(rng, tok.tokenizer);
    const b = jsonBytes(rng, m.value);
    tokenizerBytes = b.bytes;
    what = `tokenizer.json: ${m.what}${b.what ? `, ${b.what}` : ''}`;
  } else if (r < 0.8) {
    const m = mutateJson(rng, tok.config);
    config = JSON.parse(jsonText(m.value));
    tokenizerBytes = new TextEncoder().encode(JSON.stringify(tok.tokenizer));
    what = `tokenizer_config.json: ${m.what}`;
  } else {
    // hostile token strings: markup, bidi, NUL, '__proto__' as pieces of the vocabulary
    const vocab = (tok.tokenizer.model as { vocab: Record<string, number> }).vocab;
    const hostile = ['<img src=x onerror=alert(1)>', '<script>alert(1)</script>', 'javascript:alert(1)', '\u202e', '\u0000', '__proto__', 'constructor', 'hasOwnProperty'];
    const entries = Object.entries(vocab);
    const n = 1 + int(rng, 6);
    for (let i = 0; i < n; i++) {
      const [piece, id] = entries[260 + int(rng, entries.length - 260)];
      delete vocab[piece];
      Object.defineProperty(vocab, rng() < 0.5 ? byteLevel(pick(rng, hostile)) : pick(rng, hostile), { value: id, enumerable: true, configurable: true, writable: true });
    }
    tokenizerBytes = new TextEncoder().encode(JSON.stringify(tok.tokenizer));
    what = `${n} hostile vocabulary pieces`;
  }
  const modelVocab = pick(rng, [300, 300, TOKENIZER_JSON_VOCAB, TOKENIZER_JSON_VOCAB - 1, 100]);
  return {
    what: `${what}, model vocabulary ${modelVocab}`,
    run: async () => {
      const parsed = await readJson(bytesReader('tokenizer.json', tokenizerBytes), undefined, TokenizerFormatError);
      const t = buildTokenizer({ kind: 'hf', tokenizer: parsed, config: config as Record<string, unknown> }, { modelVocabSize: modelVocab });
      exerciseTokenizer(t, modelVocab);
    },
  };
}

const MAKERS: Record<FuzzFormat, (rng: Rng) => { what: string; run: () => Promise<void> }> = {
  llama2c: llama2cCase,
  'tokenizer.bin': tokenizerBinCase,
  gguf: ggufCase,
  hf: hfCase,
  'tokenizer.json': tokenizerJsonCase,
};

/** Case `index` of `format` under `seed`: the same input on every run. */
export function makeCase(format: FuzzFormat, seed: number, index: number): FuzzCase {
  const rng = mulberry32((seed * 0x9e3779b1) ^ (FORMATS.indexOf(format) * 0x85ebca6b) ^ (index * 0xc2b2ae35));
  rng();
  const { what, run } = MAKERS[format](rng);
  return { format, index, what, run };
}

export interface Outcome {
  /** 'ok', a ForkwiseError code, or 'leak:<ErrorName>' for anything else thrown. */
  outcome: string;
  message?: string;
  ms: number;
}

/** Runs a case; never throws. */
export async function runCase(c: FuzzCase): Promise<Outcome> {
  const t0 = performance.now();
  try {
    await c.run();
    return { outcome: 'ok', ms: performance.now() - t0 };
  } catch (e) {
    const ms = performance.now() - t0;
    if (e instanceof ForkwiseError) return { outcome: e.code, message: e.message.slice(0, 300), ms };
    const error = e as Error;
    return { outcome: `leak:${error?.name ?? typeof e}`, message: `${String(error?.message ?? e).slice(0, 300)}\n${String(error?.stack ?? '').split('\n').slice(1, 6).join('\n')}`, ms };
  }
}

// ---------------------------------------------------------------------------------------------
// Regressions: inputs the fuzzer (or a review of what it exercises) found crashing, hanging or
// ending in the wrong code, each with the code it must end in now.

export interface Regression {
  name: string;
  expect: string;
  run(): Promise<void>;
}

function ggufWith(edit: (spec: GgufSpec) => void, shape: Parameters<typeof ggufModelSpec>[1] = {}): Uint8Array {
  const spec = ggufModelSpec(mulberry32(7), shape);
  edit(spec);
  return writeGguf(spec).bytes;
}

function setKv(spec: GgufSpec, key: string, value: GgufValue | null): void {
  const at = spec.kvs.findIndex(([k]) => k === key);
  if (value === null) spec.kvs.splice(at, 1);
  else if (at < 0) spec.kvs.push([key, value]);
  else spec.kvs[at][1] = value;
}

function hfFolderWith(edit: (files: Record<string, unknown>) => void): HfFolder {
  const rng = mulberry32(7);
  const shape: HfShape = { arch: 'Qwen2ForCausalLM', dim: 16, hidden: 32, layers: 2, heads: 2, kvHeads: 1, headDim: 8, vocab: 300, tied: true };
  const config = hfConfig(shape, rng);
  const tensors = hfTensors(shape, rng);
  const tok = tokenizerJson(rng);
  const files: Record<string, unknown> = {
    'config.json': config,
    'model.safetensors.index.json': { weight_map: Object.fromEntries(tensors.map((t) => [t.name, 'model.safetensors'])) },
    'tokenizer.json': tok.tokenizer,
    'tokenizer_config.json': tok.config,
  };
  edit(files);
  const shard = writeSafetensors(rng, safetensorsHeader(tensors)).bytes;
  const readers = new Map<string, ByteReader>([['model.safetensors', bytesReader('model.safetensors', shard)]]);
  for (const [name, value] of Object.entries(files)) {
    readers.set(name, bytesReader(name, value instanceof Uint8Array ? value : new TextEncoder().encode(jsonText(value))));
  }
  return { get: async (name) => readers.get(name) ?? null };
}

async function tokenizerJsonWith(edit: (json: Record<string, unknown>) => void, modelVocab = 300): Promise<void> {
  const tok = tokenizerJson(mulberry32(7));
  edit(tok.tokenizer);
  const parsed = await readJson(bytesReader('tokenizer.json', new TextEncoder().encode(jsonText(tok.tokenizer))), undefined, TokenizerFormatError);
  exerciseTokenizer(buildTokenizer({ kind: 'hf', tokenizer: parsed, config: tok.config }, { modelVocabSize: modelVocab }), modelVocab);
}

const HUGE = Number.MAX_SAFE_INTEGER;

export const REGRESSIONS: Regression[] = [
  {
    name: 'tokenizer.bin with a model vocabulary under 259 (was invalid-argument)',
    expect: 'tokenizer-format',
    run: async () => void buildTokenizer({ kind: 'llama2c', bytes: tokenizerBin(mulberry32(1)).bytes }, { modelVocabSize: 100 }),
  },
  {
    name: 'config bos_token_id nested 100k deep (was a RangeError from the error message)',
    expect: 'model-format',
    run: () => loadPipeline(hfFolderWith((f) => ((f['config.json'] as Record<string, unknown>).bos_token_id = deepJson(100_000, 'array')))),
  },
  {
    name: 'GGUF vocabulary without bos_token_id and add_bos_token false (was invalid-argument: bosId null)',
    expect: 'ok',
    run: () => loadPipeline(bytesReader('m.gguf', ggufWith((s) => setKv(s, 'tokenizer.ggml.bos_token_id', null), { tokenizer: 'gpt2' }))),
  },
  {
    name: 'tokenizer.json added token with an object id (was invalid-argument)',
    expect: 'tokenizer-format',
    run: () => tokenizerJsonWith((j) => ((j.added_tokens as { id: unknown }[])[2].id = {})),
  },
  {
    name: 'tokenizer.json added token with id -1e308 (was invalid-argument)',
    expect: 'tokenizer-format',
    run: () => tokenizerJsonWith((j) => ((j.added_tokens as { id: unknown }[])[2].id = -1e308)),
  },
  {
    name: 'tokenizer.json vocabulary id 2^31 (was a hang: a 2^31-entry vocabulary array)',
    expect: 'tokenizer-format',
    run: () => tokenizerJsonWith((j) => ((j.model as { vocab: Record<string, number> }).vocab.a = 2 ** 31)),
  },
  {
    name: 'config num_hidden_layers 2^31 (was a hang listing the expected tensors)',
    expect: 'model-format',
    run: () => loadPipeline(hfFolderWith((f) => ((f['config.json'] as Record<string, unknown>).num_hidden_layers = 2 ** 31))),
  },
  {
    name: 'config num_hidden_layers 2^24 (was a hang)',
    expect: 'model-format',
    run: () => loadPipeline(hfFolderWith((f) => ((f['config.json'] as Record<string, unknown>).num_hidden_layers = 2 ** 24))),
  },
  {
    name: 'GGUF block_count 2^24 (was a hang)',
    expect: 'model-format',
    run: () => loadPipeline(bytesReader('m.gguf', ggufWith((s) => setKv(s, 'llama.block_count', { type: GT.U32, value: 2 ** 24 })))),
  },
  {
    name: 'GGUF array declaring 2^31 entries in a 2^53-byte file (was a hang)',
    expect: 'model-format',
    run: () => {
      const bytes = ggufWith((s) => ((s.kvs.find(([k]) => k === 'tokenizer.ggml.token_type')![1] as { count?: bigint }).count = 2n ** 31n));
      return loadPipeline(virtualReader('m.gguf', bytes, HUGE));
    },
  },
  {
    name: 'GGUF nested arrays declaring 2^28 entries in a 2^53-byte file (was a hang)',
    expect: 'model-format',
    run: () => {
      const nested: GgufValue = { type: GT.ARRAY, elem: GT.ARRAY, items: [{ type: GT.ARRAY, elem: GT.U8, items: [], count: 2n ** 28n }] };
      return loadPipeline(virtualReader('m.gguf', ggufWith((s) => s.kvs.unshift(['fuzz.nested', nested])), HUGE));
    },
  },
  {
    name: 'GGUF rope.scaling.type as a u64 over 2^53 (was a TypeError: a bigint in JSON.stringify)',
    expect: 'model-format',
    run: () => loadPipeline(bytesReader('m.gguf', ggufWith((s) => setKv(s, 'llama.rope.scaling.type', { type: GT.U64, value: 2n ** 63n })))),
  },
  {
    name: 'GGUF tokenizer.ggml.pre as a u64 over 2^53 (was a TypeError: a bigint in JSON.stringify)',
    expect: 'tokenizer-format',
    run: () => loadPipeline(bytesReader('m.gguf', ggufWith((s) => setKv(s, 'tokenizer.ggml.pre', { type: GT.U64, value: 2n ** 63n }), { tokenizer: 'gpt2' }))),
  },
  {
    name: 'llama2.c header of 2^20 layers on a file of exactly that size (was a hang: 9.4M tensor names)',
    expect: 'model-format',
    run: () => {
      const h = new Int32Array([8, 16, 1 << 20, 2, 1, 300, 16]);
      const size = 28 + 4 * (300 * 8 + (1 << 20) * (8 + 64 + 2 * 32 + 64 + 8 + 3 * 128) + 8 + 64);
      return loadPipeline(virtualReader('model.bin', new Uint8Array(h.buffer), size), { kind: 'llama2c', bytes: tokenizerBin(mulberry32(1)).bytes });
    },
  },
  {
    name: 'a tensor too large for memory (was the RangeError of the allocation)',
    expect: 'gpu-allocation',
    run: async () => {
      const file: ByteReader = { name: 'huge.gguf', size: 2 ** 45, read: async (_, n) => new Uint8Array(n) };
      await readTensorF32({ name: 'token_embd.weight', type: 'F32', shape: [2 ** 20, 2 ** 20], file, offset: 0, byteLength: 2 ** 42 });
    },
  },
  {
    name: 'a GGUF chat template calling range(10**9) (was a hang rendering it)',
    expect: 'tokenizer-format',
    run: () => loadPipeline(bytesReader('m.gguf', ggufWith((s) => setKv(s, 'tokenizer.chat_template', {
      type: GT.STRING, value: '{% for i in range(1000000000) %}x{% endfor %}',
    })))),
  },
  {
    name: 'index.json naming a shard outside the folder (was read)',
    expect: 'model-format',
    run: () => loadPipeline(hfFolderWith((f) => {
      (f['model.safetensors.index.json'] as { weight_map: Record<string, string> }).weight_map['model.norm.weight'] = '../model.safetensors';
    })),
  },
];

/** Runs regression `index`; never throws. */
export function runRegression(index: number): Promise<Outcome> {
  const r = REGRESSIONS[index];
  return runCase({ format: 'gguf', index, what: r.name, run: r.run });
}
