// The npm package's declarations: `npm run build:types` emits dist/types, and a consumer project
// that imports 'forkwise' by name (package.json "exports" → types) type-checks against them with
// skipLibCheck off, under both the Bundler and the Node16 resolvers. A wrong decoder name must be
// a type error, so the check can fail.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PROJECT_ROOT } from '../support/browser.ts';

const TSC = join(PROJECT_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

const consumer = (decoder: string) => `
import { createEngine, InvalidArgumentError, type GenerationStep } from 'forkwise';
const engine = await createEngine();
await engine.loadModel({ model: '/m.bin', tokenizer: '/t.bin', onProgress: (p) => console.log(p.fraction) });
const steps: GenerationStep[] = [];
for await (const s of engine.generate('hi', { decoder: '${decoder}', maxTrials: 4, seed: 1 })) steps.push(s);
const entropy: number = steps[0].entropy;
const element = document.createElement('forkwise-generate');
element.setAttribute('prompt', String(entropy));
console.log(new InvalidArgumentError('x').code);
export {};
`;

describe('npm package declarations (dist/types)', () => {
  let dir: string;

  before(() => {
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const build = spawnSync(npm, ['run', 'build:types'], { cwd: PROJECT_ROOT, encoding: 'utf8', timeout: 120_000 });
    assert.equal(build.status, 0, `npm run build:types failed:\n${build.stdout}\n${build.stderr}`);
    assert.ok(existsSync(join(PROJECT_ROOT, 'dist', 'types', 'embed.d.ts')));
    dir = mkdtempSync(join(tmpdir(), 'forkwise-consumer-'));
    mkdirSync(join(dir, 'node_modules', '@webgpu'), { recursive: true });
    symlinkSync(PROJECT_ROOT, join(dir, 'node_modules', 'forkwise'), 'dir');
    symlinkSync(join(PROJECT_ROOT, 'node_modules', '@webgpu', 'types'), join(dir, 'node_modules', '@webgpu', 'types'), 'dir');
    writeFileSync(join(dir, 'package.json'), '{ "type": "module" }');
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function typecheck(resolution: 'Bundler' | 'Node16', decoder: string) {
    const module = resolution === 'Bundler' ? 'ESNext' : 'Node16';
    writeFileSync(join(dir, 'app.ts'), consumer(decoder));
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        target: 'ES2022', module, moduleResolution: resolution, strict: true, noEmit: true,
        lib: ['ES2022', 'DOM'], types: ['@webgpu/types'], skipLibCheck: false,
      },
      files: ['app.ts'],
    }));
    return spawnSync(process.execPath, [TSC, '-p', dir], { encoding: 'utf8', timeout: 120_000 });
  }

  for (const resolution of ['Bundler', 'Node16'] as const) {
    test(`a consumer type-checks against 'forkwise' (${resolution} resolution)`, () => {
      const ok = typecheck(resolution, 'cntp');
      assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    });
  }

  test('a decoder name the API does not have is a type error', () => {
    const bad = typecheck('Bundler', 'beam');
    assert.notEqual(bad.status, 0);
    assert.match(bad.stdout, /TS2322: Type '"beam"' is not assignable/);
  });
});
