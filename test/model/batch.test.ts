// Batched rows: B sequences advance in one step (one weight read for all rows), each on its own KV
// row; rows fork by GPU copy. Every batched result must equal the same row run alone.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { InvalidArgumentError } from '../../src/errors.ts';
import type { Session, TokenInput } from '../../src/runtime/session.ts';
import type { StepStats } from '../../src/runtime/stats.ts';
import { goldens, modelSession } from '../support/engine.ts';

/**
 * Batched and single-row steps sum every output in the same order (GEMM and GEMV both run k
 * serially per output), so they should agree to float32 rounding of the few operations whose
 * association differs (none expected): 1e-5 absolute on lse/entropy is a tight but safe bound.
 */
const TOL = 1e-5;

function assertSameStats(a: StepStats, b: StepStats, what: string) {
  assert.equal(a.argmax, b.argmax, `${what}: argmax`);
  assert.deepEqual(a.topK.map((c) => c.id), b.topK.map((c) => c.id), `${what}: top-K ids`);
  assert.ok(Math.abs(a.lse - b.lse) < TOL, `${what}: lse ${a.lse} vs ${b.lse}`);
  assert.ok(Math.abs(a.entropy - b.entropy) < TOL, `${what}: entropy ${a.entropy} vs ${b.entropy}`);
}

describe('batched rows and KV fork (stories15M)', () => {
  let session: Session;
  let destroy: () => void;
  let gpuErrors: string[];
  const prompt = goldens().find((g) => g.prompt === 'Once upon a time')!.tokens.slice(0, 5);
  const B = 4;

  before(async () => {
    let ctx;
    ({ session, destroy, ctx } = await modelSession(2 * B));
    gpuErrors = ctx.uncapturedErrors;
  });
  after(() => {
    assert.deepEqual(gpuErrors, [], 'no uncaptured GPU errors');
    destroy();
  });

  /** Runs `tokens` after `prompt` alone on `row`, one token per step; returns each step's stats. */
  async function alone(row: number, tokens: number[]): Promise<StepStats[]> {
    session.kv.rollback(row, 0);
    const out: StepStats[] = [];
    out.push(...(await session.step(prompt.map((id, pos) => ({ id, pos, row })))));
    for (const [i, id] of tokens.entries()) out.push(...(await session.step([{ id, pos: prompt.length + i, row }])));
    return out;
  }

  test('forked rows stepped together equal each row stepped alone', async () => {
    session.reset();
    const [first] = await session.step(prompt.map((id, pos) => ({ id, pos, row: 0 })));
    session.fork(0, [1, 2, 3]);
    assert.deepEqual(session.kv.lengths.slice(0, B), [5, 5, 5, 5]);
    // Each row continues with a different candidate, then greedily for 3 more batched steps.
    const paths: number[][] = first.topK.slice(0, B).map((c) => [c.id]);
    for (let step = 0; step < 4; step++) {
      const tokens: TokenInput[] = paths.map((p, row) => ({ id: p[step], pos: prompt.length + step, row }));
      const stats = await session.step(tokens, B);
      assert.equal(stats.length, B);
      stats.forEach((s, row) => paths[row].push(s.argmax));
    }
    for (let row = 0; row < B; row++) {
      const reference = await alone(B + row, paths[row].slice(0, 4));
      const batched = await alone(B + row, []); // prefill stats only, for the fork point
      assertSameStats(batched[0], first, `row ${row} fork point`);
      assert.deepEqual(reference.slice(1).map((s) => s.argmax), paths[row].slice(1), `row ${row} greedy path`);
    }
  });

  test('batched statistics equal single-row statistics step by step', async () => {
    session.reset();
    const [first] = await session.step(prompt.map((id, pos) => ({ id, pos, row: 0 })));
    session.fork(0, [1, 2, 3]);
    const ids = first.topK.slice(0, B).map((c) => c.id);
    const batched = await session.step(ids.map((id, row) => ({ id, pos: prompt.length, row })), B);
    for (let row = 0; row < B; row++) {
      const [, single] = await alone(B + row, [ids[row]]);
      assertSameStats(batched[row], single, `row ${row}`);
    }
  });

  test('rollback rewinds a row; commit copies a row into row 0', async () => {
    session.reset();
    await session.step(prompt.map((id, pos) => ({ id, pos, row: 1 })));
    const [a] = await session.step([{ id: 263, pos: 5, row: 1 }]); // " a"
    session.kv.rollback(1, 5);
    const [b] = await session.step([{ id: 263, pos: 5, row: 1 }]);
    assertSameStats(a, b, 'after rollback');
    session.commit(1);
    assert.equal(session.kv.lengths[0], 6);
    const [fromRow0] = await session.step([{ id: 2217, pos: 6, row: 0 }]);
    const [fromRow1] = await session.step([{ id: 2217, pos: 6, row: 1 }]);
    assertSameStats(fromRow0, fromRow1, 'committed row');
  });

  test('a row cannot go past the context, and positions must be the row\'s next', async () => {
    session.reset();
    await assert.rejects(session.step([{ id: 1, pos: 1, row: 0 }]), /position 1, expected 0/);
    await assert.rejects(session.step([{ id: 1, pos: 0, row: 99 }]), /does not exist/);
    session.kv.lengths[2] = 256;
    await assert.rejects(session.step([{ id: 1, pos: 256, row: 2 }]), /exceed the context of 256/);
    // A typed error, as everywhere in the public API (it was a RangeError).
    assert.throws(() => session.kv.rollback(2, 300), InvalidArgumentError);
  });
});
