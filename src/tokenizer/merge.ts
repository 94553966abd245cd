// llama2.c's merge loop: repeatedly replace the adjacent pair whose concatenation is a vocabulary
// piece with the highest score (the leftmost pair on ties, since run.c compares with a strict `>`
// scanning left to right) until no pair is in the vocabulary. run.c rescans every pair per merge,
// O(n^2); a max-heap of candidate pairs with lazy invalidation picks the same pair each time.

export interface MergeVocab {
  /** Each piece's bytes as a latin1 string, so that concatenation is byte concatenation. */
  readonly keys: readonly string[];
  readonly scores: Float32Array;
  /** The id llama2.c's str_lookup returns for a byte string, if any. */
  lookup(key: string): number | undefined;
}

/** run.c starts best_score at -1e10 (exact in float32) and requires a strictly greater score. */
const MIN_SCORE = -1e10;
const NONE = -1;

interface Candidate {
  score: number;
  left: number; // node index; nodes keep their original order, so a smaller index is further left
  right: number;
  leftStamp: number;
  rightStamp: number;
  id: number;
}

export function mergePairs(ids: readonly number[], vocab: MergeVocab): number[] {
  const n = ids.length;
  if (n < 2) return ids.slice();
  const tok = Int32Array.from(ids);
  const next = Int32Array.from({ length: n }, (_, i) => (i + 1 < n ? i + 1 : NONE));
  const prev = Int32Array.from({ length: n }, (_, i) => i - 1);
  const stamp = new Uint32Array(n); // bumped whenever a node's token changes or it is merged away
  const heap = new CandidateHeap();
  const consider = (left: number) => {
    const right = next[left];
    if (right === NONE) return;
    const id = vocab.lookup(vocab.keys[tok[left]] + vocab.keys[tok[right]]);
    if (id === undefined || !(vocab.scores[id] > MIN_SCORE)) return;
    heap.push({ score: vocab.scores[id], left, right, leftStamp: stamp[left], rightStamp: stamp[right], id });
  };
  for (let i = 0; i + 1 < n; i++) consider(i);
  for (let c = heap.pop(); c !== undefined; c = heap.pop()) {
    const { left, right } = c;
    if (next[left] !== right || stamp[left] !== c.leftStamp || stamp[right] !== c.rightStamp) continue;
    tok[left] = c.id;
    stamp[left]++;
    stamp[right]++;
    next[left] = next[right];
    if (next[right] !== NONE) prev[next[right]] = left;
    if (prev[left] !== NONE) consider(prev[left]);
    consider(left);
  }
  const out: number[] = [];
  for (let i = 0; i !== NONE; i = next[i]) out.push(tok[i]);
  return out;
}

/** Binary max-heap ordered by score, then by leftmost position. */
class CandidateHeap {
  private readonly items: Candidate[] = [];

  push(c: Candidate): void {
    const a = this.items;
    a.push(c);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(a[i], a[parent])) break;
      [a[i], a[parent]] = [a[parent], a[i]];
      i = parent;
    }
  }

  pop(): Candidate | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length === 0 || last === undefined) return top;
    a[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let best = i;
      if (l < a.length && before(a[l], a[best])) best = l;
      if (r < a.length && before(a[r], a[best])) best = r;
      if (best === i) return top;
      [a[i], a[best]] = [a[best], a[i]];
      i = best;
    }
  }
}

function before(a: Candidate, b: Candidate): boolean {
  return a.score > b.score || (a.score === b.score && a.left < b.left);
}
