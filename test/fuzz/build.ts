// Small valid inputs of every format the loaders read, built from a seed, each with the byte
// offsets of its structural boundaries (header fields, metadata entries, tensor infos, data
// start, tensor starts), which the mutators truncate at and overwrite. Files are tiny (tens of KB)
// so a fuzz case parses, builds its tokenizer and dequantises every tensor in milliseconds.
import { mulberry32 } from '../support/random.ts';

/** A file's bytes and the offsets where one structure ends and the next begins. */
export interface Built {
  bytes: Uint8Array;
  /** Sorted, unique; includes 0 and bytes.length. */
  boundaries: number[];
  /** Offsets of integer fields (counts, lengths, dimensions, offsets) and their widths in bytes. */
  fields: { at: number; width: 4 | 8 }[];
  /** End of the header (the part bit flips are aimed at). */
  headerEnd: number;
}

export type Rng = () => number;

export const int = (rng: Rng, n: number) => Math.floor(rng() * n);
export const pick = <T>(rng: Rng, items: readonly T[]): T => items[int(rng, items.length)];

/** Little-endian writer that notes boundaries and integer fields as it goes. */
export class ByteWriter {
  private buf = new Uint8Array(1024);
  private view = new DataView(this.buf.buffer);
  length = 0;
  readonly boundaries: number[] = [0];
  readonly fields: { at: number; width: 4 | 8 }[] = [];

