// Stored tensor types to float32, value for value as gguf-py dequantises them (quants.py).
//
// Block layouts (little-endian; f16 = IEEE half; a block covers `values` consecutive elements of
// a row, so a row's length is a multiple of the block size):
//   Q8_0  34 B / 32:  f16 d, 32 × i8 q                                   x = d·q
//   Q4_0  18 B / 32:  f16 d, 16 B: byte j holds q_j (low nibble), q_j+16 (high)   x = d·(q − 8)
//   Q4_1  20 B / 32:  f16 d, f16 m, 16 B nibbles as Q4_0                  x = d·q + m
//   Q4_K 144 B / 256: f16 d, f16 dmin, 12 B of 6-bit (scale, min) × 8 sub-blocks of 32, 128 B
//                     nibbles: 32-byte chunk c holds sub-block 2c (low) and 2c+1 (high)
//                                                                         x = d·sc·q − dmin·m
//   Q5_K 176 B / 256: as Q4_K plus 32 B of high bits before the nibbles: bit j of byte l is the
//                     fifth bit of element l of sub-block j
//   Q6_K 210 B / 256: 128 B low nibbles, 64 B high 2-bit pairs, 16 × i8 scales (one per 16),
//                     f16 d                                               x = d·scale·(q − 32)
// Every product here is exact in float32 (f16's 11-bit significand times at most 7 + 6 bits), so
// computing in float64 and storing into a Float32Array rounds once, as numpy's float32 does (the
// one sum, d·sc·q − dmin·m, is exact in float64 unless its terms lie 2^30 apart).
import { GpuAllocationError, ModelFormatError } from '../errors.ts';
import { isAllocationFailure } from './readers.ts';
import type { TensorInfo, TensorType } from './tensors.ts';

export interface BlockInfo {
  /** Elements per block. */
  values: number;
  /** Bytes per block. */
  bytes: number;
}

const BLOCKS: Record<TensorType, BlockInfo> = {
  F32: { values: 1, bytes: 4 },
  F16: { values: 1, bytes: 2 },
  BF16: { values: 1, bytes: 2 },
  Q8_0: { values: 32, bytes: 34 },
  Q4_0: { values: 32, bytes: 18 },
  Q4_1: { values: 32, bytes: 20 },
  Q4_K: { values: 256, bytes: 144 },
  Q5_K: { values: 256, bytes: 176 },
  Q6_K: { values: 256, bytes: 210 },
};

export function blockInfo(type: TensorType): BlockInfo {
  const b = BLOCKS[type];
  if (!b) throw new ModelFormatError(`unknown tensor type ${String(type)}`);
  return b;
}

/** Bytes that `count` elements of `type` take; count must be a whole number of blocks. */
export function tensorBytes(type: TensorType, count: number): number {
  const { values, bytes } = blockInfo(type);
  if (!Number.isSafeInteger(count) || count < 0 || count % values !== 0) {
    throw new ModelFormatError(`${count} elements are not a whole number of ${type} blocks of ${values}`);
  }
  return (count / values) * bytes;
}

let halfTable: Float32Array | null = null;

/** IEEE half-precision bits to their value. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

function halves(): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = halfToFloat(h);
  }
  return halfTable;
}

/** The 6-bit scale and min of sub-block j (0…7) of a Q4_K/Q5_K block's 12 scale bytes at `s`. */
function scaleMin(b: Uint8Array, s: number, j: number): [number, number] {
  if (j < 4) return [b[s + j] & 63, b[s + j + 4] & 63];
  return [(b[s + j + 4] & 0x0f) | ((b[s + j - 4] >> 6) << 4), (b[s + j + 4] >> 4) | ((b[s + j] >> 6) << 4)];
}

