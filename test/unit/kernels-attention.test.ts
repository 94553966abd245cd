// rope_kv.wgsl + attention.wgsl against a float64 transcription of llama2.c's run.c: RoPE of q
// (always) and k (pairs i < kv_dim), k and v appended to the cache at [row][kvHead][pos][headSize],
// then causal attention of each token over positions 0..pos of its own KV row. Three steps on one
// cache: a prefill of 5 tokens (row 0, positions 0..4), one decode token (row 0, position 5), and a
// batch mixing rows (row 1 positions 0..2 interleaved with row 0 position 6). Cache slots start as
// NaN, so attention reading a position it should not, or a token reading another row's slot, shows
// up as NaN; a stray cache write shows as a changed NaN.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import type { ModelConfig } from '../../src/model/config.ts';
import { ropeTable } from '../../src/model/weights.ts';
import { GpuTest, U, assertClose, mulberry32, randn, type TokenSlot } from '../support/gpu.ts';

let gpu: GpuTest;
before(async () => {
  gpu = await GpuTest.create();
});
afterEach(() => gpu.release());
after(() => gpu.destroy());

interface Config {
  dim: number;
  nHeads: number;
  nKvHeads: number;
  seqLen: number;
  rows: number;
}

/** The ModelConfig of a llama2.c checkpoint of this shape (what ropeTable reads of it). */
function llama2cConfig(c: Config): ModelConfig {
  return {
    architecture: 'llama2c', dim: c.dim, hiddenDim: 4 * c.dim, nLayers: 1, nHeads: c.nHeads, nKvHeads: c.nKvHeads,
    headDim: c.dim / c.nHeads, vocabSize: 32, normEps: 1e-5, ropeTheta: 10000, ropeLayout: 'interleaved',
    ropeFreqFactors: null, qkvBias: false, qkNorm: false, tiedEmbeddings: true, bosId: 1, eosIds: [], trainedContext: c.seqLen,
  };
}

/** The float64 model of one KV cache: values and, per element, a bound on the GPU's error. */
class RefCache {
  readonly k: Float64Array;
  readonly v: Float64Array;
  readonly kErr: Float64Array;
  constructor(readonly c: Config, readonly hs: number) {
    const n = c.rows * c.nKvHeads * c.seqLen * hs;
    this.k = new Float64Array(n).fill(Number.NaN);
    this.v = new Float64Array(n).fill(Number.NaN);
    this.kErr = new Float64Array(n);
  }
  index(row: number, kvh: number, pos: number) {
    return ((row * this.c.nKvHeads + kvh) * this.c.seqLen + pos) * this.hs;
  }
}

/**
 * llama2.c's RoPE of one vector (q or k) of `len` features at `pos`, in float64, and per element a
 * bound on the error of the GPU's float32 rotation with the float32 cos/sin table of ropeTable():
 * freq is rounded three times from float64 values (the pow's argument i/hs carries U, amplified by
 * ln 10000 ≈ 9.2) so |Δfreq| ≤ 13U·freq, the angle pos·freq rounds once more: |Δangle| ≤ 14U·pos
 * (freq ≤ 1); cos and sin round (U each), and v0·c − v1·s rounds three times. With |Δcos|, |Δsin| ≤
 * |Δangle| + U, each output is off by at most (14·pos + 6)·U·(|v0| + |v1|).
 */
function ropeRef(vec: ArrayLike<number>, len: number, hs: number, pos: number) {
  const out = new Float64Array(len);
  const err = new Float64Array(len);
  for (let i = 0; i < len; i += 2) {
    const headDim = i % hs;
    const freq = 1 / Math.pow(10000, headDim / hs);
    const angle = pos * freq;
    const [c, s] = [Math.cos(angle), Math.sin(angle)];
    const [v0, v1] = [vec[i], vec[i + 1]];
    out[i] = v0 * c - v1 * s;
    out[i + 1] = v0 * s + v1 * c;
    err[i] = err[i + 1] = (14 * pos + 6) * U * (Math.abs(v0) + Math.abs(v1));
  }
  return { out, err };
}

