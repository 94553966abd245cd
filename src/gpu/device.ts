// Acquiring a GPUDevice: from navigator.gpu in a browser, from a GPU object handed in (Node: the
// `webgpu` package's create()), or a GPUDevice the caller already owns.
import { DeviceLostError, WebGPUUnavailableError } from '../errors.ts';

export interface AdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True when the adapter is a CPU implementation (SwiftShader here). */
  isFallback: boolean;
}

export interface GpuContextOptions {
  /** A device the caller owns; the engine uses it and never destroys it. */
  device?: GPUDevice;
  /** A WebGPU entry point; defaults to navigator.gpu. Pass null to simulate its absence. */
  gpu?: GPU | null;
  powerPreference?: GPUPowerPreference;
  /**
   * How a readback waits for the GPU. 'map' (default): mapAsync at once. 'paced': first sleep
   * about as long as reads of that kind took before, then map (gpu/readback.ts). For Node's
   * `webgpu` package: while a map is pending it re-polls Dawn on every event-loop turn, and on a
   * CPU adapter (SwiftShader) that loop takes a core from the adapter's own threads.
   */
  mapWait?: MapWait;
}

export type MapWait = 'map' | 'paced';

export class GpuContext {
  readonly device: GPUDevice;
  readonly adapter: AdapterDescription;
  readonly hasSubgroups: boolean;
  readonly hasTimestamps: boolean;
  /** How readbacks wait for the GPU (GpuContextOptions.mapWait). */
  readonly mapWait: MapWait;
  private lostReason: string | null = null;
  /** Settles with the browser's reason ('destroyed: …', 'unknown: …') when the device is lost; never rejects. */
  readonly whenLost: Promise<string>;
  /**
   * The objects the device came from. Held so they live as long as the device: Node's `webgpu`
   * (Dawn) crashes if the GPU or adapter object is garbage-collected under a live device.
   */
  private readonly owners: unknown[];

  constructor(device: GPUDevice, adapter: AdapterDescription, owners: unknown[] = [], mapWait: MapWait = 'map') {
    this.owners = owners;
    this.mapWait = mapWait;
    this.device = device;
    this.adapter = adapter;
    this.hasSubgroups = device.features.has('subgroups');
    this.hasTimestamps = device.features.has('timestamp-query');
    this.whenLost = device.lost.then(
      (info) => (this.lostReason = `${info.reason}: ${info.message || 'no message'}`),
      (error) => (this.lostReason = `unknown: ${String(error)}`),
    );
    // Validation errors outside an error scope would otherwise only reach the console.
    device.addEventListener?.('uncapturederror', (event) => {
      const message = (event as GPUUncapturedErrorEvent).error.message;
      if (this.uncapturedErrors.length < 100) this.uncapturedErrors.push(message);
    });
  }

  /** GPU errors no error scope caught (a bug if ever non-empty); tests assert it stays empty. */
  readonly uncapturedErrors: string[] = [];

  get lost(): boolean {
    return this.lostReason !== null;
  }

  /** The browser's reason for the loss ('destroyed: …', 'unknown: …'), or null while the device lives. */
  get lossReason(): string | null {
    return this.lostReason;
  }

  /** The DeviceLostError for this context's loss (call when `lost`). */
  lostError(): DeviceLostError {
    return new DeviceLostError(`the GPU device was lost (${this.lostReason ?? 'unknown'}); engine.recover() acquires a new one and reloads the model`);
  }

  /** Throws DeviceLostError when the device is gone; call before recording GPU work. */
  assertAlive(): void {
    if (this.lostReason !== null) throw this.lostError();
  }
}

function describe(info: GPUAdapterInfo | undefined): AdapterDescription {
  const i = (info ?? {}) as Partial<GPUAdapterInfo> & { isFallbackAdapter?: boolean };
  const description = i.description ?? '';
  return {
    vendor: i.vendor ?? '',
    architecture: i.architecture ?? '',
    device: i.device ?? '',
    description,
    isFallback: Boolean(i.isFallbackAdapter) || /swiftshader/i.test(`${i.vendor} ${i.architecture} ${description}`),
  };
}

export async function acquireGpu(options: GpuContextOptions = {}): Promise<GpuContext> {
  if (options.device) {
    return new GpuContext(options.device, describe((options.device as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo), [], options.mapWait);
  }
  const gpu = options.gpu === undefined ? globalThis.navigator?.gpu : options.gpu;
  if (!gpu) {
    throw new WebGPUUnavailableError(
      'WebGPU is not available: navigator.gpu is missing (use a WebGPU browser, a secure context such as http://127.0.0.1, or pass a GPU object)',
    );
  }
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  } catch (cause) {
    throw new WebGPUUnavailableError('requestAdapter() failed', cause);
  }
  if (!adapter) throw new WebGPUUnavailableError('WebGPU is present but no GPU adapter is available');
  const features: GPUFeatureName[] = (['subgroups', 'timestamp-query'] as GPUFeatureName[]).filter((f) => adapter!.features.has(f));
  const limits = adapter.limits;
  try {
    const device = await adapter.requestDevice({
      requiredFeatures: features,
      requiredLimits: {
        maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
        maxBufferSize: limits.maxBufferSize,
        maxStorageBuffersPerShaderStage: limits.maxStorageBuffersPerShaderStage,
        maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
        maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
        maxComputeWorkgroupSizeX: limits.maxComputeWorkgroupSizeX,
      },
    });
    return new GpuContext(device, describe(adapter.info), [gpu, adapter], options.mapWait);
  } catch (cause) {
    throw new WebGPUUnavailableError('requestDevice() failed', cause);
  }
}
