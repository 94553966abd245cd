// attention.wgsl main_stats + agree (Kernels.attentionStats) against a float64 reference on random
// caches: grouped-query heads, head_dim 8 and 48, T = 1..5 tokens per step over two KV rows at
// positions up to 300, stats on a subset of the rows. Checks that
//   - the attention output is bit for bit `main`'s (the default kernel), for every token;
//   - each stats row's record holds the entropy in bits of every query head's softmax over
//     positions 0..pos, their mean and variance (divisor n_heads), the agreement
//     mean_{h,p}|P_h(p) − mean_h P(p)| and the interaction mean_{h,p}|s|;
//   - nothing is written past the stats rows' records.
// Tolerances: scores are float32 dots of head_dim products (relative ~1e-6 of Σ|q·k|), the
// entropies sums of ≤ 301 exp terms: 2e-4 bits absolute and 1e-4 relative for the means cover the
// float32 roundings (observed ≲ 1e-5) while a wrong position range (one extra or missing position
// moves entropies by ≥ 1e-2 here) or head mapping fails.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { GpuTest, mulberry32, randn, type TokenSlot } from '../support/gpu.ts';

let gpu: GpuTest;
before(async () => {
  gpu = await GpuTest.create();
});
afterEach(() => gpu.release());
after(() => gpu.destroy());

interface Case {
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  seqLen: number;
  /** Tokens of the step (row, pos). */
  slots: TokenSlot[];
  statsRowStart: number;
  statsRows: number;
  /** Standard deviation of q and k: larger → peakier attention. */
  scale: number;
  seed: number;
}

function reference(c: Case, qkv: Float32Array, k: Float32Array, v: Float32Array, t: number) {
  const qDim = c.nHeads * c.headDim;
  const kvDim = c.nKvHeads * c.headDim;
  const { row, pos } = c.slots[t];
  const heads: number[] = [];
  const probs: number[][] = [];
  let absSum = 0;
  for (let h = 0; h < c.nHeads; h++) {
    const kvh = Math.floor(h / (c.nHeads / c.nKvHeads));
    const s: number[] = [];
    for (let p = 0; p <= pos; p++) {
      const base = ((row * c.nKvHeads + kvh) * c.seqLen + p) * c.headDim;
      let dot = 0;
      for (let d = 0; d < c.headDim; d++) dot += qkv[t * (qDim + 2 * kvDim) + h * c.headDim + d] * k[base + d];
      s.push(dot / Math.sqrt(c.headDim));
    }
    const m = Math.max(...s);
    const e = s.map((x) => Math.exp(x - m));
    const z = e.reduce((a, b) => a + b, 0);
    const P = e.map((x) => x / z);
    heads.push(-P.reduce((a, p) => a + (p > 0 ? p * Math.log2(p) : 0), 0));
    probs.push(P);
    absSum += s.reduce((a, x) => a + Math.abs(x), 0);
  }
  const n = c.nHeads * (pos + 1);
  let dev = 0;
  for (let p = 0; p <= pos; p++) {
    const mean = probs.reduce((a, P) => a + P[p], 0) / c.nHeads;
    for (const P of probs) dev += Math.abs(P[p] - mean);
  }
  const entropy = heads.reduce((a, b) => a + b, 0) / c.nHeads;
  const varentropy = heads.reduce((a, b) => a + (b - entropy) ** 2, 0) / c.nHeads;
  void v;
  return { heads, entropy, varentropy, agreement: dev / n, interaction: absSum / n };
}

