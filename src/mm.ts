import { create, globals } from 'webgpu';
Object.assign(globalThis, globals);
const gpu = create([]);
const adapter = (await gpu.requestAdapter())!;
const device = await adapter.requestDevice({ requiredLimits: { maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize, maxBufferSize: adapter.limits.maxBufferSize } });
const K = 288, N = 32000, N4 = N / 4;
function variant(cols: number, wg: number, strided: boolean) {
  const S = N4 / cols; // column spacing
  const accs = Array.from({ length: cols }, (_, c) => `var a${c} = vec4<f32>(0.0);`).join(' ');
  const lines: string[] = [];
  for (const [j, comp] of ['x', 'y', 'z', 'w'].entries()) {
    for (let c = 0; c < cols; c++) lines.push(`a${c} += xv.${comp} * w[b + ${j * N4 + (strided ? c * S : c)}u];`);
  }
  const stores = Array.from({ length: cols }, (_, c) => `y[n4 + ${strided ? c * S : c}u] = a${c};`).join(' ');
  const nThreads = N4 / cols;
  return { grid: Math.ceil(nThreads / wg), code: `
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y: array<vec4<f32>>;
@compute @workgroup_size(${wg}) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  if (g.x >= ${nThreads}u) { return; }
  let n4 = ${strided ? 'g.x' : `g.x * ${cols}u`};
  ${accs}
  for (var k = 0u; k < ${K / 4}u; k++) {
    let xv = x[k];
    let b = 4u * k * ${N4}u + n4;
    ${lines.join('\n    ')}
  }
  ${stores}
}` };
}
const variants: Record<string, { code: string; grid: number }> = {};
for (const cols of [1, 2, 4, 8]) for (const wg of [16, 32, 64]) variants[`c${cols}-wg${wg}-strided`] = variant(cols, wg, true);
variants['c2-wg32-adjacent'] = variant(2, 32, false);
variants['c4-wg32-adjacent'] = variant(4, 32, false);
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
