// The CLI end to end, as a user runs it: `forkwise generate … --json` on the bundled model, on an
// HF folder and on a GGUF file (test/model/fixtures.test.ts loads every fixture through the same
// modelFromPath the CLI uses), and its exit code 2 on bad options.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { goldens } from '../support/engine.ts';
import { MODEL_FIXTURES, fixtureGoldens, fixturePath } from '../support/fixtures.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'forkwise.mjs');
const cli = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 300_000 });

/** Runs `f` on every item, two at a time (each run is a process of its own). */
async function twoAtATime<T>(items: readonly T[], f: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all([0, 1].map(async () => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) await f(item);
  }));
}

/** The CLI without blocking the event loop, so that two runs can overlap. */
function cliAsync(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { timeout: 300_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s) => (stderr += s));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

test('generate --json prints the golden greedy tokens with per-step statistics', () => {
  const golden = goldens().find((g) => g.prompt === 'Once upon a time')!;
  const r = cli('generate', '--prompt', 'Once upon a time', '--max-tokens', '12', '--decoder', 'greedy', '--json');
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(Object.keys(out).sort(), ['events', 'finish', 'model', 'steps', 'summary', 'text', 'timing', 'tokens']);
  assert.deepEqual(out.model.architecture, 'llama2c');
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

test('--model: an HF folder and a GGUF file give their golden tokens and describe the model', async () => {
  const N = 3;
  const run = async (f: (typeof MODEL_FIXTURES)[number]) => {
    const g = fixtureGoldens(f.golden)[0];
    const r = await cliAsync('generate', '--model', fixturePath(f.model), '--prompt', g.prompt, '--max-tokens', String(N), '--json');
    assert.equal(r.status, 0, `${f.name}: ${r.stderr}`);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(out.tokens, g.tokens.slice(0, g.prompt_token_count + N), `${f.name}: tokens`);
    assert.equal(out.finish, 'max_tokens');
    assert.equal(out.model.dtype, f.dtype, `${f.name}: dtype`);
    assert.equal(out.model.format, f.model.endsWith('.gguf') ? 'gguf' : 'hf', `${f.name}: format`);
    assert.match(out.model.architecture, /^(llama|qwen2|qwen3)$/, `${f.name}: architecture`);
    assert.ok(out.model.parameters > 0 && out.model.gpu_bytes > 0 && out.model.context > 0, `${f.name}: ${JSON.stringify(out.model)}`);
  };
  // tiny-qwen2: two safetensors shards + index, F16, qwen2; tiny-kquant: GGUF Q4_K_M, llama
  await twoAtATime(MODEL_FIXTURES.filter((f) => f.name === 'tiny-qwen2' || f.name === 'tiny-kquant Q4_K_M'), run);
});

test('--decoder ead --tau -inf: a negative infinite number is a value; the large model decodes throughout', async () => {
  const golden = goldens().find((g) => g.prompt === 'Once upon a time')!;
  const [ead, chat] = await Promise.all([
    cliAsync('generate', '--prompt', 'Once upon a time', '--decoder', 'ead', '--tau', '-inf', '--max-tokens', '6', '--json'),
    // --chat on a model with a template: the prompt is the template's rendering of one user message
    cliAsync('generate', '--model', fixturePath('tiny-qwen3'), '--chat', '--prompt', 'What is 2+2?', '--max-tokens', '2', '--json'),
  ]);
  assert.equal(ead.status, 0, ead.stderr);
  const out = JSON.parse(ead.stdout);
  assert.deepEqual(out.tokens, golden.tokens.slice(0, golden.prompt_token_count + 6));
  assert.deepEqual(out.steps.map((s: { model: string }) => s.model), new Array(6).fill('large'));

  assert.equal(chat.status, 0, chat.stderr);
  const c = JSON.parse(chat.stdout);
  const entry = JSON.parse(readFileSync(fixturePath('tokenizer-goldens.json'), 'utf8')).tokenizers['tiny-qwen3'].chat
    .find((e: { messages: { content: string }[]; add_generation_prompt: boolean }) =>
      e.add_generation_prompt && e.messages.length === 1 && e.messages[0].content === 'What is 2+2?');
  assert.deepEqual(c.tokens.slice(0, entry.ids.length), entry.ids);
  assert.equal(c.tokens.length, entry.ids.length + 2);
  // text is the decoded ids, special tokens (<|im_start|> …) left out
  assert.ok(c.text.startsWith('user\nWhat is 2+2?'), JSON.stringify(c.text));
});

test('bad options fail fast with exit code 2 and a clear message', async () => {
  const cases: [readonly string[], RegExp][] = [
    [['--temperature=-1', '--decoder', 'sample'], /temperature must be a finite number in \[0, 100\], got -1/],
    [['--max-tokens', 'NaN'], /--max-tokens must be a number/],
    [['--max-tokens', '0'], /maxTokens must be an integer/],
    // a negative number after a valued option is its value (not an unknown option '-1')
    [['--seed', '-1'], /seed must be an integer in \[0, \d+\], got -1/],
    [['--decoder', 'beam'], /unknown decoder "beam"/],
    // decoder flags come from the registry: --<decoder>-<param>, or today's short flag
    [['--decoder', 'ead', '--ead-window', '0'], /ead\.window must be an integer in \[1, 4096\], got 0/],
    [['--decoder', 'srgen', '--window', '1.5'], /window must be an integer/],
    [['--decoder', 'sample', '--tau', '1'], /--tau is not a parameter of decoder sample/],
    [['--decoder', 'entropix', '--entropix-clarifying-token', '-3'], /entropix\.clarifyingToken must be a token id/],
    [['--model', '/nonexistent/model.bin'], /could not read \/nonexistent\/model.bin/],
    [['--model', '/nonexistent/folder/'], /could not read \/nonexistent\/folder/],
    [['--model', fixturePath('reference')], /no config.json/],
    [['--model', fixturePath('README.md')], /not a GGUF file/],
    [['--chat', '--prompt', 'Hello'], /no chat template/],
  ];
  await twoAtATime(cases, async ([args, pattern]) => {
    const r = await cliAsync('generate', ...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^forkwise: /m, args.join(' '));
    assert.match(r.stderr, pattern);
  });
});
