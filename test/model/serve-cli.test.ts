// `forkwise serve` as a user runs it: the server comes up on a free port with tiny-qwen3, answers
// /v1/models and a completion, and exits 0 on SIGTERM.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { fixturePath } from '../support/fixtures.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'forkwise.mjs');

test('forkwise serve --model DIR --port 0: serves until SIGTERM', async () => {
  const child = spawn(process.execPath, [BIN, 'serve', '--model', fixturePath('tiny-qwen3'), '--port', '0', '--top-k', '8'], { timeout: 300_000 });
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.setEncoding('utf8').on('data', (s: string) => {
        stderr += s;
        const m = /serving tiny-qwen3 .* at (http:\/\/127\.0\.0\.1:\d+)\/v1/.exec(stderr);
        if (m) resolve(m[1]);
      });
      child.on('close', () => reject(new Error(`serve exited before listening:\n${stderr}`)));
    });
    const models = await (await fetch(`${url}/v1/models`)).json();
    assert.deepEqual(models.data.map((m: { id: string }) => m.id), ['tiny-qwen3']);
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: 'tiny-qwen3', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2, temperature: 0, logprobs: true, top_logprobs: 8 }),
    });
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.usage.completion_tokens, 2);
    assert.equal(body.choices[0].logprobs.content[0].top_logprobs.length, 8);
    const over = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }], logprobs: true, top_logprobs: 9 }),
    });
    assert.equal(over.status, 400);
    assert.match((await over.json()).error.message, /--top-k 9/);
  } finally {
    child.kill('SIGTERM');
  }
  assert.equal(await exited, 0, stderr);
  assert.match(stderr, /POST \/v1\/chat\/completions 200/);
});
