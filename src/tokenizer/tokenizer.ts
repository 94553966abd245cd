// The llama2.c tokenizer (tokenizer.bin). encode is token-exact to run.c (karpathy/llama2.c):
// optional BOS; a dummy-prefix ' ' token for non-empty text; each UTF-8 codepoint (run.c groups a
// byte with at most 3 following continuation bytes) looked up as a piece, else its bytes as byte
// tokens (id = byte + 3); then llama2.c's best-score pair merging (merge.ts); optional EOS.
// Pieces are keyed by latin1 strings of their bytes, so lookups are byte-exact even for pieces
// that are not valid UTF-8. Duplicate pieces resolve as run.c's bsearch does on glibc
// (vocab-index.ts).
//
// decode follows run.c (a piece after BOS loses one leading space, `<0xNN>` is the byte NN) with
// two differences: BOS and EOS decode to nothing, and in the July-2023 file, which stores the
// byte tokens 3..258 as characters, they are read as raw bytes too (run.c prints the characters;
// see text-sink.ts for how decode() reads them).
import { InvalidArgumentError, TokenizerFormatError, checkInteger } from '../errors.ts';
import { type MergeVocab, mergePairs } from './merge.ts';
import { TextSink } from './text-sink.ts';
import { parseTokenizerFile } from './tokenizer-file.ts';
import { buildLookup } from './vocab-index.ts';

export interface EncodeOptions {
  /** Prepend BOS (id 1). Default true. */
  bos?: boolean;
  /** Append EOS (id 2). Default false. */
  eos?: boolean;
}

const BOS = 1 as const;
const EOS = 2 as const;
const BYTE_TOKEN_OFFSET = 3; // ids 0..2 are <unk>, <s>, </s>; byte b is id b + 3
const MIN_VOCAB = BYTE_TOKEN_OFFSET + 256;
const MAX_VOCAB = 1 << 24;
const SPACE = 0x20;
const EMPTY = new Uint8Array(0);
const utf8Encoder = new TextEncoder();

export class Tokenizer {
  readonly vocabSize: number;
  readonly bosId: 1 = BOS;
  readonly eosId: 2 = EOS;
  readonly maxTokenLength: number;
  /** True for the July-2023 file format, whose byte tokens 0x80..0xFF double as Latin-1 characters. */
  readonly hasAmbiguousBytes: boolean;
  private readonly pieces: Uint8Array[];
  private readonly scores: Float32Array;
  private readonly keys: string[];
  private readonly lookup: Map<string, number>;
  /** Raw byte of each byte token, -1 for other tokens. */
  private readonly byteValue: Int16Array;
  /** July-2023 byte tokens 0x80..0xFF, whose ids llama2.c also uses for Latin-1 characters. */
  private readonly ambiguous: Uint8Array;
  /** Piece -> id preferring a regular token over a byte token (what the model itself emits). */
  private readonly preferred: Map<string, number>;
  private readonly mergeVocab: MergeVocab;

  private constructor(pieces: Uint8Array[], scores: Float32Array, maxTokenLength: number) {
    this.vocabSize = pieces.length;
    this.pieces = pieces;
    this.scores = scores;
    this.maxTokenLength = maxTokenLength;
    this.keys = pieces.map(latin1);
    this.lookup = buildLookup(this.keys);
    this.byteValue = new Int16Array(pieces.length).fill(-1);
    this.ambiguous = new Uint8Array(pieces.length);
    pieces.forEach((piece, id) => this.classifyByteToken(piece, id));
    this.hasAmbiguousBytes = this.ambiguous.includes(1);
    this.preferred = this.preferRegular();
    const lookup = this.lookup;
    this.mergeVocab = { keys: this.keys, scores, lookup: (key) => lookup.get(key) };
  }

