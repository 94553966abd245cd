// Weight matrices in the GPU layouts of shaders/matmul_fmt_*.wgsl, built from stored blocks, and
// which layout each tensor gets.
//
// Every non-f32 layout keeps GGUF's block semantics (the kernels dequantise each value to the
// float32 of dequant.ts, bit for bit) but re-lays the blocks at upload, "transposed by blocks":
// the u32 words of neighbouring output columns are neighbours, as the f32 layout's vec4s are
// ([k][n/4] vec4, model/weights.ts), so a GEMV invocation owning 4 columns reads one vec4<u32>
// per 4 (Q8_0), 8 (4-bit) or 2 (16-bit) values of k for all four. Sections (16-byte words) of one
// buffer, N4 = ⌈n/4⌉ (columns past n are zero), N8 = ⌈N4/2⌉:
//
//   f16/bf16  W  [k/2][N4]   u32 = values k 2r (low half), 2r + 1 (high)           2 B/value
//   q8_0      QS [k/4][N4]   u32 = 4 × i8 q, k 4r + i in byte i;                   34 B/32
//             SD [k/32][N8]  f16 d, two columns per u32
//   q4_0      QS [k/8][N4]   u32 = 8 nibbles q, k 8r + i in nibble i;              18 B/32
//             SD [k/32][N8]  f16 d
//   q4_k/q5_k QS [k/8][N4]   low 4 bits of q as q4_0;                               148 / 180 B/256
//             DM [k/256][N4] f16 d | f16 dmin << 16                                 (GGUF 144 / 176)
//             SM [k/256][4][N4] bytes: sc of sub-blocks 0–3, 4–7, then m of 0–3, 4–7
//             QH [k/32][N4]  (q5_k) bit l = fifth bit of element l of the sub-block
//   q6_k      QL [k/8][N4]   low 4 bits of q; QH [k/16][N4] high 2 bits, element i at bit 2i;
//             SC [k/64][N4]  4 × i8 scales; SD [k/256][N8] f16 d                    210 B/256
//
// K-quants' 6-bit packed (scale, min) pairs are pre-decoded to one byte each (16 bytes per
// super-block instead of 12: +4 bytes per 256 values, 2.8 % of Q4_K), so the kernel reads a byte
// with one shift and mask; d·sc and dmin·m are still formed in the kernel (exact in f32), so no
// f32 scale per sub-block is stored (which would cost 8 bytes per 32 values, +44 % of Q4_K).
import {
  FORMAT_K_MULTIPLE, type MatrixFormat, type WeightMatrix,
} from '../gpu/kernels.ts';
import { InvalidArgumentError, ModelFormatError } from '../errors.ts';
import { tensorBytes } from './dequant.ts';
import type { TensorType } from './tensors.ts';

export type { MatrixFormat, WeightMatrix };

/**
 * `loadModel({ weights })`: the GPU format of the weight matrices (embedding, projections,
 * classifier). 'q8' and 'q4' quantise to Q8_0 / Q4_0 blocks (quantize.ts), 'f16' to IEEE halves
 * (BF16 tensors stay BF16), 'f32' dequantises everything. Unset: each tensor's own type where a
 * kernel reads it (GGUF Q8_0, Q4_0, Q4_K, Q5_K, Q6_K, F16, BF16; HF F16/BF16), else f32.
 */
export type WeightsOption = 'q8' | 'q4' | 'f16' | 'f32';
export const WEIGHTS_OPTIONS: readonly WeightsOption[] = ['q8', 'q4', 'f16', 'f32'];

export function checkWeightsOption(w: unknown): WeightsOption | undefined {
  if (w === undefined) return undefined;
  if (typeof w === 'string' && (WEIGHTS_OPTIONS as readonly string[]).includes(w)) return w as WeightsOption;
  throw new InvalidArgumentError(`weights must be one of ${WEIGHTS_OPTIONS.map((o) => `'${o}'`).join(', ')}, got ${String(w)}`);
}

/** The stored type whose blocks each non-f32 format re-lays. */
export const FORMAT_SOURCE: Record<Exclude<MatrixFormat, 'f32'>, TensorType> = {
  f16: 'F16', bf16: 'BF16', q8_0: 'Q8_0', q4_0: 'Q4_0', q4_k: 'Q4_K', q5_k: 'Q5_K', q6_k: 'Q6_K',
};
const NATIVE: Partial<Record<TensorType, MatrixFormat>> = {
  F16: 'f16', BF16: 'bf16', Q8_0: 'q8_0', Q4_0: 'q4_0', Q4_K: 'q4_k', Q5_K: 'q5_k', Q6_K: 'q6_k',
};

/**
 * The GPU format of a matrix stored as `type` with rows of `k` values. A format whose blocks do
 * not tile k (q8/q4 need k % 32 = 0, 16-bit k % 8 = 0) falls back to f16, then f32. (Q4_1 has no
 * kernel: f32.)
 */
