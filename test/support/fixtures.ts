// The model fixtures of test/fixtures and their goldens, shared by the tests that load them
// (test/model/fixtures.test.ts checks every one against its golden).
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

/**
 * |Δ| bound for lse and entropy (nats) against the float64 reference, relative to the logits'
 * scale (taken as max(20, |lse|)). The engine's logits are float32 sums over dim ≤ 288 products
 * after a few float32 layers: relative error ~1e-6 of |z|, so lse and entropy move by ~1e-6·|z|;
 * the float32 online softmax over up to 152k terms adds ~√V·2^-24 ≈ 2e-5 relative. 1e-5 of the
 * scale (2e-4 nats for stories15M, whose |lse| ≈ 20; 3e-3 for tiny-kquant's random weights with
 * |lse| ≈ 330) holds with margin and still catches a wrong RoPE frequency, norm epsilon or bias
 * (errors ≳ 1e-2 of the scale).
 */
export const statBound = (lse: number) => 1e-5 * Math.max(20, Math.abs(lse));
