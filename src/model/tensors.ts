// What a format reader hands the loader: a ModelConfig, named tensors that are read on demand
// (tensor by tensor, by byte range, so a multi-GB file never sits in JS memory twice), and what
// the tokenizer is built from.
import type { ModelConfig } from './config.ts';

/** Random access to one file's bytes (a URL by HTTP ranges, a Blob, bytes in memory, a path in Node). */
export interface ByteReader {
  /** File name for messages (e.g. 'model-00001-of-00002.safetensors'). */
  readonly name: string;
  readonly size: number;
  /** Exactly `length` bytes at `offset`; rejects with ModelFormatError past the end. */
  read(offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array>;
}

/** Element types of stored tensors; quantised types are GGUF's block formats. */
export type TensorType = 'F32' | 'F16' | 'BF16' | 'Q8_0' | 'Q4_0' | 'Q4_1' | 'Q4_K' | 'Q5_K' | 'Q6_K';

export interface TensorInfo {
  /** Canonical name (config.ts TENSOR). */
  name: string;
  type: TensorType;
  /** Row-major, outermost first ([out][in] for a matrix). */
  shape: number[];
  file: ByteReader;
  /** Absolute byte offset of the data in `file`. */
  offset: number;
  byteLength: number;
}

/** Where the tokenizer comes from, by format. */
export type TokenizerSource =
  | { kind: 'llama2c'; bytes: Uint8Array }
  /** tokenizer.json and tokenizer_config.json, parsed. */
  | { kind: 'hf'; tokenizer: unknown; config: Record<string, unknown> }
  /** GGUF metadata: every `tokenizer.*` key. */
  | { kind: 'gguf'; metadata: Record<string, unknown> };

export type ModelFormat = 'llama2c' | 'hf' | 'gguf';

export interface ModelFiles {
  format: ModelFormat;
  config: ModelConfig;
  /** By canonical name; every name of expectedTensors(config) is present with that shape. */
  tensors: Map<string, TensorInfo>;
  /** null when the format needs a separate tokenizer file (llama2.c without `tokenizer`). */
  tokenizer: TokenizerSource | null;
  /** The file's dominant weight type (e.g. 'BF16', 'Q4_K'), for ModelInfo. */
  dtype: TensorType;
}
