// Streaming memory for sequences longer than the context (docs/algorithms.md, SirLLM): which of
// row 0's positions to keep when the next chunk would not fit (keepPositions, pure), and RowMemory,
// which tracks what row 0 holds of a conversation, scores its tokens and compacts the KV cache
// (Session.compact) when a chunk would not fit.
import { InvalidArgumentError, checkInteger, checkNumber } from '../errors.ts';
import type { SamplingParams, Session } from './session.ts';
import type { StepStats } from './stats.ts';

export type MemoryPolicy = 'sirllm' | 'window' | 'none';

export const MEMORY_POLICIES: readonly MemoryPolicy[] = ['sirllm', 'window', 'none'];

/**
 * What to do when a generation would overflow the context. 'none' (default): ContextOverflowError
 * for a prompt that does not fit, finish 'context' when the generation fills it. 'window'
 * (StreamingLLM): keep the first `start` positions (attention sinks) and the most recent ones.
 * 'sirllm': keep the sinks, the `recent` most recent positions and the positions whose tokens had
 * the highest decayed self-information −ln p (SirLLM's token entropy), evict the rest.
 */
export interface MemoryOptions {
  policy?: MemoryPolicy;
  /** Attention sinks kept always (SirLLM's start size S); default 4. */
  start?: number;
  /** SirLLM: most recent positions kept besides the scored ones (R); default a quarter of the context. */
  recent?: number;
  /** SirLLM: decay η of every retained score per turn (one generate() call); default 0.7. */
  decay?: number;
}

/** MemoryOptions for a context of C positions: E = C − S − R entropy-kept positions. */
export interface MemorySizes {
  policy: MemoryPolicy;
  capacity: number;
  start: number;
  recent: number;
  entropyKept: number;
  decay: number;
}

/** Validates `o` (errors before work) and fills the defaults for a context of `capacity` positions. */
export function memorySizes(o: MemoryOptions | undefined, capacity: number): MemorySizes {
  if (o !== undefined && (typeof o !== 'object' || o === null || Array.isArray(o))) {
    throw new InvalidArgumentError(`memory must be an object { policy, start, recent, decay }, got ${JSON.stringify(o)}`);
  }
  const m = o ?? {};
  const unknown = Object.keys(m).filter((k) => !['policy', 'start', 'recent', 'decay'].includes(k));
  if (unknown.length) throw new InvalidArgumentError(`memory: unknown option ${unknown.join(', ')}`);
  const policy = m.policy ?? 'none';
  if (!MEMORY_POLICIES.includes(policy)) {
    throw new InvalidArgumentError(`memory.policy must be one of ${MEMORY_POLICIES.join(', ')}, got ${JSON.stringify(policy)}`);
  }
  const start = m.start === undefined ? 4 : checkInteger('memory.start', m.start, 0, capacity - 2);
  const recent = m.recent === undefined ? Math.floor(capacity / 4) : checkInteger('memory.recent', m.recent, 0, capacity - start - 1);
  const decay = m.decay === undefined ? 0.7 : checkNumber('memory.decay', m.decay, 0, 1);
  return { policy, capacity, start, recent, entropyKept: Math.max(0, capacity - start - recent), decay };
}

/**
 * The positions of 0..length−1 to keep before `n` more tokens are forwarded, ascending (SirLLM's
 * step 1): nothing is evicted while length + n ≤ C. Else keep the top (E − n) positions by score
 * (ties to the lower position) and the sinks 0..S−1 — 'window' keeps no scored positions — then
 * add the most recent positions, from length − 1 down, until C − n are kept.
 */
export function keepPositions(s: MemorySizes, scores: readonly number[], length: number, n: number): number[] {
  if (length + n <= s.capacity) return Array.from({ length }, (_, i) => i);
  const target = Math.max(0, s.capacity - n);
  const keep = new Set<number>();
  if (s.policy === 'sirllm') {
    const top = Math.max(0, Math.min(s.entropyKept - n, target));
    const order = Array.from({ length }, (_, i) => i).sort((a, b) => scores[b] - scores[a] || a - b);
    for (const i of order.slice(0, top)) keep.add(i);
  }
  for (let i = 0; i < Math.min(s.start, length); i++) keep.add(i);
  for (let i = length - 1; i >= 0 && keep.size < target; i--) keep.add(i);
  return [...keep].sort((a, b) => a - b);
}

/** One eviction: how many of row 0's positions were kept and how many evicted. */
export interface Eviction {
  /** Logical index (into the conversation's tokens) of the next token to be fed when it happened. */
  at: number;
  kept: number;
  evicted: number;
}

const GREEDY: SamplingParams = { temperature: 0, seed: 0 };

/**
 * Row 0 of a session as a window onto a longer token sequence (a conversation): which logical
 * token each position holds (`held`), each position's score, and how to make room. It lives on
 * the engine's model between generations, so the next turn keeps what the last one kept; a
 * session changed by anything else (score(), another generation without memory) is noticed by
 * valid() and the memory starts over.
 */