  private room(n: number) {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  mark(): this {
    this.boundaries.push(this.length);
    return this;
  }

  u8(v: number): this {
    this.room(1);
    this.buf[this.length++] = v;
    return this;
  }

  u32(v: number, field = false): this {
    this.room(4);
    if (field) this.fields.push({ at: this.length, width: 4 });
    this.view.setUint32(this.length, v >>> 0, true);
    this.length += 4;
    return this;
  }

  i32(v: number, field = false): this {
    this.room(4);
    if (field) this.fields.push({ at: this.length, width: 4 });
    this.view.setInt32(this.length, v, true);
    this.length += 4;
    return this;
  }

  u64(v: number | bigint, field = false): this {
    this.room(8);
    if (field) this.fields.push({ at: this.length, width: 8 });
    this.view.setBigUint64(this.length, BigInt.asUintN(64, BigInt(v)), true);
    this.length += 8;
    return this;
  }

  f32(v: number): this {
    this.room(4);
    this.view.setFloat32(this.length, v, true);
    this.length += 4;
    return this;
  }

  f64(v: number): this {
    this.room(8);
    this.view.setFloat64(this.length, v, true);
    this.length += 8;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.room(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
    return this;
  }

  pad(alignment: number): this {
    while (this.length % alignment !== 0) this.u8(0);
    return this;
  }

  done(headerEnd: number): Built {
    const bytes = this.buf.slice(0, this.length);
    const boundaries = [...new Set([...this.boundaries, this.length])].sort((a, b) => a - b);
    return { bytes, boundaries, fields: this.fields, headerEnd };
  }
}

const utf8 = new TextEncoder();

function randomFloats(rng: Rng, n: number, scale = 0.1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (rng() * 2 - 1) * scale;
  return out;
}

// ---------------------------------------------------------------------------------------------
// llama2.c checkpoint and tokenizer.bin

export interface Llama2cShape {
  dim: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  vocab: number;
  seqLen: number;
  tied: boolean;
}

export const LLAMA2C_SHAPE: Llama2cShape = { dim: 8, hidden: 16, layers: 2, heads: 2, kvHeads: 1, vocab: 300, seqLen: 16, tied: true };

export function llama2cCheckpoint(rng: Rng, s: Llama2cShape = LLAMA2C_SHAPE): Built {
  const w = new ByteWriter();
  for (const v of [s.dim, s.hidden, s.layers, s.heads, s.kvHeads, s.tied ? s.vocab : -s.vocab, s.seqLen]) w.i32(v, true).mark();
  const headerEnd = w.length;
  const kv = (s.dim / s.heads) * s.kvHeads;
  const headDim = s.dim / s.heads;
  const tensor = (n: number) => {
    for (const f of randomFloats(rng, n)) w.f32(f);
    w.mark();
  };
  tensor(s.vocab * s.dim);
  for (const n of [s.dim, s.dim * s.dim, kv * s.dim, kv * s.dim, s.dim * s.dim, s.dim, s.hidden * s.dim, s.dim * s.hidden, s.hidden * s.dim]) {
    for (let l = 0; l < s.layers; l++) tensor(n);
  }
  tensor(s.dim);
  tensor((s.seqLen * headDim) / 2);
  tensor((s.seqLen * headDim) / 2);
  if (!s.tied) tensor(s.vocab * s.dim);
  return w.done(headerEnd);
}

/** Pieces of a small llama2.c-style vocabulary: <unk>, <s>, </s>, 256 byte tokens, then words. */
export function llama2cPieces(vocab: number): string[] {
  const pieces = ['<unk>', '\n<s>\n', '\n</s>\n'];
  for (let b = 0; b < 256; b++) pieces.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  const words = [' ', 'e', 't', 'a', 'o', 'n', 'h', 'he', ' t', ' the', 'in', 'er', ' a', 'on', 're', 'an', 'nd', ' s', 'ou',
    'll', 'o ', ' w', 'is', 'ed', ' <', 'b>', '</', 'é', '😀', 'Once', ' upon', ' time', '.', ',', '!', '\n', ' and', 'ing', 'ly', 'it', 'at'];
  for (let i = 0; pieces.length < vocab; i++) pieces.push(i < words.length ? words[i] : `w${i}`);
  return pieces.slice(0, vocab);
}

export function tokenizerBin(rng: Rng, vocab = LLAMA2C_SHAPE.vocab): Built {
  const w = new ByteWriter();
  const pieces = llama2cPieces(vocab).map((p) => utf8.encode(p));
  const maxLen = Math.max(...pieces.map((p) => p.length));
  w.i32(maxLen, true).mark();
  pieces.forEach((p, id) => {
    w.f32(id < 259 ? 0 : -(id - 259) - rng());
    w.mark();
    w.i32(p.length, true).mark();
    w.bytes(p).mark();
  });
  return w.done(w.length); // all of it is structure: bit flips anywhere
}

// ---------------------------------------------------------------------------------------------
// GGUF

export const enum GT {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
}

/** A metadata value with its GGUF type (strings may be raw bytes); arrays carry their element type. */
export type GgufScalar = number | bigint | boolean | string | Uint8Array;
export type GgufValue =
  | { type: Exclude<GT, GT.ARRAY>; value: GgufScalar }
  | { type: GT.ARRAY; elem: GT; items: GgufScalar[] | GgufValue[]; count?: number | bigint };

export interface GgufTensor {
  name: string | Uint8Array;
  /** ne, innermost first. */
  ne: (number | bigint)[];
  /** GGML type id. */
  type: number;
  data: Uint8Array;
  /** Offset relative to the data section (default: packed in order, aligned). */
  offset?: number | bigint;
}

export interface GgufSpec {
  version: number;
  kvs: [string | Uint8Array, GgufValue][];
  tensors: GgufTensor[];
  alignment: number;
  /** Overrides of the declared counts. */
  tensorCount?: number | bigint;
  kvCount?: number | bigint;
}

function ggufString(w: ByteWriter, s: string | Uint8Array) {
  const b = typeof s === 'string' ? utf8.encode(s) : s;
  w.u64(b.length, true).mark();
  w.bytes(b);
}

function ggufScalar(w: ByteWriter, type: GT, value: unknown) {
  switch (type) {
    case GT.U8: case GT.I8: case GT.BOOL: w.u8(Number(value) & 0xff); break;
    case GT.U16: case GT.I16: w.u8(Number(value) & 0xff).u8((Number(value) >> 8) & 0xff); break;
    case GT.U32: w.u32(Number(value), true); break;
    case GT.I32: w.i32(Number(value), true); break;
    case GT.F32: w.f32(Number(value)); break;
    case GT.U64: case GT.I64: w.u64(typeof value === 'bigint' ? value : BigInt(Math.trunc(Number(value))), true); break;
    case GT.F64: w.f64(Number(value)); break;
    case GT.STRING: ggufString(w, value as string | Uint8Array); break;
    default: w.u32(Number(value)); // an unknown type: four bytes of something
  }
}

function ggufValue(w: ByteWriter, v: GgufValue, top: boolean) {
  if (v.type !== GT.ARRAY) return ggufScalar(w, v.type, v.value);
  w.u32(v.elem, true);
  w.u64(v.count ?? v.items.length, true).mark();
  for (const item of v.items) {
    if (v.elem === GT.ARRAY) ggufValue(w, item as GgufValue, false);
    else ggufScalar(w, v.elem, item);
    if (top) w.mark();
  }
}

export function writeGguf(spec: GgufSpec): Built {
  const w = new ByteWriter();
  w.bytes(utf8.encode('GGUF')).mark();
  w.u32(spec.version, true).mark();
  w.u64(spec.tensorCount ?? spec.tensors.length, true).mark();
  w.u64(spec.kvCount ?? spec.kvs.length, true).mark();
  for (const [key, value] of spec.kvs) {
    ggufString(w, key);
    w.mark();
    w.u32(value.type, true).mark();
    ggufValue(w, value, true);
    w.mark();
  }
  const offsets: bigint[] = [];
  let at = 0n;
  const align = BigInt(spec.alignment);
  for (const t of spec.tensors) {
    offsets.push(t.offset === undefined ? at : BigInt(t.offset));
    at += BigInt(t.data.length);
    at = ((at + align - 1n) / align) * align;
  }
  spec.tensors.forEach((t, i) => {
    ggufString(w, t.name);
    w.mark();
    w.u32(t.ne.length, true).mark();
    for (const n of t.ne) w.u64(n, true).mark();
    w.u32(t.type, true).mark();
    w.u64(offsets[i], true).mark();
  });
  const headerEnd = w.length;
  w.pad(spec.alignment).mark();
  const dataStart = w.length;
  // Tensors at their declared offsets (overlaps and gaps as declared; offsets past a sane end are not written).
  const ends = spec.tensors.map((t, i) => offsets[i] + BigInt(t.data.length));
  const end = ends.reduce((a, b) => (b > a && b < 1n << 24n ? b : a), 0n);
  const data = new Uint8Array(Number(end));
  spec.tensors.forEach((t, i) => {
    if (ends[i] <= end) data.set(t.data, Number(offsets[i]));
  });
  for (const o of offsets) if (o < end) w.boundaries.push(dataStart + Number(o));
  w.bytes(data);
  return w.done(headerEnd);
}

/** GGML type ids and block sizes (values per block, bytes per block). */
export const GGML = {
  F32: { id: 0, values: 1, bytes: 4 },
  F16: { id: 1, values: 1, bytes: 2 },
  Q4_0: { id: 2, values: 32, bytes: 18 },
  Q4_1: { id: 3, values: 32, bytes: 20 },
  Q8_0: { id: 8, values: 32, bytes: 34 },
  Q4_K: { id: 12, values: 256, bytes: 144 },
  Q5_K: { id: 13, values: 256, bytes: 176 },
  Q6_K: { id: 14, values: 256, bytes: 210 },
  BF16: { id: 30, values: 1, bytes: 2 },
} as const;
export type GgmlName = keyof typeof GGML;

function tensorData(rng: Rng, type: GgmlName, count: number): Uint8Array {
  const t = GGML[type];
  const bytes = new Uint8Array((count / t.values) * t.bytes);
  if (type === 'F32') {
    new Float32Array(bytes.buffer).set(randomFloats(rng, count));
    return bytes;
  }
  for (let i = 0; i < bytes.length; i++) bytes[i] = int(rng, 256);
  // Keep f16 scales small and finite where they sit at a block's start (F16/BF16 rows: all values).
  if (type === 'F16' || type === 'BF16') for (let i = 1; i < bytes.length; i += 2) bytes[i] = type === 'F16' ? 0x2c : 0x3d;
  else if (type !== 'Q6_K') for (let b = 0; b < bytes.length; b += t.bytes) bytes[b + 1] = 0x20;
  return bytes;
}

/** The byte-level BPE alphabet (GPT-2's bytes_to_unicode): byte → the character that stands for it. */
export function byteLevelChars(): string[] {
  const chars: string[] = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    chars[b] = String.fromCharCode(printable ? b : 256 + n++);
  }
  return chars;
}

/** `text` as a byte-level BPE token string (the form tokenizer.json vocabularies store). */
export function byteLevel(text: string): string {
  const chars = byteLevelChars();
  return [...utf8.encode(text)].map((b) => chars[b]).join('');
}

const BPE_WORDS = ['he', 'll', 'o', 'Ġt', 'Ġth', 'Ġthe', 'in', 'er', 'an', 'Ġa', 're', 'on', 'Ġw', 'is', 'at', 'ed', 'nd', 'ou', 'Ġ<', 'b>', '</'];

/** A small byte-level BPE vocabulary: 256 byte characters, merged words, then special tokens. */
export function bpeVocab(): { tokens: string[]; merges: [string, string][]; specials: string[] } {
  const tokens = [...byteLevelChars()];
  const merges: [string, string][] = [];
  const have = new Set(tokens);
  for (const word of BPE_WORDS) {
    // build each word from a known prefix and its last character
    const left = word.slice(0, -1);
    const right = word.slice(-1);
    if (!have.has(left) || !have.has(right) || have.has(word)) continue;
    merges.push([left, right]);
    tokens.push(word);
    have.add(word);
  }
  return { tokens, merges, specials: ['<|endoftext|>', '<|im_start|>', '<|im_end|>'] };
}

const CHAT_TEMPLATE = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

export interface GgufModelShape {
  dim: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  vocab: number;
  arch: 'llama' | 'qwen2' | 'qwen3';
  tokenizer: 'llama' | 'gpt2';
  /** The trained context it declares (default 64). */
  context: number;
  /** Every tensor in this type (default: a seeded mix of all we read, whose values may overflow). */
  dtype?: GgmlName;
}

/** A GGUF spec of a tiny model with every tensor type we read, and a SentencePiece or GPT-2 vocabulary. */
export function ggufModelSpec(rng: Rng, shape: Partial<GgufModelShape> = {}): GgufSpec {
  const s: GgufModelShape = { dim: 32, hidden: 256, layers: 1, heads: 2, kvHeads: 1, vocab: 300, arch: 'llama', tokenizer: 'llama', context: 64, ...shape };
  const headDim = s.dim / s.heads;
  const kvDim = headDim * s.kvHeads;
  const a = s.arch;
  const kvs: [string, GgufValue][] = [
    ['general.architecture', { type: GT.STRING, value: a }],
    ['general.name', { type: GT.STRING, value: 'fuzz' }],
    ['general.alignment', { type: GT.U32, value: 32 }],
    [`${a}.context_length`, { type: GT.U32, value: s.context }],
    [`${a}.embedding_length`, { type: GT.U32, value: s.dim }],
    [`${a}.block_count`, { type: GT.U32, value: s.layers }],
    [`${a}.feed_forward_length`, { type: GT.U32, value: s.hidden }],
    [`${a}.attention.head_count`, { type: GT.U32, value: s.heads }],
    [`${a}.attention.head_count_kv`, { type: GT.U32, value: s.kvHeads }],
    [`${a}.attention.layer_norm_rms_epsilon`, { type: GT.F32, value: 1e-5 }],
    [`${a}.rope.freq_base`, { type: GT.F32, value: 10000 }],
  ];
  if (s.tokenizer === 'llama') {
    const pieces = llama2cPieces(s.vocab - 4).map((p) => p.replaceAll(' ', '\u2581'));
    pieces.push('<|im_start|>', '<|im_end|>', '__proto__', 'constructor');
    const types = pieces.map((p, id) => (id === 0 ? 2 : id < 3 || p.startsWith('<|') ? 3 : id < 259 ? 6 : 1));
    kvs.push(
      ['tokenizer.ggml.model', { type: GT.STRING, value: 'llama' }],
      ['tokenizer.ggml.tokens', { type: GT.ARRAY, elem: GT.STRING, items: pieces }],
      ['tokenizer.ggml.scores', { type: GT.ARRAY, elem: GT.F32, items: pieces.map((_, id) => (id < 259 ? 0 : -id)) }],
      ['tokenizer.ggml.token_type', { type: GT.ARRAY, elem: GT.I32, items: types }],
      ['tokenizer.ggml.bos_token_id', { type: GT.U32, value: 1 }],
      ['tokenizer.ggml.eos_token_id', { type: GT.U32, value: 2 }],
      ['tokenizer.ggml.unknown_token_id', { type: GT.U32, value: 0 }],
    );
  } else {
    const v = bpeVocab();
    const tokens = [...v.tokens, ...v.specials];
    kvs.push(
      ['tokenizer.ggml.model', { type: GT.STRING, value: 'gpt2' }],
      ['tokenizer.ggml.pre', { type: GT.STRING, value: pick(rng, ['qwen2', 'llama-bpe']) }],
      ['tokenizer.ggml.tokens', { type: GT.ARRAY, elem: GT.STRING, items: tokens }],
      ['tokenizer.ggml.token_type', { type: GT.ARRAY, elem: GT.I32, items: tokens.map((t) => (t.startsWith('<|') ? 3 : 1)) }],
      ['tokenizer.ggml.merges', { type: GT.ARRAY, elem: GT.STRING, items: v.merges.map(([l, r]) => `${l} ${r}`) }],
      ['tokenizer.ggml.bos_token_id', { type: GT.U32, value: tokens.length - 3 }],
      ['tokenizer.ggml.eos_token_id', { type: GT.U32, value: tokens.length - 1 }],
      ['tokenizer.ggml.add_bos_token', { type: GT.BOOL, value: false }],
    );
  }
  kvs.push(['tokenizer.chat_template', { type: GT.STRING, value: CHAT_TEMPLATE }]);

  const tensors: GgufTensor[] = [];
  const add = (name: string, ne: number[], mixed: GgmlName) => {
    const type = s.dtype ?? mixed;
    tensors.push({ name, ne, type: GGML[type].id, data: tensorData(rng, type, ne.reduce((x, y) => x * y, 1)) });
  };
  const matrix = (): GgmlName => pick(rng, ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_1']);
  add('token_embd.weight', [s.dim, s.vocab], pick(rng, ['F32', 'F16', 'Q8_0']));
  add('output_norm.weight', [s.dim], 'F32');
  if (rng() < 0.5) add('output.weight', [s.dim, s.vocab], matrix());
  for (let l = 0; l < s.layers; l++) {
    add(`blk.${l}.attn_norm.weight`, [s.dim], 'F32');
    add(`blk.${l}.attn_q.weight`, [s.dim, s.dim], matrix());
    add(`blk.${l}.attn_k.weight`, [s.dim, kvDim], matrix());
    add(`blk.${l}.attn_v.weight`, [s.dim, kvDim], matrix());
    if (a === 'qwen2') for (const n of ['q', 'k', 'v']) add(`blk.${l}.attn_${n}.bias`, [n === 'q' ? s.dim : kvDim], 'F32');
    if (a === 'qwen3') for (const n of ['q', 'k']) add(`blk.${l}.attn_${n}_norm.weight`, [headDim], 'F32');
    add(`blk.${l}.attn_output.weight`, [s.dim, s.dim], matrix());
    add(`blk.${l}.ffn_norm.weight`, [s.dim], 'F32');
    add(`blk.${l}.ffn_gate.weight`, [s.dim, s.hidden], matrix());
    add(`blk.${l}.ffn_up.weight`, [s.dim, s.hidden], matrix());
    add(`blk.${l}.ffn_down.weight`, [s.hidden, s.dim], pick(rng, ['Q4_K', 'Q5_K', 'Q6_K']));
  }
  if (rng() < 0.3) {
    const freqs = new Float32Array(headDim / 2).map((_, i) => 1 + i / 4);
    tensors.push({ name: 'rope_freqs.weight', ne: [headDim / 2], type: 0, data: new Uint8Array(freqs.buffer) });
  }
  return { version: 3, kvs, tensors, alignment: 32 };
}

// ---------------------------------------------------------------------------------------------
// safetensors, tokenizer.json and Hugging Face folders

export type StDtype = 'F32' | 'F16' | 'BF16';
const ST_SIZE: Record<StDtype, number> = { F32: 4, F16: 2, BF16: 2 };

export interface StTensor {
  name: string;
  dtype: StDtype;
  shape: number[];
}

/** A safetensors file; `header` may be edited before it is written (see writeSafetensors). */
export function safetensorsHeader(tensors: StTensor[]): Record<string, unknown> {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let at = 0;
  for (const t of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1) * ST_SIZE[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [at, at + n] };
    at += n;
  }
  return header;
}

export function writeSafetensors(rng: Rng, header: Record<string, unknown> | string, dataBytes?: number): Built {
  const json = typeof header === 'string' ? header : JSON.stringify(header);
  const w = new ByteWriter();
  const jsonBytes = utf8.encode(json);
  w.u64(jsonBytes.length, true).mark();
  // boundaries inside the JSON: after each top-level entry
  const start = w.length;
  w.bytes(jsonBytes);
  for (let i = 0; i < json.length; i++) if (json[i] === ',' && i < 4096) w.boundaries.push(start + i);
  w.mark();
  const headerEnd = w.length;
  let size = dataBytes ?? 0;
  if (dataBytes === undefined && typeof header !== 'string') {
    for (const [name, v] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      const offsets = (v as { data_offsets?: unknown }).data_offsets;
      if (Array.isArray(offsets) && typeof offsets[1] === 'number' && offsets[1] < 1 << 24) {
        size = Math.max(size, offsets[1]);
        w.boundaries.push(headerEnd + (offsets[0] as number));
      }
    }
  }
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i++) data[i] = int(rng, 256);
  // finite, small halves and floats
  for (let i = 1; i < size; i += 2) data[i] &= 0x3d;
  w.bytes(data);
  return w.done(headerEnd);
}

