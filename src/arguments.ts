// Checks of the public API's arguments that are not numbers in a range (errors.ts has those):
// option objects, callbacks, signals, sources and token id lists. Each throws InvalidArgumentError,
// so a caller's mistake is always `code: 'invalid-argument'`, never a TypeError from inside.
import { InvalidArgumentError, shown } from './errors.ts';

/** What a value is, for messages ('null', 'array', 'number 5', 'string "x"'). */
export function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `string ${shown(JSON.stringify(value))}`;
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${shown(value)}`;
}

/** `value` must be an options object (undefined: {}, unless `required`). */
export function checkOptions<T extends object>(name: string, value: T | undefined, required = false): T {
  if (value === undefined && !required) return {} as T;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidArgumentError(`${name} must be an object, got ${kindOf(value)}`);
  }
  return value;
}

export function checkFunction(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'function') throw new InvalidArgumentError(`${name} must be a function, got ${kindOf(value)}`);
}

export function checkBoolean(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'boolean') throw new InvalidArgumentError(`${name} must be true or false, got ${kindOf(value)}`);
}

export function checkString(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'string') throw new InvalidArgumentError(`${name} must be a string, got ${kindOf(value)}`);
}

/** An AbortSignal (or anything with `aborted` and addEventListener, as a signal of another realm). */
export function checkSignal(name: string, value: unknown): void {
  if (value === undefined) return;
  const s = value as Partial<AbortSignal> | null;
  if (typeof s !== 'object' || s === null || typeof s.aborted !== 'boolean' || typeof s.addEventListener !== 'function') {
    throw new InvalidArgumentError(`${name} must be an AbortSignal, got ${kindOf(value)}`);
  }
}

/** A ByteSource: a URL string or URL, bytes (ArrayBuffer, Uint8Array) or a Blob. */
export function checkByteSource(name: string, value: unknown): void {
  if (typeof value === 'string' || value instanceof ArrayBuffer || value instanceof Uint8Array) return;
  if (typeof URL !== 'undefined' && value instanceof URL) return;
  if (typeof Blob !== 'undefined' && value instanceof Blob) return;
  throw new InvalidArgumentError(`${name} must be a URL, bytes (ArrayBuffer, Uint8Array) or a Blob, got ${kindOf(value)}`);
}

/** An array of token ids, each an integer in [0, vocabSize). */
export function checkTokenIds(name: string, value: unknown, vocabSize: number): number[] {
  if (!Array.isArray(value)) throw new InvalidArgumentError(`${name} must be an array of token ids, got ${kindOf(value)}`);
  value.forEach((id, i) => {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new InvalidArgumentError(`${name}[${i}] must be a token id in [0, ${vocabSize - 1}], got ${kindOf(id)}`);
    }
  });
  return value as number[];
}

/** createEngine's options: an object; `device`, when given, a GPUDevice. */
export function checkGpuOptions(o: unknown): void {
  const options = checkOptions('createEngine() options', o as object | undefined) as { device?: unknown; powerPreference?: unknown };
  const device = options.device as Partial<GPUDevice> | undefined | null;
  if (device !== undefined && (typeof device !== 'object' || device === null || typeof device.createBuffer !== 'function' || typeof device.queue !== 'object')) {
    throw new InvalidArgumentError(`device must be a GPUDevice, got ${kindOf(device)}`);
  }
  checkString('powerPreference', options.powerPreference);
  const mapWait = (options as { mapWait?: unknown }).mapWait;
  if (mapWait !== undefined && mapWait !== 'map' && mapWait !== 'paced') {
    throw new InvalidArgumentError(`mapWait must be 'map' or 'paced', got ${kindOf(mapWait)}`);
  }
}

/** loadModel's options other than the numbers it checks itself (the model source is openModel's to check). */
export function checkLoadOptions(o: unknown): void {
  const options = checkOptions('loadModel() options', o as object | undefined, true) as Record<string, unknown>;
  if (options.tokenizer !== undefined) checkByteSource('tokenizer', options.tokenizer);
  checkFunction('onProgress', options.onProgress);
  checkSignal('signal', options.signal);
  checkString('hubUrl', options.hubUrl);
  checkString('revision', options.revision);
  if (options.cache !== undefined && options.cache !== false && typeof options.cache !== 'string') {
    throw new InvalidArgumentError(`cache must be the name of a Cache API store or false, got ${kindOf(options.cache)}`);
  }
  const binding = options.maxBindingBytes;
  if (binding !== undefined && (typeof binding !== 'number' || !Number.isSafeInteger(binding) || binding < 16)) {
    throw new InvalidArgumentError(`maxBindingBytes must be an integer of at least 16, got ${kindOf(binding)}`);
  }
}

/** generate's options other than the decoders' numbers (checkGenerateOptions checks those). */
export function checkGenerateCall<T extends object>(o: T | undefined): T {
  const options = checkOptions('generate() options', o) as Record<string, unknown>;
  checkBoolean('chat', options.chat);
  checkBoolean('trialsInSequence', options.trialsInSequence);
  checkSignal('signal', options.signal);
  return options as T;
}
