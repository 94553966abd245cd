// The CLI end to end, as a user runs it: `forkwise generate … --json` on the bundled model.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { goldens } from '../support/engine.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'forkwise.mjs');
const cli = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 300_000 });

test('generate --json prints the golden greedy tokens with per-step statistics', () => {
  const golden = goldens().find((g) => g.prompt === 'Once upon a time')!;
  const r = cli('generate', '--prompt', 'Once upon a time', '--max-tokens', '12', '--decoder', 'greedy', '--json');
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(Object.keys(out).sort(), ['events', 'finish', 'steps', 'summary', 'text', 'timing', 'tokens']);
  assert.deepEqual(out.events, []);
  assert.deepEqual(out.tokens, golden.tokens.slice(0, golden.prompt_token_count + 12));
  assert.equal(out.finish, 'max_tokens');
  assert.equal(out.steps.length, 12);
  out.steps.forEach((s: Record<string, number>, i: number) => {
    const pos = golden.prompt_token_count - 1 + i;
    assert.deepEqual(Object.keys(s).sort(), ['entropy', 'input_token', 'lse', 'next_token', 'pos', 'varentropy']);
    assert.equal(s.pos, pos);
    assert.equal(s.input_token, golden.tokens[pos]);
    assert.equal(s.next_token, golden.tokens[pos + 1]);
    assert.ok(Math.abs(s.lse - golden.per_position[pos].lse) < 1e-3);
    assert.ok(Math.abs(s.entropy - golden.per_position[pos].entropy_nats) < 1e-3);
    assert.ok(s.varentropy >= 0);
  });
  assert.ok(out.text.startsWith('Once upon a time,'));
  assert.ok(out.timing.decodeTokPerSec > 0);
});

test('bad options fail fast with exit code 2 and a clear message', () => {
  for (const [args, pattern] of [
    [['--temperature=-1', '--decoder', 'sample'], /temperature must be a finite number in \[0, 100\], got -1/],
    [['--max-tokens', 'NaN'], /--max-tokens must be a number/],
    [['--max-tokens', '0'], /maxTokens must be an integer/],
    [['--decoder', 'beam'], /unknown decoder "beam"/],
    [['--model', '/nonexistent/model.bin'], /could not read \/nonexistent\/model.bin/],
  ] as const) {
    const r = cli('generate', ...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
  }
});
