import { readFileSync } from 'node:fs';
import { create, globals } from 'webgpu';
import { acquireGpu } from './gpu/device.ts';
import { BufferPool } from './gpu/buffers.ts';
import { Kernels } from './gpu/kernels.ts';
import { encodeCalls } from './gpu/pipelines.ts';
import { parseCheckpoint } from './model/checkpoint.ts';
import { uploadWeights } from './model/weights.ts';
import { Session } from './runtime/session.ts';
Object.assign(globalThis, globals);
const ctx = await acquireGpu({ gpu: create([]) });
const bytes = readFileSync('public/models/stories15M.bin');
const spec = parseCheckpoint(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
const weights = await uploadWeights(ctx, spec);
const session = await Session.create(ctx, new Kernels(ctx), new BufferPool(ctx), weights, { topK: 5 });
await session.step([{ id: 1, pos: 0, row: 0 }]);
await session.step([{ id: 9038, pos: 1, row: 0 }]);
const graph = (session as any).graph;
const calls = [...graph.decode, ...graph.head];
const shape = { nTokens: 1, statsRows: 1 };
const time = async (cs: any[], reps: number) => {
  const t0 = performance.now();
  for (let r = 0; r < reps; r++) {
    const enc = ctx.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    encodeCalls(pass, cs, shape);
    pass.end();
    ctx.device.queue.submit([enc.finish()]);
    await ctx.device.queue.onSubmittedWorkDone();
  }
  return (performance.now() - t0) / reps;
};
await time([], 5);
console.log('empty submit ms', (await time([], 20)).toFixed(3));
console.log('full step ms', (await time(calls, 10)).toFixed(3));
{
  const k = new Kernels(ctx);
  const b = (session as any).buffers;
  const logits = ctx.device.createBuffer({ size: 32000 * 4, usage: 0x80 | 0x4 });
  const mm = await k.matmul('cls', { k: 288, n: 32000, accumulate: false, rowsPerInvocation: 1 }, { step: b.step, x: b.hidden, w: weights.classifier, y: logits });
  for (let i = 0; i < 3; i++) console.log('classifier gemv ms', (await time([mm], 10)).toFixed(3), 'lm head ms', (await time(graph.head.slice(0, 1), 10)).toFixed(3));
}
const byName = new Map<string, number>();
for (const c of calls) {
  const ms = await time([c], 10);
  const key = c.label.replace(/^l\d+\./, '');
  byName.set(key, (byName.get(key) ?? 0) + ms);
}
for (const [k, v] of byName) console.log(k.padEnd(20), v.toFixed(3));
{
  let t0 = performance.now();
  for (let i = 0; i < 10; i++) await session.step([{ id: 100, pos: 2 + i, row: 0 }]);
  console.log('session.step ms', ((performance.now() - t0) / 10).toFixed(3));
  const b = ctx.device.createBuffer({ size: 64, usage: 0x1 | 0x8 });
  t0 = performance.now();
  for (let i = 0; i < 10; i++) { const enc = ctx.device.createCommandEncoder(); enc.clearBuffer(b); ctx.device.queue.submit([enc.finish()]); await b.mapAsync(1); b.unmap(); }
  console.log('empty mapAsync ms', ((performance.now() - t0) / 10).toFixed(3));
}
process.exit(0);
