// A DecodeRuntime without a GPU, for the decoders' unit tests: a tiny deterministic "model" whose
// next-token logits are a function of the row's tokens, StepStats computed from them in float64
// at the asked statistics temperature, and a record of every call (feeds, steps, forks, full rows,
// statistics taken again, reflections) so a test can check what a decoder asked for.
import { uniform01 } from '../../src/decode/rng.ts';
import type { Decoder, DecoderEventBase, Emission } from '../../src/decode/decoder.ts';
import type { DecodeRuntime, Reflection, ReflectOptions } from '../../src/runtime/decode-runtime.ts';
import type { SamplingParams } from '../../src/runtime/session.ts';
import type { StepStats } from '../../src/runtime/stats.ts';
import { mulberry32 } from './random.ts';

export interface FakeModel {
  vocabSize: number;
  /** Candidates per StepStats record (the GPU's top-K). */
  candidates: number;
  /** Spread of the logits: small → flat (high entropy), large → peaked. */
  scale: number;
  /** Makes two models with the same vocabulary differ. */
  salt: number;
}

/** Next-token logits after `tokens` (a hash of the last two tokens and the length seeds them). */
export function fakeLogits(m: FakeModel, tokens: readonly number[]): number[] {
  const a = tokens.at(-1) ?? 0;
  const b = tokens.at(-2) ?? 0;
  const rng = mulberry32((Math.imul(a + 1, 2654435761) ^ Math.imul(b + 7, 40503) ^ Math.imul(tokens.length, 97) ^ m.salt) >>> 0);
  return Array.from({ length: m.vocabSize }, () => {
    const g = Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
    return m.scale * g;
  });
}

/** lse and entropy of softmax(z/t) in float64. */
export function lseEntropy(z: readonly number[], t: number): { lse: number; entropy: number } {
  const s = z.map((v) => v / t);
  const m = Math.max(...s);
  const lse = m + Math.log(s.reduce((acc, v) => acc + Math.exp(v - m), 0));
  return { lse, entropy: -s.reduce((acc, v) => acc + Math.exp(v - lse) * (v - lse), 0) };
}

/** A StepStats record of `z` with `k` candidates; `sampled` is a Gumbel-max draw keyed as the GPU's. */
export function fakeStats(z: readonly number[], k: number, sampling: SamplingParams, row: number, pos: number): StepStats {
  const t = sampling.statsTemperature ?? 1;
  const { lse, entropy } = lseEntropy(z, t);
  const order = z.map((_, i) => i).sort((x, y) => z[y] - z[x] || x - y);
  let sampled = order[0];
  if (sampling.temperature > 0) {
    let best = -Infinity;
    z.forEach((v, id) => {
      const g = v / sampling.temperature - Math.log(-Math.log(uniform01(sampling.seed, row, pos, sampling.counter ?? 0, id)));
      if (g > best) {
        best = g;
        sampled = id;
      }
    });
  }
  return {
    lse, entropy, varentropy: 0, maxLogit: z[order[0]], argmax: order[0], sampled,
    topK: order.slice(0, k).map((id) => ({ id, logit: z[id] })),
  };
}

export class FakeRuntime implements DecodeRuntime {
  readonly rowsTokens: number[][];
  readonly calls = { feeds: [] as number[][], steps: 0, forks: [] as number[][], commits: [] as number[], fullStats: 0, statsUnder: [] as SamplingParams[], reflects: [] as ReflectOptions[] };
  /** Statistics temperature of every step and feed, in order. */
  readonly statsTemperatures: number[] = [];
  private lastRows = new Set<number>();
  private reflected = false;

  constructor(readonly model: FakeModel, readonly rows = 10, readonly seqLen = 256) {
    this.rowsTokens = Array.from({ length: rows }, () => []);
  }

  get vocabSize() { return this.model.vocabSize; }
  length(row: number) { return this.rowsTokens[row].length; }
  drawRow(row: number) { return row; }

  /** The logits a row's last token produced (after a reflection: those of h_T + δ). */
  logitsOf(row: number): number[] {
    const z = fakeLogits(this.model, this.rowsTokens[row]);
    return row === 0 && this.reflected ? z.map((v) => 2 * v) : z;
  }

