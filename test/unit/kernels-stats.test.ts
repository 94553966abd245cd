// lm_head_stats.wgsl: the fused LM head + softmax statistics (lmHeadStats) and the same reduction
// over a logits buffer (logitsStats), against float64 references: lse, entropy and varentropy of
// softmax(s), s = z·inv_stats_temp; max logit, argmax (first maximum), top-K raw logits (descending,
// ties by lower id), and the Gumbel-max sample of softmax(z·inv_sample_temp) keyed by
// (seed, KV row, pos, counter, id) — checked against a CPU mirror of the shader's PCG hash and,
// statistically, against softmax frequencies.
//
// Two kinds of data:
//  - dyadic: hidden = k/8, classifier = k/16 with |k| ≤ 8, so every partial sum of a logit is a
//    multiple of 2^-7 below 2^8 and float32 computes the logits *exactly*. Max, argmax, top-K and
//    planted ties are then compared exactly, and only the reduction's rounding remains.
//  - Gaussian (the real 32000 × 288 size): the GPU's logits carry matmul rounding, bounded per id by
//    (dim + 2)·U·Σ_k|h_k·w_k| (see kernels-matmul.test.ts); selections are checked up to that.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { type ClassifierTile, LM_PARTIALS_PER_ROW, LM_PARTIAL_BYTES, statsRecordWords } from '../../src/gpu/kernels.ts';
import type { KernelCall } from '../../src/gpu/pipelines.ts';
import { rngBits, uniform01 } from '../../src/decode/rng.ts';
import { classifierTiles, transposeConcat } from '../../src/model/weights.ts';
import { type StepStats, parseStats } from '../../src/runtime/stats.ts';
import {
  GpuTest, type StepParams, type StatsRef, type TokenSlot, U, dyadic, matmulAbsRef, matmulRef, mulberry32, randInt,
  randn, statsRef,
} from '../support/gpu.ts';

let gpu: GpuTest;
before(async () => {
  gpu = await GpuTest.create();
});
afterEach(() => gpu.release());
after(() => gpu.destroy());

const SENTINEL = 0xdeadbeef;

// ---------------------------------------------------------------------------------------------
// Running the kernels

interface StatsRun {
  stats: StepStats[];
  words: Uint32Array;
}

/** Buffers of the reduction for `statsRows` rows; the stats buffer has one spare record. */
async function reductionBuffers(statsRows: number, topK: number, tiles = 1) {
  const partials = statsRows * tiles * LM_PARTIALS_PER_ROW;
  return {
    partials: await gpu.alloc((partials * LM_PARTIAL_BYTES) / 4, 0, 'partials'),
    partialTopK: await gpu.alloc(partials * 2 * topK, 0, 'partial_topk'),
    stats: await gpu.allocU32((statsRows + 1) * statsRecordWords(topK), SENTINEL, 'stats'),
  };
}

async function finish(calls: KernelCall[], p: StepParams, stats: GPUBuffer, topK: number): Promise<StatsRun> {
  const statsRows = p.statsRows ?? 0;
  const [bytes] = await gpu.run(calls, { nTokens: p.nTokens, statsRows }, [stats]);
  const words = new Uint32Array(bytes);
  const record = statsRecordWords(topK);
  for (let i = statsRows * record; i < (statsRows + 1) * record; i++) {
    if (words[i] !== SENTINEL) assert.fail(`stats record past the last stats row was written (word ${i})`);
  }
  return { stats: parseStats(bytes, statsRows, topK), words: words.subarray(0, statsRows * record) };
}

/**
 * The classifier on the GPU, transposed and split into vocabulary tiles of at most
 * `maxBindingBytes` as model/weights.ts does; runs lmHeadStats over it.
 */
class LmHead {
  private constructor(readonly dim: number, readonly vocab: number, private readonly tiles: ClassifierTile[]) {}

  static async create(dim: number, vocab: number, W: Float32Array, maxBindingBytes = Infinity): Promise<LmHead> {
    const tiles: ClassifierTile[] = [];
    for (const t of classifierTiles(vocab, dim, maxBindingBytes)) {
      const rows = W.subarray(t.firstId * dim, (t.firstId + t.vocab) * dim);
      tiles.push({ ...t, buffer: await gpu.upload(transposeConcat([rows], dim), 'wcls') });
    }
    return new LmHead(dim, vocab, tiles);
  }

