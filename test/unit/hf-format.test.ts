// HF folders and the byte readers under them: each fixture folder reads into the ModelConfig its
// config.json describes; urlReader against a local HTTP server that honours ranges, ignores them,
// answers 404 or never answers; and hostile folders (fixture bytes edited in memory), each of
// which must fail with its typed error naming the file or tensor at fault.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AbortedError, ModelFetchError, ModelFormatError, TokenizerFormatError } from '../../src/errors.ts';
import {
  type HfFolder, folderFromFiles, folderFromMap, folderFromUrl, readHfFolder,
} from '../../src/model/formats/hf.ts';
import { readSafetensorsHeader } from '../../src/model/formats/safetensors.ts';
import { blobReader, bytesReader, urlReader } from '../../src/model/readers.ts';
import type { ByteReader } from '../../src/model/tensors.ts';
import { pathReader } from '../../src/node/path-reader.ts';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');
const fileCache = new Map<string, Uint8Array<ArrayBuffer>>();
function fixture(dir: string, name: string): Uint8Array<ArrayBuffer> {
  const path = join(FIXTURES, dir, name);
  if (!fileCache.has(path)) fileCache.set(path, new Uint8Array(readFileSync(path)));
  return fileCache.get(path)!;
}
const json = (dir: string, name: string) => JSON.parse(new TextDecoder().decode(fixture(dir, name)));
const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

/** A fixture folder in memory; `changes` replaces files (null removes one). */
function folder(dir: string, changes: Record<string, Uint8Array | null> = {}): HfFolder {
  const map = new Map<string, ByteReader>();
  for (const name of readdirSync(join(FIXTURES, dir))) map.set(name, bytesReader(name, fixture(dir, name)));
  for (const [name, bytes] of Object.entries(changes)) {
    if (bytes === null) map.delete(name);
    else map.set(name, bytesReader(name, bytes));
  }
  return folderFromMap(map);
}

interface Entry { dtype: string; shape: number[]; data_offsets: [number, number] }

/** A safetensors file with its JSON header edited (the data is kept as it was). */
function editHeader(bytes: Uint8Array, edit: (header: Record<string, Entry>) => void): Uint8Array {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  edit(header);
  const text = encode(header);
  const out = new Uint8Array(8 + text.length + bytes.length - 8 - n);
  new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
  out.set(text, 8);
  out.set(bytes.subarray(8 + n), 8 + text.length);
  return out;
}

async function rejects(promise: Promise<unknown>, kind: Function, pattern: RegExp) {
  await assert.rejects(promise, (e: Error) => {
    assert.ok(e instanceof kind, `expected ${kind.name}, got ${e.name}: ${e.message}`);
    assert.match(e.message, pattern);
    return true;
  });
}

