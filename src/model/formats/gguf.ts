// GGUF (v2 and v3, llama.cpp's single-file format) to ModelFiles.
//
//   'GGUF', u32 version, u64 tensor count, u64 kv count,
//   kv × (string key, u32 value type, value),
//   tensor × (string name, u32 n_dims, n_dims × u64 ne, u32 type, u64 offset),
//   padding to general.alignment (default 32), then the tensor data; offsets are relative to it.
// Strings are a u64 byte length and UTF-8; an array value is a u32 element type, a u64 count and
// the elements. ne[0] is the contiguous (innermost) length, so a shape here is ne reversed.
//
// The header is read in growing windows (never the whole file), and every count or length is
// checked against the bytes left in the file before anything is allocated for it.
import { AbortedError, ModelFormatError } from '../../errors.ts';
import { type Architecture, type ModelConfig, type RopeLayout, TENSOR, expectedTensors } from '../config.ts';
import { blockInfo, readTensorF32 } from '../dequant.ts';
import { bare, preview } from '../preview.ts';
import type { ByteReader, ModelFiles, TensorInfo, TensorType } from '../tensors.ts';

/** GGML type ids of the tensor types we read. */
const GGML_TYPES: Record<number, TensorType> = {
  0: 'F32', 1: 'F16', 2: 'Q4_0', 3: 'Q4_1', 8: 'Q8_0', 12: 'Q4_K', 13: 'Q5_K', 14: 'Q6_K', 30: 'BF16',
};

const enum V {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
}
/** Smallest encoding of a value of each type (an array: its type and count). */
const MIN_BYTES = [1, 1, 2, 2, 4, 4, 4, 1, 8, 12, 8, 8, 8];

const MAX_STRING_BYTES = 64 << 20;
/** One header item (a key/value, a tensor info) larger than this is refused: a string at most, plus room. */
const MAX_ITEM_BYTES = MAX_STRING_BYTES + (1 << 20);
/**
 * Entries of one metadata value, nested arrays counted together (the largest vocabularies and
 * merge lists have a few hundred thousand): more is refused before it is parsed, so a header that
 * declares 2^31 entries in a huge file neither hangs nor exhausts memory.
 */
const MAX_ARRAY_ENTRIES = 1 << 22;
const MAX_ARRAY_DEPTH = 4;
const MAX_DIMS = 4;
const FIRST_CHUNK = 1 << 20;
const MAX_CHUNK = 16 << 20;

const SHORT = Symbol('window too short');
const utf8 = new TextDecoder('utf-8');

/** The header's bytes as a sliding window over the file; sync reads throw SHORT past its end. */
class Cursor {
  pos = 0;
  private win = new Uint8Array(0);
  private view = new DataView(this.win.buffer);
  private winStart = 0;
  private wantEnd = 0;
  private chunk = FIRST_CHUNK;
  /** Array entries of the value being parsed (MAX_ARRAY_ENTRIES). */
  private entries = 0;

  constructor(readonly file: ByteReader, private readonly signal?: AbortSignal) {}

  fail(why: string): never {
    throw new ModelFormatError(`${this.file.name} (GGUF): ${why}`);
  }

  /** Bytes from pos to the end of the file. */
  get left(): number {
    return this.file.size - this.pos;
  }

  private want(n: number): number {
    if (n > this.left) this.fail(`header runs past the end of the file (${n} bytes wanted at offset ${this.pos}, file is ${this.file.size} bytes)`);
    const at = this.pos - this.winStart;
    if (at + n > this.win.length) {
      this.wantEnd = this.pos + n;
      throw SHORT;
    }
    this.pos += n;
    return at;
  }

  /** Parses one item synchronously, reading a larger window and starting over when it runs out. */
  async item<T>(parse: () => T): Promise<T> {
    const start = this.pos;
    for (;;) {
      try {
        return parse();
      } catch (e) {
        if (e !== SHORT) throw e;
        this.pos = start;
        await this.grow(start, this.wantEnd);
      }
    }
  }

