// The model fixtures of test/fixtures and their goldens, for tests other than
// test/model/fixtures.test.ts (importing a test file would run its tests too). Keep MODEL_FIXTURES
// equal to the list there.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');

/** Folder or file, and its golden file, relative to test/fixtures. */
export const MODEL_FIXTURES = [
  { name: 'stories15M-hf-bf16', model: 'stories15M-hf-bf16', golden: 'stories15M-hf-bf16/golden.json', dtype: 'BF16' },
  { name: 'tiny-llama3', model: 'tiny-llama3', golden: 'tiny-llama3/golden.json', dtype: 'BF16' },
  { name: 'tiny-qwen2', model: 'tiny-qwen2', golden: 'tiny-qwen2/golden.json', dtype: 'F16' },
  { name: 'tiny-qwen3', model: 'tiny-qwen3', golden: 'tiny-qwen3/golden.json', dtype: 'BF16' },
  { name: 'stories15M Q8_0', model: 'stories15M-gguf/stories15M-Q8_0.gguf', golden: 'stories15M-gguf/golden-Q8_0.json', dtype: 'Q8_0' },
  { name: 'stories15M Q4_0', model: 'stories15M-gguf/stories15M-Q4_0.gguf', golden: 'stories15M-gguf/golden-Q4_0.json', dtype: 'Q4_0' },
  { name: 'tiny-kquant Q4_K_M', model: 'tiny-kquant/tiny-kquant-Q4_K_M.gguf', golden: 'tiny-kquant/golden.json', dtype: 'Q4_K' },
  { name: 'tiny-llama3 F16 GGUF', model: 'tiny-llama3-gguf/tiny-llama3-F16.gguf', golden: 'tiny-llama3-gguf/golden-F16.json', dtype: 'F16' },
];

export interface FixtureGolden {
  prompt: string;
  tokens: number[];
  prompt_token_count: number;
  per_position: { pos: number; input_token: number; argmax: number; lse: number; entropy_nats: number; top2_gap: number }[];
}

export function fixtureGoldens(file: string): FixtureGolden[] {
  return JSON.parse(readFileSync(join(FIXTURES, file), 'utf8')).goldens;
}

export const fixturePath = (p: string) => join(FIXTURES, p);

/** |Δ| bound for lse and entropy (nats) against the float64 reference (see fixtures.test.ts). */
export const statBound = (lse: number) => 1e-5 * Math.max(20, Math.abs(lse));
