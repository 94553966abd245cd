// The two decoders of the engine core: greedy (argmax, as llama2.c) and temperature sampling,
// drawn on the GPU by Gumbel-max with a counter-based RNG keyed by (seed, row, position), so a
// (seed, prompt) pair reproduces the same text in Node and in the browser.
import { checkInteger, checkNumber } from '../errors.ts';
import type { SamplingParams } from '../runtime/session.ts';
import type { StepStats } from '../runtime/stats.ts';

export interface TokenChooser {
  readonly name: string;
  /** What the GPU should compute alongside the statistics. */
  readonly sampling: SamplingParams;
  choose(stats: StepStats): number;
}

export function greedy(): TokenChooser {
  return { name: 'greedy', sampling: { temperature: 0, seed: 0 }, choose: (s) => s.argmax };
}

export const MAX_TEMPERATURE = 100;

export function temperatureSampler(temperature: number, seed: number): TokenChooser {
  checkNumber('temperature', temperature, 0, MAX_TEMPERATURE);
  checkInteger('seed', seed, 0, 0xffffffff);
  if (temperature === 0) return greedy();
  return { name: 'sample', sampling: { temperature, seed }, choose: (s) => s.sampled };
}
