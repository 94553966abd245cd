// llama2.c tokenizer.bin: int32 max_token_length, then per token: float32 score, int32 len,
// len bytes of the piece; little-endian. The vocabulary size is not stored: the model's header
// gives it, so a mismatch can only be detected as a file that ends early or has bytes left over.
import { TokenizerFormatError } from '../errors.ts';

export interface TokenizerFile {
  maxTokenLength: number;
  pieces: Uint8Array[];
  scores: Float32Array;
}

/** Upper bound on max_token_length: real vocabularies use tens of bytes; anything huge is garbage. */
const MAX_TOKEN_LENGTH_LIMIT = 1 << 16;
const ENTRY_HEADER_BYTES = 8;

export function parseTokenizerFile(bytes: Uint8Array, vocabSize: number): TokenizerFile {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const maxTokenLength = readHeader(view);
  const pieces: Uint8Array[] = new Array(vocabSize);
  const scores = new Float32Array(vocabSize);
  let offset = 4;
  for (let i = 0; i < vocabSize; i++) {
    const entry = readEntry(view, offset, i, vocabSize, maxTokenLength);
    scores[i] = entry.score;
    pieces[i] = bytes.slice(entry.start, entry.end);
    offset = entry.end;
  }
  if (offset !== view.byteLength) throw leftoverError(view, offset, vocabSize, maxTokenLength);
  return { maxTokenLength, pieces, scores };
}

function readHeader(view: DataView): number {
  if (view.byteLength < 4) {
    throw new TokenizerFormatError(
      `tokenizer.bin is ${view.byteLength} bytes; expected at least 4 for the int32 max_token_length header`,
    );
  }
  const max = view.getInt32(0, true);
  if (max < 1 || max > MAX_TOKEN_LENGTH_LIMIT) {
    throw new TokenizerFormatError(
      `tokenizer.bin header max_token_length is ${max}; expected 1..${MAX_TOKEN_LENGTH_LIMIT} (not a llama2.c tokenizer?)`,
    );
  }
  return max;
}

function readEntry(view: DataView, offset: number, i: number, vocabSize: number, maxLen: number) {
  const left = view.byteLength - offset;
  if (left === 0) {
    throw new TokenizerFormatError(
      `tokenizer.bin holds ${i} tokens but the model's vocab size is ${vocabSize} (vocab size mismatch)`,
    );
  }
  if (left < ENTRY_HEADER_BYTES) {
    throw new TokenizerFormatError(
      `tokenizer.bin is truncated: token ${i} of ${vocabSize} needs an 8-byte score+length at offset ${offset}, found ${left} bytes`,
    );
  }
  const score = view.getFloat32(offset, true);
  const len = view.getInt32(offset + 4, true);
  // llama2.c merges two pieces into a buffer of 2*max_token_length bytes: a longer piece is corrupt.
  if (len < 0 || len > maxLen) {
    throw new TokenizerFormatError(
      `tokenizer.bin token ${i} has length ${len} at offset ${offset + 4}; expected 0..${maxLen} (max_token_length)`,
    );
  }
  const start = offset + ENTRY_HEADER_BYTES;
  if (start + len > view.byteLength) {
    throw new TokenizerFormatError(
      `tokenizer.bin is truncated: token ${i} of ${vocabSize} needs ${len} piece bytes at offset ${start}, found ${view.byteLength - start}`,
    );
  }
  return { score, start, end: start + len };
}

/** Says how many whole tokens follow the expected ones, so the message names the real vocab size. */
function leftoverError(view: DataView, offset: number, vocabSize: number, maxLen: number): TokenizerFormatError {
  const extra = view.byteLength - offset;
  let count = vocabSize;
  let at = offset;
  while (at + ENTRY_HEADER_BYTES <= view.byteLength) {
    const len = view.getInt32(at + 4, true);
    if (len < 0 || len > maxLen || at + ENTRY_HEADER_BYTES + len > view.byteLength) break;
    at += ENTRY_HEADER_BYTES + len;
    count++;
  }
  const holds = at === view.byteLength ? `it holds ${count} tokens` : `they are not whole tokens`;
  return new TokenizerFormatError(
    `tokenizer.bin has ${extra} bytes left after the model's ${vocabSize} tokens (${holds}); expected the file to end there (vocab size mismatch)`,
  );
}
