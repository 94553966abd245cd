// The stories15M variants the Node benchmarks (bench:profile, bench:quality, bench:gpu) load, as
// loadModel() options: the bundled llama2.c f32 checkpoint, the GGUF fixtures in their own types
// (Q8_0, Q4_0), and the bundled checkpoint with loadModel's `weights` GPU format option.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LoadModelOptions } from '../src/engine.ts';
import { bundledModel, modelFromPath } from '../src/node/index.ts';
import { PROJECT_ROOT } from '../test/support/browser.ts';

export const GGUF_FILES = {
  Q8_0: join(PROJECT_ROOT, 'test/fixtures/stories15M-gguf/stories15M-Q8_0.gguf'),
  Q4_0: join(PROJECT_ROOT, 'test/fixtures/stories15M-gguf/stories15M-Q4_0.gguf'),
} as const;

export interface ModelVariant {
  /** 'f32', 'gguf Q8_0', 'gguf Q4_0', "weights 'q8'", … */
  label: string;
  options: () => Promise<LoadModelOptions>;
}

/**
 * `spec` is a comma-separated list of: f32 (the bundled llama2.c checkpoint), gguf-q8, gguf-q4
 * (the GGUF fixtures in their own types), q8, q4, f16 (the bundled checkpoint with
 * loadModel({ weights }): the engine quantises at load; fails where the option does not exist).
 */
export function modelVariants(spec: string): ModelVariant[] {
  return spec.split(',').map((s) => s.trim()).filter(Boolean).map((name): ModelVariant => {
    if (name === 'gguf-q8' || name === 'gguf-q4') {
      const type = name === 'gguf-q8' ? 'Q8_0' : 'Q4_0';
      return { label: `gguf ${type}`, options: async () => ({ model: await modelFromPath(GGUF_FILES[type]) }) };
    }
    if (name !== 'f32' && name !== 'q8' && name !== 'q4' && name !== 'f16') {
      throw new Error(`unknown model variant ${name}: expected f32, gguf-q8, gguf-q4, q8, q4, f16`);
    }
    return {
      label: name === 'f32' ? 'f32' : `weights '${name}'`,
      options: async () => ({
        model: await modelFromPath(bundledModel.model),
        tokenizer: new Uint8Array(readFileSync(bundledModel.tokenizer)),
        // loadModel's GPU format option; spread from a loose object so this file compiles before it lands.
        ...(name === 'f32' ? {} : ({ weights: name } as Record<string, unknown>)),
      }),
    };
  });
}