async function runCase(c: Config, seed: number) {
  const hs = c.dim / c.nHeads;
  const kvDim = (c.dim * c.nKvHeads) / c.nHeads;
  const kvMul = c.nHeads / c.nKvHeads;
  const stride = c.dim + 2 * kvDim; // one token's q|k|v row
  const dims = { qDim: c.dim, kvDim, headDim: hs, nHeads: c.nHeads, nKvHeads: c.nKvHeads, seqLen: c.seqLen };
  const rng = mulberry32(seed);
  const cacheFloats = c.rows * c.nKvHeads * c.seqLen * hs;
  const maxT = 8;

  const step = await gpu.step({ nTokens: 1 });
  const tokens = await gpu.tokens(new Array(maxT).fill({ id: 0, pos: 0, row: 0 }));
  const qkv = await gpu.alloc(maxT * stride);
  const rope = await gpu.upload(ropeTable(llama2cConfig(c), c.seqLen));
  const bias = await gpu.upload(new Float32Array(stride));
  const qkNorm = await gpu.upload(new Float32Array(2 * hs).fill(1));
  const kCache = await gpu.alloc(cacheFloats);
  const vCache = await gpu.alloc(cacheFloats);
  const out = await gpu.alloc((maxT + 1) * c.dim);
  const calls = [
    await gpu.kernels.ropeKv('rope_kv', { ...dims, ropeHalf: false, qkNorm: false, eps: 1e-6 }, { step, tokens, qkv, rope, kCache, vCache, bias, qkNorm }),
    await gpu.kernels.attention('attention', dims, { step, tokens, qkv, kCache, vCache, out }),
  ];
  const ref = new RefCache(c, hs);

  const stepOf = async (slots: TokenSlot[], what: string) => {
    const T = slots.length;
    const input = randn(rng, T * stride, 1.5);
    gpu.writeStep(step, { nTokens: T });
    gpu.write(tokens, new Uint32Array(slots.flatMap((s) => [s.id, s.pos, s.row, 0])));
    gpu.write(qkv, input);
    gpu.write(out, new Float32Array((maxT + 1) * c.dim).fill(Number.NaN));
    const [qkvBytes, kBytes, vBytes, outBytes] = await gpu.run(calls, { nTokens: T, statsRows: 0 }, [qkv, kCache, vCache, out]);
    const gotQkv = new Float32Array(qkvBytes);
    const gotOut = new Float32Array(outBytes);

    // RoPE of q in place; k and v of the qkv rows are left as they were.
    const qRot: Float64Array[] = [];
    const qErr: Float64Array[] = [];
    for (let t = 0; t < T; t++) {
      const row = input.subarray(t * stride, (t + 1) * stride);
      const q = ropeRef(row, c.dim, hs, slots[t].pos);
      qRot.push(q.out);
      qErr.push(q.err);
      assertClose(gotQkv.subarray(t * stride, t * stride + c.dim), q.out, (i) => q.err[i], `${what}: rotated q of token ${t}`);
      assert.deepEqual(
        new Uint32Array(gotQkv.buffer, 4 * (t * stride + c.dim), 2 * kvDim),
        new Uint32Array(input.buffer, 4 * (t * stride + c.dim), 2 * kvDim),
        `${what}: k|v of token ${t} in qkv changed`,
      );
      // The float64 cache: rotated k (the first kv_dim features rotate, as in run.c), v copied.
      const k = ropeRef(row.subarray(c.dim), kvDim, hs, slots[t].pos);
      for (let h = 0; h < c.nKvHeads; h++) {
        const at = ref.index(slots[t].row, h, slots[t].pos);
        for (let d = 0; d < hs; d++) {
          ref.k[at + d] = k.out[h * hs + d];
          ref.kErr[at + d] = k.err[h * hs + d];
          ref.v[at + d] = row[c.dim + kvDim + h * hs + d];
        }
      }
    }

    // The caches: written slots as above (v bit-exact), every other slot still NaN.
    const gotK = new Float32Array(kBytes);
    const gotV = new Float32Array(vBytes);
    for (let i = 0; i < cacheFloats; i++) {
      if (Number.isNaN(ref.k[i])) {
        if (!Number.isNaN(gotK[i]) || !Number.isNaN(gotV[i])) assert.fail(`${what}: stray KV cache write at ${i}`);
      } else {
        assert.ok(Math.abs(gotK[i] - ref.k[i]) <= ref.kErr[i], `${what}: k cache[${i}] = ${gotK[i]}, expected ${ref.k[i]} ± ${ref.kErr[i]}`);
        assert.equal(gotV[i], ref.v[i], `${what}: v cache[${i}]`);
      }
    }

    // Attention, llama2.c's loop: scores q·k/√hs over positions 0..pos of the token's row, softmax,
    // weighted sum of v.
    const want = new Float64Array(T * c.dim);
    const tol = new Float64Array(T * c.dim);
    for (let t = 0; t < T; t++) {
      const { row, pos } = slots[t];
      for (let h = 0; h < c.nHeads; h++) {
        const kvh = Math.floor(h / kvMul);
        const q = qRot[t].subarray(h * hs, (h + 1) * hs);
        const eq = qErr[t].subarray(h * hs, (h + 1) * hs);
        const scores: number[] = [];
        let dScore = 0; // bound on the GPU's score error
        for (let p = 0; p <= pos; p++) {
          const at = ref.index(row, kvh, p);
          let s = 0;
          let abs = 0;
          let prop = 0;
          for (let d = 0; d < hs; d++) {
            s += q[d] * ref.k[at + d];
            abs += Math.abs(q[d] * ref.k[at + d]);
            prop += eq[d] * Math.abs(ref.k[at + d]) + Math.abs(q[d]) * ref.kErr[at + d];
          }
          const scale = 1 / Math.sqrt(hs);
          scores.push(s * scale);
          // q and k carry their RoPE errors (prop); the float32 dot of hs terms adds (hs + 2)U·Σ|q·k|;
          // the scale 1/sqrt(hs) is good to 14U (division 5U, sqrt 9U) and the product rounds (U).
          dScore = Math.max(dScore, scale * (prop + (hs + 2) * U * abs) + 15 * U * Math.abs(s * scale));
        }
        const m = Math.max(...scores);
        const w = scores.map((s) => Math.exp(s - m));
        const sum = w.reduce((a, b) => a + b, 0);
        const R = m - Math.min(...scores);
        const P = pos + 1;
        for (let d = 0; d < hs; d++) {
          let o = 0;
          let absO = 0;
          for (let p = 0; p <= pos; p++) {
            const vv = ref.v[ref.index(row, kvh, p) + d];
            o += (w[p] / sum) * vv;
            absO += (w[p] / sum) * Math.abs(vv);
          }
          const i = t * c.dim + h * hs + d;
          want[i] = o;
          // Each weight e^(s_p − m)/Σ moves by ≤ 2·dScore relative from the score errors (the max
          // recomputed from the same scores), by the exp's (6 + 4R)U in the numerator and in every
          // term of Σ, by P·U summing Σ and 5U dividing; the weighted sum of P values adds P·U.
          tol[i] = absO * (2 * dScore + (2 * (6 + 4 * R) + 2 * P + 5) * U) + 1e-30;
        }
      }
    }
    assertClose(gotOut.subarray(0, T * c.dim), want, (i) => tol[i], `${what}: attention output`);
    for (let i = T * c.dim; i < gotOut.length; i++) {
      if (!Number.isNaN(gotOut[i])) assert.fail(`${what}: attention wrote past its tokens at ${i}`);
    }
  };

  // Prefill: five tokens of row 0 at once.
  await stepOf([0, 1, 2, 3, 4].map((pos) => ({ id: 0, pos, row: 0 })), 'prefill');
  // Decode: one more token of row 0.
  await stepOf([{ id: 0, pos: 5, row: 0 }], 'decode');
  // Two KV rows in one step, tokens interleaved.
  await stepOf([
    { id: 0, pos: 0, row: 1 }, { id: 0, pos: 6, row: 0 }, { id: 0, pos: 1, row: 1 }, { id: 0, pos: 2, row: 1 },
  ], 'batch');
}

describe('rope_kv + attention', () => {
  test('dim 16, 2 heads of 8, seqLen 8, 2 KV rows', () => runCase({ dim: 16, nHeads: 2, nKvHeads: 2, seqLen: 8, rows: 2 }, 1));
  test('grouped-query: dim 16, 4 heads of 4, 2 KV heads', () => runCase({ dim: 16, nHeads: 4, nKvHeads: 2, seqLen: 8, rows: 2 }, 2));
  test('grouped-query: dim 36, 3 heads of 12, 1 KV head, seqLen 9', () => runCase({ dim: 36, nHeads: 3, nKvHeads: 1, seqLen: 9, rows: 2 }, 3));
  test('stories15M heads: dim 288, 6 heads of 48, seqLen 8', () => runCase({ dim: 288, nHeads: 6, nKvHeads: 6, seqLen: 8, rows: 2 }, 4));
});
