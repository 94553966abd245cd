// The readback pacer (gpu/readback.ts): with synthetic maps that resolve a fixed time after the
// read was enqueued, its sleep grows from 0 towards that time and never passes it, and reads of
// another kind keep their own.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MapPacer } from '../../src/gpu/readback.ts';

/** A map that resolves `ms` after `since` (at once if that time has passed). */
const mapAt = (since: number, ms: number) => () => new Promise<void>((done) => setTimeout(done, Math.max(0, since + ms - performance.now())));

test('the sleep settles below the reads\' time, per kind', async () => {
  const pacer = new MapPacer();
  assert.equal(pacer.sleepFor('slow'), 0);
  for (let i = 0; i < 12; i++) {
    const since = performance.now();
    await pacer.map('slow', since, mapAt(since, 40));
    assert.ok(pacer.sleepFor('slow') < 40 + 1.5, `sleep ${pacer.sleepFor('slow')} ms after read ${i}`);
  }
  assert.ok(pacer.sleepFor('slow') > 10, `after 12 reads of 40 ms the pacer sleeps ${pacer.sleepFor('slow')} ms`);
  assert.equal(pacer.sleepFor('fast'), 0);
  // A kind whose reads become instant shrinks its sleep.
  const before = pacer.sleepFor('slow');
  for (let i = 0; i < 8; i++) {
    const since = performance.now();
    await pacer.map('slow', since, async () => {});
  }
  assert.ok(pacer.sleepFor('slow') < before * 0.5, `sleep ${pacer.sleepFor('slow')} ms after instant reads (was ${before})`);
});