async function runCase(c: Case) {
  const rng = mulberry32(c.seed);
  const qDim = c.nHeads * c.headDim;
  const kvDim = c.nKvHeads * c.headDim;
  const rows = 2;
  const T = c.slots.length;
  const dims = { qDim, kvDim, headDim: c.headDim, nHeads: c.nHeads, nKvHeads: c.nKvHeads, seqLen: c.seqLen };
  const qkvData = randn(rng, T * (qDim + 2 * kvDim), c.scale);
  const kData = randn(rng, rows * c.nKvHeads * c.seqLen * c.headDim, c.scale);
  const vData = randn(rng, rows * c.nKvHeads * c.seqLen * c.headDim);
  const step = await gpu.step({ nTokens: T, statsRowStart: c.statsRowStart, statsRows: c.statsRows });
  const tokens = await gpu.tokens(c.slots);
  const qkv = await gpu.upload(qkvData);
  const kCache = await gpu.upload(kData);
  const vCache = await gpu.upload(vData);
  const outPlain = await gpu.alloc(T * qDim);
  const outStats = await gpu.alloc(T * qDim);
  const maxRows = 5;
  const words = 4 + c.nHeads;
  const headStats = await gpu.alloc(maxRows * c.nHeads * 4);
  const scores = await gpu.alloc(maxRows * c.nHeads * c.seqLen);
  const records = await gpu.alloc((maxRows + 1) * words);
  const calls = [
    await gpu.kernels.attention('attention', dims, { step, tokens, qkv, kCache, vCache, out: outPlain }),
    ...(await gpu.kernels.attentionStats('attention', dims, { step, tokens, qkv, kCache, vCache, out: outStats, headStats, scores, records })),
  ];
  const [plain, withStats, rec] = await gpu.run(calls, { nTokens: T, statsRows: c.statsRows }, [outPlain, outStats, records]);
  assert.deepEqual(new Uint32Array(withStats), new Uint32Array(plain), 'main_stats output = main output, bit for bit');
  assert.deepEqual(gpu.ctx.uncapturedErrors, []);
  const got = new Float32Array(rec);
  for (let r = 0; r < c.statsRows; r++) {
    const want = reference(c, qkvData, kData, vData, c.statsRowStart + r);
    const o = r * words;
    const what = `stats row ${r} (pos ${c.slots[c.statsRowStart + r].pos})`;
    want.heads.forEach((h, i) => assert.ok(Math.abs(got[o + 4 + i] - h) <= 2e-4, `${what}: head ${i} entropy ${got[o + 4 + i]} vs ${h}`));
    const close = (g: number, w: number, name: string) => assert.ok(Math.abs(g - w) <= 2e-4 + 1e-4 * Math.abs(w), `${what}: ${name} ${g} vs ${w}`);
    close(got[o], want.entropy, 'entropy');
    close(got[o + 1], want.varentropy, 'varentropy');
    close(got[o + 2], want.agreement, 'agreement');
    close(got[o + 3], want.interaction, 'interaction');
  }
  for (let i = c.statsRows * words; i < got.length; i++) assert.ok(Number.isNaN(got[i]), `record written past the stats rows at ${i}`);
}

describe('attention statistics vs float64', () => {
  const slots = (list: [number, number][]) => list.map(([row, pos]) => ({ id: 0, row, pos }));
  test('GQA 4 heads / 2 KV heads of 8, one decode token at pos 300', () =>
    runCase({ nHeads: 4, nKvHeads: 2, headDim: 8, seqLen: 301, slots: slots([[0, 300]]), statsRowStart: 0, statsRows: 1, scale: 1.5, seed: 1 }));
  test('GQA 6 heads / 1 KV head of 8, five tokens, stats on the last three', () =>
    runCase({
      nHeads: 6, nKvHeads: 1, headDim: 8, seqLen: 301, slots: slots([[0, 0], [1, 17], [0, 1], [1, 299], [0, 2]]),
      statsRowStart: 2, statsRows: 3, scale: 2, seed: 2,
    }));
  test('pos 0: one position, entropy 0, agreement 0', () =>
    runCase({ nHeads: 4, nKvHeads: 4, headDim: 8, seqLen: 8, slots: slots([[0, 0]]), statsRowStart: 0, statsRows: 1, scale: 1, seed: 3 }));
  for (const T of [1, 2, 3, 4, 5]) {
    test(`stories15M heads (6 of 48), T ${T}, every row a stats row`, () =>
      runCase({
        nHeads: 6, nKvHeads: 6, headDim: 48, seqLen: 256, slots: slots(Array.from({ length: T }, (_, i) => [i % 2, 40 * i + 7])),
        statsRowStart: 0, statsRows: T, scale: 0.6, seed: 10 + T,
      }));
  }
});
