// The row-wise and element-wise kernels against float64 references: embedding gather, rmsnorm,
// swiglu, softmax, copy. Output buffers start as NaN with one row more than the step has, so a
// missing write shows as NaN and a stray write past the last row shows as a changed sentinel.
//
// Error model used by every tolerance (U = 2^-24, the float32 unit roundoff; 1 ulp ≤ 2U relative):
// +, −, × round once (≤ U relative); WGSL allows 2.5 ulp (5U) for x/y, 2 ulp for inverseSqrt,
// sqrt is "inherited from 1/inverseSqrt" (≤ 4.5 ulp = 9U), exp(x) 3 + 2|x| ulp ((6 + 4|x|)U).
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import {
  GpuTest, U, assertClose, mulberry32, randInt, randn, randu, rmsnormRef, softmaxRef,
} from '../support/gpu.ts';

let gpu: GpuTest;
before(async () => {
  gpu = await GpuTest.create();
});
afterEach(() => gpu.release());
after(() => gpu.destroy());

/** Asserts words [from, to) of `data` still hold the NaN fill of `alloc`. */
function assertUnwritten(data: Float32Array, from: number, to: number, what: string) {
  for (let i = from; i < to; i++) {
    if (!Number.isNaN(data[i])) assert.fail(`${what}: word ${i} past the last row was written (${data[i]})`);
  }
}

describe('embedding', () => {
  for (const [vocab, dim] of [[1001, 288], [37, 20], [5, 4]] as const) {
    test(`gathers rows of a ${vocab}×${dim} table, incl. the last`, async () => {
      const rng = mulberry32(vocab * 31 + dim);
      const table = randn(rng, vocab * dim);
      const ids = [vocab - 1, 0, randInt(rng, vocab), vocab - 1, randInt(rng, vocab), 1 % vocab, randInt(rng, vocab)];
      const T = ids.length;
      const step = await gpu.step({ nTokens: T });
      const tokens = await gpu.tokens(ids.map((id, pos) => ({ id, pos, row: 0 })));
      const x = await gpu.alloc((T + 1) * dim);
      const call = await gpu.kernels.embedding('embed', dim, { step, tokens, table: await gpu.upload(table), x });
      const [bytes] = await gpu.run([call], { nTokens: T, statsRows: 0 }, [x]);
      const got = new Float32Array(bytes);
      // A gather is a copy: bit-exact.
      const want = new Float32Array(T * dim);
      ids.forEach((id, t) => want.set(table.subarray(id * dim, (id + 1) * dim), t * dim));
      assert.deepEqual(new Uint32Array(got.buffer, 0, T * dim), new Uint32Array(want.buffer));
      assertUnwritten(got, T * dim, (T + 1) * dim, 'embedding');
    });
  }
});

describe('rmsnorm', () => {
  for (const dim of [288, 20]) {
    for (const T of [1, 3, 17]) {
      test(`dim ${dim}, ${T} rows`, async () => {
        const rng = mulberry32(dim * 100 + T);
        const x = randn(rng, T * dim, 2);
        x[0] = 0; // a zero feature and (below, for T > 1) a tiny row: 1e-5 must be inside the sqrt
        if (T > 1) x.fill(1e-4, dim, 2 * dim);
        const weight = randu(rng, dim, 0.5, 1.5);
        const step = await gpu.step({ nTokens: T });
        const out = await gpu.alloc((T + 1) * dim);
        const call = await gpu.kernels.rmsnorm('rms', { dim, eps: 1e-5 }, {
          step, x: await gpu.upload(x), weight: await gpu.upload(weight), out,
        });
        const [bytes] = await gpu.run([call], { nTokens: T, statsRows: 0 }, [out]);
        const got = new Float32Array(bytes);
        const want = rmsnormRef(x, weight, T, dim);
        // ss = Σx² (dim products + dim sums of positive terms): ≤ (dim+1)U relative; /dim 5U, +1e-5
        // U; the sqrt takes half of that and adds 9U, 1/· 5U; scale·x, weight·(…) U each. So each
        // output has relative error ≤ ((dim+7)/2 + 16)U; we allow (dim/2 + 24)U.
        assertClose(got.subarray(0, T * dim), want, (i) => (dim / 2 + 24) * U * Math.abs(want[i]), `rmsnorm dim ${dim} T ${T}`);
        assertUnwritten(got, T * dim, (T + 1) * dim, 'rmsnorm');
      });
    }
  }
});