  /** Makes the window start at `from` and reach at least `to` (reads grow from 1 MiB to 16 MiB). */
  private async grow(from: number, to: number): Promise<void> {
    if (this.signal?.aborted) throw new AbortedError(`reading ${this.file.name} was aborted`);
    if (to - from > MAX_ITEM_BYTES) this.fail(`a header entry at offset ${from} is over ${MAX_ITEM_BYTES >> 20} MiB`);
    const have = this.winStart + this.win.length;
    const keep = Math.max(0, have - from);
    const size = Math.min(this.file.size - from, Math.max(to - from, keep + this.chunk));
    this.chunk = Math.min(2 * this.chunk, MAX_CHUNK);
    const win = new Uint8Array(size);
    if (keep > 0) win.set(this.win.subarray(from - this.winStart));
    win.set(await this.file.read(from + keep, size - keep, this.signal), keep);
    this.win = win;
    this.view = new DataView(win.buffer);
    this.winStart = from;
  }

  u8 = () => this.win[this.want(1)];
  u32 = () => this.view.getUint32(this.want(4), true);
  /** A u64 that must be a safe integer (a count, a length, an offset). */
  size(what: string): number {
    const at = this.want(8);
    const hi = this.view.getUint32(at + 4, true);
    if (hi > 0x1fffff) this.fail(`${what} ${this.view.getBigUint64(at, true)} is too large`);
    return hi * 2 ** 32 + this.view.getUint32(at, true);
  }

  string(what: string): string {
    const n = this.size(`${what} length`);
    if (n > this.left || n > MAX_STRING_BYTES) this.fail(`${what} claims ${n} bytes (${this.left} left in the file)`);
    const at = this.want(n);
    return n <= 32 ? shortUtf8(this.win, at, n) : utf8.decode(this.win.subarray(at, at + n));
  }

  /** An array's element type and count, checked against the bytes left. */
  private arrayHead(what: string, depth: number): [number, number] {
    const elem = this.u32();
    const count = this.size(`${what}: array length`);
    if (elem > V.F64) this.fail(`${what}: unknown array element type ${elem}`);
    if (elem === V.ARRAY && depth >= MAX_ARRAY_DEPTH) this.fail(`${what}: arrays nested deeper than ${MAX_ARRAY_DEPTH}`);
    if (count * MIN_BYTES[elem] > this.left) this.fail(`${what}: array of ${count} entries does not fit in the file`);
    this.entries += count;
    if (this.entries > MAX_ARRAY_ENTRIES) this.fail(`${what}: arrays of over ${MAX_ARRAY_ENTRIES} entries are not supported`);
    return [elem, count];
  }

  /**
   * A top-level array value (after its u32 type), element by element: a window that runs out
   * mid-array grows and parsing resumes at the element it stopped in (token lists are megabytes).
   */
  async array(what: string): Promise<unknown[]> {
    const [elem, count] = await this.item(() => {
      this.entries = 0;
      return this.arrayHead(what, 0);
    });
    const out: unknown[] = new Array(count);
    let i = 0;
    while (i < count) {
      let start = this.pos;
      let entries = this.entries;
      try {
        for (; i < count; i++) {
          start = this.pos;
          entries = this.entries;
          out[i] = this.value(elem, what, 1);
        }
      } catch (e) {
        if (e !== SHORT) throw e;
        this.pos = start;
        this.entries = entries; // the element is parsed again
        await this.grow(start, this.wantEnd);
      }
    }
    return out;
  }

  value(type: number, what: string, depth = 0): unknown {
    const dv = this.view;
    switch (type) {
      case V.U8: return this.u8();
      case V.I8: return dv.getInt8(this.want(1));
      case V.U16: return dv.getUint16(this.want(2), true);
      case V.I16: return dv.getInt16(this.want(2), true);
      case V.U32: return this.u32();
      case V.I32: return dv.getInt32(this.want(4), true);
      case V.F32: return dv.getFloat32(this.want(4), true);
      case V.BOOL: return this.u8() !== 0;
      case V.STRING: return this.string(what);
      case V.U64: return bigToNumber(dv.getBigUint64(this.want(8), true));
      case V.I64: return bigToNumber(dv.getBigInt64(this.want(8), true));
      case V.F64: return dv.getFloat64(this.want(8), true);
      case V.ARRAY: {
        const [elem, count] = this.arrayHead(what, depth);
        const out: unknown[] = new Array(count);
        for (let i = 0; i < count; i++) out[i] = this.value(elem, what, depth + 1);
        return out;
      }
      default: return this.fail(`${what}: unknown value type ${type}`);
    }
  }
}