describe('HF fixture folders', () => {
  test('stories15M-hf-bf16: tied Llama, BF16', async () => {
    const m = await readHfFolder(folder('stories15M-hf-bf16'));
    const c = m.config;
    assert.equal(m.format, 'hf');
    assert.equal(m.dtype, 'BF16');
    assert.deepEqual(
      [c.architecture, c.dim, c.hiddenDim, c.nLayers, c.nHeads, c.nKvHeads, c.headDim, c.vocabSize],
      ['llama', 288, 768, 6, 6, 6, 48, 32000]);
    assert.deepEqual([c.tiedEmbeddings, c.bosId, c.eosIds, c.trainedContext, c.ropeTheta], [true, 1, [2], 256, 10000]);
    assert.deepEqual([c.ropeLayout, c.ropeFreqFactors, c.qkvBias, c.qkNorm], ['half', null, false, false]);
    assert.equal(c.normEps, 1e-5);
    assert.equal(m.tensors.size, 2 + 6 * 9);
    assert.ok(!m.tensors.has('output.weight'));
    assert.equal(m.tokenizer?.kind, 'hf');
    const embd = m.tensors.get('token_embd.weight')!;
    assert.deepEqual(embd.shape, [32000, 288]);
    assert.equal(embd.byteLength, 32000 * 288 * 2);
  });

  test('tiny-llama3: GQA, head_dim 8, llama3 RoPE scaling, untied, two EOS ids', async () => {
    const m = await readHfFolder(folder('tiny-llama3'));
    const c = m.config;
    const raw = json('tiny-llama3', 'config.json');
    assert.deepEqual([c.architecture, c.dim, c.nHeads, c.nKvHeads, c.headDim], ['llama', 16, 4, 2, 8]);
    assert.deepEqual([c.vocabSize, c.hiddenDim, c.nLayers, c.trainedContext], [128256, 40, 2, 131072]);
    assert.deepEqual([c.bosId, c.eosIds, c.tiedEmbeddings, c.ropeTheta], [128000, [128001, 128009], false, 500000]);
    assert.deepEqual(m.tensors.get('output.weight')!.shape, [128256, 16]);
    assert.deepEqual(m.tensors.get('blk.1.attn_k.weight')!.shape, [16, 16]);
    assert.deepEqual(m.tensors.get('blk.0.attn_q.weight')!.shape, [32, 16]);

    // transformers' _compute_llama3_parameters, evaluated directly on inv_freq
    const s = raw.rope_scaling;
    const d = c.headDim;
    const lowWavelen = s.original_max_position_embeddings / s.low_freq_factor;
    const highWavelen = s.original_max_position_embeddings / s.high_freq_factor;
    assert.equal(c.ropeFreqFactors!.length, d / 2);
    for (let i = 0; i < d / 2; i++) {
      const inv = 1 / Math.pow(raw.rope_theta, (2 * i) / d);
      const wavelen = (2 * Math.PI) / inv;
      let scaled = wavelen > lowWavelen ? inv / s.factor : inv;
      if (!(wavelen < highWavelen) && !(wavelen > lowWavelen)) {
        const smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        scaled = ((1 - smooth) * scaled) / s.factor + smooth * scaled;
      }
      const ours = inv / c.ropeFreqFactors![i];
      assert.ok(Math.abs(ours - scaled) <= 1e-12 * scaled, `frequency ${i}: ${ours} vs ${scaled}`);
    }
    assert.ok(c.ropeFreqFactors!.some((f) => f === 32) && c.ropeFreqFactors!.some((f) => f === 1), 'both ends of the scaling are hit');
  });

  test('tiny-qwen2: q/k/v biases, two shards resolved through the index, F16', async () => {
    const m = await readHfFolder(folder('tiny-qwen2'));
    const c = m.config;
    assert.deepEqual([c.architecture, c.dim, c.nHeads, c.nKvHeads, c.headDim, c.vocabSize], ['qwen2', 24, 3, 1, 8, 151936]);
    assert.deepEqual([c.qkvBias, c.qkNorm, c.tiedEmbeddings, c.bosId, c.eosIds], [true, false, true, 151643, [151645]]);
    assert.equal(c.normEps, 1e-6);
    assert.equal(m.dtype, 'F16');
    assert.deepEqual(m.tensors.get('blk.0.attn_q.bias')!.shape, [24]);
    assert.deepEqual(m.tensors.get('blk.1.attn_k.bias')!.shape, [8]);
    assert.deepEqual(m.tensors.get('blk.1.attn_v.bias')!.shape, [8]);
    const index = json('tiny-qwen2', 'model.safetensors.index.json').weight_map as Record<string, string>;
    assert.equal(m.tensors.get('blk.0.attn_q.bias')!.file.name, index['model.layers.0.self_attn.q_proj.bias']);
    assert.equal(m.tensors.get('blk.0.attn_k.bias')!.file.name, index['model.layers.0.self_attn.k_proj.bias']);
    assert.deepEqual(new Set([...m.tensors.values()].map((t) => t.file.name)),
      new Set(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']));
    // a tensor's range is its bytes in its shard
    const t = m.tensors.get('blk.0.attn_norm.weight')!;
    const shard = fixture('tiny-qwen2', t.file.name);
    assert.deepEqual(await t.file.read(t.offset, t.byteLength), shard.subarray(t.offset, t.offset + t.byteLength));
  });

  test('tiny-qwen3: per-head q/k norm, head_dim 8, tied', async () => {
    const m = await readHfFolder(folder('tiny-qwen3'));
    const c = m.config;
    assert.deepEqual([c.architecture, c.dim, c.nHeads, c.nKvHeads, c.headDim, c.nLayers], ['qwen3', 16, 4, 2, 8, 3]);
    assert.deepEqual([c.qkNorm, c.qkvBias, c.tiedEmbeddings, c.eosIds, c.trainedContext], [true, false, true, [151645, 151643], 40960]);
    assert.deepEqual(m.tensors.get('blk.2.attn_q_norm.weight')!.shape, [8]);
    assert.deepEqual(m.tensors.get('blk.2.attn_k_norm.weight')!.shape, [8]);
    assert.equal(m.dtype, 'BF16');
    const tok = m.tokenizer as { kind: 'hf'; tokenizer: { model: unknown }; config: Record<string, unknown> };
    assert.ok(tok.tokenizer.model);
    assert.deepEqual(tok.config, json('tiny-qwen3', 'tokenizer_config.json'));
  });

  test('generation_config.json overrides config.json; without tokenizer files the tokenizer is null', async () => {
    const config = { ...json('tiny-qwen3', 'config.json'), eos_token_id: 7, bos_token_id: 3 };
    const m = await readHfFolder(folder('tiny-qwen3', {
      'config.json': encode(config), 'generation_config.json': encode({ eos_token_id: [5, 6, 5] }),
      'tokenizer.json': null, 'tokenizer_config.json': null,
    }));
    assert.deepEqual([m.config.bosId, m.config.eosIds], [3, [5, 6]]);
    assert.equal(m.tokenizer, null);
  });

  test('folderFromFiles matches Files by base name; the same bytes as from disk', async () => {
    const dir = 'tiny-qwen3';
    const files = readdirSync(join(FIXTURES, dir)).map((name) => new File([fixture(dir, name)], name));
    const m = await readHfFolder(folderFromFiles(files));
    const t = m.tensors.get('blk.0.ffn_down.weight')!;
    const onDisk = await pathReader(join(FIXTURES, dir, 'model.safetensors'));
    assert.deepEqual(await t.file.read(t.offset, t.byteLength), await onDisk.read(t.offset, t.byteLength));
  });
});

describe('byte readers', () => {
  const bytes = fixture('tiny-qwen2', 'model-00002-of-00002.safetensors');

  test('bytes, Blob and path readers agree, and reject reads past the end', async () => {
    const readers = [
      bytesReader('a', bytes), bytesReader('b', bytes.slice().buffer), blobReader(new Blob([bytes]), 'c'),
      await pathReader(join(FIXTURES, 'tiny-qwen2', 'model-00002-of-00002.safetensors')),
    ];
    for (const r of readers) {
      assert.equal(r.size, bytes.length);
      assert.deepEqual(await r.read(1000, 300), bytes.subarray(1000, 1300));
      assert.deepEqual(await r.read(bytes.length, 0), new Uint8Array(0));
      await rejects(r.read(bytes.length - 10, 11), ModelFormatError, /truncated/);
      await rejects(r.read(-1, 4), ModelFormatError, /invalid byte range/);
    }
    await rejects(pathReader(join(FIXTURES, 'no-such-file')), ModelFetchError, /no-such-file/);
  });

  test('a read with an aborted signal rejects with AbortedError', async () => {
    const ac = new AbortController();
    ac.abort();
    await rejects(bytesReader('a', bytes).read(0, 8, ac.signal), AbortedError, /aborted/);
    await rejects(blobReader(new Blob([bytes])).read(0, 8, ac.signal), AbortedError, /aborted/);
  });
});

describe('urlReader over HTTP', () => {
  let server: Server;
  let base: string;
  /** Requests the server saw: path, Range header, bytes of body sent. */
  let log: { method: string; path: string; range?: string; sent: number }[] = [];

  before(async () => {
    server = createServer((req, res) => {
      const [, mode, dir, name] = decodeURIComponent(req.url ?? '').split('/');
      const entry = { method: req.method ?? 'GET', path: req.url ?? '', range: req.headers.range, sent: 0 };
      log.push(entry);
      if (mode === 'hang') return; // never answers
      let body: Uint8Array;
      try {
        if (mode === 'missing-shard' && name === 'model-00002-of-00002.safetensors') throw new Error('gone');
        body = fixture(dir, name);
      } catch {
        res.writeHead(404).end('not found');
        return;
      }
      const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
      const send = (status: number, headers: Record<string, string | number>, chunk: Uint8Array) => {
        res.writeHead(status, headers);
        entry.sent = req.method === 'HEAD' ? 0 : chunk.length;
        res.end(req.method === 'HEAD' ? undefined : chunk);
      };
      if (m && mode !== 'plain') {
        const start = Number(m[1]);
        const end = Math.min(Number(m[2]), body.length - 1);
        // 'star' hides the total, as a browser does for a cross-origin header not exposed
        const total = mode === 'star' ? '*' : String(body.length);
        send(206, { 'content-range': `bytes ${start}-${end}/${total}`, 'content-length': end - start + 1 }, body.subarray(start, end + 1));
      } else {
        send(200, { 'content-length': body.length }, body);
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  const shard = 'model-00001-of-00002.safetensors';
  const bytes = () => fixture('tiny-qwen2', shard);

  test('ranges honoured: each read is one Range request, progress counts the bytes read', async () => {
    log = [];
    const progress: number[] = [];
    const r = await urlReader(`${base}/ranged/tiny-qwen2/${shard}`, { onBytes: (n) => progress.push(n) });
    assert.equal(r.name, shard);
    assert.equal(r.size, bytes().length);
    assert.deepEqual(await r.read(5000, 20000), bytes().subarray(5000, 25000));
    assert.deepEqual(await r.read(r.size - 3, 3), bytes().subarray(r.size - 3));
    assert.deepEqual(log.map((e) => e.range), ['bytes=0-0', 'bytes=5000-24999', `bytes=${r.size - 3}-${r.size - 1}`]);
    assert.equal(progress.at(-1), 20003);
    assert.ok(log.every((e) => e.sent <= 20000), 'the whole file was never sent');
  });

  test('ranges ignored: the whole file is fetched once and reads are served from it', async () => {
    log = [];
    const progress: number[] = [];
    const r = await urlReader(`${base}/plain/tiny-qwen2/${shard}`, { onBytes: (n) => progress.push(n) });
    assert.equal(r.size, bytes().length);
    assert.deepEqual(await r.read(5000, 20000), bytes().subarray(5000, 25000));
    assert.deepEqual(await r.read(0, 8), bytes().subarray(0, 8));
    assert.equal(log.length, 1, 'one request');
    assert.equal(progress.at(-1), bytes().length);
  });

  test('a total hidden from Content-Range is learnt with HEAD', async () => {
    log = [];
    const r = await urlReader(`${base}/star/tiny-qwen2/${shard}`);
    assert.equal(r.size, bytes().length);
    assert.deepEqual(await r.read(100, 10), bytes().subarray(100, 110));
    assert.deepEqual(log.map((e) => e.method), ['GET', 'HEAD', 'GET']);
  });

  test('404 is a ModelFetchError with the status and the URL', async () => {
    const url = `${base}/ranged/tiny-qwen2/nothing.safetensors`;
    await assert.rejects(urlReader(url), (e: Error) =>
      e instanceof ModelFetchError && e.status === 404 && e.message.includes(url));
    await rejects(urlReader(`${base}/plain/tiny-qwen2/nothing`), ModelFetchError, /HTTP 404/);
  });

  test('abort while waiting for the server is an AbortedError', async () => {
    const ac = new AbortController();
    const pending = urlReader(`${base}/hang/x/y`, { signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    await rejects(pending, AbortedError, /aborted/);
    // and during a read, by the read's own signal
    const r = await urlReader(`${base}/ranged/tiny-qwen2/${shard}`);
    const ac2 = new AbortController();
    ac2.abort();
    await rejects(r.read(0, 100, ac2.signal), AbortedError, /aborted/);
  });

  test('an HF folder over HTTP: shards by range, progress across files', async () => {
    log = [];
    let loaded = 0;
    const m = await readHfFolder(folderFromUrl(`${base}/ranged/tiny-qwen2`, { onBytes: (n) => (loaded = n) }));
    assert.equal(m.config.architecture, 'qwen2');
    assert.equal(m.tensors.get('blk.1.attn_v.bias')!.file.name, 'model-00002-of-00002.safetensors');
    const sent = log.reduce((a, e) => a + e.sent, 0);
    const probes = log.filter((e) => e.range === 'bytes=0-0' && e.sent === 1).length;
    assert.equal(loaded, sent - probes);
    assert.ok(!log.some((e) => e.path.endsWith(shard) && e.sent === bytes().length), 'shard 1 was not downloaded whole');
  });

  test('a 404 on one shard over HTTP is a ModelFetchError naming it', () =>
    rejects(readHfFolder(folderFromUrl(`${base}/missing-shard/tiny-qwen2/`)), ModelFetchError, /model-00002-of-00002\.safetensors/));
});

describe('hostile folders give typed errors', () => {
  const weights = () => fixture('tiny-qwen3', 'model.safetensors');
  const withWeights = (bytes: Uint8Array) => readHfFolder(folder('tiny-qwen3', { 'model.safetensors': bytes }));
  const withConfig = (dir: string, edit: (c: Record<string, unknown>) => void) => {
    const c = json(dir, 'config.json');
    edit(c);
    return readHfFolder(folder(dir, { 'config.json': encode(c) }));
  };

  test('truncated safetensors', () =>
    rejects(withWeights(weights().slice(0, weights().length - 100)), ModelFormatError, /truncated/));

  test('header offsets overlapping', () =>
    rejects(withWeights(editHeader(weights(), (h) => {
      const a = h['model.layers.0.input_layernorm.weight'];
      const b = h['model.layers.0.post_attention_layernorm.weight'];
      b.data_offsets = [a.data_offsets[0] + 2, a.data_offsets[1] + 2];
    })), ModelFormatError, /overlap/));

  test('offsets past the file', () =>
    rejects(withWeights(editHeader(weights(), (h) => {
      const t = h['model.norm.weight'];
      const len = t.data_offsets[1] - t.data_offsets[0];
      t.data_offsets = [weights().length, weights().length + len];
    })), ModelFormatError, /model\.norm\.weight/));

  test('unknown dtype', () =>
    rejects(withWeights(editHeader(weights(), (h) => {
      h['model.layers.1.mlp.up_proj.weight'].dtype = 'I8';
    })), ModelFormatError, /model\.layers\.1\.mlp\.up_proj\.weight.*I8/));

  test('header length larger than the file', () => {
    const bad = weights().slice();
    new DataView(bad.buffer).setBigUint64(0, BigInt(bad.length), true);
    return rejects(withWeights(bad), ModelFormatError, /header length/);
  });

  test('header length over the limit, and not JSON', async () => {
    const huge = weights().slice();
    new DataView(huge.buffer).setBigUint64(0, 1n << 60n, true);
    await rejects(readSafetensorsHeader(bytesReader('x.safetensors', huge)), ModelFormatError, /limit/);
    const garbage = weights().slice();
    garbage.fill(0x7b, 8, 20);
    await rejects(readSafetensorsHeader(bytesReader('x.safetensors', garbage)), ModelFormatError, /not valid JSON/);
  });

  test('a tensor missing', () =>
    rejects(withWeights(editHeader(weights(), (h) => {
      delete (h as Record<string, unknown>)['model.layers.2.self_attn.k_norm.weight'];
    })), ModelFormatError, /blk\.2\.attn_k_norm\.weight.*missing/));

  test('a tensor of the wrong shape', () =>
    rejects(withWeights(editHeader(weights(), (h) => {
      const t = h['model.norm.weight'];
      t.shape = [8];
      t.data_offsets = [t.data_offsets[0], t.data_offsets[0] + 16];
    })), ModelFormatError, /output_norm\.weight.*shape \[8\]/));

  test('an untied model without lm_head.weight', () =>
    rejects(readHfFolder(folder('tiny-llama3', { 'model.safetensors': editHeader(fixture('tiny-llama3', 'model.safetensors'), (h) => {
      delete (h as Record<string, unknown>)['lm_head.weight'];
    }) })), ModelFormatError, /output\.weight \(lm_head\.weight\) is missing/));

  test('index.json naming a missing shard', () =>
    rejects(readHfFolder(folder('tiny-qwen2', { 'model-00002-of-00002.safetensors': null })),
      ModelFetchError, /model-00002-of-00002\.safetensors/));

  test('index.json putting a tensor in a shard that lacks it', () => {
    const index = json('tiny-qwen2', 'model.safetensors.index.json');
    index.weight_map['model.norm.weight'] = 'model-00001-of-00002.safetensors';
    return rejects(readHfFolder(folder('tiny-qwen2', { 'model.safetensors.index.json': encode(index) })),
      ModelFormatError, /model\.norm\.weight/);
  });

  test('unsupported architecture', () =>
    rejects(withConfig('tiny-qwen3', (c) => (c.architectures = ['GPT2LMHeadModel'])), ModelFormatError, /GPT2LMHeadModel/));

  test('unsupported rope scaling', () =>
    rejects(withConfig('tiny-llama3', (c) => (c.rope_scaling = { rope_type: 'yarn', factor: 4 })),
      ModelFormatError, /rope scaling yarn is not supported/));

  test('rope_scaling "default" and null mean plain RoPE', async () => {
    for (const scaling of [null, { rope_type: 'default' }, { type: 'default' }]) {
      const c = { ...json('tiny-llama3', 'config.json'), rope_scaling: scaling };
      const m = await readHfFolder(folder('tiny-llama3', { 'config.json': encode(c) }));
      assert.equal(m.config.ropeFreqFactors, null);
    }
  });

  test('sliding windows are not supported', async () => {
    await rejects(withConfig('tiny-qwen2', (c) => (c.use_sliding_window = true)), ModelFormatError, /sliding window/);
    await rejects(withConfig('tiny-llama3', (c) => {
      c.architectures = ['MistralForCausalLM'];
      c.sliding_window = 4096;
    }), ModelFormatError, /sliding window.*not supported/);
    const m = await withConfig('tiny-llama3', (c) => {
      c.architectures = ['MistralForCausalLM'];
      c.rope_scaling = null;
      c.sliding_window = null;
    });
    assert.equal(m.config.architecture, 'mistral');
  });

  test('config.json that does not parse', () =>
    rejects(readHfFolder(folder('tiny-qwen3', { 'config.json': new TextEncoder().encode('{"architectures": [') })),
      ModelFormatError, /config\.json is not valid JSON/));

  test('tokenizer.json that does not parse', () =>
    rejects(readHfFolder(folder('tiny-qwen3', { 'tokenizer.json': fixture('tiny-qwen3', 'tokenizer.json').slice(0, 1000) })),
      TokenizerFormatError, /tokenizer\.json is not valid JSON/));

  test('no config.json, no weights', async () => {
    await rejects(readHfFolder(folder('tiny-qwen3', { 'config.json': null })), ModelFetchError, /config\.json/);
    await rejects(readHfFolder(folder('tiny-qwen3', { 'model.safetensors': null })), ModelFetchError, /model\.safetensors/);
  });
});
