// The bench matrix: decoder × batch size × prompt set × weight format (× the peers of a greedy
// cell: llama2.c, wllama, transformers.js on the same weights), in named sizes. One cell
// = one Playwright test (bench/matrix/cells.spec.ts) in a fresh browser context. Choose the size
// with BENCH_MATRIX=smallest|default|full (default: `default`).
import type { GenerateOptions } from '../../src/index.ts';

export interface DecoderSpec {
  /** Unique label, e.g. 'greedy', 'sample T=1', 'ead τ=1'. */
  label: string;
  options: Omit<GenerateOptions, 'maxTokens' | 'signal' | 'seed'>;
  /** Run llama2.c (WASM) alternating in the same cell: only greedy has a peer with the same output. */
  peer?: boolean;
  /** EAD needs the small model loaded too. */
  smallModel?: boolean;
  /** B > 1 runs as batched KV rows (bench/peers/batched.ts); otherwise why B > 1 does not apply. */
  batch: true | string;
}

export interface PromptSet {
  name: string;
  prompts: string[];
}

/** Systems a greedy cell runs alternating with forkwise (bench/matrix/peers.ts). */
export type PeerName = 'llama2.c' | 'wllama' | 'transformers.js wasm' | 'transformers.js webgpu';

/**
 * A weight format of the matrix: what forkwise loads (bench/peers/forkwise.ts) and which peers
 * run the same weights. q8 and q4 are the GGUF fixtures in their own types (Q8_0, Q4_0: the file
 * wllama reads, so both run the same bytes); f16 is loadModel's `weights: 'f16'` of the f32 model.
 */
export interface WeightSpec {
  name: string;
  forkwise: { model?: string; weights?: string };
  peers: PeerName[];
}

export const WEIGHTS: Record<string, WeightSpec> = {
  f32: { name: 'f32', forkwise: {}, peers: ['llama2.c', 'transformers.js wasm', 'transformers.js webgpu'] },
  f16: { name: 'f16', forkwise: { weights: 'f16' }, peers: [] },
  q8: { name: 'q8', forkwise: { model: '/test/fixtures/stories15M-gguf/stories15M-Q8_0.gguf' }, peers: ['wllama'] },
  q4: { name: 'q4', forkwise: { model: '/test/fixtures/stories15M-gguf/stories15M-Q4_0.gguf' }, peers: ['wllama'] },
};

export interface MatrixDef {
  name: string;
  decoders: DecoderSpec[];
  batchSizes: number[];
  promptSets: PromptSet[];
  /** Keys of WEIGHTS. Formats other than f32 apply to greedy cells only (where the peers run). */
  weightFormats: string[];
  /** Peers this size runs (of each format's); default all. */
  peers?: PeerName[];
  /** Tokens per run for peers slower than the rest (transformers.js on WebGPU: ≈ 0.7 tok/s on SwiftShader). */
  peerMaxTokens?: Partial<Record<PeerName, number>>;
  /** Tokens generated per run (per row for B > 1). */
  maxTokens: number;
  warmup: number;
  runs: number;
  seed: number;
}

export interface Cell {
  /** Stable across runs: how a cell is matched with the previous result file. */
  id: string;
  decoder: DecoderSpec;
  batch: number;
  promptSet: PromptSet;
  weights: string;
  /** Why the cell does not apply (it is reported as skipped, with this reason). */
  notApplicable?: string;
}

const GREEDY: DecoderSpec = { label: 'greedy', options: { decoder: 'greedy' }, peer: true, batch: 'greedy rows would all be identical' };
const SINGLE = (what: string) => `${what} decodes one sequence (batched rows are not a public option for it)`;
const DECODERS: Record<string, DecoderSpec> = {
  greedy: GREEDY,
  sample: { label: 'sample T=1', options: { decoder: 'sample', temperature: 1 }, batch: true },
  cntp: { label: 'cntp', options: { decoder: 'cntp', temperature: 1, topP: 0.9 }, batch: 'cntp uses up to 10 KV rows itself for its trials' },
  ead: { label: 'ead τ=1', options: { decoder: 'ead', tau: 1 }, smallModel: true, batch: SINGLE('ead') },
  srgen: { label: 'srgen', options: { decoder: 'srgen' }, batch: SINGLE('srgen') },
};

