// GGUF: the reader (src/model/formats/gguf.ts), dequantisation (src/model/dequant.ts) and the
// float64 reference forward (test/support/reference-forward.ts) against three independent oracles:
//
//  (a) llama2.c's own float32 stories15M.bin: every value of the Q8_0 and Q4_0 GGUFs (made from
//      the same weights by gguf-py's quantisers) lies within the quantiser's error bound of the
//      float32 value, per block, in the same row order (llama2.c and GGUF `llama` both keep q/k
//      rows as interleaved RoPE pairs, so attn_q/attn_k compare to wq/wk as stored);
//  (b) goldens from a float64 HF-semantics forward over the weights as gguf-py dequantises them:
//      our reference forward over our dequantised weights reproduces every position's argmax and
//      its lse and entropy to the goldens' printed precision (6 decimals). tiny-kquant covers
//      Q4_K, Q5_K and Q6_K; tiny-llama3-gguf covers F16, GQA and rope_freqs.weight. The HF fixture
//      folders (BF16/F16, rotate-half RoPE, q/k/v bias, q/k norm) run through the same forward;
//  (c) hostile files (fixture bytes edited in memory): each fails with ModelFormatError naming
//      what is wrong, without reading or allocating what the header claims.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { AbortedError, ModelFormatError } from '../../src/errors.ts';
import { TENSOR } from '../../src/model/config.ts';
import { blockInfo, dequantize, halfToFloat, readTensorF32 } from '../../src/model/dequant.ts';
import { readGguf } from '../../src/model/formats/gguf.ts';
import { folderFromMap, readHfFolder } from '../../src/model/formats/hf.ts';
import { bytesReader } from '../../src/model/readers.ts';
import type { ByteReader, ModelFiles } from '../../src/model/tensors.ts';
import { referenceForward } from '../support/reference-forward.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const FIXTURES = join(ROOT, 'test', 'fixtures');
const Q8 = 'stories15M-gguf/stories15M-Q8_0.gguf';
const Q4 = 'stories15M-gguf/stories15M-Q4_0.gguf';
const KQUANT = 'tiny-kquant/tiny-kquant-Q4_K_M.gguf';
const F16 = 'tiny-llama3-gguf/tiny-llama3-F16.gguf';

const files = new Map<string, Uint8Array>();
function fixture(path: string): Uint8Array {
  if (!files.has(path)) files.set(path, new Uint8Array(readFileSync(join(FIXTURES, path))));
  return files.get(path)!;
}
const readFixture = (path: string) => readGguf(bytesReader(path, fixture(path)));

/** A model and every one of its tensors, dequantised (cached per fixture). */
const modelCache = new Map<string, Promise<{ m: ModelFiles; w: Map<string, Float32Array> }>>();
function loaded(key: string, open: () => Promise<ModelFiles>) {
  if (!modelCache.has(key)) {
    modelCache.set(key, (async () => {
      const m = await open();
      const w = new Map<string, Float32Array>();
      for (const t of m.tensors.values()) w.set(t.name, await readTensorF32(t));
      return { m, w };
    })());
  }
  return modelCache.get(key)!;
}

// ---------------------------------------------------------------------------------------------
// (a) dequantised values against llama2.c's float32 checkpoint