export class RowMemory {
  /** The conversation's tokens: every token fed or about to be. */
  tokens: number[] = [];
  /** Logical index of the token at each of row 0's positions (ascending). */
  held: number[] = [];
  /** SirLLM's score of each position: −ln p of its token when it entered, decayed per turn. */
  scores: number[] = [];
  /** Logical index of the next token row 0 will be fed. */
  next = 0;
  /** Scores known for tokens not yet in the cache (the last generated token, teacher-forced ones). */
  private pending = new Map<number, number>();
  readonly evictions: Eviction[] = [];

  constructor(private readonly session: Session, public sizes: MemorySizes) {}

  /** Whether row 0 still holds what this memory says. */
  valid(): boolean {
    const ids = this.session.kv.tokens(0);
    return ids.length === this.held.length && this.held.every((h, i) => this.tokens[h] === ids[i]);
  }

  /**
   * Starts a turn over `prompt` (the whole conversation): keeps the held positions of the tokens
   * it shares with the last turn, decays their scores, and returns the logical index of the first
   * token to feed (never after the last prompt token, whose statistics the turn needs). Without
   * `reuse`, or when row 0 changed behind its back, it starts over.
   */
  begin(prompt: readonly number[], sizes: MemorySizes, reuse = true): number {
    this.sizes = sizes;
    this.evictions.length = 0;
    if (!reuse || !this.valid()) {
      this.session.reset();
      this.tokens = [];
      this.held = [];
      this.scores = [];
      this.next = 0;
      this.pending.clear();
    }
    let common = 0;
    while (common < prompt.length && common < this.tokens.length && prompt[common] === this.tokens[common]) common++;
    const start = Math.min(common, this.next, prompt.length - 1);
    let count = 0;
    while (count < this.held.length && this.held[count] < start) count++;
    this.session.keepPrefix(count);
    this.held.length = count;
    this.scores.length = count;
    if (sizes.policy === 'sirllm') this.scores = this.scores.map((s) => s * sizes.decay);
    for (const k of [...this.pending.keys()]) if (k >= common || k < start) this.pending.delete(k);
    this.tokens = [...prompt];
    this.next = start;
    return start;
  }

  /** Records the score (−ln p) of logical token `index`, for when it enters the cache. */
  score(index: number, value: number): void {
    this.pending.set(index, value);
  }

  /** Follows row 0 after steps fed it (or a decoder rolled it back): `tokens` is the sequence now. */
  sync(tokens: readonly number[]): void {
    this.tokens = [...tokens];
    const length = this.session.kv.lengths[0];
    if (this.held.length > length) {
      this.next -= this.held.length - length;
      this.held.length = length;
      this.scores.length = length;
    }
    while (this.held.length < length) {
      this.held.push(this.next);
      this.scores.push(this.pending.get(this.next) ?? 0);
      this.pending.delete(this.next);
      this.next++;
    }
  }

  /** Compacts row 0, if it must, so that `n` more tokens fit (keepPositions). */
  async makeRoom(n: number): Promise<void> {
    const length = this.session.kv.lengths[0];
    if (this.sizes.policy === 'none' || length + n <= this.sizes.capacity) return;
    const keep = keepPositions(this.sizes, this.scores, length, n);
    await this.session.compact(keep);
    this.held = keep.map((p) => this.held[p]);
    this.scores = keep.map((p) => this.scores[p]);
    this.evictions.push({ at: this.next, kept: keep.length, evicted: length - keep.length });
  }

  /**
   * Feeds `tokens[from..]` to row 0 in pieces that fit, making room before each (teacher-forced
   * with statistics of every position under SirLLM, which scores each token by them), then the
   * last token through `feedLast` (the decode runtime's feed, so that its later fullStats, statsUnder
   * and reflect calls find that token's hidden row); returns its statistics. `reserve`: room to leave
   * for what follows.
   */
  async prefill(tokens: readonly number[], from: number, reserve: number, feedLast: (id: number) => Promise<StepStats>): Promise<StepStats> {
    const last = tokens.length - 1;
    const piece = Math.max(1, Math.floor(this.sizes.capacity / 2));
    for (let i = from; i < last;) {
      const k = Math.min(last - i, piece);
      await this.makeRoom(k + 1 + (i + k === last ? reserve : 0));
      if (this.sizes.policy === 'sirllm') {
        const stats = await this.session.score(0, tokens.slice(i, i + k), GREEDY, tokens[i + k]);
        stats.forEach((s, j) => this.score(i + j + 1, s.lse - (s.nextLogit ?? s.maxLogit)));
      } else {
        const at = this.session.kv.lengths[0];
        await this.session.step(tokens.slice(i, i + k).map((id, j) => ({ id, pos: at + j, row: 0 })), 1);
      }
      this.sync(tokens);
      i += k;
    }
    await this.makeRoom(1 + reserve);
    const stats = await feedLast(tokens[last]);
    this.sync(tokens);
    return stats;
  }
}

/**
 * −ln p of `token` under the statistics it was drawn from (at their temperature): from the
 * record's next-token logit when it is the sampled id, else its top-K entry; a token outside the
 * top-K gets the bound lse − z_K/T (its logit is at most the K-th).
 */
export function surprisal(stats: StepStats, token: number, temperature: number): number {
  const logit = token === stats.sampled && stats.nextLogit !== undefined
    ? stats.nextLogit
    : stats.topK.find((c) => c.id === token)?.logit ?? stats.topK.at(-1)?.logit ?? stats.maxLogit;
  return stats.lse - logit / temperature;
}