/** Decodes a short UTF-8 string by hand (token strings: TextDecoder's per-call cost dominates there). */
const units: number[] = [];
function shortUtf8(b: Uint8Array, at: number, n: number): string {
  units.length = 0;
  for (let i = at, end = at + n; i < end;) {
    const c = b[i];
    if (c < 0x80) {
      units.push(c);
      i++;
      continue;
    }
    const len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
    if (len === 0 || i + len > end) return utf8.decode(b.subarray(at, at + n));
    let cp = c & (0xff >> (len + 1));
    for (let k = 1; k < len; k++) {
      const cc = b[i + k];
      if ((cc & 0xc0) !== 0x80) return utf8.decode(b.subarray(at, at + n));
      cp = (cp << 6) | (cc & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF are left to TextDecoder's rules.
    if (cp < [0, 0, 0x80, 0x800, 0x10000][len] || (cp >= 0xd800 && cp < 0xe000) || cp > 0x10ffff) {
      return utf8.decode(b.subarray(at, at + n));
    }
    if (cp >= 0x10000) units.push(0xd800 + ((cp - 0x10000) >> 10), 0xdc00 + ((cp - 0x10000) & 0x3ff));
    else units.push(cp);
    i += len;
  }
  return String.fromCharCode(...units);
}

function bigToNumber(v: bigint): number | bigint {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v;
}

/** A float32 as the shortest decimal that rounds back to it (1e-5 rather than 9.99999974738e-6). */
function shortF32(x: number): number {
  for (let p = 1; p <= 9; p++) {
    const y = Number(x.toPrecision(p));
    if (Math.fround(y) === x) return y;
  }
  return x;
}

interface RawTensor {
  name: string;
  ne: number[];
  typeId: number;
  offset: number;
}

/** Reads a GGUF file's header and describes its model; tensor data is read later, on demand. */
export async function readGguf(file: ByteReader, signal?: AbortSignal): Promise<ModelFiles> {
  const c: Cursor = new Cursor(file, signal);
  const [nTensors, nKv] = await c.item(() => {
    const magic = [c.u8(), c.u8(), c.u8(), c.u8()];
    if (String.fromCharCode(...magic) !== 'GGUF') {
      c.fail(`magic is ${JSON.stringify(String.fromCharCode(...magic))}, not "GGUF"`);
    }
    const version = c.u32();
    if (version !== 2 && version !== 3) c.fail(`GGUF version ${version} is not supported (2 and 3 are)`);
    return [c.size('tensor count'), c.size('key/value count')];
  });
  // A kv takes at least 8 + 4 + 1 bytes, a tensor info 8 + 4 + 8 + 4 + 8.
  if (nKv * 13 > c.left) c.fail(`${nKv} key/value pairs do not fit in the file`);
  if (nTensors * 32 > c.left) c.fail(`${nTensors} tensors do not fit in the file`);

  const meta = new Map<string, unknown>();
  for (let i = 0; i < nKv; i++) {
    const [key, type] = await c.item(() => [c.string('metadata key'), c.u32()] as const);
    if (meta.has(key)) c.fail(`metadata key ${key} appears twice`);
    if (type === V.ARRAY) meta.set(key, await c.array(key));
    else meta.set(key, await c.item(() => (type === V.F32 ? shortF32(c.value(type, key) as number) : c.value(type, key))));
  }

  const raw: RawTensor[] = [];
  for (let i = 0; i < nTensors; i++) {
    raw.push(await c.item(() => {
      const name = c.string('tensor name');
      const nDims = c.u32();
      if (nDims < 1 || nDims > MAX_DIMS) c.fail(`tensor ${name} has ${nDims} dimensions`);
      const ne: number[] = [];
      for (let d = 0; d < nDims; d++) ne.push(c.size(`tensor ${name} dimension`));
      return { name, ne, typeId: c.u32(), offset: c.size(`tensor ${name} offset`) };
    }));
  }

  const alignment = meta.get('general.alignment') ?? 32;
  if (typeof alignment !== 'number' || !Number.isInteger(alignment) || alignment < 1 || alignment > 1 << 20 || (alignment & (alignment - 1)) !== 0) {
    c.fail(`general.alignment ${bare(alignment)} is not a power of two`);
  }
  const dataStart = Math.ceil(c.pos / alignment) * alignment;
  const tensors = new Map<string, TensorInfo>();
  for (const r of raw) {
    if (tensors.has(r.name)) c.fail(`tensor ${r.name} appears twice`);
    tensors.set(r.name, tensorInfo(c, r, dataStart, alignment));
  }
  checkOverlaps(c, [...tensors.values()]);

  const config = await configFrom(c, meta, tensors, signal);
  // Every layer has at least 9 tensors: a block count the file cannot back is refused before the
  // expected names are listed (2^24 layers would be hundreds of millions of names).
  if (config.nLayers * 9 > tensors.size) c.fail(`block_count ${config.nLayers} needs more tensors than the file's ${tensors.size}`);
  // The model's tensors only (rope_freqs.weight went into the config; others are not ours to run).
  const model = new Map<string, TensorInfo>();
  for (const [name, shape] of expectedTensors(config)) {
    const t = tensors.get(name);
    if (!t) c.fail(`tensor ${name} is missing (${config.architecture}, ${config.nLayers} layers)`);
    if (t.shape.length !== shape.length || t.shape.some((n, i) => n !== shape[i])) {
      c.fail(`tensor ${name} has shape [${t.shape}], expected [${shape}]`);
    }
    model.set(name, t);
  }

  const tokenizerMeta = Object.fromEntries([...meta].filter(([k]) => k.startsWith('tokenizer.')));
  return {
    format: 'gguf',
    config,
    tensors: model,
    tokenizer: { kind: 'gguf', metadata: tokenizerMeta },
    dtype: dominantType(model),
  };
}

function tensorInfo(c: Cursor, r: RawTensor, dataStart: number, alignment: number): TensorInfo {
  const type = GGML_TYPES[r.typeId];
  if (!type) c.fail(`tensor ${r.name} has type ${r.typeId}, which we do not read (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K are)`);
  const { values, bytes } = blockInfo(type);
  if (r.ne.some((n) => n < 1)) c.fail(`tensor ${r.name} has dimensions [${r.ne}]`);
  if (r.ne[0] % values !== 0) c.fail(`tensor ${r.name}: row length ${r.ne[0]} is not a multiple of the ${type} block (${values})`);
  let count = 1;
  for (const n of r.ne) {
    count *= n;
    if (count > c.file.size * 8) c.fail(`tensor ${r.name} of dimensions [${r.ne}] is larger than the file`);
  }
  const byteLength = (count / values) * bytes;
  if (r.offset % alignment !== 0) c.fail(`tensor ${r.name} offset ${r.offset} is not a multiple of the alignment ${alignment}`);
  const offset = dataStart + r.offset;
  if (offset + byteLength > c.file.size) {
    c.fail(`tensor ${r.name} (${byteLength} bytes at ${offset}) runs past the end of the file (${c.file.size} bytes): truncated?`);
  }
  return { name: r.name, type, shape: [...r.ne].reverse(), file: c.file, offset, byteLength };
}

function checkOverlaps(c: Cursor, list: TensorInfo[]): void {
  const sorted = [...list].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1];
    const b = sorted[i];
    if (b.offset < a.offset + a.byteLength) c.fail(`tensors ${a.name} and ${b.name} overlap`);
  }
}