  static fromBytes(bytes: ArrayBuffer | Uint8Array, vocabSize: number): Tokenizer {
    checkInteger('vocabSize', vocabSize, MIN_VOCAB, MAX_VOCAB);
    let view: Uint8Array;
    if (bytes instanceof Uint8Array) view = bytes;
    else if (bytes instanceof ArrayBuffer) view = new Uint8Array(bytes);
    else throw new InvalidArgumentError(`tokenizer bytes must be an ArrayBuffer or Uint8Array, got ${describe(bytes)}`);
    const file = parseTokenizerFile(view, vocabSize);
    return new Tokenizer(file.pieces, file.scores, file.maxTokenLength);
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') throw new InvalidArgumentError(`text must be a string, got ${describe(text)}`);
    return this.encodeBytes(utf8Encoder.encode(text), options);
  }

  /**
   * encode() on raw bytes, e.g. invalid UTF-8, for which run.c's grouping quirks show: a lead byte
   * takes at most 3 continuation bytes, and stray continuation bytes form groups of their own.
   * A NUL byte (which a C string cannot hold) is the byte token 0x00.
   */
  encodeBytes(bytes: Uint8Array, options: EncodeOptions = {}): number[] {
    if (!(bytes instanceof Uint8Array)) throw new InvalidArgumentError(`bytes must be a Uint8Array, got ${describe(bytes)}`);
    if (typeof options !== 'object' || options === null) {
      throw new InvalidArgumentError(`options must be an object, got ${describe(options)}`);
    }
    const bos = flag('options.bos', options.bos, true);
    const eos = flag('options.eos', options.eos, false);
    const ids: number[] = bos ? [BOS] : []; // run.c merges with BOS in the sequence
    if (bytes.length > 0) ids.push(this.dummyPrefix());
    this.appendCodepoints(bytes, ids);
    const merged = mergePairs(ids, this.mergeVocab);
    if (eos) merged.push(EOS);
    return merged;
  }

  /** The piece's bytes as stored in tokenizer.bin (a copy). */
  piece(id: number): Uint8Array {
    return this.pieces[this.checkId('id', id)].slice();
  }

  /** Score of a piece (merge priority). */
  score(id: number): number {
    return this.scores[this.checkId('id', id)];
  }

  /** The bytes `token` prints after `prev`, as run.c's decode; byte tokens are the raw byte. */
  decodeBytes(prev: number, token: number): Uint8Array {
    checkInteger('prev', prev, -1, this.vocabSize - 1);
    this.checkId('token', token);
    if (token === BOS || token === EOS) return EMPTY;
    const piece = this.pieces[token];
    if (prev === BOS && piece[0] === SPACE) {
      const rest = piece.subarray(1);
      const byte = hexBytePiece(rest);
      return byte === undefined ? rest.slice() : Uint8Array.of(byte);
    }
    const byte = this.byteValue[token];
    return byte >= 0 ? Uint8Array.of(byte) : piece.slice();
  }

  /** Text of a whole sequence; the first token is decoded as following no token (-1). */
  decode(tokens: readonly number[]): string {
    if (!Array.isArray(tokens)) throw new InvalidArgumentError(`tokens must be an array, got ${describe(tokens)}`);
    const stream = new TokenStreamDecoder(this);
    let text = '';
    tokens.forEach((token, i) => {
      text += stream.push(i === 0 ? -1 : tokens[i - 1], token);
    });
    return text + stream.flush();
  }

  /**
   * Id of `piece` as one whole vocabulary piece, e.g. '.' ',' '\n'. Where a piece is stored twice
   * (byte token and regular token) this is the regular id, which is what the model emits, even
   * where llama2.c's encode would pick the byte token. A single byte with no piece of its own maps
   * to its byte token.
   */
  tokenIdOf(piece: string): number | undefined {
    if (typeof piece !== 'string') throw new InvalidArgumentError(`piece must be a string, got ${describe(piece)}`);
    const bytes = utf8Encoder.encode(piece);
    const id = this.preferred.get(latin1(bytes));
    if (id !== undefined || bytes.length !== 1) return id;
    const byteId = bytes[0] + BYTE_TOKEN_OFFSET;
    return this.byteValue[byteId] === bytes[0] ? byteId : undefined;
  }

  /** @internal Byte token whose id llama2.c also uses for a Latin-1 character (see text-sink.ts). */
  isAmbiguousByte(token: number): boolean {
    return this.ambiguous[token] === 1;
  }

