// `npm run soak [-- --generations N --cycles N]`: 1,000 generations and 200 load/unload cycles
// in one engine; GPU bytes and JS heap at generations 1, 10, 100, 1000 (test/soak/main.ts).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
const env = { ...process.env };
if (!env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER_ICD)) env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
const result = spawnSync(
  process.execPath,
  ['--import', './scripts/node-hooks/register.mjs', 'test/soak/main.ts', ...process.argv.slice(2)],
  { cwd: root, env, stdio: 'inherit' },
);
process.exit(result.status ?? 1);
