// Proves the browser harness: Vite dev server + headless Chromium + WebGPU (SwiftShader here).
// The page runs y[i] = x[i]*2+1 over 1000 elements (workgroup 64, last workgroup partial)
// and the values are checked here, in Node.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startBrowserSession, waitForGlobal, type BrowserSession } from '../support/browser.ts';
import {
  SMOKE_N,
  SMOKE_PADDING,
  SMOKE_SENTINEL,
  SMOKE_WORKGROUP_SIZE,
  smokeInput,
  type WebgpuSmokeResult,
} from './pages/webgpu-smoke.ts';

let session: BrowserSession;
let result: WebgpuSmokeResult;

before(async () => {
  const t0 = performance.now();
  session = await startBrowserSession();
  const t1 = performance.now();
  const page = await session.newPage('/test/browser/pages/webgpu-smoke.html');
  await waitForGlobal(page, 'runWebgpuSmoke');
  result = await page.evaluate(() => window.runWebgpuSmoke());
  const t2 = performance.now();
  console.log(
    `# harness: session ${(t1 - t0).toFixed(0)} ms, page + WebGPU run ${(t2 - t1).toFixed(0)} ms ` +
      `(in-page ${result.elapsedMs.toFixed(0)} ms), ${await session.browser.version()}`,
  );
});

after(async () => {
  await session?.close();
});

test('adapter and device are acquired; adapter info is recorded', () => {
  console.log(`# adapter.info ${JSON.stringify(result.adapterInfo)}`);
  console.log(`# adapter features [${result.adapterFeatures.join(', ')}]`);
  console.log(`# limits ${JSON.stringify(result.limits)}`);
  assert.equal(typeof result.adapterInfo.vendor, 'string');
  assert.equal(typeof result.adapterInfo.architecture, 'string');
  assert.ok(result.limits.maxComputeInvocationsPerWorkgroup >= SMOKE_WORKGROUP_SIZE);
});

test("'subgroups' is reported consistently by the adapter and the device", () => {
  const { adapter, requested, device } = result.subgroups;
  console.log(`# subgroups: adapter ${adapter}, device ${device}`);
  assert.equal(adapter, result.adapterFeatures.includes('subgroups'));
  assert.equal(requested, adapter);
  // Requested exactly when offered, so the device has it exactly when the adapter does.
  assert.equal(device, adapter);
  assert.equal(device, result.deviceFeatures.includes('subgroups'));
  if (adapter && result.adapterInfo.subgroupMinSize !== undefined) {
    assert.ok(result.adapterInfo.subgroupMinSize >= 1);
    assert.ok((result.adapterInfo.subgroupMaxSize ?? 0) >= result.adapterInfo.subgroupMinSize);
  }
});

test('compute shader y = 2x + 1 over 1000 elements, read back with mapAsync', () => {
  assert.deepEqual(result.errors, []);
  assert.equal(result.n, SMOKE_N);
  assert.equal(result.workgroups, Math.ceil(SMOKE_N / SMOKE_WORKGROUP_SIZE));
  assert.notEqual(SMOKE_N % SMOKE_WORKGROUP_SIZE, 0, 'the size must not be a multiple of the workgroup');
  assert.equal(result.input.length, SMOKE_N);
  assert.equal(result.output.length, SMOKE_N + SMOKE_PADDING);
  for (let i = 0; i < SMOKE_N; i++) {
    assert.equal(result.input[i], smokeInput(i), `input[${i}]`);
    // x*2 is exact in f32, so fused or not the result is round(2x + 1).
    const expected = Math.fround(Math.fround(result.input[i] * 2) + 1);
    if (result.output[i] !== expected) assert.fail(`y[${i}] = ${result.output[i]}, expected ${expected}`);
  }
  for (let i = SMOKE_N; i < SMOKE_N + SMOKE_PADDING; i++) {
    assert.equal(result.output[i], SMOKE_SENTINEL, `y[${i}] beyond n must be untouched`);
  }
});

test('no console errors or page errors', () => {
  assert.deepEqual(session.errors, []);
});