export interface HfShape {
  arch: 'LlamaForCausalLM' | 'Qwen2ForCausalLM' | 'Qwen3ForCausalLM' | 'MistralForCausalLM';
  dim: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  vocab: number;
  tied: boolean;
}

export function hfConfig(s: HfShape, rng: Rng): Record<string, unknown> {
  const config: Record<string, unknown> = {
    architectures: [s.arch],
    hidden_size: s.dim,
    intermediate_size: s.hidden,
    num_hidden_layers: s.layers,
    num_attention_heads: s.heads,
    num_key_value_heads: s.kvHeads,
    head_dim: s.headDim,
    vocab_size: s.vocab,
    max_position_embeddings: 64,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    tie_word_embeddings: s.tied,
    hidden_act: 'silu',
    bos_token_id: TOKENIZER_JSON_VOCAB - 3,
    eos_token_id: [TOKENIZER_JSON_VOCAB - 1, TOKENIZER_JSON_VOCAB - 3],
  };
  if (s.arch === 'LlamaForCausalLM' && rng() < 0.5) {
    config.rope_scaling = { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 32 };
  }
  if (s.arch === 'MistralForCausalLM') config.sliding_window = null;
  return config;
}

export function hfTensors(s: HfShape, rng: Rng): StTensor[] {
  const q = s.heads * s.headDim;
  const kv = s.kvHeads * s.headDim;
  const dtype = (): StDtype => pick(rng, ['F32', 'F16', 'BF16']);
  const t: StTensor[] = [
    { name: 'model.embed_tokens.weight', dtype: dtype(), shape: [s.vocab, s.dim] },
    { name: 'model.norm.weight', dtype: dtype(), shape: [s.dim] },
  ];
  if (!s.tied) t.push({ name: 'lm_head.weight', dtype: dtype(), shape: [s.vocab, s.dim] });
  for (let l = 0; l < s.layers; l++) {
    const p = `model.layers.${l}.`;
    t.push(
      { name: `${p}input_layernorm.weight`, dtype: dtype(), shape: [s.dim] },
      { name: `${p}self_attn.q_proj.weight`, dtype: dtype(), shape: [q, s.dim] },
      { name: `${p}self_attn.k_proj.weight`, dtype: dtype(), shape: [kv, s.dim] },
      { name: `${p}self_attn.v_proj.weight`, dtype: dtype(), shape: [kv, s.dim] },
      { name: `${p}self_attn.o_proj.weight`, dtype: dtype(), shape: [s.dim, q] },
      { name: `${p}post_attention_layernorm.weight`, dtype: dtype(), shape: [s.dim] },
      { name: `${p}mlp.gate_proj.weight`, dtype: dtype(), shape: [s.hidden, s.dim] },
      { name: `${p}mlp.up_proj.weight`, dtype: dtype(), shape: [s.hidden, s.dim] },
      { name: `${p}mlp.down_proj.weight`, dtype: dtype(), shape: [s.dim, s.hidden] },
    );
    if (s.arch === 'Qwen2ForCausalLM') {
      t.push(
        { name: `${p}self_attn.q_proj.bias`, dtype: dtype(), shape: [q] },
        { name: `${p}self_attn.k_proj.bias`, dtype: dtype(), shape: [kv] },
        { name: `${p}self_attn.v_proj.bias`, dtype: dtype(), shape: [kv] },
      );
    }
    if (s.arch === 'Qwen3ForCausalLM') {
      t.push(
        { name: `${p}self_attn.q_norm.weight`, dtype: dtype(), shape: [s.headDim] },
        { name: `${p}self_attn.k_norm.weight`, dtype: dtype(), shape: [s.headDim] },
      );
    }
  }
  t.push({ name: 'model.rotary_emb.inv_freq', dtype: 'F32', shape: [s.headDim / 2] });
  return t;
}

