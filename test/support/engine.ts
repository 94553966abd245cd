// One Node engine with the bundled stories15M, shared by the tests of a file, and the golden
// references of the reference C implementation (test/fixtures/reference).
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Engine } from '../../src/engine.ts';
import { bundledModel, createNodeEngine, readLocal } from '../../src/node/index.ts';

export interface GoldenPosition {
  pos: number;
  input_token: number;
  argmax: number;
  lse: number;
  entropy_nats: number;
}

export interface Golden {
  name: string;
  prompt: string;
  tokens: number[];
  prompt_token_count: number;
  stopped_on_bos: boolean;
  per_position: GoldenPosition[];
  text: string;
}

export const REFERENCE_DIR = join(import.meta.dirname, '..', 'fixtures', 'reference');

export function goldens(): Golden[] {
  return readdirSync(REFERENCE_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => ({ name: f, ...JSON.parse(readFileSync(join(REFERENCE_DIR, f), 'utf8')) }));
}

/** A Node engine with the bundled stories15M loaded (at `contextLength`, default its 256). */
export async function loadedEngine(contextLength?: number): Promise<Engine> {
  const engine = await createNodeEngine();
  await engine.loadModel({ model: await readLocal(bundledModel.model), tokenizer: await readLocal(bundledModel.tokenizer), contextLength });
  return engine;
}

/**
 * Tolerance for lse and entropy against the reference (float64 over run.c's float32 logits).
 * Our logits are float32 sums of the same 288 products in the same order as run.c's matmul, but
 * the compilers contract multiply-adds differently and the 6 layers before them round
 * differently, so logits differ by a few float32 ulps of their magnitude (|z| ≲ 30, ulp ≈ 2e-6):
 * observed ≲ 2e-5. lse moves by at most the largest logit error (its gradient is a probability
 * vector); entropy by at most about (|ln p|max + H)·that error. The float32 online reduction of
 * Z, A, B over 32000 terms adds relative error ≲ 32000·2^-24 ≈ 2e-3 in the worst case and
 * ≈ √32000·2^-24 ≈ 1e-5 typically. 1e-3 absolute bounds both with margin while still catching a
 * wrong formula, a missed tile or a wrong temperature (errors ≫ 1e-2).
 */
export const STAT_TOLERANCE = 1e-3;

/**
 * A bare runtime Session with `rows` KV rows (below the Engine API), on stories15M or on the
 * model at `path` (a test fixture: folder or file).
 */
export async function modelSession(rows: number, topK = 8, path?: string, options: { head?: 'split' | 'fused'; maxStepTokens?: number } = {}) {
  const { create } = await import('webgpu');
  const { acquireGpu } = await import('../../src/gpu/device.ts');
  const { BufferPool } = await import('../../src/gpu/buffers.ts');
  const { Kernels } = await import('../../src/gpu/kernels.ts');
  const { readLlama2c } = await import('../../src/model/formats/llama2c.ts');
  const { openModel } = await import('../../src/model/load.ts');
  const { modelFromPath } = await import('../../src/node/index.ts');
  const { bytesReader } = await import('../../src/model/readers.ts');
  const { uploadWeights } = await import('../../src/model/weights.ts');
  const { Session } = await import('../../src/runtime/session.ts');
  const ctx = await acquireGpu({ gpu: create([]), mapWait: 'paced' });
  const model = path
    ? (await openModel(await modelFromPath(path))).files
    : await readLlama2c(bytesReader('stories15M.bin', readFileSync(bundledModel.model)));
  const weights = await uploadWeights(ctx, model, { contextLength: Math.min(model.config.trainedContext, 1024) });
  const session = await Session.create(ctx, new Kernels(ctx), new BufferPool(ctx), weights, { rows, topK, ...options });
  return { ctx, session, destroy: () => { session.dispose(); weights.destroy(); ctx.device.destroy(); } };
}