export function targetFormat(type: TensorType, option: WeightsOption | undefined, k: number): MatrixFormat {
  const want: MatrixFormat = option === undefined ? NATIVE[type] ?? 'f32'
    : option === 'f32' ? 'f32'
    : option === 'q8' ? 'q8_0'
    : option === 'q4' ? 'q4_0'
    : type === 'BF16' ? 'bf16' : 'f16';
  if (k % FORMAT_K_MULTIPLE[want] === 0) return want;
  const half: MatrixFormat = type === 'BF16' ? 'bf16' : 'f16';
  return want !== half && k % FORMAT_K_MULTIPLE[half] === 0 ? half : 'f32';
}

interface Section {
  name: string;
  /** 16-byte words. */
  words: number;
}

function sections(format: Exclude<MatrixFormat, 'f32'>, k: number, n: number): Section[] {
  const n4 = Math.ceil(n / 4);
  const n8 = Math.ceil(n4 / 2);
  switch (format) {
    case 'f16':
    case 'bf16':
      return [{ name: 'W', words: (k / 2) * n4 }];
    case 'q8_0':
      return [{ name: 'QS', words: (k / 4) * n4 }, { name: 'SD', words: (k / 32) * n8 }];
    case 'q4_0':
      return [{ name: 'QS', words: (k / 8) * n4 }, { name: 'SD', words: (k / 32) * n8 }];
    case 'q4_k':
    case 'q5_k':
      return [
        { name: 'QS', words: (k / 8) * n4 }, { name: 'DM', words: (k / 256) * n4 }, { name: 'SM', words: (k / 256) * 4 * n4 },
        ...(format === 'q5_k' ? [{ name: 'QH', words: (k / 32) * n4 }] : []),
      ];
    case 'q6_k':
      return [
        { name: 'QL', words: (k / 8) * n4 }, { name: 'QH', words: (k / 16) * n4 }, { name: 'SC', words: (k / 64) * n4 },
        { name: 'SD', words: (k / 256) * n8 },
      ];
  }
}

/** Bytes of an n × k matrix in `format` on the GPU. */
export function matrixBytes(format: MatrixFormat, k: number, n: number): number {
  if (format === 'f32') return k * Math.ceil(n / 4) * 16;
  return 16 * sections(format, k, n).reduce((s, x) => s + x.words, 0);
}

/** Rows of a stored tensor, in its stored type: `rows` × k values. */
export interface EncodedRows {
  type: TensorType;
  bytes: Uint8Array;
  rows: number;
}

/** Rows [first, first + count) of `e` (k values per row). */
export function sliceRows(e: EncodedRows, k: number, first: number, count: number): EncodedRows {
  const row = tensorBytes(e.type, k);
  return { type: e.type, bytes: e.bytes.subarray(first * row, (first + count) * row), rows: count };
}

/** A packed matrix before upload: its words and the section offsets the kernels take. */
export interface PackedMatrix {
  format: Exclude<MatrixFormat, 'f32'>;
  k: number;
  n: number;
  words: Uint32Array;
  /** WeightMatrix.layout: the section offsets (16-byte words). */
  layout: Record<string, number>;
}

/**
 * Stacks `parts` (each rows × k, stored as FORMAT_SOURCE[format]) along the outputs into one
 * matrix in `format`'s layout.
 */