/** A small byte-level BPE tokenizer.json (Qwen2's layout) and its tokenizer_config.json. */
export function tokenizerJson(rng: Rng): { tokenizer: Record<string, unknown>; config: Record<string, unknown> } {
  const v = bpeVocab();
  const vocab: Record<string, number> = {};
  v.tokens.forEach((t, id) => (vocab[t] = id));
  const added = v.specials.map((content, i) => ({
    id: v.tokens.length + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
  }));
  const mergeForm = rng() < 0.5 ? v.merges.map(([l, r]) => `${l} ${r}`) : v.merges;
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: rng() < 0.5 ? { type: 'NFC' } : null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
      ],
    },
    post_processor: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '',
      fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: mergeForm,
    },
  };
  const config = {
    add_bos_token: false,
    bos_token: null,
    eos_token: '<|im_end|>',
    pad_token: '<|endoftext|>',
    additional_special_tokens: ['<|im_start|>', '<|im_end|>'],
    chat_template: CHAT_TEMPLATE,
  };
  return { tokenizer, config };
}

/** Tokens of tokenizerJson's vocabulary (ids 0 … n−1), specials included. */
export const TOKENIZER_JSON_VOCAB = bpeVocab().tokens.length + 3;

/**
 * A tiny llama2.c model (dim 16, 2 layers, vocabulary 300, context 64), EAD's smaller partner
 * (dim 8, 1 layer, same vocabulary) and their tokenizer.bin: random weights, loaded and run in
 * milliseconds once the kernels are compiled (public-API, memory and hostile-text tests).
 */
export function tinyModels(seed = 5): { model: Uint8Array; smallModel: Uint8Array; tokenizer: Uint8Array } {
  const rng = mulberry32(seed);
  return {
    model: llama2cCheckpoint(rng, { ...LLAMA2C_SHAPE, dim: 16, hidden: 32, seqLen: 64 }).bytes,
    smallModel: llama2cCheckpoint(rng, { ...LLAMA2C_SHAPE, dim: 8, hidden: 16, layers: 1, seqLen: 64 }).bytes,
    tokenizer: tokenizerBin(rng).bytes,
  };
}