  get tileCount(): number {
    return this.tiles.length;
  }

  async run(hidden: Float32Array, slots: readonly TokenSlot[], p: StepParams, topK: number): Promise<StatsRun> {
    const b = await reductionBuffers(p.statsRows ?? 0, topK, this.tiles.length);
    const calls = await gpu.kernels.lmHeadStats('lm_head', { dim: this.dim, topK }, {
      step: await gpu.step(p), tokens: await gpu.tokens(slots), hidden: await gpu.upload(hidden), tiles: this.tiles, ...b,
    });
    return finish(calls, p, b.stats, topK);
  }
}

/** logitsStats over `logits` [statsRows][vocab] (laid out in rows padded to a multiple of 4, as the session's logits buffer is). */
async function runLogitsStats(vocab: number, logits: Float32Array, slots: readonly TokenSlot[], p: StepParams, topK: number) {
  const b = await reductionBuffers(p.statsRows ?? 0, topK);
  const stride = Math.ceil(vocab / 4) * 4;
  const rows = logits.length / vocab;
  const padded = new Float32Array(rows * stride).fill(Number.NaN);
  for (let r = 0; r < rows; r++) padded.set(logits.subarray(r * vocab, (r + 1) * vocab), r * stride);
  const calls = await gpu.kernels.logitsStats('logits_stats', { vocab, topK }, {
    step: await gpu.step(p), tokens: await gpu.tokens(slots), logits: await gpu.upload(padded), ...b,
  });
  return finish(calls, p, b.stats, topK);
}

// ---------------------------------------------------------------------------------------------
// The shader's counter-based RNG is mirrored in src/decode/rng.ts (checked bit for bit there).

// ---------------------------------------------------------------------------------------------
// Checking a StepStats record

interface Expect {
  what: string;
  /** float64 logits of the row (exact for dyadic data). */
  z: ArrayLike<number>;
  /** Per-id bound on the GPU logit's error; omitted when the GPU logits are exact. */
  zErr?: ArrayLike<number>;
  topK: number;
  invStatsTemp: number;
  invSampleTemp: number;
  key: { seed: number; row: number; pos: number; counter: number; next?: number };
}

/**
 * Tolerances of lse, entropy and varentropy (U = 2^-24; WGSL: exp(x) good to 3 + 2|x| ulp, i.e.
 * (6 + 4|x|)U relative, log to 2^-21 absolute on [0.5, 2] and 3 ulp elsewhere, x/y to 2.5 ulp).
 *
 * The kernel keeps Z = Σe^x, A = Σe^x·x, B = Σe^x·x² with x = s − m ≤ 0, m = max s, in three
 * levels: each invocation folds n1 logits, 32 merge threads fold 32 partials each, thread 0 folds
 * the 32 results. Let |s| ≤ S and R = max s − min s. A term's argument carries ≤ (2S + R)U (s and m
 * round once, s − m once). Its exp carries ≤ (6 + 4R)U; at each level the running sum is rescaled
 * by exp(m_old − m_new) whenever the max grows, Σ(6 + 4·gap)U ≤ (6·items + 4R)U since the gaps
 * telescope to ≤ R, and an incoming partial is scaled once more ((6 + 4R)U). Each item of a level
 * costs two roundings (w·z, +). Summing over the levels, every term of Z (all positive) is off by
 * a relative
 *     ε ≤ U·(2S + R + 3(6 + 4R) + (6·n1 + 4R) + 2(6·32 + 4R) + 2(n1 + 64)) = U·(8n1 + 530 + 25R + 2S).
 * A and B have one or two more factors x per term (each off by ≤ (2S + R)U =: αabs) and a few more
 * roundings per merge (a + d·z, b + 2d·a + d²·z): we allow 2ε on Σe^x|x| = G·Z and 3ε on
 * Σe^x x² = Q·Z, where G = E_p[m − s] and Q = E_p[(m − s)²] = V + G². Then, with Z ≥ 1 (it holds
 * the max term e^0):
 *   ln Z:        ε + max(2^-21, 6U·ln Z)
 *   lse = m+lnZ: that + U(|m| + |lse|)
 *   μ = A/Z:     (3ε + 5U)·G + αabs
 *   H = lnZ − μ: ln Z's + μ's + U·H
 *   V = B/Z − μ²: (4ε + 5U)·Q + 2αabs·G (B/Z) + 2G·(μ's) (μ²) + 2U·Q
 * Logit errors δ (times inv_stats_temp) propagate with ∂lse/∂s_j = p_j, ∂H/∂s_j = −p_j(s_j − s̄),
 * ∂V/∂s_j = p_j((s_j − s̄)² − V + 2(s_j − s̄)): ≤ δ, δ·E|s − s̄|, δ·(2V + 2E|s − s̄|).
 */