/** stories15M.bin by canonical tensor name (views into the file). */
function llama2cTensors(): Map<string, Float32Array> {
  const bin = readFileSync(join(ROOT, 'public', 'models', 'stories15M.bin'));
  const [dim, hidden, nLayers, , , vocab] = new Int32Array(bin.buffer, bin.byteOffset, 7);
  const f = new Float32Array(bin.buffer, bin.byteOffset + 28, (bin.byteLength - 28) / 4);
  let at = 0;
  const take = (n: number) => f.subarray(at, (at += n));
  const embedding = take(vocab * dim);
  const perLayer = (n: number) => Array.from({ length: nLayers }, () => take(n));
  const [rmsAtt, wq, wk, wv, wo, rmsFfn, w1, w2, w3] = [
    perLayer(dim), perLayer(dim * dim), perLayer(dim * dim), perLayer(dim * dim), perLayer(dim * dim),
    perLayer(dim), perLayer(hidden * dim), perLayer(dim * hidden), perLayer(hidden * dim),
  ];
  const m = new Map<string, Float32Array>([[TENSOR.embedding, embedding], [TENSOR.outputNorm, take(dim)]]);
  for (let l = 0; l < nLayers; l++) {
    m.set(TENSOR.layer(l, 'attn_norm.weight'), rmsAtt[l]);
    m.set(TENSOR.layer(l, 'attn_q.weight'), wq[l]);
    m.set(TENSOR.layer(l, 'attn_k.weight'), wk[l]);
    m.set(TENSOR.layer(l, 'attn_v.weight'), wv[l]);
    m.set(TENSOR.layer(l, 'attn_output.weight'), wo[l]);
    m.set(TENSOR.layer(l, 'ffn_norm.weight'), rmsFfn[l]);
    m.set(TENSOR.layer(l, 'ffn_gate.weight'), w1[l]);
    m.set(TENSOR.layer(l, 'ffn_down.weight'), w2[l]);
    m.set(TENSOR.layer(l, 'ffn_up.weight'), w3[l]);
  }
  return m;
}

/**
 * Error bounds, in units of the block's stored scale |d| (f16), from gguf-py's quantisers: they
 * pick q with the exact float32 d and then round d to f16 (relative error ≤ 2^-11), so
 * |d16·q − x| ≤ |d16 − d|·|q| + |d|/2, and |d| ≤ |d16|·(1 + 2^-10).
 *   Q8_0: d = max|x|/127, q = round(x/d) ∈ [−127, 127]            ≤ (1/2 + 127·2^-11)·(1 + 2^-10)
 *   Q4_0: d = x_maxabs/−8, q = clip(⌊x/d + 8.5⌋, 0, 15) − 8 ∈ [−8, 7]: ≤ (1/2 + 8·2^-11)·(1 + 2^-10),
 *         except where x/d ∈ [7.5, 8] is clipped to q = 7: ≤ (1 + 8·2^-11)·(1 + 2^-10)
 * F32 tensors (the norms) are stored as they are: equal bit for bit.
 */
const BOUND = {
  Q8_0: () => (0.5 + 127 * 2 ** -11) * (1 + 2 ** -10),
  Q4_0: (q: number) => (q === 7 ? 1 + 8 * 2 ** -11 : 0.5 + 8 * 2 ** -11) * (1 + 2 ** -10),
};

describe('GGUF dequantisation against the float32 llama2.c checkpoint', () => {
  const reference = llama2cTensors();
  for (const [path, type] of [[Q8, 'Q8_0'], [Q4, 'Q4_0']] as const) {
    test(`${type}: every value within the quantiser's bound of stories15M.bin, same row order`, async (t) => {
      const { m, w: weights } = await loaded(path, () => readFixture(path));
      const bytes = fixture(path);
      assert.equal(m.tensors.size, reference.size);
      const worst = { unclipped: 0, clipped: 0, abs: 0 };
      for (const info of m.tensors.values()) {
        const x = weights.get(info.name)!;
        const ref = reference.get(info.name);
        assert.ok(ref, `stories15M.bin has ${info.name}`);
        assert.equal(x.length, ref.length, info.name);
        if (info.type === 'F32') {
          assert.deepEqual(x, ref, info.name);
          continue;
        }
        assert.equal(info.type, type, info.name);
        const { values, bytes: blockBytes } = blockInfo(type);
        for (let k = 0; k < x.length / values; k++) {
          const at = info.offset + k * blockBytes;
          const signed = halfToFloat(bytes[at] | (bytes[at + 1] << 8));
          const d = Math.abs(signed);
          for (let i = k * values; i < (k + 1) * values; i++) {
            const err = Math.abs(x[i] - ref[i]);
            const q = d > 0 ? Math.round(x[i] / signed) : 0;
            const bound = d * (type === 'Q8_0' ? BOUND.Q8_0() : BOUND.Q4_0(q));
            if (!(err <= bound)) {
              assert.fail(`${info.name}[${i}]: ${x[i]} vs ${ref[i]}, error ${err} over ${bound} (d = ${d})`);
            }
            const kind = type === 'Q4_0' && q === 7 ? 'clipped' : 'unclipped';
            if (d > 0) worst[kind] = Math.max(worst[kind], err / d);
            worst.abs = Math.max(worst.abs, err);
          }
        }
      }
      t.diagnostic(`${type}: max |x − x_f32| = ${worst.unclipped.toFixed(4)}·d` +
        `${type === 'Q4_0' ? ` (q = 7: ${worst.clipped.toFixed(4)}·d)` : ''}, ${worst.abs.toExponential(3)} absolute`);
    });
  }
});

