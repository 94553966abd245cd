// `npm run fuzz [-- --cases N --seed S --format gguf ...]`: the loader fuzzer of test/fuzz at
// scale (default 1000 cases per format, seed 1); exits non-zero on any leak, hang or crash.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const result = spawnSync(
  process.execPath,
  ['--import', './scripts/node-hooks/register.mjs', 'test/fuzz/main.ts', ...process.argv.slice(2)],
  { cwd: root, stdio: 'inherit' },
);
process.exit(result.status ?? 1);
