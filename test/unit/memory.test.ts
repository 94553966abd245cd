// SirLLM's and the sliding window's kept sets (src/runtime/memory.ts keepPositions) on
// hand-computed cases, and the memory options' validation.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { keepPositions, memorySizes, surprisal } from '../../src/runtime/memory.ts';

// C 10, S 2, R 2 → E 6.
const sirllm = memorySizes({ policy: 'sirllm', start: 2, recent: 2, decay: 0.5 }, 10);
const window = memorySizes({ policy: 'window', start: 2 }, 10);
const SCORES = [5, 1, 9, 2, 8, 0, 7, 3, 6, 4];

describe('keepPositions', () => {
  test('nothing is evicted while the chunk fits', () => {
    assert.deepEqual(keepPositions(sirllm, SCORES, 7, 3), [0, 1, 2, 3, 4, 5, 6]);
  });

  test('SirLLM: top (E − n) by score, the sinks, then the most recent up to C − n', () => {
    // n 3: target 7; top 3 by score are 2 (9), 4 (8), 6 (7); sinks 0, 1; recent 9, 8.
    assert.deepEqual(keepPositions(sirllm, SCORES, 10, 3), [0, 1, 2, 4, 6, 8, 9]);
    // n 1: target 9; top 5 are 2, 4, 6, 8, 0; the sinks add 1; from 9 down the new ones are 9, 7, 5.
    assert.deepEqual(keepPositions(sirllm, SCORES, 10, 1), [0, 1, 2, 4, 5, 6, 7, 8, 9]);
    // ties go to the lower position
    assert.deepEqual(keepPositions(sirllm, [0, 0, 1, 1, 1, 0, 0, 0, 0, 0], 10, 4), [0, 1, 2, 3, 8, 9]);
  });

  test('the window keeps the sinks and the most recent positions', () => {
    assert.deepEqual(keepPositions(window, SCORES, 10, 3), [0, 1, 5, 6, 7, 8, 9]);
  });

  test('a chunk as large as the entropy budget leaves only sinks and recent positions', () => {
    assert.deepEqual(keepPositions(sirllm, SCORES, 10, 6), [0, 1, 8, 9]);
  });
});

describe('memory options', () => {
  test('defaults for a context of 256: S 4, R 64, E 188, η 0.7', () => {
    const s = memorySizes({ policy: 'sirllm' }, 256);
    assert.deepEqual(s, { policy: 'sirllm', capacity: 256, start: 4, recent: 64, entropyKept: 188, decay: 0.7 });
    assert.equal(memorySizes(undefined, 256).policy, 'none');
  });

  test('bad options are typed errors', () => {
    for (const bad of [{ policy: 'lru' }, { policy: 'sirllm', start: -1 }, { policy: 'sirllm', decay: 2 }, { policy: 'sirllm', recent: 300 }, { polcy: 'sirllm' }, 'sirllm']) {
      assert.throws(() => memorySizes(bad as never, 256), { code: 'invalid-argument' }, JSON.stringify(bad));
    }
  });
});

describe('surprisal', () => {
  const stats = { lse: 3, entropy: 1, varentropy: 1, maxLogit: 2.5, nextLogit: 0.5, argmax: 7, sampled: 9, topK: [{ id: 7, logit: 2.5 }, { id: 4, logit: 1 }] };
  test('−ln p from the sampled id\'s logit, a top-K entry, or the K-th logit as a bound', () => {
    assert.equal(surprisal(stats, 9, 1), 3 - 0.5);
    assert.equal(surprisal(stats, 4, 0.5), 3 - 2);
    assert.equal(surprisal(stats, 123, 1), 3 - 1);
  });
});