describe('dequantize: hand-made blocks of the types no fixture has only', () => {
  const f16 = (bits: number) => [bits & 0xff, bits >> 8];
  test('F16 and BF16: normal, subnormal, signed zero, infinities', () => {
    const half = new Uint8Array([...f16(0x3c00), ...f16(0xc000), ...f16(0x0001), ...f16(0x8000), ...f16(0x7c00), ...f16(0x3555)]);
    assert.deepEqual(Array.from(dequantize('F16', half, 6)), [1, -2, 2 ** -24, -0, Infinity, (1 + 0x155 / 1024) / 4]);
    const bf = new Uint8Array([...f16(0x3f80), ...f16(0xc040), ...f16(0x0001), ...f16(0xff80)]);
    assert.deepEqual(Array.from(dequantize('BF16', bf, 4)), [1, -3, 2 ** -133, -Infinity]);
  });

  test('Q4_1: x = d·q + m, low nibbles first', () => {
    const block = new Uint8Array(20);
    block.set(f16(0x3800), 0); // d = 0.5
    block.set(f16(0xc000), 2); // m = −2
    for (let j = 0; j < 16; j++) block[4 + j] = j | ((15 - j) << 4);
    const x = dequantize('Q4_1', block, 32);
    for (let j = 0; j < 16; j++) {
      assert.equal(x[j], 0.5 * j - 2);
      assert.equal(x[j + 16], 0.5 * (15 - j) - 2);
    }
  });

  test('malformed requests are ModelFormatErrors', () => {
    assert.throws(() => dequantize('Q8_0', new Uint8Array(34), 31), ModelFormatError);
    assert.throws(() => dequantize('Q6_K', new Uint8Array(209), 256), ModelFormatError);
    assert.throws(() => dequantize('F32', new Uint8Array(7), 2), ModelFormatError);
  });
});

// ---------------------------------------------------------------------------------------------
// (b) the reference forward against the goldens

interface Golden {
  prompt: string;
  tokens: number[];
  prompt_token_count: number;
  per_position: { input_token: number; argmax: number; lse: number; entropy_nats: number }[];
}

/** The goldens print 6 decimals: |ours − golden| ≤ half a unit of the last digit, plus float64 slack. */
const PRINTED = 5e-7 + 1e-9;

function checkGolden(t: { diagnostic(m: string): void }, name: string, c: ModelFiles['config'], w: Map<string, Float32Array>, g: Golden) {
  const inputs = g.per_position.map((p) => p.input_token);
  assert.deepEqual(inputs, g.tokens.slice(0, inputs.length), 'the golden feeds its own tokens');
  const out = referenceForward(c, (n) => {
    const v = w.get(n);
    assert.ok(v, `tensor ${n}`);
    return v;
  }, inputs);
  let lseErr = 0;
  let entErr = 0;
  g.per_position.forEach((p, i) => {
    assert.equal(out[i].argmax, p.argmax, `${name} ${JSON.stringify(g.prompt)}: argmax at position ${i}`);
    if (i + 1 >= g.prompt_token_count) assert.equal(out[i].argmax, g.tokens[i + 1], `greedy token ${i + 1}`);
    lseErr = Math.max(lseErr, Math.abs(out[i].lse - p.lse));
    entErr = Math.max(entErr, Math.abs(out[i].entropy - p.entropy_nats));
  });
  assert.ok(lseErr <= PRINTED, `lse off by ${lseErr}`);
  assert.ok(entErr <= PRINTED, `entropy off by ${entErr}`);
  t.diagnostic(`${name} ${JSON.stringify(g.prompt)}: ${out.length} positions, max |Δlse| ${lseErr.toExponential(2)}, max |Δentropy| ${entErr.toExponential(2)}`);
}

