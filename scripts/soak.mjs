// `npm run soak [-- --generations N --cycles N --only node|page]`: in Node, 1,000 generations of
// mixed decoders over 200 load/unload cycles in one engine (test/soak/main.ts: GPU bytes and JS
// heap at generations 1, 10, 100, 1000); then in one Chromium page, 200 load/unload cycles of
// stories15M (test/soak/page.ts: GPU bytes and JS heap at cycles 1, 10, 100, 200). Exits non-zero
// if either part finds GPU memory that is not flat or a heap over its bound.
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
const parts = { node: 'test/soak/main.ts', page: 'test/soak/page.ts' };
if (only !== null && !(only in parts)) {
  console.error(`--only takes node or page, got ${only}`);
  process.exit(2);
}
let status = 0;
for (const [name, script] of Object.entries(parts)) {
  if (only !== null && only !== name) continue;
  const result = spawnSync(process.execPath, ['--import', './scripts/node-hooks/register.mjs', script, ...args], { cwd: root, env, stdio: 'inherit' });
  status ||= result.status ?? 1;
}
process.exit(status);
