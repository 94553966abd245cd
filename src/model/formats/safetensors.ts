// safetensors: a u64 little-endian header length N, N bytes of JSON, then the data. The JSON maps
// each tensor name to { dtype, shape, data_offsets: [begin, end] } (offsets relative to the data
// start, 8 + N), plus an optional "__metadata__" of strings. Only the header is read here; tensor
// bytes are read later, by range, through the same ByteReader.
import { ModelFormatError } from '../../errors.ts';
import { preview } from '../preview.ts';
import type { ByteReader, TensorType } from '../tensors.ts';

export interface SafetensorsTensor {
  dtype: TensorType;
  /** Row-major, outermost first, as stored. */
  shape: number[];
  /** Absolute byte offset in the file. */
  offset: number;
  byteLength: number;
}

/** The largest header we accept (real ones are tens of KB). */
export const MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024;

/** Bytes read at once for the header: most headers fit, so one read (one HTTP request) does. */
const FIRST_READ = 64 * 1024;

const DTYPE_SIZE: Partial<Record<string, { type: TensorType; size: number }>> = {
  F32: { type: 'F32', size: 4 },
  F16: { type: 'F16', size: 2 },
  BF16: { type: 'BF16', size: 2 },
};

/** The header's tensors, by their names in the file, validated against the file's size. */
export async function readSafetensorsHeader(
  file: ByteReader, signal?: AbortSignal,
): Promise<Map<string, SafetensorsTensor>> {
  const fail = (why: string) => new ModelFormatError(`${file.name}: ${why}`);
  if (file.size < 8) throw new ModelFormatError(`${file.name} is truncated: ${file.size} bytes, shorter than the 8-byte header length`);
  const first = await file.read(0, Math.min(file.size, FIRST_READ), signal);
  const headerLength = new DataView(first.buffer, first.byteOffset, 8).getBigUint64(0, true);
  if (headerLength > BigInt(MAX_SAFETENSORS_HEADER)) {
    throw fail(`header length ${headerLength} is over the ${MAX_SAFETENSORS_HEADER}-byte limit (not a safetensors file?)`);
  }
  const n = Number(headerLength);
  if (8 + n > file.size) {
    throw new ModelFormatError(`${file.name} is truncated: its header length ${n} is larger than the file (${file.size} bytes)`);
  }
  const headerBytes = 8 + n <= first.byteLength ? first.subarray(8, 8 + n) : await file.read(8, n, signal);

  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (cause) {
    throw fail(`the header is not valid JSON (${(cause as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw fail('the header is not a JSON object');

  const dataStart = 8 + n;
  const dataSize = file.size - dataStart;
  const tensors = new Map<string, SafetensorsTensor>();
  const spans: { name: string; begin: number; end: number }[] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const v = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
    if (typeof v !== 'object' || v === null) throw fail(`tensor ${name} is not an object`);
    if (typeof v.dtype !== 'string') throw fail(`tensor ${name} has no dtype`);
    const dtype = DTYPE_SIZE[v.dtype];
    if (!dtype) throw fail(`tensor ${name} has dtype ${v.dtype}, which is not supported (F32, F16 and BF16 are)`);
    if (!Array.isArray(v.shape) || !v.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw fail(`tensor ${name} has an invalid shape ${preview(v.shape)}`);
    }
    const offsets = v.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      throw fail(`tensor ${name} has invalid data_offsets ${preview(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) throw fail(`tensor ${name} has data_offsets [${begin}, ${end}] that end before they begin`);
    const shape = v.shape as number[];
    const byteLength = shape.reduce((a, b) => a * b, 1) * dtype.size;
    if (end - begin !== byteLength) {
      throw fail(`tensor ${name} (${v.dtype} [${shape.join(', ')}]) needs ${byteLength} bytes but data_offsets span ${end - begin}`);
    }
    if (end > dataSize) {
      throw new ModelFormatError(
        `${file.name} is truncated: tensor ${name} ends at data byte ${end} but the file has ${dataSize} bytes of data`);
    }
    tensors.set(name, { dtype: dtype.type, shape, offset: dataStart + begin, byteLength });
    spans.push({ name, begin, end });
  }

  // sorted by start, each non-empty span must begin at or after every earlier one's end
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let last: (typeof spans)[number] | null = null;
  for (const cur of spans) {
    if (cur.end === cur.begin) continue;
    if (last && cur.begin < last.end) {
      throw fail(`tensors ${last.name} [${last.begin}, ${last.end}) and ${cur.name} [${cur.begin}, ${cur.end}) overlap`);
    }
    if (!last || cur.end > last.end) last = cur;
  }
  return tensors;
}