/** The type that holds the most bytes of the model's tensors. */
/** The type most parameters are stored in (a Q4_K_M mix is Q4_K, though its Q6_K tensors may weigh more). */
function dominantType(tensors: Map<string, TensorInfo>): TensorType {
  const bytes = new Map<TensorType, number>();
  for (const t of tensors.values()) bytes.set(t.type, (bytes.get(t.type) ?? 0) + t.shape.reduce((a, b) => a * b, 1));
  let best: TensorType = 'F32';
  let most = -1;
  for (const [type, n] of bytes) if (n > most) [best, most] = [type, n];
  return best;
}

const ROPE: Record<string, RopeLayout> = {
  // llama.cpp's converter permutes HF's q/k rows back into adjacent pairs for `llama`.
  llama: 'interleaved',
  qwen2: 'half',
  qwen3: 'half',
};

async function configFrom(
  c: Cursor, meta: Map<string, unknown>, tensors: Map<string, TensorInfo>, signal?: AbortSignal,
): Promise<ModelConfig> {
  const arch = meta.get('general.architecture');
  if (typeof arch !== 'string') c.fail('general.architecture is missing');
  if (!Object.hasOwn(ROPE, arch)) c.fail(`architecture ${preview(arch)} is not supported (llama, qwen2, qwen3 are)`);
  const num = (key: string, fallback?: number, integer = true): number => {
    const v = meta.get(`${arch}.${key}`) ?? fallback;
    if (v === undefined) c.fail(`${arch}.${key} is missing`);
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || (integer && (!Number.isInteger(v) || v > 1 << 24))) {
      c.fail(`${arch}.${key} = ${bare(v)} is not a positive ${integer ? 'integer' : 'number'}`);
    }
    return v;
  };
  const dim = num('embedding_length');
  const nHeads = num('attention.head_count');
  const nKvHeads = num('attention.head_count_kv', nHeads);
  if (nHeads % nKvHeads !== 0) c.fail(`head_count ${nHeads} is not a multiple of head_count_kv ${nKvHeads}`);
  const headDim = num('attention.key_length', dim / nHeads);
  if (headDim % 2 !== 0) c.fail(`head size ${headDim} is odd`);
  const valueLength = num('attention.value_length', headDim);
  if (valueLength !== headDim) c.fail(`value_length ${valueLength} differs from key_length ${headDim}`);
  const scaling = meta.get(`${arch}.rope.scaling.type`);
  if (scaling !== undefined && scaling !== 'none') c.fail(`RoPE scaling ${preview(scaling)} is not supported`);

  const embd = tensors.get(TENSOR.embedding);
  if (!embd || embd.shape.length !== 2) c.fail(`tensor ${TENSOR.embedding} is missing or not a matrix`);

  let ropeFreqFactors: number[] | null = null;
  const freqs = tensors.get('rope_freqs.weight');
  if (freqs) {
    if (freqs.type !== 'F32' || freqs.shape.length !== 1 || freqs.shape[0] !== headDim / 2) {
      c.fail(`rope_freqs.weight is ${freqs.type} [${freqs.shape}], expected F32 [${headDim / 2}]`);
    }
    ropeFreqFactors = Array.from(await readTensorF32(freqs, signal));
    if (ropeFreqFactors.some((f) => !(f > 0) || !Number.isFinite(f))) c.fail('rope_freqs.weight has a value that is not positive');
  }

  const id = (key: string): number | null => {
    const v = meta.get(key);
    return typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : null;
  };
  // BOS is what a prompt starts with: none when the file says not to add it.
  const bosId = meta.get('tokenizer.ggml.add_bos_token') === false ? null : id('tokenizer.ggml.bos_token_id');
  // Generation ends on EOS and on the end-of-turn token (chat models) when it differs.
  const eosIds = [id('tokenizer.ggml.eos_token_id'), id('tokenizer.ggml.eot_token_id')]
    .filter((v, i, all): v is number => v !== null && all.indexOf(v) === i);

  return {
    architecture: arch as Architecture,
    dim,
    hiddenDim: num('feed_forward_length'),
    nLayers: num('block_count'),
    nHeads,
    nKvHeads,
    headDim,
    vocabSize: embd.shape[0],
    normEps: num('attention.layer_norm_rms_epsilon', undefined, false),
    ropeTheta: num('rope.freq_base', 10000, false),
    ropeLayout: ROPE[arch],
    ropeFreqFactors,
    qkvBias: tensors.has(TENSOR.layer(0, 'attn_q.bias')),
    qkNorm: tensors.has(TENSOR.layer(0, 'attn_q_norm.weight')),
    tiedEmbeddings: !tensors.has(TENSOR.output),
    bosId,
    eosIds,
    trainedContext: num('context_length'),
  };
}