describe('swiglu', () => {
  for (const hidden of [768, 20]) {
    for (const T of [1, 3]) {
      test(`hidden ${hidden}, ${T} rows`, async () => {
        const rng = mulberry32(hidden + T);
        const hb = randn(rng, T * 2 * hidden, 4);
        const step = await gpu.step({ nTokens: T });
        const out = await gpu.alloc((T + 1) * hidden);
        const call = await gpu.kernels.swiglu('swiglu', hidden, { step, hb: await gpu.upload(hb), out });
        const [bytes] = await gpu.run([call], { nTokens: T, statsRows: 0 }, [out]);
        const got = new Float32Array(bytes);
        const want = new Float64Array(T * hidden);
        const a = (t: number, i: number) => hb[t * 2 * hidden + i];
        for (let t = 0; t < T; t++) {
          for (let i = 0; i < hidden; i++) {
            want[t * hidden + i] = (a(t, i) / (1 + Math.exp(-a(t, i)))) * hb[t * 2 * hidden + hidden + i];
          }
        }
        // exp(−a): (6 + 4|a|)U; 1 + e keeps at most that relative error (+U); 1/(1+e) 5U; two
        // products 2U: ≤ (14 + 4|a|)U relative, we allow (16 + 4|a|)U.
        assertClose(got.subarray(0, T * hidden), want, (i) => {
          const ai = Math.abs(a(Math.floor(i / hidden), i % hidden));
          return (16 + 4 * ai) * U * Math.abs(want[i]) + 1e-38;
        }, `swiglu hidden ${hidden} T ${T}`);
        assertUnwritten(got, T * hidden, (T + 1) * hidden, 'swiglu');
      });
    }
  }
});

describe('softmax', () => {
  const WG = 64; // invocations per row in softmax.wgsl
  for (const [cols, rows, temp] of [[1001, 3, 0.7], [5, 2, 1], [64, 1, 1.3], [32000, 2, 1]] as const) {
    test(`${rows} rows of ${cols}, T = ${temp}`, async () => {
      const rng = mulberry32(cols + rows);
      const logits = randn(rng, rows * cols, 3);
      const invTemp = Math.fround(1 / temp); // the uniform holds it as f32
      const params = new ArrayBuffer(16);
      new DataView(params).setFloat32(0, invTemp, true);
      new DataView(params).setUint32(4, rows, true);
      const probs = await gpu.alloc((rows + 1) * cols);
      const call = await gpu.kernels.softmax('softmax', cols, {
        params: await gpu.uniform(params), logits: await gpu.upload(logits), probs,
      });
      const [bytes] = await gpu.run([call], { nTokens: rows, statsRows: 0 }, [probs]);
      const got = new Float32Array(bytes);
      const nPer = Math.ceil(cols / WG);
      for (let r = 0; r < rows; r++) {
        const z = logits.subarray(r * cols, (r + 1) * cols);
        const want = softmaxRef(z, invTemp);
        const s = Array.from(z, (v) => v * invTemp);
        const S = Math.max(...s.map(Math.abs));
        const gm = Math.max(...s);
        const R = gm - Math.min(...s);
        // p_i = exp(s_i − gm) / gz, x_i = s_i − gm ∈ [−R, 0], |s| ≤ S. Relative error of p_i:
        //  - the argument: s_i and gm round once (U|s_i|, U|gm|), the difference once: ≤ (2S + R)U;
        //  - its exp: (6 + 4|x_i|)U; the final division: 5U;
        //  - gz, a sum of positive terms, each off by at most its own argument + exp error
        //    ((2S + R)U + (6 + 4R)U), by the rescale factors exp(m_old − s_new) of its thread
        //    (Σ(6 + 4|m_old − s_new|)U ≤ (6·nPer + 4R)U: the gaps telescope to ≤ R), by the merge
        //    factor exp(wg_max − gm) ((6 + 4R)U), and by the two summation levels ((nPer + 64)U).
        const epsZ = (2 * S + R + 6 + 4 * R + 6 * nPer + 4 * R + 6 + 4 * R + nPer + WG) * U;
        const row = got.subarray(r * cols, (r + 1) * cols);
        assertClose(row, want, (i) => want[i] * ((2 * S + R + 6 + 4 * (gm - s[i]) + 5) * U + epsZ) + 1e-45,
          `softmax row ${r}`);
        // Σp = 1 up to the same relative errors plus the float64 summation of the check itself.
        const sum = row.reduce((a, b) => a + b, 0);
        assert.ok(Math.abs(sum - 1) <= (2 * S + 5 * R + 11) * U + epsZ, `softmax row ${r} sums to ${sum}`);
      }
      assertUnwritten(got, rows * cols, (rows + 1) * cols, 'softmax');
    });
  }
});

describe('copy', () => {
  for (const [vec4s, workgroups] of [[1000, 1], [1000, 16], [7, 3], [4096, 64]] as const) {
    test(`${vec4s} vec4s with ${workgroups} workgroups`, async () => {
      const rng = mulberry32(vec4s + workgroups);
      const data = randn(rng, vec4s * 4, 100);
      data[0] = -0;
      data[1] = Infinity;
      data[2] = -Infinity;
      data[3] = 3.4e38;
      const src = await gpu.upload(data);
      const dst = await gpu.alloc(vec4s * 4);
      const call = await gpu.kernels.copy('copy', { src, dst }, workgroups);
      const [bytes] = await gpu.run([call], { nTokens: 1, statsRows: 0 }, [dst]);
      // A copy moves bits: exact (−0 and ±∞ included).
      assert.deepEqual(new Uint32Array(bytes), new Uint32Array(data.buffer));
    });
  }
});