  async step(tokens: readonly { id: number; row: number }[], sampling: SamplingParams): Promise<StepStats[]> {
    this.calls.steps++;
    this.statsTemperatures.push(sampling.statsTemperature ?? 1);
    this.reflected = false;
    this.lastRows = new Set(tokens.map((t) => t.row));
    return tokens.map((t) => {
      this.rowsTokens[t.row].push(t.id);
      const pos = this.rowsTokens[t.row].length - 1;
      return fakeStats(this.logitsOf(t.row), this.model.candidates, sampling, t.row, pos);
    });
  }

  async feed(ids: readonly number[], sampling: SamplingParams): Promise<StepStats> {
    this.calls.feeds.push([...ids]);
    this.statsTemperatures.push(sampling.statsTemperature ?? 1);
    this.reflected = false;
    this.lastRows = new Set([0]);
    this.rowsTokens[0].push(...ids);
    return fakeStats(this.logitsOf(0), this.model.candidates, sampling, 0, this.rowsTokens[0].length - 1);
  }

  fork(src: number, dsts: readonly number[]) {
    this.calls.forks.push([...dsts]);
    for (const d of dsts) this.rowsTokens[d] = [...this.rowsTokens[src]];
  }

  rollback(row: number, length: number) { this.rowsTokens[row].length = length; }

  commit(row: number) {
    this.calls.commits.push(row);
    this.rowsTokens[0] = [...this.rowsTokens[row]];
  }

  async fullStats(row: number, temperature: number): Promise<StepStats> {
    if (!this.lastRows.has(row)) throw new Error(`fake runtime: row ${row} was not part of the last step`);
    this.calls.fullStats++;
    return fakeStats(this.logitsOf(row), this.model.vocabSize, { temperature: 0, seed: 0, statsTemperature: temperature }, row, 0);
  }

  async statsUnder(row: number, sampling: SamplingParams): Promise<StepStats> {
    if (!this.lastRows.has(row)) throw new Error(`fake runtime: row ${row} was not part of the last step`);
    this.calls.statsUnder.push(sampling);
    const pos = this.rowsTokens[row].length - 1;
    return fakeStats(this.logitsOf(row), this.model.candidates, sampling, row, pos);
  }

  async reflect(o: ReflectOptions): Promise<Reflection> {
    this.calls.reflects.push(o);
    this.reflected = true;
    const losses = Array.from({ length: o.steps + 1 }, (_, i) => 2 - 0.1 * i);
    const pos = this.rowsTokens[0].length - 1;
    return { losses, stats: fakeStats(this.logitsOf(0), this.model.candidates, o.sampling, 0, pos) };
  }
}

/** The engine's decode loop, without the engine: start (or feed) the prompt, then next() until maxTokens. */
export async function drive<E extends DecoderEventBase>(
  decoder: Decoder<E, object>, runtime: DecodeRuntime, prompt: readonly number[], maxTokens: number,
): Promise<{ tokens: number[]; emissions: Emission<E>[] }> {
  const tokens = [...prompt];
  let stats = decoder.start ? await decoder.start(runtime, tokens) : await runtime.feed(tokens, decoder.sampling(tokens.length - 1));
  const emissions: Emission<E>[] = [];
  let produced = 0;
  for (;;) {
    const pos = tokens.length - 1;
    const budget = Math.min(maxTokens - produced, runtime.seqLen - pos);
    const e = await decoder.next({ stats, pos, tokens, budget, runtime });
    emissions.push(e);
    const kept = e.tokens.slice(0, budget);
    tokens.push(...kept);
    produced += kept.length;
    if (produced >= maxTokens) return { tokens, emissions };
    if (e.next) {
      stats = e.next;
    } else {
      if (runtime.length(0) > tokens.length - 1) runtime.rollback(0, tokens.length - 1);
      stats = await runtime.feed(tokens.slice(runtime.length(0)), decoder.sampling(tokens.length - 1));
    }
  }
}
