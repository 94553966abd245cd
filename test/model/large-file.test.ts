// Files over 2 GB: tiny-qwen3's safetensors rewritten with its tensor data moved past 2^31 bytes
// (a sparse file: the gap takes no disk), loaded from a path (positioned reads) and from a
// file-backed Blob (slices), must give the golden tokens. Offsets past 2^31 break any code that
// keeps them in int32 or reads a file into one ArrayBuffer.
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, openAsBlob, readFileSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Engine } from '../../src/engine.ts';
import { folderFromMap } from '../../src/model/formats/hf.ts';
import { blobReader } from '../../src/model/readers.ts';
import { createNodeEngine, modelFromPath } from '../../src/node/index.ts';
import { fixtureGoldens, fixturePath } from '../support/fixtures.ts';

const GAP = 2 ** 31 + 4096; // data starts past 2 GiB
let dir: string;
let engine: Engine;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'forkwise-large-'));
  for (const f of ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json']) {
    copyFileSync(fixturePath(`tiny-qwen3/${f}`), join(dir, f));
  }
  const original = readFileSync(fixturePath('tiny-qwen3/model.safetensors'));
  const headerLength = Number(original.readBigUInt64LE(0));
  const header = JSON.parse(original.subarray(8, 8 + headerLength).toString('utf8'));
  for (const [name, t] of Object.entries(header) as [string, { data_offsets: number[] }][]) {
    if (name !== '__metadata__') t.data_offsets = t.data_offsets.map((o) => o + GAP);
  }
  const json = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  const file = await open(join(dir, 'model.safetensors'), 'w');
  await file.write(Buffer.concat([prefix, json]), 0, 8 + json.length, 0);
  const data = original.subarray(8 + headerLength);
  await file.write(data, 0, data.length, 8 + json.length + GAP);
  await file.close();
  engine = await createNodeEngine();
});

after(() => {
  engine?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const golden = fixtureGoldens('tiny-qwen3/golden.json')[0];
const newTokens = golden.tokens.length - golden.prompt_token_count;

test('a folder whose safetensors data lies past 2 GiB loads from its path', async () => {
  const info = await engine.loadModel({ model: await modelFromPath(dir) });
  assert.equal(info.config.architecture, 'qwen3');
  const r = await engine.generate(golden.prompt, { maxTokens: newTokens }).complete();
  assert.deepEqual(r.tokens, golden.tokens);
});

test('the same folder as file-backed Blobs (slices past 2 GiB)', async () => {
  const names = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors'];
  const readers = new Map(await Promise.all(names.map(async (n) => [n, blobReader(await openAsBlob(join(dir, n)), n)] as const)));
  assert.ok(readers.get('model.safetensors')!.size > 2 ** 31, 'the file is over 2 GiB');
  await engine.loadModel({ model: folderFromMap(readers) });
  const r = await engine.generate(golden.prompt, { maxTokens: newTokens }).complete();
  assert.deepEqual(r.tokens, golden.tokens);
});
