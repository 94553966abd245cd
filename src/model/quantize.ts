// float32 weights → stored blocks, for `loadModel({ weights })` on files that are not already in
// the requested format (llama2.c, HF, or a GGUF of another type).
//
// The blocks are GGUF's Q8_0 and Q4_0 (32 values, one f16 scale), quantised as ggml's reference
// quantisers do (quantize_row_q8_0_ref, quantize_row_q4_0_ref, in float32): the same format as a
// GGUF file's, so one set of kernels and layouts (weight-types.ts) and one reference (dequant.ts)
// serve both. 32-value blocks fit every matrix whose rows are a multiple of 32 (stories15M's 288
// and 768; K-quants' 256-value super-blocks do not divide 288); their one f16 scale per 32 costs
// 0.5 bit per value: Q8_0 is 8.5 bits (0.27 × f32), Q4_0 4.5 bits (0.14 ×). Symmetric absmax
// blocks need no min and quantise in one pass over the values, so loading stays streaming.
import { ModelFormatError } from '../errors.ts';
import type { EncodedRows } from './weight-types.ts';

const f = Math.fround;

const F32_BITS = new Uint32Array(1);
const F32_VIEW = new Float32Array(F32_BITS.buffer);

/** IEEE half bits of float32 `x`, rounded to nearest even (overflow → ±∞; NaN stays NaN). */
export function floatToHalf(x: number): number {
  F32_VIEW[0] = x;
  const bits = F32_BITS[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half (or zero): the value is m · 2^-24 with m = round(|x| · 2^24).
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e; // 24-bit significand down to the half's 10 + e bits
    let h = m >>> shift;
    const rest = m & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h++; // may carry into the exponent: still right
  return sign | h;
}

/** bfloat16 bits of float32 `x`: the high half, rounded to nearest even (NaN stays NaN). */
export function floatToBf16(x: number): number {
  F32_VIEW[0] = x;
  const bits = F32_BITS[0];
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff)) return (bits >>> 16) | 0x40;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

function checkRows(values: Float32Array, k: number, block: number): number {
  if (k % block !== 0 || values.length % k !== 0) {
    throw new ModelFormatError(`cannot quantise rows of ${k} values into blocks of ${block}`);
  }
  return values.length / k;
}

/** Q8_0 blocks: d = max|x| / 127 (f16), q = round(x / d) (half away from zero). */
export function quantizeQ8_0(values: Float32Array, k: number): EncodedRows {
  const rows = checkRows(values, k, 32);
  const blocks = values.length / 32;
  const out = new Uint8Array(blocks * 34);
  for (let b = 0; b < blocks; b++) {
    const x = values.subarray(32 * b, 32 * b + 32);
    let amax = 0;
    for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(x[i]));
    const d = f(amax / 127);
    const id = d ? f(1 / d) : 0;
    const h = floatToHalf(d);
    const at = 34 * b;
    out[at] = h & 0xff;
    out[at + 1] = h >> 8;
    for (let i = 0; i < 32; i++) {
      const v = f(x[i] * id);
      out[at + 2 + i] = (Math.sign(v) * Math.floor(Math.abs(v) + 0.5)) & 0xff;
    }
  }
  return { type: 'Q8_0', bytes: out, rows };
}

/** Q4_0 blocks: d = (the value of largest magnitude) / −8 (f16), q = min(15, trunc(x / d + 8.5)). */
export function quantizeQ4_0(values: Float32Array, k: number): EncodedRows {
  const rows = checkRows(values, k, 32);
  const blocks = values.length / 32;
  const out = new Uint8Array(blocks * 18);
  for (let b = 0; b < blocks; b++) {
    const x = values.subarray(32 * b, 32 * b + 32);
    let amax = 0;
    let max = 0;
    for (let i = 0; i < 32; i++) {
      if (amax < Math.abs(x[i])) {
        amax = Math.abs(x[i]);
        max = x[i];
      }
    }
    const d = f(max / -8);
    const id = d ? f(1 / d) : 0;
    const h = floatToHalf(d);
    const at = 18 * b;
    out[at] = h & 0xff;
    out[at + 1] = h >> 8;
    const q = (v: number) => Math.min(15, Math.trunc(f(f(v * id) + 8.5)));
    for (let j = 0; j < 16; j++) out[at + 2 + j] = q(x[j]) | (q(x[j + 16]) << 4);
  }
  return { type: 'Q4_0', bytes: out, rows };
}

/**
 * IEEE halves (F16) of the values, or null when one of them overflows the half range (the caller
 * keeps such a tensor as BF16, whose range is float32's).
 */
export function toF16(values: Float32Array, k: number): EncodedRows | null {
  const rows = values.length / k;
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const h = floatToHalf(values[i]);
    if ((h & 0x7c00) === 0x7c00 && Number.isFinite(values[i])) return null;
    out[i] = h;
  }
  return { type: 'F16', bytes: new Uint8Array(out.buffer), rows };
}

/** bfloat16 halves of the values (round to nearest even). */
export function toBf16(values: Float32Array, k: number): EncodedRows {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = floatToBf16(values[i]);
  return { type: 'BF16', bytes: new Uint8Array(out.buffer), rows: values.length / k };
}
