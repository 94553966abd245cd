// The quantised and 16-bit weight kernels (shaders/matmul_q*.wgsl over matmul_fmt_*.wgsl, laid
// out by src/model/weight-types.ts) on random blocks of every GPU format: Q8_0, Q4_0, Q4_K, Q5_K,
// Q6_K, F16, BF16. The reference is dequant.ts (gguf-py's semantics) on the same stored bytes.
//
//  - dequantize (the kernel's weight decoding, written out as f32) and the embedding gather equal
//    dequant.ts's float32 values bit for bit (±0 alike), padding columns 0; every scale kind is covered,
//    including f16 scales that are subnormal or zero, and K-quants' 6-bit scales and mins over
//    their whole range (random bytes).
//  - gemv (T = 1, 3) and gemm (T = 1…7), with and without the fused residual add, against a
//    float64 matmul over the dequantised values with kernels-matmul.test.ts's bound
//    (k + 2)·U·Σ|x·w| (the weights are exact, so the float32 sum is the only error); and equal,
//    bit for bit, to matmul.wgsl's f32 kernel over the same values (same products, same order).
//  - awkward shapes: n not a multiple of 4 or 8 (N4 odd: the pair-packed f16 scales' last vec4
//    is half used), k = 288 for the 32-blocks (not a multiple of 256), a matrix of two parts in
//    two formats writing columns of one output (yN, yOffset: Q4_K_M's q|k|v).
//  - the fused LM head over quantised classifier tiles (one and several) against the float64
//    statistics of the dequantised classifier, and against the f32 head on the same values.
//  - the load-time quantisers (quantize.ts): f16/bf16 rounding, Q8_0 / Q4_0 error bounds.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { type ClassifierTile, LM_PARTIALS_PER_ROW, LM_PARTIAL_BYTES, type MatrixFormat, statsRecordWords } from '../../src/gpu/kernels.ts';
import { dequantize, halfToFloat, tensorBytes } from '../../src/model/dequant.ts';
import { floatToBf16, floatToHalf, quantizeQ4_0, quantizeQ8_0 } from '../../src/model/quantize.ts';
import type { TensorType } from '../../src/model/tensors.ts';
import { FORMAT_SOURCE, asWeightMatrix, matrixBytes, packMatrix, sliceRows } from '../../src/model/weight-types.ts';
import { classifierTiles, transposeConcat } from '../../src/model/weights.ts';
import { parseStats } from '../../src/runtime/stats.ts';
import { GpuTest, U, assertClose, matmulAbsRef, matmulRef, mulberry32, randn, statsRef } from '../support/gpu.ts';

type QFormat = Exclude<MatrixFormat, 'f32'>;
type Rng = () => number;

let gpu: GpuTest;
before(async () => {
  gpu = await GpuTest.create();
});
afterEach(() => gpu.release());
after(() => gpu.destroy());

// ---------------------------------------------------------------------------------------------
// Random stored tensors

/** A random f16 scale: mostly normal in [2^-12, 2^-5], some subnormal, some zero, some negative. */
function scaleHalf(rng: Rng): number {
  const r = rng();
  if (r < 0.03) return 0;
  if (r < 0.08) return 1 + Math.floor(rng() * 0x3ff); // subnormal
  const h = floatToHalf(2 ** (-12 + 7 * rng()));
  return rng() < 0.15 ? h | 0x8000 : h;
}

/**
 * `rows` × k values of `type` as stored: random quants, random scales (scaleHalf), f16/bf16 of
 * Gaussians with some zeros (±) and subnormal halves.
 */
function randomTensor(type: TensorType, rows: number, k: number, rng: Rng): Uint8Array {
  const bytes = new Uint8Array(tensorBytes(type, rows * k));
  const put16 = (at: number, h: number) => {
    bytes[at] = h & 0xff;
    bytes[at + 1] = h >> 8;
  };
  if (type === 'F16' || type === 'BF16') {
    const v = randn(rng, rows * k, 0.05);
    for (let i = 0; i < v.length; i++) put16(2 * i, type === 'F16' ? floatToHalf(v[i]) : floatToBf16(v[i]));
    // a few zeros and subnormal halves
    for (let i = 0; i < v.length; i += 97) put16(2 * i, i % 2 ? 1 + (i % 1023) : i % 3 ? 0 : 0x8000);
    return bytes;
  }
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(rng() * 256);
  const size = tensorBytes(type, type.startsWith('Q') && type.endsWith('K') ? 256 : 32);
  for (let at = 0; at < bytes.length; at += size) {
    switch (type) {
      case 'Q8_0':
      case 'Q4_0':
        put16(at, scaleHalf(rng));
        break;
      case 'Q4_K':
      case 'Q5_K':
        put16(at, scaleHalf(rng) & 0x7fff);
        put16(at + 2, scaleHalf(rng) & 0x7fff);
        break;
      case 'Q6_K':
        put16(at + 208, scaleHalf(rng));
        break;
      default:
        throw new Error(type);
    }
  }
  return bytes;
}

