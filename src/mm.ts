import { create, globals } from 'webgpu';
Object.assign(globalThis, globals);
const gpu = create([]);
const adapter = (await gpu.requestAdapter())!;
const device = await adapter.requestDevice({ requiredLimits: { maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize, maxBufferSize: adapter.limits.maxBufferSize } });
const K = 288, N = 32000, N4 = N / 4;
const variants: Record<string, { code: string; grid: number; }> = {
  A: { grid: Math.ceil(N4 / 32), code: `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y: array<vec4<f32>>;
@compute @workgroup_size(32) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let n4 = g.x; if (n4 >= ${N4}u) { return; }
  var acc = vec4<f32>(0.0);
  for (var k = 0u; k < ${K}u; k++) { acc += x[k] * w[k * ${N4}u + n4]; }
  y[n4] = acc;
}` },
  B: { grid: Math.ceil(N4 / 32), code: `
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y: array<vec4<f32>>;
@compute @workgroup_size(32) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let n4 = g.x; if (n4 >= ${N4}u) { return; }
  var acc = vec4<f32>(0.0);
  for (var k = 0u; k < ${K / 4}u; k++) {
    let xv = x[k];
    let b = 4u * k * ${N4}u + n4;
    acc += xv.x * w[b]; acc += xv.y * w[b + ${N4}u]; acc += xv.z * w[b + ${2 * N4}u]; acc += xv.w * w[b + ${3 * N4}u];
  }
  y[n4] = acc;
}` },
  C: { grid: Math.ceil(N4 / 64), code: `
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y: array<vec4<f32>>;
@compute @workgroup_size(32) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let n4 = g.x * 2u; if (n4 >= ${N4}u) { return; }
  var a0 = vec4<f32>(0.0); var a1 = vec4<f32>(0.0);
  for (var k = 0u; k < ${K / 4}u; k++) {
    let xv = x[k];
    let b = 4u * k * ${N4}u + n4;
    a0 += xv.x * w[b]; a1 += xv.x * w[b + 1u];
    a0 += xv.y * w[b + ${N4}u]; a1 += xv.y * w[b + ${N4 + 1}u];
    a0 += xv.z * w[b + ${2 * N4}u]; a1 += xv.z * w[b + ${2 * N4 + 1}u];
    a0 += xv.w * w[b + ${3 * N4}u]; a1 += xv.w * w[b + ${3 * N4 + 1}u];
  }
  y[n4] = a0; y[n4 + 1u] = a1;
}` },
  D: { grid: Math.ceil(N4 / 32), code: `
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y: array<vec4<f32>>;
var<workgroup> xs: array<vec4<f32>, ${K / 4}>;
@compute @workgroup_size(32) fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  for (var i = li; i < ${K / 4}u; i += 32u) { xs[i] = x[i]; }
  workgroupBarrier();
  let n4 = g.x; if (n4 >= ${N4}u) { return; }
  var acc = vec4<f32>(0.0);
  for (var k = 0u; k < ${K / 4}u; k++) {
    let xv = xs[k];
    let b = 4u * k * ${N4}u + n4;
    acc += xv.x * w[b]; acc += xv.y * w[b + ${N4}u]; acc += xv.z * w[b + ${2 * N4}u]; acc += xv.w * w[b + ${3 * N4}u];
  }
  y[n4] = acc;
}` },
  F: { grid: Math.ceil(N4 / 128), code: `
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y: array<vec4<f32>>;
@compute @workgroup_size(32) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let n4 = g.x * 4u; if (n4 >= ${N4}u) { return; }
  var a0 = vec4<f32>(0.0); var a1 = vec4<f32>(0.0); var a2 = vec4<f32>(0.0); var a3 = vec4<f32>(0.0);
  for (var k = 0u; k < ${K / 4}u; k++) {
    let xv = x[k];
    for (var j = 0u; j < 4u; j++) {
      let b = (4u * k + j) * ${N4}u + n4;
      let xs = xv[j];
      a0 += xs * w[b]; a1 += xs * w[b + 1u]; a2 += xs * w[b + 2u]; a3 += xs * w[b + 3u];
    }
  }
  y[n4] = a0; y[n4 + 1u] = a1; y[n4 + 2u] = a2; y[n4 + 3u] = a3;
}` },
  G: { grid: Math.ceil(N4 / 64), code: `
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y: array<vec4<f32>>;
@compute @workgroup_size(32) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let n4 = g.x; if (n4 >= ${N4 / 2}u) { return; }
  var a0 = vec4<f32>(0.0); var a1 = vec4<f32>(0.0);
  for (var k = 0u; k < ${K / 4}u; k++) {
    let xv = x[k];
    let b = 4u * k * ${N4}u + n4;
    a0 += xv.x * w[b]; a1 += xv.x * w[b + ${N4 / 2}u];
    a0 += xv.y * w[b + ${N4}u]; a1 += xv.y * w[b + ${N4 + N4 / 2}u];
    a0 += xv.z * w[b + ${2 * N4}u]; a1 += xv.z * w[b + ${2 * N4 + N4 / 2}u];
    a0 += xv.w * w[b + ${3 * N4}u]; a1 += xv.w * w[b + ${3 * N4 + N4 / 2}u];
  }
  y[n4] = a0; y[n4 + ${N4 / 2}u] = a1;
}` },
};
const x = device.createBuffer({ size: K * 4, usage: 0x80 | 0x8 });
const w = device.createBuffer({ size: K * N * 4, usage: 0x80 | 0x8 });
const y = device.createBuffer({ size: N * 4, usage: 0x80 | 0x8 });
const cp = device.createBuffer({ size: K * N * 4, usage: 0x80 | 0x8 });
const copy = device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code: `
@group(0) @binding(0) var<storage, read> s: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> d: array<vec4<f32>>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) { for (var i = g.x; i < arrayLength(&s); i += 64u * 64u) { d[i] = s[i]; } }` }), entryPoint: 'main' } });
async function time(pipe: GPUComputePipeline, bg: GPUBindGroup, grid: number, reps = 15) {
  const run = async () => { const e = device.createCommandEncoder(); const p = e.beginComputePass(); p.setPipeline(pipe); p.setBindGroup(0, bg); p.dispatchWorkgroups(grid); p.end(); device.queue.submit([e.finish()]); await device.queue.onSubmittedWorkDone(); };
  await run();
  const ts: number[] = [];
  for (let r = 0; r < reps; r++) { const t0 = performance.now(); await run(); ts.push(performance.now() - t0); }
  ts.sort((a, b) => a - b); return ts[reps >> 1];
}
const bytes = K * N * 4;
const cbg = device.createBindGroup({ layout: copy.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: w } }, { binding: 1, resource: { buffer: cp } }] });
const cms = await time(copy, cbg, 64);
console.log('copy', cms.toFixed(2), 'ms', (2 * bytes / cms / 1e6).toFixed(2), 'GB/s (read+write)', (bytes / cms / 1e6).toFixed(2), 'GB/s read');
for (const [name, v] of Object.entries(variants)) {
  const pipe = device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code: v.code }), entryPoint: 'main' } });
  const bg = device.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries: [x, w, y].map((buffer, binding) => ({ binding, resource: { buffer } })) });
  const ms = await time(pipe, bg, v.grid);
  console.log(name, ms.toFixed(2), 'ms', (bytes / ms / 1e6).toFixed(2), 'GB/s');
}
process.exit(0);