/** `count` elements of `type` from `bytes` (at least the whole blocks they fill). */
export function dequantize(type: TensorType, bytes: Uint8Array, count: number): Float32Array {
  const need = tensorBytes(type, count);
  if (bytes.byteLength < need) {
    throw new ModelFormatError(`${count} ${type} elements need ${need} bytes, got ${bytes.byteLength}`);
  }
  const b = bytes;
  // Hosts are little-endian (as WebGPU's are), so F32 bytes are the values already.
  if (type === 'F32') return new Float32Array(Uint8Array.prototype.slice.call(b, 0, 4 * count).buffer); // a copy, also of a Node Buffer
  const out = new Float32Array(count);
  const half = halves();
  const f16 = (at: number) => half[b[at] | (b[at + 1] << 8)];
  const { values, bytes: size } = BLOCKS[type];
  const nBlocks = count / values;
  switch (type) {
    case 'F16':
      for (let i = 0; i < count; i++) out[i] = f16(2 * i);
      break;
    case 'BF16': {
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) bits[i] = (b[2 * i] | (b[2 * i + 1] << 8)) << 16;
      break;
    }
    case 'Q8_0':
      for (let k = 0; k < nBlocks; k++) {
        const at = k * size;
        const d = f16(at);
        for (let i = 0; i < 32; i++) out[k * 32 + i] = d * ((b[at + 2 + i] << 24) >> 24);
      }
      break;
    case 'Q4_0':
    case 'Q4_1':
      for (let k = 0; k < nBlocks; k++) {
        const at = k * size;
        const d = f16(at);
        const m = type === 'Q4_1' ? f16(at + 2) : -8 * d;
        const qs = at + (type === 'Q4_1' ? 4 : 2);
        for (let j = 0; j < 16; j++) {
          out[k * 32 + j] = d * (b[qs + j] & 0x0f) + m;
          out[k * 32 + j + 16] = d * (b[qs + j] >> 4) + m;
        }
      }
      break;
    case 'Q4_K':
    case 'Q5_K':
      for (let k = 0; k < nBlocks; k++) {
        const at = k * size;
        const d = f16(at);
        const dmin = f16(at + 2);
        const qh = at + 16; // Q5_K only
        const qs = type === 'Q5_K' ? at + 48 : at + 16;
        for (let j = 0; j < 8; j++) {
          const [sc, mn] = scaleMin(b, at + 4, j);
          const ds = d * sc;
          const dm = dmin * mn;
          const chunk = qs + 32 * (j >> 1);
          const shift = (j & 1) * 4;
          const o = k * 256 + j * 32;
          for (let l = 0; l < 32; l++) {
            let q = (b[chunk + l] >> shift) & 0x0f;
            if (type === 'Q5_K') q |= ((b[qh + l] >> j) & 1) << 4;
            out[o + l] = ds * q - dm;
          }
        }
      }
      break;
    case 'Q6_K':
      for (let k = 0; k < nBlocks; k++) {
        const at = k * size;
        const ql = at;
        const qh = at + 128;
        const sc = at + 192;
        const d = f16(at + 208);
        for (let n = 0; n < 256; n++) {
          const h = n >> 7; // which 128-element half
          const r = n & 127;
          const lo = (b[ql + 64 * h + (r & 63)] >> (r & 64 ? 4 : 0)) & 0x0f;
          const hi = (b[qh + 32 * h + (r & 31)] >> (2 * (r >> 5))) & 3;
          const scale = (b[sc + (n >> 4)] << 24) >> 24;
          out[k * 256 + n] = d * scale * ((lo | (hi << 4)) - 32);
        }
      }
      break;
    default:
      throw new ModelFormatError(`cannot dequantise tensor type ${String(type)}`);
  }
  return out;
}

/** Reads a tensor's bytes from its file and dequantises them to float32 (row-major, as `shape`). */
export async function readTensorF32(t: TensorInfo, signal?: AbortSignal): Promise<Float32Array> {
  const count = t.shape.reduce((a, b) => a * b, 1);
  // A tensor too large for this machine's memory (a multi-GB embedding in a browser) is a typed
  // error, not the RangeError of the allocation that fails.
  const tooLarge = (e: unknown) => new GpuAllocationError(
    `tensor ${t.name} in ${t.file.name} (${t.byteLength} bytes, ${count} values as float32) does not fit in memory: ${(e as Error).message}`, e);
  let bytes: Uint8Array;
  try {
    bytes = await t.file.read(t.offset, t.byteLength, signal);
  } catch (e) {
    throw isAllocationFailure(e) ? tooLarge(e) : e;
  }
  try {
    return dequantize(t.type, bytes, count);
  } catch (e) {
    if (e instanceof ModelFormatError) throw new ModelFormatError(`tensor ${t.name} in ${t.file.name}: ${e.message}`);
    throw isAllocationFailure(e) ? tooLarge(e) : e;
  }
}