const goldens = (path: string): Golden[] => JSON.parse(readFileSync(join(FIXTURES, path), 'utf8')).goldens;

describe('reference forward over GGUF weights reproduces the goldens', () => {
  // stories15M costs ~1.5 s per golden in float64 JS: one prompt per quantisation.
  const cases: [string, string, number[]][] = [
    [Q8, 'stories15M-gguf/golden-Q8_0.json', [0]],
    [Q4, 'stories15M-gguf/golden-Q4_0.json', [1]],
    [KQUANT, 'tiny-kquant/golden.json', [0, 1]],
    [F16, 'tiny-llama3-gguf/golden-F16.json', [0, 1]],
  ];
  for (const [path, golden, which] of cases) {
    test(path, async (t) => {
      const { m, w } = await loaded(path, () => readFixture(path));
      const all = goldens(golden);
      for (const i of which) checkGolden(t, path, m.config, w, all[i]);
    });
  }
});

describe('reference forward over HF folders reproduces the goldens', () => {
  const folder = (dir: string) => {
    const map = new Map<string, ByteReader>();
    for (const name of readdirSync(join(FIXTURES, dir))) map.set(name, bytesReader(name, fixture(join(dir, name))));
    return folderFromMap(map);
  };
  // The stories prompt no GGUF case runs; each tiny model's longest golden (multi-byte text).
  const cases: [string, number[]][] = [['stories15M-hf-bf16', [2]], ['tiny-llama3', [3]], ['tiny-qwen2', [3]], ['tiny-qwen3', [3]]];
  for (const [dir, which] of cases) {
    test(dir, async (t) => {
      const { m, w } = await loaded(dir, () => readHfFolder(folder(dir)));
      const all = goldens(join(dir, 'golden.json'));
      for (const i of which) checkGolden(t, dir, m.config, w, all[i]);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Config and metadata

describe('readGguf: config, tensors and tokenizer metadata', () => {
  test('stories15M Q8_0: tied llama, interleaved RoPE, SPM vocabulary', async () => {
    const m = await readFixture(Q8);
    assert.equal(m.format, 'gguf');
    assert.equal(m.dtype, 'Q8_0');
    assert.deepEqual(m.config, {
      architecture: 'llama', dim: 288, hiddenDim: 768, nLayers: 6, nHeads: 6, nKvHeads: 6, headDim: 48,
      vocabSize: 32000, normEps: 1e-5, ropeTheta: 10000, ropeLayout: 'interleaved', ropeFreqFactors: null,
      qkvBias: false, qkNorm: false, tiedEmbeddings: true, bosId: 1, eosIds: [2], trainedContext: 256,
    });
    assert.equal(m.tensors.size, 2 + 6 * 9);
    const embd = m.tensors.get(TENSOR.embedding)!;
    assert.deepEqual([embd.type, embd.shape, embd.byteLength], ['Q8_0', [32000, 288], (32000 * 288 / 32) * 34]);
    assert.equal(m.tokenizer?.kind, 'gguf');
    const meta = m.tokenizer.kind === 'gguf' ? m.tokenizer.metadata : {};
    assert.equal(meta['tokenizer.ggml.model'], 'llama');
    const tokens = meta['tokenizer.ggml.tokens'] as string[];
    assert.deepEqual([tokens.length, tokens[0], tokens[1], tokens[2]], [32000, '<unk>', '<s>', '</s>']);
    assert.equal((meta['tokenizer.ggml.scores'] as number[]).length, 32000);
    assert.ok(Object.keys(meta).every((k) => k.startsWith('tokenizer.')));
  });

  test('tiny-kquant: untied, GQA, K-quant mix; dtype is the type holding the most parameters', async () => {
    const m = await readFixture(KQUANT);
    const c = m.config;
    assert.deepEqual([c.dim, c.nHeads, c.nKvHeads, c.headDim, c.tiedEmbeddings], [256, 4, 2, 64, false]);
    const types = new Set([...m.tensors.values()].map((t) => t.type));
    assert.deepEqual([...types].sort(), ['F32', 'Q4_K', 'Q5_K', 'Q6_K']);
    assert.equal(m.tensors.get(TENSOR.output)!.type, 'Q6_K');
    // A Q4_K_M mix is Q4_K: most parameters are Q4_K, though output.weight (32000 × 256 Q6_K)
    // holds more bytes than they do.
    assert.equal(m.dtype, 'Q4_K');
  });

  test('tiny-llama3 F16: rope_freqs.weight as frequency factors, BPE vocabulary with merges', async () => {
    const m = await readFixture(F16);
    const c = m.config;
    assert.deepEqual([c.vocabSize, c.headDim, c.ropeTheta, c.bosId, c.eosIds, c.trainedContext], [128256, 8, 500000, 128000, [128009], 8192]);
    assert.deepEqual(c.ropeFreqFactors, [1, 1, Math.fround(3.2922620773), 32]);
    assert.ok(!m.tensors.has('rope_freqs.weight'), 'only the model tensors are listed');
    const meta = m.tokenizer?.kind === 'gguf' ? m.tokenizer.metadata : {};
    assert.equal(meta['tokenizer.ggml.pre'], 'llama-bpe');
    assert.equal((meta['tokenizer.ggml.tokens'] as string[]).length, 128256);
    assert.ok((meta['tokenizer.ggml.merges'] as string[]).includes('Ġ t'));
    assert.match(meta['tokenizer.chat_template'] as string, /message/);
  });

  test('the header is read in windows, not the whole file', async () => {
    const { reader, stats } = counting(bytesReader(Q8, fixture(Q8)));
    await readGguf(reader);
    assert.ok(stats.bytes < fixture(Q8).length / 4, `read ${stats.bytes} of ${fixture(Q8).length} bytes`);
  });
});

// ---------------------------------------------------------------------------------------------
// (c) hostile files

function counting(inner: ByteReader) {
  const stats = { bytes: 0, largest: 0 };
  const reader: ByteReader = {
    name: inner.name,
    size: inner.size,
    read(offset, length, signal) {
      stats.bytes += length;
      stats.largest = Math.max(stats.largest, length);
      return inner.read(offset, length, signal);
    },
  };
  return { reader, stats };
}

const utf8 = new TextEncoder();

/** Offset just past the u64-length-prefixed string `s` in the header (it must occur once). */
function after(bytes: Uint8Array, s: string): number {
  const text = utf8.encode(s);
  const needle = new Uint8Array(8 + text.length);
  new DataView(needle.buffer).setBigUint64(0, BigInt(text.length), true);
  needle.set(text, 8);
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const at = buf.indexOf(needle);
  assert.ok(at >= 0 && buf.indexOf(needle, at + 1) < 0, `${s} occurs once`);
  return at + needle.length;
}

/** Where a tensor info's fields are, by name. */
function tensorFields(bytes: Uint8Array, name: string) {
  const at = after(bytes, name);
  const nDims = new DataView(bytes.buffer, bytes.byteOffset).getUint32(at, true);
  return { nDims: at, ne: (i: number) => at + 4 + 8 * i, type: at + 4 + 8 * nDims, offset: at + 8 + 8 * nDims };
}

/** A copy of the Q8_0 fixture, edited. */
function hostile(edit: (b: Uint8Array, dv: DataView) => Uint8Array | void): ByteReader {
  const b = fixture(Q8).slice();
  const out = edit(b, new DataView(b.buffer)) ?? b;
  return bytesReader('hostile.gguf', out);
}

async function rejects(reader: ByteReader, pattern: RegExp) {
  await assert.rejects(readGguf(reader), (e: Error) => {
    assert.ok(e instanceof ModelFormatError, `expected ModelFormatError, got ${e.name}: ${e.message}`);
    assert.match(e.message, pattern);
    assert.match(e.message, /hostile\.gguf/);
    return true;
  });
}

describe('readGguf: hostile files fail with ModelFormatError', () => {
  test('bad magic', () => rejects(hostile((b) => void b.set(utf8.encode('GGUX'), 0)), /magic is "GGUX"/));

  test('unsupported versions', async () => {
    await rejects(hostile((_, dv) => dv.setUint32(4, 4, true)), /version 4 is not supported/);
    await rejects(hostile((_, dv) => dv.setUint32(4, 1, true)), /version 1 is not supported/);
  });

  test('unknown tensor type: names the type number and the tensor', async () => {
    for (const type of [99, 6]) {
      await rejects(hostile((b, dv) => dv.setUint32(tensorFields(b, 'blk.0.attn_v.weight').type, type, true)),
        new RegExp(`tensor blk\\.0\\.attn_v\\.weight has type ${type}\\b`));
    }
  });

  test('row length not a whole number of blocks', () =>
    rejects(hostile((b, dv) => dv.setBigUint64(tensorFields(b, 'blk.0.attn_q.weight').ne(0), 280n, true)),
      /blk\.0\.attn_q\.weight: row length 280 is not a multiple of the Q8_0 block \(32\)/));

  test('truncated tensor data', () => rejects(hostile((b) => b.subarray(0, b.length - 100)), /runs past the end of the file.*truncated/));

  test('overlapping tensor offsets', () =>
    rejects(hostile((b, dv) => {
      const q = dv.getBigUint64(tensorFields(b, 'blk.0.attn_q.weight').offset, true);
      dv.setBigUint64(tensorFields(b, 'blk.0.attn_k.weight').offset, q + 32n, true);
    }), /tensors blk\.0\.attn_q\.weight and blk\.0\.attn_k\.weight overlap/));

  test('a missing tensor is named', () =>
    rejects(hostile((b) => void b.set(utf8.encode('blk.3.ffn_uq.weight'), after(b, 'blk.3.ffn_up.weight') - 19)),
      /tensor blk\.3\.ffn_up\.weight is missing/));

  test('a tensor of the wrong shape is named', () =>
    rejects(hostile((b, dv) => {
      const f = tensorFields(b, 'blk.2.attn_v.weight');
      dv.setBigUint64(f.ne(1), 96n, true); // [96][288] still fits where [288][288] was
    }), /tensor blk\.2\.attn_v\.weight has shape \[96,288\], expected \[288,288\]/));

  test('unsupported architecture is named', () =>
    rejects(hostile((b) => void b.set(utf8.encode('gemma'), after(b, 'general.architecture') + 12)),
      /architecture "gemma" is not supported/));

  test('huge counts and lengths fail fast, before any large read', async () => {
    const cases: [string, (b: Uint8Array, dv: DataView) => void, RegExp][] = [
      ['2^31-entry array', (b, dv) => dv.setBigUint64(after(b, 'tokenizer.ggml.tokens') + 8, 2n ** 31n, true), /array of 2147483648 entries does not fit/],
      ['2^40-entry array', (b, dv) => dv.setBigUint64(after(b, 'tokenizer.ggml.scores') + 8, 2n ** 40n, true), /array of 1099511627776 entries does not fit/],
      ['2^40-byte string', (b, dv) => dv.setBigUint64(after(b, 'general.architecture') + 4, 2n ** 40n, true), /claims 1099511627776 bytes/],
      ['2^40-byte tensor', (b, dv) => dv.setBigUint64(tensorFields(b, TENSOR.embedding).ne(1), 2n ** 32n, true), /token_embd\.weight.*larger than the file/],
      ['2^64 − 1 tensor count', (_, dv) => dv.setBigUint64(8, 2n ** 64n - 1n, true), /tensor count 18446744073709551615 is too large/],
      ['2^40 kv count', (_, dv) => dv.setBigUint64(16, 2n ** 40n, true), /1099511627776 key\/value pairs do not fit/],
    ];
    for (const [what, edit, pattern] of cases) {
      const { reader, stats } = counting(hostile(edit));
      await rejects(reader, pattern);
      assert.ok(stats.bytes <= 4 << 20, `${what}: read ${stats.bytes} bytes`);
    }
  });

  test('an aborted signal stops the read with AbortedError', async () => {
    await assert.rejects(readGguf(bytesReader(Q8, fixture(Q8)), AbortSignal.abort()), AbortedError);
  });
});