/** A random matrix in `format`: its stored bytes, the dequantised float32 values, the GPU matrix. */
async function randomMatrix(format: QFormat, n: number, k: number, seed: number) {
  const type = FORMAT_SOURCE[format];
  const bytes = randomTensor(type, n, k, mulberry32(seed));
  const values = dequantize(type, bytes, n * k);
  const packed = packMatrix(format, k, [{ type, bytes, rows: n }]);
  assert.equal(packed.words.byteLength, matrixBytes(format, k, n));
  const m = asWeightMatrix(packed, await gpu.upload(packed.words, 'w'));
  return { bytes, values, m };
}

/**
 * Bit-for-bit equality, except that +0 and −0 count as equal: SwiftShader's compiler does not keep
 * the sign of a zero (d·q + m with d < 0 and q = 8 comes out −0 where dequant.ts has +0), which no
 * product or sum of a matmul can tell apart from +0 in a nonzero total.
 */
const sameBits = (got: Float32Array, want: Float32Array, what: string) => {
  const g = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const w = new Uint32Array(want.buffer, want.byteOffset, want.length);
  assert.equal(g.length, w.length, `${what}: length`);
  for (let i = 0; i < w.length; i++) {
    if (g[i] !== w[i] && !(got[i] === 0 && want[i] === 0)) {
      assert.fail(`${what}: element ${i} is ${got[i]} (0x${g[i].toString(16)}), expected ${want[i]} (0x${w[i].toString(16)})`);
    }
  }
};

// ---------------------------------------------------------------------------------------------
// Shapes per format: [k, n]

const SHAPES: Record<QFormat, [number, number][]> = {
  q8_0: [[32, 4], [288, 36], [96, 6]],
  q4_0: [[32, 4], [288, 36], [96, 6]],
  q4_k: [[256, 4], [512, 36], [256, 6]],
  q5_k: [[256, 4], [512, 36], [256, 6]],
  q6_k: [[256, 4], [512, 36], [256, 6]],
  f16: [[8, 4], [288, 36], [40, 6]],
  bf16: [[8, 4], [288, 36], [40, 6]],
};
const FORMATS = Object.keys(SHAPES) as QFormat[];