function statsTolerance(ref: StatsRef, z: ArrayLike<number>, invT: number, vocab: number, delta: number) {
  let S = 0;
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < z.length; i++) {
    const s = z[i] * invT;
    S = Math.max(S, Math.abs(s));
    lo = Math.min(lo, s);
    hi = Math.max(hi, s);
  }
  const R = hi - lo;
  // Logits per invocation: logits_partials strides ids by 1024; lm_head takes 8 ids (two vec4
  // columns) per iteration over ⌈V4/2⌉ columns strided by 1024.
  const n1 = Math.max(Math.ceil(vocab / 1024), 8 * Math.ceil(Math.ceil(Math.ceil(vocab / 4) / 2) / 1024));
  const eps = U * (8 * n1 + 530 + 25 * R + 2 * S);
  const alpha = (2 * S + R) * U;
  const m = hi;
  const lnZ = ref.lse - m;
  const G = ref.meanGap;
  const Q = ref.varentropy + G * G;
  const dLnZ = eps + Math.max(2 ** -21, 6 * U * lnZ);
  const dMu = (3 * eps + 5 * U) * G + alpha;
  return {
    lse: dLnZ + U * (Math.abs(m) + Math.abs(ref.lse)) + delta,
    entropy: dLnZ + dMu + U * ref.entropy + delta * ref.meanAbsDev,
    varentropy: (4 * eps + 5 * U) * Q + 2 * alpha * G + 2 * G * dMu + 2 * U * Q
      + delta * (2 * ref.varentropy + 2 * ref.meanAbsDev),
  };
}

/**
 * Bound on the error of the GPU's Gumbel key z·inv − log(−log u) of one id: the logit's error and
 * the product's rounding, then WGSL's log: L = −log u is off by ≤ max(2^-21, 6U·L) (absolute on
 * [0.5, 2], 3 ulp elsewhere), so log L by that / L plus log's own error, and the subtraction U.
 */
function keyError(z: number, zErr: number, inv: number, u: number): number {
  const L = -Math.log(u);
  const g = -Math.log(L);
  const dL = Math.max(2 ** -21, 6 * U * L);
  const dLogL = dL / L + (L >= 0.5 && L <= 2 ? 2 ** -21 : 6 * U * Math.abs(g));
  return zErr * inv + U * Math.abs(z * inv) + dLogL + U * (Math.abs(z * inv) + Math.abs(g));
}

