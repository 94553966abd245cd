// Compute pipelines, cached by (shader, entry point, override constants): a WGSL file is one
// kernel family, and its override constants pick the member (shape, workgroup size, flags).
import type { GpuContext } from './device.ts';

export type Constants = Record<string, number>;

export interface KernelSpec {
  /** A name for labels and cache keys, e.g. 'matmul'. */
  name: string;
  code: string;
  entryPoint?: string;
  constants?: Constants;
}

export class PipelineCache {
  private modules = new Map<string, GPUShaderModule>();
  private pipelines = new Map<string, Promise<GPUComputePipeline>>();
  constructor(private readonly ctx: GpuContext) {}

  get(spec: KernelSpec): Promise<GPUComputePipeline> {
    const entryPoint = spec.entryPoint ?? 'main';
    const constants = spec.constants ?? {};
    const key = `${spec.name}/${entryPoint}/${Object.keys(constants).sort().map((k) => `${k}=${constants[k]}`).join(',')}`;
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      pipeline = this.ctx.device.createComputePipelineAsync({
        label: key,
        layout: 'auto',
        compute: { module: this.module(spec), entryPoint, constants },
      });
      this.pipelines.set(key, pipeline);
    }
    return pipeline;
  }

  private module(spec: KernelSpec): GPUShaderModule {
    let module = this.modules.get(spec.name);
    if (!module) {
      module = this.ctx.device.createShaderModule({ label: spec.name, code: spec.code });
      this.modules.set(spec.name, module);
    }
    return module;
  }

  get size(): number {
    return this.pipelines.size;
  }
}

export type Grid = readonly [number, number, number];

/** What varies between steps of one graph: how many token rows, how many of them get stats. */
export interface StepShape {
  nTokens: number;
  statsRows: number;
}

/**
 * One kernel launch: bound once, dispatched many times with a grid computed from the shape of
 * that dispatch (a StepShape for the forward graph).
 */
export interface KernelCall<S = StepShape> {
  label: string;
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  grid: (shape: S) => Grid;
}

/**
 * Binds buffers to binding slots 0, 1, 2, …; a `null` skips a slot the entry point does not use
 * (one WGSL file declares the bindings of all its entry points).
 */
export function bindGroupFor(
  ctx: GpuContext, pipeline: GPUComputePipeline, label: string, buffers: readonly (GPUBuffer | null)[],
): GPUBindGroup {
  const entries: GPUBindGroupEntry[] = [];
  buffers.forEach((buffer, binding) => {
    if (buffer) entries.push({ binding, resource: { buffer } });
  });
  return ctx.device.createBindGroup({ label, layout: pipeline.getBindGroupLayout(0), entries });
}

/** Records calls into one compute pass; each dispatch is its own synchronisation scope. */
export function encodeCalls<S>(pass: GPUComputePassEncoder, calls: readonly KernelCall<S>[], shape: S): void {
  for (const call of calls) {
    const [x, y, z] = call.grid(shape);
    if (x === 0 || y === 0 || z === 0) continue;
    pass.setPipeline(call.pipeline);
    pass.setBindGroup(0, call.bindGroup);
    pass.dispatchWorkgroups(x, y, z);
  }
}

export const ceilDiv = (a: number, b: number) => Math.ceil(a / b);
