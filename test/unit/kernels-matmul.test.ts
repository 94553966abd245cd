// matmul.wgsl (gemv: one token row per invocation; gemm: four) against a float64 reference, with
// and without the fused residual add, on the model's shapes and awkward ones: N4 = n/4 odd (each
// invocation owns two output vec4s HALF = ⌈N4/2⌉ apart, so the last invocation has only one), n
// not a multiple of 4 (rows padded to ⌈n/4⌉·4 by zero weight columns), tiny k and n, T not a
// multiple of 4 for the GEMM, and the real LM-head size n = 32000, k = 288.
//
// Weights go through transposeConcat([W], k) from row-major W [n][k], as model/weights.ts does.
//
// Tolerance: each output is a float32 sum of k products. Whatever the order, recursive summation
// has |fl(Σ) − Σ| ≤ γ_k·Σ|x_j·w_j| with γ_k = kU/(1 − kU) (Higham, Accuracy and Stability, §3.1),
// products rounding once more: we allow (k + 2)·U·Σ|x_j·w_j| (U = 2^-24). With the residual add
// y0 + v the sum rounds once more, ≤ U·(|y0| + Σ|x·w|). Inputs are float32 values the reference
// reads exactly, so this is the whole error. A wrong element, column or row is off by about one
// |x·w| term or more, which is far above (k + 2)·U·Σ|x·w| ≈ k²·U·|x·w| (≤ 0.04·|x·w| at k = 768).
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { transposeConcat } from '../../src/model/weights.ts';
import { GpuTest, U, assertClose, matmulAbsRef, matmulRef, mulberry32, randn } from '../support/gpu.ts';

let gpu: GpuTest;
before(async () => {
  gpu = await GpuTest.create();
});
afterEach(() => gpu.release());
after(() => gpu.destroy());

interface Case {
  k: number;
  n: number;
  rowsPerInvocation: 1 | 4;
  accumulate: boolean;
  Ts: number[];
}

async function check(c: Case, seed: number) {
  const { k, n, accumulate } = c;
  const nP = Math.ceil(n / 4) * 4; // output row stride: the kernel writes whole vec4s
  const maxT = Math.max(...c.Ts);
  const rng = mulberry32(seed);
  const x = randn(rng, maxT * k);
  const W = randn(rng, n * k, 1 / Math.sqrt(k));
  const y0 = randn(rng, (maxT + 1) * nP, 2);
  const want = matmulRef(x, W, maxT, k, n);
  const scale = matmulAbsRef(x, W, maxT, k, n);

  const step = await gpu.step({ nTokens: 1 });
  const xb = await gpu.upload(x);
  const wb = await gpu.upload(transposeConcat([W], k));
  const y = await gpu.alloc((maxT + 1) * nP);
  const call = await gpu.kernels.matmul('mm', { k, n, accumulate, rowsPerInvocation: c.rowsPerInvocation }, { step, x: xb, w: wb, y });
  // Before the run: y0 when accumulating, else NaN (every output must be written).
  const init = accumulate ? y0 : new Float32Array((maxT + 1) * nP).fill(Number.NaN);

  for (const T of c.Ts) {
    gpu.writeStep(step, { nTokens: T });
    gpu.write(y, init);
    const [bytes] = await gpu.run([call], { nTokens: T, statsRows: 0 }, [y]);
    const got = new Float32Array(bytes);
    const expected = new Float64Array(T * nP);
    const tol = new Float64Array(T * nP);
    for (let t = 0; t < T; t++) {
      for (let o = 0; o < nP; o++) {
        const i = t * nP + o;
        const v = o < n ? want[t * n + o] : 0; // padding columns have zero weights
        const a = o < n ? scale[t * n + o] : 0;
        const base = accumulate ? y0[i] : 0;
        expected[i] = base + v;
        tol[i] = (k + 2) * U * a + (accumulate ? U * (Math.abs(base) + a) : 0);
      }
    }
    const what = `${c.rowsPerInvocation === 1 ? 'gemv' : 'gemm'} k ${k} n ${n} T ${T}${accumulate ? ' +=' : ''}`;
    assertClose(got.subarray(0, T * nP), expected, (i) => tol[i], what);
    // Rows past the step's tokens keep what they held (the GEMM's padded rows are never stored).
    assert.deepEqual(
      new Uint32Array(got.buffer, 4 * T * nP), new Uint32Array(init.buffer, 4 * T * nP), `${what}: rows ≥ T changed`,
    );
  }
}

const SHAPES: [number, number][] = [
  [288, 864], // stories15M q|k|v and w1|w3 halves (N4 = 216)
  [768, 288], // w2 (k = hidden)
  [4, 4], // N4 = 1: one invocation, no second vec4
  [8, 12], // N4 = 3
  [12, 36], // N4 = 9
  [288, 20], // N4 = 5
  [8, 6], // n not a multiple of 4: N4 = 2, padded to 8
  [12, 10], // N4 = 3, padded to 12
];

describe('matmul', () => {
  let seed = 1;
  for (const [k, n] of SHAPES) {
    for (const accumulate of [false, true]) {
      test(`gemv k ${k} n ${n}${accumulate ? ' accumulate' : ''}, T = 1, 3`, () =>
        check({ k, n, accumulate, rowsPerInvocation: 1, Ts: [1, 3] }, seed++));
      test(`gemm k ${k} n ${n}${accumulate ? ' accumulate' : ''}, T = 1…7`, () =>
        check({ k, n, accumulate, rowsPerInvocation: 4, Ts: [1, 2, 3, 4, 5, 6, 7] }, seed++));
    }
  }
  test('gemv k 288 n 32000 (LM-head size), T = 1', () =>
    check({ k: 288, n: 32000, accumulate: false, rowsPerInvocation: 1, Ts: [1] }, 1000));
  test('gemm k 288 n 32000 accumulate, T = 1', () =>
    check({ k: 288, n: 32000, accumulate: true, rowsPerInvocation: 4, Ts: [1] }, 1001));
});