function checkStats(got: StepStats, e: Expect): void {
  const { z, what } = e;
  const n = z.length;
  const zErr = (i: number) => (e.zErr ? e.zErr[i] : 0);
  let delta = 0;
  for (let i = 0; i < n; i++) delta = Math.max(delta, zErr(i));
  const ref = statsRef(z, e.invStatsTemp);

  // Max logit and argmax: exact for exact logits; else the GPU's pick must be a maximum up to the
  // logit errors, and its reported logit that id's logit up to its error.
  if (!e.zErr) {
    assert.equal(got.argmax, ref.argmax, `${what}: argmax`);
    assert.equal(got.maxLogit, ref.maxLogit, `${what}: max logit`);
  } else {
    const a = got.argmax;
    assert.ok(a >= 0 && a < n, `${what}: argmax ${a} out of range`);
    assert.ok(z[a] + zErr(a) >= ref.maxLogit - zErr(ref.argmax), `${what}: argmax ${a} (z ${z[a]}) is not a maximum (${ref.maxLogit} at ${ref.argmax})`);
    assert.ok(Math.abs(got.maxLogit - z[a]) <= zErr(a), `${what}: max logit ${got.maxLogit}, z[${a}] = ${z[a]} ± ${zErr(a)}`);
  }

  // Top-K: min(K, vocab) entries (parseStats drops the empty slots), descending, ties by lower id.
  const k = Math.min(e.topK, n);
  assert.equal(got.topK.length, k, `${what}: top-K length`);
  const ids = got.topK.map((c) => c.id);
  assert.equal(new Set(ids).size, k, `${what}: top-K ids repeat: ${ids}`);
  for (let r = 1; r < k; r++) {
    const [prev, cur] = [got.topK[r - 1], got.topK[r]];
    assert.ok(prev.logit > cur.logit || (prev.logit === cur.logit && prev.id < cur.id),
      `${what}: top-K not in order at rank ${r}: (${prev.id}, ${prev.logit}) then (${cur.id}, ${cur.logit})`);
  }
  if (!e.zErr) {
    assert.deepEqual(ids, ref.order.slice(0, k), `${what}: top-K ids`);
    assert.deepEqual(got.topK.map((c) => c.logit), ids.map((i) => z[i]), `${what}: top-K logits`);
  } else {
    // The r-th largest GPU logit is within δ of the r-th largest true one (sorting is 1-Lipschitz
    // in the max norm), and each reported logit within its own error of its id's true logit.
    for (let r = 0; r < k; r++) {
      const c = got.topK[r];
      assert.ok(Math.abs(c.logit - z[c.id]) <= zErr(c.id), `${what}: top-K logit of ${c.id}: ${c.logit} vs ${z[c.id]}`);
      assert.ok(Math.abs(z[c.id] - z[ref.order[r]]) <= 2 * delta,
        `${what}: top-K rank ${r} is ${c.id} (z ${z[c.id]}), expected ${ref.order[r]} (z ${z[ref.order[r]]}) ± ${2 * delta}`);
    }
  }

  const tol = statsTolerance(ref, z, e.invStatsTemp, n, delta * e.invStatsTemp);
  if (process.env.KERNELS_VERBOSE) {
    const r = (k_: 'lse' | 'entropy' | 'varentropy') => (Math.abs(got[k_] - ref[k_]) / tol[k_]).toPrecision(2);
    console.log(`  ${what}: lse ${r('lse')}, H ${r('entropy')}, V ${r('varentropy')} × tolerance (H = ${ref.entropy.toFixed(3)})`);
  }
  for (const key of ['lse', 'entropy', 'varentropy'] as const) {
    assert.ok(Math.abs(got[key] - ref[key]) <= tol[key],
      `${what}: ${key} ${got[key]}, expected ${ref[key]} ± ${tol[key].toExponential(2)}`);
  }

  // The sampled id: the argmax when not sampling; else the largest Gumbel key of the mirrored RNG,
  // up to the keys' errors.
  if (e.invSampleTemp <= 0) {
    assert.equal(got.sampled, got.argmax, `${what}: sampled id without sampling`);
  } else {
    const { seed, row, pos, counter } = e.key;
    let best = -Infinity;
    const keys = new Float64Array(n);
    const errs = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const u = uniform01(seed, row, pos, counter, i);
      keys[i] = z[i] * e.invSampleTemp - Math.log(-Math.log(u));
      errs[i] = keyError(z[i], zErr(i), e.invSampleTemp, u);
      best = Math.max(best, keys[i] - errs[i]);
    }
    const s = got.sampled;
    assert.ok(s >= 0 && s < n && keys[s] + errs[s] >= best,
      `${what}: sampled ${s} (key ${keys[s]}) is not the Gumbel-max (${best} at ${keys.indexOf(Math.max(...keys))})`);
  }

  // The next token's logit: the slot's `next` when it has one, else the sampled id's.
  const next = e.key.next ?? got.sampled;
  assert.ok(got.nextLogit !== undefined && Math.abs(got.nextLogit - z[next]) <= zErr(next),
    `${what}: logit of the next token ${next} (${e.key.next === undefined ? 'sampled' : 'given'}): ${got.nextLogit} vs ${z[next]}`);
}

// ---------------------------------------------------------------------------------------------
// Data

/** Plants an exact tie at the top of hidden row `t`: classifier row `b` := row of its argmax `a`. */
function plantTopTie(rng: () => number, W: Float32Array, hidden: Float32Array, t: number, dim: number, vocab: number) {
  const z = matmulRef(hidden.subarray(t * dim, (t + 1) * dim), W, 1, dim, vocab);
  const a = statsRef(z).argmax;
  let b = randInt(rng, vocab - 1);
  if (b >= a) b++;
  W.copyWithin(b * dim, a * dim, (a + 1) * dim);
  return [Math.min(a, b), Math.max(a, b)];
}