export function packMatrix(format: Exclude<MatrixFormat, 'f32'>, k: number, parts: readonly EncodedRows[]): PackedMatrix {
  if (k % FORMAT_K_MULTIPLE[format] !== 0) throw new ModelFormatError(`${format}: rows of ${k} values are not whole blocks`);
  const n = parts.reduce((s, p) => s + p.rows, 0);
  const n4 = Math.ceil(n / 4);
  const n8 = Math.ceil(n4 / 2);
  const list = sections(format, k, n);
  const offsets: Record<string, number> = {};
  let total = 0;
  for (const s of list) {
    offsets[s.name] = total;
    total += s.words;
  }
  const words = new Uint32Array(4 * total);
  // u32 index of column `col` in vec4 row `row` of a per-column section; of its half-pair word.
  const col = (sec: string, row: number, c: number) => 4 * (offsets[sec] + row * n4 + (c >> 2)) + (c & 3);
  const pair = (sec: string, row: number, c: number) => 4 * (offsets[sec] + row * n8 + (c >> 3)) + ((c >> 1) & 3);
  const setHalf = (sec: string, row: number, c: number, h: number) => {
    words[pair(sec, row, c)] |= h << (16 * (c & 1));
  };
  let c0 = 0;
  for (const p of parts) {
    if (p.type !== FORMAT_SOURCE[format]) throw new ModelFormatError(`${format} packs ${FORMAT_SOURCE[format]} blocks, not ${p.type}`);
    const rowBytes = tensorBytes(p.type, k);
    if (p.bytes.byteLength < p.rows * rowBytes) throw new ModelFormatError(`${p.rows} rows of ${k} ${p.type} values need ${p.rows * rowBytes} bytes`);
    const b = p.bytes;
    const u16 = (at: number) => b[at] | (b[at + 1] << 8);
    const u32 = (at: number) => (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
    for (let r = 0; r < p.rows; r++) {
      const c = c0 + r;
      const base = r * rowBytes;
      switch (format) {
        case 'f16':
        case 'bf16':
          for (let i = 0; i < k / 2; i++) words[col('W', i, c)] = u32(base + 4 * i);
          break;
        case 'q8_0':
          for (let blk = 0; blk < k / 32; blk++) {
            const at = base + 34 * blk;
            setHalf('SD', blk, c, u16(at));
            for (let j = 0; j < 8; j++) words[col('QS', 8 * blk + j, c)] = u32(at + 2 + 4 * j);
          }
          break;
        case 'q4_0':
          for (let blk = 0; blk < k / 32; blk++) {
            const at = base + 18 * blk;
            setHalf('SD', blk, c, u16(at));
            const q = (m: number) => (m < 16 ? b[at + 2 + m] & 15 : b[at + 2 + m - 16] >> 4);
            for (let j = 0; j < 4; j++) words[col('QS', 4 * blk + j, c)] = nibbles((i) => q(8 * j + i));
          }
          break;
        case 'q4_k':
        case 'q5_k': {
          const size = format === 'q5_k' ? 176 : 144;
          for (let sb = 0; sb < k / 256; sb++) {
            const at = base + size * sb;
            words[col('DM', sb, c)] = u32(at);
            const qs = at + (format === 'q5_k' ? 48 : 16);
            for (let j = 0; j < 8; j++) {
              const [sc, mn] = scaleMin(b, at + 4, j);
              words[col('SM', 4 * sb + (j >> 2), c)] |= sc << (8 * (j & 3));
              words[col('SM', 4 * sb + 2 + (j >> 2), c)] |= mn << (8 * (j & 3));
              const chunk = qs + 32 * (j >> 1);
              const shift = (j & 1) * 4;
              for (let g = 0; g < 4; g++) {
                words[col('QS', 32 * sb + 4 * j + g, c)] = nibbles((i) => (b[chunk + 8 * g + i] >> shift) & 15);
              }
              if (format === 'q5_k') {
                let h = 0;
                for (let l = 0; l < 32; l++) h |= ((b[at + 16 + l] >> j) & 1) << l;
                words[col('QH', 8 * sb + j, c)] = h >>> 0;
              }
            }
          }
          break;
        }
        case 'q6_k':
          for (let sb = 0; sb < k / 256; sb++) {
            const at = base + 210 * sb;
            setHalf('SD', sb, c, u16(at + 208));
            const lo = (e: number) => (b[at + 64 * (e >> 7) + (e & 63)] >> (e & 64 ? 4 : 0)) & 15;
            const hi = (e: number) => (b[at + 128 + 32 * (e >> 7) + (e & 31)] >> (2 * ((e & 127) >> 5))) & 3;
            for (let g = 0; g < 32; g++) words[col('QL', 32 * sb + g, c)] = nibbles((i) => lo(8 * g + i));
            for (let s = 0; s < 16; s++) {
              let h = 0;
              for (let i = 0; i < 16; i++) h |= hi(16 * s + i) << (2 * i);
              words[col('QH', 16 * sb + s, c)] = h >>> 0;
            }
            for (let u = 0; u < 4; u++) words[col('SC', 4 * sb + u, c)] = u32(at + 192 + 4 * u);
          }
          break;
      }
    }
    c0 += p.rows;
  }
  return { format, k, n, words, layout: offsets };
}

/** Eight 4-bit values as one u32, value i in nibble i. */
function nibbles(q: (i: number) => number): number {
  let w = 0;
  for (let i = 0; i < 8; i++) w |= q(i) << (4 * i);
  return w >>> 0;
}

/** The 6-bit scale and min of sub-block j of a Q4_K/Q5_K block's 12 scale bytes at `s` (as dequant.ts). */
function scaleMin(b: Uint8Array, s: number, j: number): [number, number] {
  if (j < 4) return [b[s + j] & 63, b[s + j + 4] & 63];
  return [(b[s + j + 4] & 0x0f) | ((b[s + j - 4] >> 6) << 4), (b[s + j + 4] >> 4) | ((b[s + j] >> 6) << 4)];
}

/** The WeightMatrix of a packed matrix uploaded into `buffer`. */
export function asWeightMatrix(p: PackedMatrix, buffer: GPUBuffer): WeightMatrix {
  return { format: p.format, buffer, k: p.k, n: p.n, layout: p.layout };
}
