// Typed errors. Every failure a caller can cause or meet has its own class and a stable `code`,
// so UIs can branch on it without parsing messages. The engine stays usable after any of them.

export type ForkwiseErrorCode =
  | 'invalid-argument'
  | 'model-format'
  | 'tokenizer-format'
  | 'model-fetch'
  | 'context-overflow'
  | 'webgpu-unavailable'
  | 'device-lost'
  | 'gpu-allocation'
  | 'aborted';

export class ForkwiseError extends Error {
  readonly code: ForkwiseErrorCode;
  constructor(code: ForkwiseErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A parameter that is NaN, out of range or of the wrong kind. */
export class InvalidArgumentError extends ForkwiseError {
  constructor(message: string) {
    super('invalid-argument', message);
  }
}

/** A checkpoint whose header or length does not describe a model we can run. */
export class ModelFormatError extends ForkwiseError {
  constructor(message: string) {
    super('model-format', message);
  }
}

/** A tokenizer.bin that is truncated or does not match the model. */
export class TokenizerFormatError extends ForkwiseError {
  constructor(message: string) {
    super('tokenizer-format', message);
  }
}

/** A model or tokenizer URL that is empty, unreachable or answers with an HTTP error. */
export class ModelFetchError extends ForkwiseError {
  readonly status?: number;
  constructor(message: string, status?: number, cause?: unknown) {
    super('model-fetch', message, { cause });
    this.status = status;
  }
}

/** A prompt (plus generation) that does not fit in the model's context. */
export class ContextOverflowError extends ForkwiseError {
  constructor(message: string) {
    super('context-overflow', message);
  }
}

/** No WebGPU implementation, or no adapter/device could be obtained. */
export class WebGPUUnavailableError extends ForkwiseError {
  constructor(message: string, cause?: unknown) {
    super('webgpu-unavailable', message, { cause });
  }
}

/** The GPUDevice was lost; the engine must be recreated (loadModel again). */
export class DeviceLostError extends ForkwiseError {
  constructor(message: string) {
    super('device-lost', message);
  }
}

/** A GPU buffer could not be allocated (out of memory or over a device limit). */
export class GpuAllocationError extends ForkwiseError {
  constructor(message: string, cause?: unknown) {
    super('gpu-allocation', message, { cause });
  }
}

/** Work stopped because the caller's AbortSignal fired. */
export class AbortedError extends ForkwiseError {
  constructor(message = 'generation aborted') {
    super('aborted', message);
  }
}

/**
 * A caller's value in a message, without throwing on the values that make String() throw (an
 * object with no prototype, an array nested too deep for join, a throwing toString); at most 60
 * characters.
 */
export function shown(value: unknown): string {
  let text: string;
  try {
    text = String(value);
  } catch {
    text = Object.prototype.toString.call(value);
  }
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}

/** Throws InvalidArgumentError unless `value` is a finite number in [min, max]. */
export function checkNumber(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw new InvalidArgumentError(`${name} must be a finite number in [${min}, ${max}], got ${shown(value)}`);
  }
  return value;
}

/** Throws InvalidArgumentError unless `value` is an integer in [min, max]. */
export function checkInteger(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(`${name} must be an integer in [${min}, ${max}], got ${shown(value)}`);
  }
  return value;
}