/** Random slots; every other one knows its next token (an id below `vocab`). */
function slotsFor(n: number, rng: () => number, vocab: number): TokenSlot[] {
  return Array.from({ length: n }, (_, i) => ({
    id: randInt(rng, 100), pos: randInt(rng, 4096), row: randInt(rng, 4), ...(i % 2 === 0 ? { next: randInt(rng, vocab) } : {}),
  }));
}

// ---------------------------------------------------------------------------------------------

describe('lmHeadStats', () => {
  test('real size: vocab 32000, dim 288, Gaussian data, 3 stats rows from row 2 of 5, top-64, sampling', async () => {
    const [dim, vocab, topK] = [288, 32000, 64];
    const rng = mulberry32(42);
    const W = randn(rng, vocab * dim, 1 / Math.sqrt(dim) * 3);
    const hidden = randn(rng, 5 * dim);
    const slots = slotsFor(5, rng, vocab);
    const head = await LmHead.create(dim, vocab, W);
    const p = { nTokens: 5, statsRowStart: 2, statsRows: 3, seed: 7, counter: 3, invStatsTemp: 1, invSampleTemp: Math.fround(1 / 0.9) };
    const { stats } = await head.run(hidden, slots, p, topK);
    for (let t = 0; t < 3; t++) {
      const h = hidden.subarray((2 + t) * dim, (3 + t) * dim);
      const z = matmulRef(h, W, 1, dim, vocab);
      // Matmul rounding of each logit (kernels-matmul.test.ts): (dim + 2)·U·Σ|h·w|.
      const zErr = matmulAbsRef(h, W, 1, dim, vocab).map((a) => (dim + 2) * U * a);
      checkStats(stats[t], { what: `row ${2 + t}`, z, zErr, topK, invStatsTemp: 1, invSampleTemp: p.invSampleTemp, key: { seed: 7, counter: 3, ...slots[2 + t] } });
    }
  });

  // Exact (dyadic) data: vocab 32000 and awkward vocabularies (not multiples of 4, fewer ids than
  // the 1024 invocations), top-K 1, 5, 64, inv_stats_temp ≠ 1, planted ties at the top. The same
  // logits also go through logitsStats, which must agree.
  const cases = [
    { vocab: 5, dim: 8, topK: 64, temp: 1, sample: 0 },
    { vocab: 5, dim: 8, topK: 1, temp: 0.7, sample: 0.8 },
    { vocab: 37, dim: 36, topK: 5, temp: 0.7, sample: 1.3 },
    { vocab: 1001, dim: 288, topK: 64, temp: 0.7, sample: 0.8 },
    { vocab: 1001, dim: 20, topK: 1, temp: 1, sample: 1 },
    { vocab: 32000, dim: 288, topK: 64, temp: 0.7, sample: 0 }, // pipelines shared with the Gaussian cases
    // A classifier split into vocabulary tiles (as one larger than a storage binding is): 3 and 6
    // tiles, the last one shorter, must give the same record as one tile.
    { vocab: 1001, dim: 20, topK: 5, temp: 0.7, sample: 0.8, maxBindingBytes: 20 * 16 * 84 },
    { vocab: 37, dim: 36, topK: 64, temp: 1, sample: 0, maxBindingBytes: 36 * 16 * 2 },
  ];
  for (const c of cases) {
    const tiled = c.maxBindingBytes ? `, classifier in ${classifierTiles(c.vocab, c.dim, c.maxBindingBytes).length} tiles` : '';
    test(`exact logits: vocab ${c.vocab}, dim ${c.dim}, top-${c.topK}, T_stats ${c.temp}${c.sample ? `, sampling T ${c.sample}` : ''}${tiled}; logitsStats agrees`, async () => {
      const rng = mulberry32(c.vocab * 7 + c.dim + c.topK);
      const nTokens = 4;
      const [start, rows] = [1, 3];
      const hidden = dyadic(rng, nTokens * c.dim, 8, 8);
      const W = dyadic(rng, c.vocab * c.dim, 8, 16);
      const tie = plantTopTie(rng, W, hidden, start, c.dim, c.vocab);
      const slots = slotsFor(nTokens, rng, c.vocab);
      const invStatsTemp = Math.fround(1 / c.temp);
      const invSampleTemp = c.sample ? Math.fround(1 / c.sample) : 0;
      const p = { nTokens, statsRowStart: start, statsRows: rows, seed: 1234 + c.vocab, counter: 5, invStatsTemp, invSampleTemp };
      const head = await LmHead.create(c.dim, c.vocab, W, c.maxBindingBytes);
      if (c.maxBindingBytes) assert.ok(head.tileCount > 1, 'the classifier is split');
      const fused = await head.run(hidden, slots, p, c.topK);
      const logits = new Float32Array(rows * c.vocab);
      for (let t = 0; t < rows; t++) {
        logits.set(matmulRef(hidden.subarray((start + t) * c.dim, (start + t + 1) * c.dim), W, 1, c.dim, c.vocab), t * c.vocab);
      }
      const reduced = await runLogitsStats(c.vocab, logits, slots, p, c.topK);
      for (let t = 0; t < rows; t++) {
        const z = logits.subarray(t * c.vocab, (t + 1) * c.vocab);
        const e = { z, topK: c.topK, invStatsTemp, invSampleTemp, key: { seed: p.seed, counter: p.counter, ...slots[start + t] } };
        if (t === 0) {
          assert.equal(z[tie[0]], z[tie[1]], 'planted tie');
          assert.equal(statsRef(z).maxLogit, z[tie[0]], 'planted tie is at the top');
          assert.equal(fused.stats[0].argmax, tie[0], 'a tie at the max goes to the lower id');
        }
        checkStats(fused.stats[t], { ...e, what: `lmHeadStats row ${start + t}` });
        checkStats(reduced.stats[t], { ...e, what: `logitsStats row ${start + t}` });
        // Selections over bit-identical logits are identical, whatever the reduction order.
        const pick = (s: StepStats) => ({ maxLogit: s.maxLogit, argmax: s.argmax, sampled: s.sampled, topK: s.topK });
        assert.deepEqual(pick(reduced.stats[t]), pick(fused.stats[t]), `row ${start + t}: logitsStats and lmHeadStats pick differently`);
      }
      // Top-K slots past the vocabulary hold id 0xffffffff (parseStats drops them).
      const record = statsRecordWords(c.topK);
      for (let j = c.vocab; j < c.topK; j++) assert.equal(fused.words[6 + 2 * j], 0xffffffff, `empty top-K slot ${j}`);
      assert.equal(fused.words.length, rows * record);
    });
  }
});

