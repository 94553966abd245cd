// Page side of test/browser/webgpu-smoke.test.ts: acquires an adapter and a device, runs
// y[i] = x[i] * 2 + 1 over N = 1000 elements (workgroup size 64, so the last workgroup is
// partial and the bounds check matters), reads y back with mapAsync and returns everything
// the Node side asserts on. Exposed as window.runWebgpuSmoke.

export const SMOKE_N = 1000;
export const SMOKE_WORKGROUP_SIZE = 64;
/** Elements past N in the output buffer, pre-filled with SMOKE_SENTINEL: the kernel must not touch them. */
export const SMOKE_PADDING = 24;
export const SMOKE_SENTINEL = -12345.5;

/** Deterministic input, exactly representable in f32. */
export function smokeInput(i: number): number {
  return (i % 37) * 0.25 - 4 + Math.floor(i / 37) * 0.5;
}

export interface WebgpuSmokeResult {
  userAgent: string;
  adapterInfo: {
    vendor: string;
    architecture: string;
    device: string;
    description: string;
    subgroupMinSize?: number;
    subgroupMaxSize?: number;
    isFallbackAdapter?: boolean;
  };
  adapterFeatures: string[];
  deviceFeatures: string[];
  /** 'subgroups' as the adapter reports it, and on a device that requested it when offered. */
  subgroups: { adapter: boolean; requested: boolean; device: boolean };
  limits: Record<string, number>;
  n: number;
  workgroupSize: number;
  workgroups: number;
  input: number[];
  /** N + SMOKE_PADDING values: y[0..N) then the untouched padding. */
  output: number[];
  errors: string[];
  elapsedMs: number;
}

const SHADER = /* wgsl */ `
struct Params { n: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

override WG: u32 = 64u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i < params.n) {
    y[i] = x[i] * 2.0 + 1.0;
  }
}
`;

const LIMIT_NAMES = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
] as const;

export async function runWebgpuSmoke(): Promise<WebgpuSmokeResult> {
  const t0 = performance.now();
  if (!navigator.gpu) throw new Error('navigator.gpu is missing (not a secure context, or WebGPU disabled)');
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) throw new Error('navigator.gpu.requestAdapter() returned null');

  const info = adapter.info as GPUAdapterInfo & {
    subgroupMinSize?: number;
    subgroupMaxSize?: number;
    isFallbackAdapter?: boolean;
  };
  const adapterFeatures = [...adapter.features].map(String).sort();
  const hasSubgroups = adapter.features.has('subgroups');
  const requiredFeatures: GPUFeatureName[] = hasSubgroups ? ['subgroups' as GPUFeatureName] : [];
  const device = await adapter.requestDevice({ requiredFeatures });
  const errors: string[] = [];
  device.addEventListener('uncapturederror', (e) => errors.push(`uncaptured: ${(e as GPUUncapturedErrorEvent).error.message}`));
  void device.lost.then((l) => {
    if (l.reason !== 'destroyed') errors.push(`device lost: ${l.message}`);
  });

  try {
    const n = SMOKE_N;
    const total = n + SMOKE_PADDING;
    const input = new Float32Array(n);
    for (let i = 0; i < n; i++) input[i] = smokeInput(i);

    device.pushErrorScope('validation');
    const params = device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(params, 0, new Uint32Array([n, 0, 0, 0]));
    const xBuf = device.createBuffer({ size: n * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(xBuf, 0, input);
    const yBuf = device.createBuffer({
      size: total * 4,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
      mappedAtCreation: true,
    });
    new Float32Array(yBuf.getMappedRange()).fill(SMOKE_SENTINEL);
    yBuf.unmap();
    const readBuf = device.createBuffer({ size: total * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });

    const module = device.createShaderModule({ code: SHADER });
    const compilation = await module.getCompilationInfo();
    for (const m of compilation.messages) {
      if (m.type === 'error') errors.push(`wgsl ${m.lineNum}:${m.linePos} ${m.message}`);
    }
    const pipeline = await device.createComputePipelineAsync({
      layout: 'auto',
      compute: { module, entryPoint: 'main', constants: { WG: SMOKE_WORKGROUP_SIZE } },
    });
    const bindGroup = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: params } },
        { binding: 1, resource: { buffer: xBuf } },
        { binding: 2, resource: { buffer: yBuf } },
      ],
    });
    const workgroups = Math.ceil(n / SMOKE_WORKGROUP_SIZE);
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(workgroups);
    pass.end();
    encoder.copyBufferToBuffer(yBuf, 0, readBuf, 0, total * 4);
    device.queue.submit([encoder.finish()]);
    const validation = await device.popErrorScope();
    if (validation) errors.push(`validation: ${validation.message}`);

    await readBuf.mapAsync(GPUMapMode.READ);
    const output = Array.from(new Float32Array(readBuf.getMappedRange()));
    readBuf.unmap();

    const limits: Record<string, number> = {};
    for (const name of LIMIT_NAMES) limits[name] = Number(adapter.limits[name]);

    return {
      userAgent: navigator.userAgent,
      adapterInfo: {
        vendor: info.vendor,
        architecture: info.architecture,
        device: info.device,
        description: info.description,
        subgroupMinSize: info.subgroupMinSize,
        subgroupMaxSize: info.subgroupMaxSize,
        isFallbackAdapter: info.isFallbackAdapter,
      },
      adapterFeatures,
      deviceFeatures: [...device.features].map(String).sort(),
      subgroups: { adapter: hasSubgroups, requested: hasSubgroups, device: device.features.has('subgroups') },
      limits,
      n,
      workgroupSize: SMOKE_WORKGROUP_SIZE,
      workgroups,
      input: Array.from(input),
      output,
      errors,
      elapsedMs: performance.now() - t0,
    };
  } finally {
    device.destroy();
  }
}

declare global {
  interface Window {
    runWebgpuSmoke: typeof runWebgpuSmoke;
  }
}

// Guarded so that the Node side can import the constants and smokeInput() from this module.
if (typeof window !== 'undefined') window.runWebgpuSmoke = runWebgpuSmoke;