const PROMPTS: Record<string, PromptSet> = {
  short: { name: 'short', prompts: ['Once upon a time'] },
  // No punctuation: the llama2.c peer's July-2023 tokenizer encodes some characters ('.', …) as
  // byte tokens where forkwise (and current run.c) use the merged piece (scripts/setup-model.mjs),
  // so greedy continuations would differ for a reason that is not the model. The cell checks the
  // prompt token ids of both and fails on a difference.
  long: {
    name: 'long',
    prompts: ['Lily and Ben were best friends and one sunny day they went to the park with their mom and saw a big red ball under a tree'],
  },
  mixed: { name: 'mixed', prompts: ['The little dog', 'Tom wanted to build a tall tower of blocks but'] },
};

export const MATRICES: Record<string, MatrixDef> = {
  /** The npm test's matrix: one greedy cell against llama2.c, a few tokens. */
  smallest: {
    name: 'smallest', decoders: [GREEDY], batchSizes: [1], promptSets: [PROMPTS.short], weightFormats: ['f32'], peers: ['llama2.c'],
    maxTokens: 12, warmup: 1, runs: 2, seed: 1,
  },
  /** `npm run bench`: every decoder, B up to 8, two prompt sets; ≈ 10 min on 2 shared cores. */
  default: {
    name: 'default', decoders: Object.values(DECODERS), batchSizes: [1, 4, 8], promptSets: [PROMPTS.short, PROMPTS.long],
    weightFormats: ['f32', 'f16', 'q8', 'q4'], maxTokens: 48, warmup: 1, runs: 3, seed: 1,
    peerMaxTokens: { 'transformers.js webgpu': 6 },
  },
  full: {
    name: 'full',
    decoders: [
      ...Object.values(DECODERS),
      { label: 'sample T=0.8 top-p 0.9', options: { decoder: 'sample', temperature: 0.8, topP: 0.9 }, batch: 'GPU sampling has no top-p' },
      { label: 'ead τ=2', options: { decoder: 'ead', tau: 2 }, smallModel: true, batch: SINGLE('ead') },
    ],
    batchSizes: [1, 2, 4, 8, 10], promptSets: Object.values(PROMPTS), weightFormats: ['f32', 'f16', 'q8', 'q4'],
    maxTokens: 128, warmup: 1, runs: 5, seed: 1,
    peerMaxTokens: { 'transformers.js webgpu': 8 },
  },
};

export function matrixFromEnv(env = process.env): MatrixDef {
  const name = env.BENCH_MATRIX ?? 'default';
  const def = MATRICES[name];
  if (!def) throw new Error(`BENCH_MATRIX=${name}: expected one of ${Object.keys(MATRICES).join(', ')}`);
  return def;
}

/** Every combination, in a fixed order; the ones that do not apply carry the reason. */
export function cells(def: MatrixDef): Cell[] {
  const out: Cell[] = [];
  for (const weights of def.weightFormats) {
    for (const promptSet of def.promptSets) {
      for (const decoder of def.decoders) {
        for (const batch of def.batchSizes) {
          const notApplicable = batch > 1 && decoder.batch !== true ? decoder.batch
            : weights !== 'f32' && !(decoder.peer && batch === 1) ? 'weight formats other than f32 are compared in greedy B=1 cells, against the peers on the same weights'
              : undefined;
          const id = `${decoder.label} | B${batch} | ${promptSet.name} | ${weights}`;
          out.push({ id, decoder, batch, promptSet, weights, ...(notApplicable ? { notApplicable } : {}) });
        }
      }
    }
  }
  return out;
}