describe('logitsStats', () => {
  test('vocab 32000, Gaussian float32 logits, 2 rows, top-64, T_stats 1.3, sampling T 1.1', async () => {
    const [vocab, rows, topK] = [32000, 2, 64];
    const rng = mulberry32(9);
    const logits = randn(rng, rows * vocab, 3);
    const slots = slotsFor(rows, rng, vocab);
    const invStatsTemp = Math.fround(1 / 1.3);
    const invSampleTemp = Math.fround(1 / 1.1);
    const p = { nTokens: rows, statsRows: rows, seed: 99, counter: 0, invStatsTemp, invSampleTemp };
    const { stats } = await runLogitsStats(vocab, logits, slots, p, topK);
    for (let t = 0; t < rows; t++) {
      checkStats(stats[t], {
        what: `row ${t}`, z: logits.subarray(t * vocab, (t + 1) * vocab), topK, invStatsTemp, invSampleTemp,
        key: { seed: 99, counter: 0, ...slots[t] },
      });
    }
  });

  // merge_select gathers the logits at or above a bound from the partials' maxima; a row with
  // more than 1024 of them (row 0: 2000 ids tied at the top) takes its bisection path, and row 1's
  // logits on a grid of halves tie at every value, the K-th largest included.
  test('flat rows: 2000 logits tied at the top (bisection), logits on a grid of halves; top-64 and top-5', async () => {
    const [vocab, rows] = [32000, 2];
    const rng = mulberry32(21);
    const logits = randn(rng, rows * vocab, 1);
    for (let i = 0; i < vocab; i++) logits[i] -= 5;
    for (let n = 0; n < 2000; n++) logits[Math.floor(rng() * vocab)] = 1;
    for (let i = vocab; i < 2 * vocab; i++) logits[i] = Math.round(logits[i] * 4) / 2;
    const slots = slotsFor(rows, rng, vocab);
    for (const topK of [64, 5]) {
      const p = { nTokens: rows, statsRows: rows, seed: 5, counter: 0, invStatsTemp: 1, invSampleTemp: 1 };
      const { stats } = await runLogitsStats(vocab, logits, slots, p, topK);
      for (let t = 0; t < rows; t++) {
        checkStats(stats[t], {
          what: `top-${topK} row ${t}`, z: logits.subarray(t * vocab, (t + 1) * vocab), topK, invStatsTemp: 1, invSampleTemp: 1,
          key: { seed: 5, counter: 0, ...slots[t] },
        });
      }
      assert.ok(stats[0].topK.every((c) => c.logit === 1), 'row 0: the top-K are tied ids');
    }
  });

  test('vocab 3, top-8, stats rows from row 2 (slots of rows 2.., logits indexed from 0)', async () => {
    const logits = new Float32Array([0.5, -1, 0.5, 2, 3, -4]);
    const slots = [{ id: 0, pos: 0, row: 0 }, { id: 0, pos: 1, row: 0 }, { id: 1, pos: 2, row: 1 }, { id: 2, pos: 3, row: 1 }];
    const p = { nTokens: 4, statsRowStart: 2, statsRows: 2, seed: 3, counter: 1, invStatsTemp: 1, invSampleTemp: 1 };
    const { stats } = await runLogitsStats(3, logits, slots, p, 8);
    for (let t = 0; t < 2; t++) {
      checkStats(stats[t], {
        what: `row ${t}`, z: logits.subarray(3 * t, 3 * t + 3), topK: 8, invStatsTemp: 1, invSampleTemp: 1,
        key: { seed: 3, counter: 1, ...slots[2 + t] },
      });
    }
    assert.equal(stats[0].argmax, 0, 'tie between ids 0 and 2 goes to 0');
  });
});