describe('weight decoding equals dequant.ts bit for bit', () => {
  let seed = 100;
  for (const format of FORMATS) {
    test(`${format}: dequantize and the embedding gather`, async () => {
      for (const [k, n] of SHAPES[format]) {
        const { values, m } = await randomMatrix(format, n, k, seed++);
        const n4 = Math.ceil(n / 4);
        const out = await gpu.alloc(k * n4 * 4);
        const [bytes] = await gpu.run([await gpu.kernels.dequantize('dq', m, out)], { nTokens: 0, statsRows: 0 }, [out]);
        // matmul.wgsl's layout: [k][N4·4], padding columns zero
        sameBits(new Float32Array(bytes), transposeConcat([values], k), `${format} ${n}×${k} dequantize`);

        const ids = [0, n - 1, Math.floor(n / 2), 1 % n, n - 1];
        const x = await gpu.alloc(ids.length * k);
        const step = await gpu.step({ nTokens: ids.length });
        const call = await gpu.kernels.embedding('embed', k, { step, tokens: await gpu.tokens(ids.map((id, i) => ({ id, pos: i, row: 0 }))), table: m, x });
        const [rows] = await gpu.run([call], { nTokens: ids.length, statsRows: 0 }, [x]);
        const wantRows = new Float32Array(ids.length * k);
        ids.forEach((id, i) => wantRows.set(values.subarray(id * k, (id + 1) * k), i * k));
        sameBits(new Float32Array(rows), wantRows, `${format} ${n}×${k} embedding rows ${ids}`);
      }
    });
  }

  for (const format of ['q8_0', 'q6_k'] as const) {
    test(`${format}: the embedding gather over vocabulary tiles (a tied, tiled classifier)`, async () => {
      const [k, n] = [256, 37];
      const type = FORMAT_SOURCE[format];
      const bytes = randomTensor(type, n, k, mulberry32(seed++));
      const values = dequantize(type, bytes, n * k);
      const ids = [36, 0, 20, 19, 21, 5];
      const x = await gpu.alloc(ids.length * k);
      const step = await gpu.step({ nTokens: ids.length });
      const tokens = await gpu.tokens(ids.map((id, i) => ({ id, pos: i, row: 0 })));
      const calls = [];
      for (const [firstId, rows] of [[0, 20], [20, 17]]) {
        const packed = packMatrix(format, k, [sliceRows({ type, bytes, rows: n }, k, firstId, rows)]);
        const table = asWeightMatrix(packed, await gpu.upload(packed.words, 'tile'));
        calls.push(await gpu.kernels.embedding(`embed ${firstId}`, k, { step, tokens, table, firstId, x }));
      }
      const [got] = await gpu.run(calls, { nTokens: ids.length, statsRows: 0 }, [x]);
      const want = new Float32Array(ids.length * k);
      ids.forEach((id, i) => want.set(values.subarray(id * k, (id + 1) * k), i * k));
      sameBits(new Float32Array(got), want, `${format}: rows ${ids} from two tiles`);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Matmuls

interface Case {
  rowsPerInvocation: 1 | 4;
  accumulate: boolean;
  Ts: number[];
}

async function checkMatmul(format: QFormat, k: number, n: number, c: Case, seed: number) {
  const { values, m } = await randomMatrix(format, n, k, seed);
  const nP = Math.ceil(n / 4) * 4;
  const maxT = Math.max(...c.Ts);
  const rng = mulberry32(seed + 7);
  const x = randn(rng, maxT * k);
  const y0 = randn(rng, (maxT + 1) * nP, 2);
  const want = matmulRef(x, values, maxT, k, n);
  const scale = matmulAbsRef(x, values, maxT, k, n);
  const step = await gpu.step({ nTokens: 1 });
  const xb = await gpu.upload(x);
  const y = await gpu.alloc((maxT + 1) * nP);
  const yF32 = await gpu.alloc((maxT + 1) * nP);
  const shape = { k, n, accumulate: c.accumulate, rowsPerInvocation: c.rowsPerInvocation };
  const call = await gpu.kernels.matmul('mm', shape, { step, x: xb, w: m, y });
  const f32 = await gpu.kernels.matmul('mm32', shape, { step, x: xb, w: await gpu.upload(transposeConcat([values], k)), y: yF32 });
  const init = c.accumulate ? y0 : new Float32Array((maxT + 1) * nP).fill(Number.NaN);
  const what = (T: number) => `${format} ${c.rowsPerInvocation === 1 ? 'gemv' : 'gemm'} k ${k} n ${n} T ${T}${c.accumulate ? ' +=' : ''}`;
  for (const T of c.Ts) {
    gpu.writeStep(step, { nTokens: T });
    gpu.write(y, init);
    gpu.write(yF32, init);
    const [bytes, bytes32] = await gpu.run([call, f32], { nTokens: T, statsRows: 0 }, [y, yF32]);
    const got = new Float32Array(bytes);
    const expected = new Float64Array(T * nP);
    const tol = new Float64Array(T * nP);
    for (let t = 0; t < T; t++) {
      for (let o = 0; o < nP; o++) {
        const i = t * nP + o;
        const a = o < n ? scale[t * n + o] : 0;
        const base = c.accumulate ? y0[i] : 0;
        expected[i] = base + (o < n ? want[t * n + o] : 0);
        tol[i] = (k + 2) * U * a + (c.accumulate ? U * (Math.abs(base) + a) : 0);
      }
    }
    assertClose(got.subarray(0, T * nP), expected, (i) => tol[i], what(T));
    assert.deepEqual(new Uint32Array(got.buffer, 4 * T * nP), new Uint32Array(init.buffer, 4 * T * nP), `${what(T)}: rows ≥ T changed`);
    sameBits(got, new Float32Array(bytes32), `${what(T)}: vs the f32 kernel on the dequantised values`);
  }
}

describe('quantised matmul', () => {
  let seed = 200;
  for (const format of FORMATS) {
    const shapes = SHAPES[format];
    test(`${format} gemv, T = 1, 3`, async () => {
      for (const [k, n] of shapes) await checkMatmul(format, k, n, { rowsPerInvocation: 1, accumulate: false, Ts: [1, 3] }, seed++);
    });
    test(`${format} gemm, T = 1…7`, async () => {
      for (const [k, n] of shapes.slice(1)) await checkMatmul(format, k, n, { rowsPerInvocation: 4, accumulate: false, Ts: [1, 2, 3, 4, 5, 6, 7] }, seed++);
    });
    test(`${format} accumulate: gemv T = 2, gemm T = 5`, async () => {
      const [k, n] = shapes[1];
      await checkMatmul(format, k, n, { rowsPerInvocation: 1, accumulate: true, Ts: [2] }, seed++);
      await checkMatmul(format, k, n, { rowsPerInvocation: 4, accumulate: true, Ts: [5] }, seed++);
    });
  }

  test('two parts in two formats write their columns of one output (q4_k | q6_k, as Q4_K_M q|k|v)', async () => {
    const k = 256;
    const a = await randomMatrix('q4_k', 8, k, 300);
    const b = await randomMatrix('q6_k', 4, k, 301);
    const T = 3;
    const x = randn(mulberry32(302), T * k);
    const W = new Float32Array(12 * k);
    W.set(a.values);
    W.set(b.values, 8 * k);
    const want = matmulRef(x, W, T, k, 12);
    const scale = matmulAbsRef(x, W, T, k, 12);
    for (const rowsPerInvocation of [1, 4] as const) {
      const step = await gpu.step({ nTokens: T });
      const xb = await gpu.upload(x);
      const y = await gpu.alloc(T * 12);
      const calls = [
        await gpu.kernels.matmul('a', { k, n: 8, accumulate: false, rowsPerInvocation, yN: 12, yOffset: 0 }, { step, x: xb, w: a.m, y }),
        await gpu.kernels.matmul('b', { k, n: 4, accumulate: false, rowsPerInvocation, yN: 12, yOffset: 8 }, { step, x: xb, w: b.m, y }),
      ];
      const [bytes] = await gpu.run(calls, { nTokens: T, statsRows: 0 }, [y]);
      assertClose(new Float32Array(bytes), want, (i) => (k + 2) * U * scale[i], `parts, rowsPerInvocation ${rowsPerInvocation}`);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The fused LM head over quantised classifier tiles

async function runHead(dim: number, tiles: ClassifierTile[], hidden: Float32Array, rows: number, topK: number) {
  const partials = rows * tiles.length * LM_PARTIALS_PER_ROW;
  const b = {
    partials: await gpu.alloc((partials * LM_PARTIAL_BYTES) / 4, 0, 'partials'),
    partialTopK: await gpu.alloc(partials * 2 * topK, 0, 'partial_topk'),
    stats: await gpu.allocU32(rows * statsRecordWords(topK), 0, 'stats'),
  };
  const p = { nTokens: rows, statsRows: rows };
  const slots = Array.from({ length: rows }, (_, i) => ({ id: 0, pos: i, row: 0 }));
  const calls = await gpu.kernels.lmHeadStats('head', { dim, topK }, {
    step: await gpu.step(p), tokens: await gpu.tokens(slots), hidden: await gpu.upload(hidden), tiles, ...b,
  });
  const [bytes] = await gpu.run(calls, p, [b.stats]);
  return parseStats(bytes, rows, topK);
}

describe('fused LM head over quantised tiles', () => {
  const cases: { format: QFormat; dim: number; vocab: number; maxBindingBytes?: number }[] = [
    { format: 'q8_0', dim: 96, vocab: 1001 },
    { format: 'q4_0', dim: 96, vocab: 1001, maxBindingBytes: 20_000 },
    { format: 'q6_k', dim: 256, vocab: 1001 },
    { format: 'q4_k', dim: 256, vocab: 1001, maxBindingBytes: 60_000 },
    { format: 'q5_k', dim: 256, vocab: 998 },
    { format: 'bf16', dim: 40, vocab: 1001, maxBindingBytes: 30_000 },
    { format: 'f16', dim: 40, vocab: 1002 },
  ];
  let seed = 400;
  for (const c of cases) {
    test(`${c.format} dim ${c.dim} vocab ${c.vocab}${c.maxBindingBytes ? ' in tiles' : ''}`, async () => {
      const type = FORMAT_SOURCE[c.format];
      const bytes = randomTensor(type, c.vocab, c.dim, mulberry32(seed++));
      const W = dequantize(type, bytes, c.vocab * c.dim);
      const max = c.maxBindingBytes ?? Infinity;
      const tiles: ClassifierTile[] = [];
      const f32Tiles: ClassifierTile[] = [];
      for (const t of classifierTiles(c.vocab, c.dim, max, (n) => matrixBytes(c.format, c.dim, n))) {
        const packed = packMatrix(c.format, c.dim, [sliceRows({ type, bytes, rows: c.vocab }, c.dim, t.firstId, t.vocab)]);
        assert.ok(packed.words.byteLength <= max, 'a tile fits its binding');
        const buffer = await gpu.upload(packed.words, 'wcls');
        tiles.push({ ...t, buffer, matrix: asWeightMatrix(packed, buffer) });
        f32Tiles.push({ ...t, buffer: await gpu.upload(transposeConcat([W.subarray(t.firstId * c.dim, (t.firstId + t.vocab) * c.dim)], c.dim)) });
      }
      if (c.maxBindingBytes) assert.ok(tiles.length > 1, `${tiles.length} tiles`);
      const rows = 2;
      const topK = 8;
      const hidden = randn(mulberry32(seed++), rows * c.dim, 4);
      const got = await runHead(c.dim, tiles, hidden, rows, topK);
      const f32 = await runHead(c.dim, f32Tiles, hidden, rows, topK);
      const z = matmulRef(hidden, W, rows, c.dim, c.vocab);
      const zAbs = matmulAbsRef(hidden, W, rows, c.dim, c.vocab);
      for (let t = 0; t < rows; t++) {
        const s = got[t];
        assert.deepEqual(s, f32[t], `row ${t}: the same statistics as the f32 head on the dequantised values`);
        const zr = z.subarray(t * c.vocab, (t + 1) * c.vocab);
        const ref = statsRef(zr);
        let err = 0;
        for (let i = 0; i < c.vocab; i++) err = Math.max(err, (c.dim + 2) * U * zAbs[t * c.vocab + i]);
        // every logit is within err of the float64 one: lse and the max move by at most err
        assert.ok(Math.abs(s.lse - ref.lse) <= err + 1e-5 * Math.abs(ref.lse), `row ${t}: lse ${s.lse} vs ${ref.lse}`);
        assert.ok(Math.abs(s.maxLogit - ref.maxLogit) <= err, `row ${t}: max logit ${s.maxLogit} vs ${ref.maxLogit}`);
        assert.ok(zr[s.argmax] >= ref.maxLogit - 2 * err, `row ${t}: argmax ${s.argmax} is a maximum`);
        for (const cand of s.topK) assert.ok(Math.abs(cand.logit - zr[cand.id]) <= err, `row ${t}: top-K logit of ${cand.id}`);
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Load-time quantisers

describe('quantize.ts', () => {
  test('floatToHalf inverts halfToFloat on every finite half and rounds ties to even', () => {
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) === 0x7c00) continue;
      assert.equal(floatToHalf(halfToFloat(h)), h === 0x8000 ? 0x8000 : h, `half 0x${h.toString(16)}`);
    }
    assert.equal(floatToHalf(1 + 2 ** -11), 0x3c00); // tie → even
    assert.equal(floatToHalf(1 + 3 * 2 ** -11), 0x3c02);
    assert.equal(floatToHalf(65520), 0x7c00); // rounds past the largest half
    assert.equal(floatToHalf(2 ** -25), 0); // tie at half the smallest subnormal → 0
    assert.equal(floatToHalf(1.5 * 2 ** -25), 1);
    assert.equal(floatToBf16(1 + 2 ** -8), 0x3f80); // tie → even
    assert.equal(floatToBf16(1 + 3 * 2 ** -8), 0x3f82);
  });

  test('Q8_0 and Q4_0 blocks: scale from the block maximum, values within half a step', () => {
    const k = 96;
    const x = randn(mulberry32(7), 4 * k, 0.1);
    x[5] = 0.9; // a block maximum
    x.fill(0, 64, 96); // an all-zero block
    for (const [q, step] of [[quantizeQ8_0(x, k), 127], [quantizeQ4_0(x, k), 8]] as const) {
      const back = dequantize(q.type, q.bytes, x.length);
      for (let b = 0; b < x.length / 32; b++) {
        let amax = 0;
        for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(x[32 * b + i]));
        // d = amax / step rounded to f16 (relative error ≤ 2^-11): |x − x̂| ≤ d/2 + |x|·2^-11·…
        const d = amax / step;
        for (let i = 0; i < 32; i++) {
          const j = 32 * b + i;
          const bound = (q.type === 'Q8_0' ? 0.5 : 1) * d * (1 + 2 ** -9) + Math.abs(x[j]) * 2 ** -10;
          assert.ok(Math.abs(back[j] - x[j]) <= bound, `${q.type} block ${b} value ${i}: ${back[j]} vs ${x[j]}`);
        }
      }
      assert.ok(back.subarray(64, 96).every((v) => v === 0), `${q.type}: a zero block stays zero`);
    }
  });
});