  private dummyPrefix(): number {
    const id = this.lookup.get(' ');
    if (id === undefined) {
      throw new TokenizerFormatError("tokenizer has no ' ' piece; expected one for llama2.c's dummy prefix");
    }
    return id;
  }

  /** run.c's loop: a group is a byte plus up to 3 following continuation bytes. */
  private appendCodepoints(bytes: Uint8Array, out: number[]): void {
    let i = 0;
    while (i < bytes.length) {
      let end = i + 1;
      while (end < bytes.length && end - i < 4 && (bytes[end] & 0xc0) === 0x80) end++;
      const group = bytes.subarray(i, end);
      const id = this.lookup.get(latin1(group));
      if (id !== undefined) out.push(id);
      else for (const b of group) out.push(b + BYTE_TOKEN_OFFSET);
      i = end;
    }
  }

  private classifyByteToken(piece: Uint8Array, id: number): void {
    const hex = hexBytePiece(piece);
    if (hex !== undefined) {
      this.byteValue[id] = hex;
      return;
    }
    // July-2023 export: byte b stored as the UTF-8 of the character U+00bb, at id b + 3.
    const b = id - BYTE_TOKEN_OFFSET;
    if (b < 0 || b > 0xff || !bytesEqual(piece, utf8Encoder.encode(String.fromCharCode(b)))) return;
    this.byteValue[id] = b;
    if (b >= 0x80) this.ambiguous[id] = 1;
  }

  private preferRegular(): Map<string, number> {
    const preferred = new Map<string, number>();
    this.keys.forEach((key, id) => {
      const seen = preferred.get(key);
      if (seen === undefined || (this.byteValue[seen] >= 0 && this.byteValue[id] < 0)) preferred.set(key, id);
    });
    return preferred;
  }

  private checkId(name: string, id: number): number {
    return checkInteger(name, id, 0, this.vocabSize - 1);
  }
}

/**
 * Streaming decode: push each (prev, token) as it is generated (prev = -1 for the first); returns
 * the text that became complete, holding back an unfinished UTF-8 sequence (e.g. the first bytes
 * of an emoji). With the July-2023 file a trailing character in U+00C2..U+00F4 ('é') also waits
 * for the next token, which may turn it back into the lead byte of a UTF-8 sequence.
 */
export class TokenStreamDecoder {
  private readonly tokenizer: Tokenizer;
  private readonly sink: TextSink;

  constructor(tokenizer: Tokenizer) {
    if (!(tokenizer instanceof Tokenizer)) {
      throw new InvalidArgumentError(`TokenStreamDecoder needs a Tokenizer, got ${describe(tokenizer)}`);
    }
    this.tokenizer = tokenizer;
    this.sink = new TextSink(tokenizer.hasAmbiguousBytes);
  }

  push(prev: number, token: number): string {
    const bytes = this.tokenizer.decodeBytes(prev, token);
    if (this.tokenizer.isAmbiguousByte(token) && bytes.length === 1) return this.sink.writeAmbiguous(bytes[0]);
    return this.sink.write(bytes);
  }

  /** Ends the sequence: returns whatever was held back (U+FFFD for an unfinished UTF-8 sequence). */
  flush(): string {
    return this.sink.end();
  }
}

/** run.c's sscanf(piece, "<0x%02hhX>"): "<0x" then one or two hex digits (the '>' is not checked). */
function hexBytePiece(piece: Uint8Array): number | undefined {
  if (piece.length < 4 || piece[0] !== 0x3c || piece[1] !== 0x30 || piece[2] !== 0x78) return undefined;
  const hi = hexDigit(piece[3]);
  if (hi < 0) return undefined;
  const lo = piece.length > 4 ? hexDigit(piece[4]) : -1;
  return lo < 0 ? hi : hi * 16 + lo;
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x61 + 10 : -1;
}

/** Bytes as a latin1 string: one UTF-16 code unit per byte, so string order is byte order. */
function latin1(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
  return s;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function flag(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new InvalidArgumentError(`${name} must be a boolean, got ${describe(value)}`);
  return value;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return value.constructor?.name ?? 'object';
  return `${typeof value} ${String(value)}`;
}
