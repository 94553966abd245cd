// `npm run soak [-- --generations N --cycles N --only node|page]`: in Node, 1,000 generations of
// mixed decoders over 200 load/unload cycles in one engine (test/soak/main.ts: GPU bytes and JS
// heap at generations 1, 10, 100, 1000); then in one Chromium page, 200 load/unload cycles of
// stories15M (test/soak/page.ts: GPU bytes and JS heap at cycles 1, 10, 100, 200); then the
// SirLLM dialogue test at 5,000 tokens (test/model/memory-dialogue.test.ts, `--only dialogue`).
// Exits non-zero if a part finds GPU memory that is not flat or a heap over its bound.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
const env = { ...process.env };
if (!env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER_ICD)) env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;

const args = process.argv.slice(2);
const at = args.indexOf('--only');
const only = at < 0 ? null : args.splice(at, 2)[1];
const parts = { node: ['test/soak/main.ts'], page: ['test/soak/page.ts'], dialogue: ['--test', 'test/model/memory-dialogue.test.ts'] };
if (only !== null && !(only in parts)) {
  console.error(`--only takes ${Object.keys(parts).join(', ')}, got ${only}`);
  process.exit(2);
}
let status = 0;
for (const [name, script] of Object.entries(parts)) {
  if (only !== null && only !== name) continue;
  const partEnv = name === 'dialogue' ? { ...env, FORKWISE_DIALOGUE_TOKENS: '5000' } : env;
  const rest = name === 'dialogue' ? [] : args;
  const result = spawnSync(process.execPath, ['--import', './scripts/node-hooks/register.mjs', ...script, ...rest], { cwd: root, env: partEnv, stdio: 'inherit' });
  status ||= result.status ?? 1;
}
process.exit(status);