describe('Gumbel-max sampling', () => {
  // Eight logits with a spread of probabilities (smallest ≈ 1% at T = 0.8).
  const Z8 = [1.0, 0.5, 0, -0.5, 2.0, -1, 0.25, 1.5];
  const rows = 1000;
  const logits8 = new Float32Array(rows * 8);
  for (let r = 0; r < rows; r++) logits8.set(Z8, 8 * r);
  const slots8 = Array.from({ length: rows }, (_, r) => ({ id: 0, pos: r, row: 0 }));
  const sampleIds = async (p: Partial<StepParams>) => {
    const { stats } = await runLogitsStats(8, logits8, slots8, { nTokens: rows, statsRows: rows, ...p }, 1);
    return stats.map((s) => s.sampled);
  };

  test('frequencies match softmax(z/T): chi-square over 4000 draws (1000 positions × 4 counters)', async () => {
    const T = 0.8;
    const invSampleTemp = Math.fround(1 / T);
    const counts = new Array(8).fill(0);
    const draws: number[][] = [];
    for (let counter = 0; counter < 4; counter++) {
      const ids = await sampleIds({ seed: 2024, counter, invSampleTemp });
      ids.forEach((id) => counts[id]++);
      draws.push(ids);
    }
    const p = Array.from(new Float64Array(8).map((_, i) => Math.exp(Z8[i] * invSampleTemp)));
    const sum = p.reduce((a, b) => a + b, 0);
    const N = 4 * rows;
    let chi2 = 0;
    for (let i = 0; i < 8; i++) {
      const expected = (N * p[i]) / sum;
      assert.ok(expected >= 5, 'chi-square needs ≥ 5 expected per cell');
      chi2 += (counts[i] - expected) ** 2 / expected;
    }
    // Under correct sampling chi2 follows χ² with 7 degrees of freedom: P(χ²₇ > 24.32) = 0.001.
    // (The draws are fixed by the seeds, so the test is deterministic; 24.32 is where a correct
    // kernel with an ideal RNG would fail one seed set in a thousand.) Power: the expected chi2 of
    // a sampler at T = 1 instead of 0.8 is ≈ 160 here, at T = 0.9 ≈ 45.
    assert.ok(chi2 < 24.32, `chi-square ${chi2.toFixed(1)} with counts ${counts} (expected ∝ ${p.map((x) => (x / sum).toFixed(3))})`);
    // Counters give independent streams: two draws agree with probability Σp² (≈ 0.28 here); the
    // share of positions where counters 0 and 1 agree is within 5σ (σ = √(q(1−q)/1000) ≈ 0.014).
    const q = p.reduce((a, b) => a + (b / sum) ** 2, 0);
    const agree = draws[0].filter((id, r) => id === draws[1][r]).length / rows;
    assert.ok(Math.abs(agree - q) < 5 * Math.sqrt((q * (1 - q)) / rows), `counters 0 and 1 agree on ${agree} of draws, expected ≈ ${q.toFixed(3)}`);
  });

  test('same (seed, row, pos, counter) → same id; other seeds, KV rows → other ids', async () => {
    const invSampleTemp = 1;
    const a = await sampleIds({ seed: 5, counter: 0, invSampleTemp });
    const b = await sampleIds({ seed: 5, counter: 0, invSampleTemp });
    assert.deepEqual(a, b, 'same seed, same draws');
    const c = await sampleIds({ seed: 6, counter: 0, invSampleTemp });
    const q = 0.26; // two independent draws agree with probability Σp² = 0.231 at T = 1; 0.26 bounds it
    const agree = a.filter((id, r) => id === c[r]).length / rows;
    assert.ok(agree < q + 5 * Math.sqrt((q * (1 - q)) / rows), `seeds 5 and 6 agree on ${agree} of draws`);

    // High entropy (1001 nearly equal logits): 8 seeds give ≥ 6 distinct ids in each of 4 rows
    // (two draws collide with probability ≈ 1/1001; 28 pairs per row).
    const vocab = 1001;
    const rng = mulberry32(77);
    const flat = randn(rng, 4 * vocab, 0.3);
    const slots = [0, 1, 2, 3].map((r) => ({ id: 0, pos: 10, row: r })); // same pos, different KV rows
    const perRow: number[][] = [[], [], [], []];
    for (let seed = 1; seed <= 8; seed++) {
      const { stats } = await runLogitsStats(vocab, flat, slots, { nTokens: 4, statsRows: 4, seed, invSampleTemp: 1 }, 1);
      stats.forEach((s, r) => perRow[r].push(s.sampled));
    }
    for (const ids of perRow) assert.ok(new Set(ids).size >= 6, `8 seeds gave ids ${ids}`);
    // The KV row is part of the key: with the same seed and pos, the 4 rows do not all agree.
    assert.ok(new Set(perRow.map((ids) => ids[0])).size > 1, 'KV rows share a draw');
  });

  test('temperature → 0 (inv 1e4) samples the argmax', async () => {
    // Logit gaps here are ≥ 0.25, ×1e4 = 2500 ≫ the spread of the Gumbel noise (u ∈ [2^-24, 1 − 2^-24]:
    // −log(−log u) ∈ [−2.9, 16.6]), so the key order is the
    // logit order.
    const ids = await sampleIds({ seed: 11, counter: 2, invSampleTemp: 1e4 });
    assert.deepEqual(ids, new Array(rows).fill(4));
  });

  test('the largest uniform stays below 1 and does not override the logits', async () => {
    // At seed 12345, KV row 0, counter 0, pos 1031323, id 1 draws the largest hash value: with the
    // old 24-bit uniform it rounded to exactly 1.0 in float32 and its Gumbel key was +∞. Now
    // u = 1 − 2^-24 and the key is −30 + 16.6, below every other id's key (≥ −2.8).
    const key = { seed: 12345, row: 0, pos: 1031323, counter: 0 };
    assert.equal(rngBits(key.seed, key.row, key.pos, key.counter, 1) >>> 9, 0x7fffff);
    assert.equal(uniform01(key.seed, key.row, key.pos, key.counter, 1), 1 - 2 ** -24);
    const z = new Float32Array([0, -30, 0, 0, 0, 0, 0, 0]); // p(1) ≈ e^-30 / 7 ≈ 1e-14
    const { stats } = await runLogitsStats(8, z, [{ id: 0, ...key }], { nTokens: 1, statsRows: 1, seed: key.seed, counter: key.counter, invSampleTemp: 1 }, 1);
    assert.notEqual(stats[0].sampled, 1, `sampled id 1 with probability ≈ 1e-14`);
  });
});
