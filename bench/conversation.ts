// `npm run bench:conversation`: what keeping a conversation's KV rows buys. (1) The second turn's
// time to first token with reuse (only the tokens after the common prefix are prefilled) and
// without (`reuse: false`), alternating, medians of --reps; on stories15M (plain text turns) and
// the tiny-llama3 chat fixture (its template). (2) A SirLLM dialogue on stories15M past its 256
// positions: GPU bytes and kept positions per turn. One run; compare ratios, not absolute times.
//
//   npm run bench:conversation -- [--reps 5] [--dialogue-tokens 2000]
import { parseArgs } from 'node:util';
import { bundledModel, createNodeEngine, modelFromPath, readLocal } from '../src/node/index.ts';
import type { ChatMessage } from '../src/tokenizer/types.ts';
import { fixturePath } from '../test/support/fixtures.ts';

const { values } = parseArgs({ options: { reps: { type: 'string', default: '5' }, 'dialogue-tokens': { type: 'string', default: '2000' } } });
const REPS = Number(values.reps);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const engine = await createNodeEngine();

async function secondTurn(name: string, first: () => Promise<string | { messages: ChatMessage[] }>) {
  const ttft = { reuse: [] as number[], fresh: [] as number[] };
  let tokens = { prompt: 0, reused: 0 };
  for (let i = 0; i < REPS; i++) {
    for (const reuse of [true, false]) {
      const prompt = await first(); // the first turn, then its continuation as the second
      const r = await engine.generate(prompt, { maxTokens: 8, reuse }).complete();
      (reuse ? ttft.reuse : ttft.fresh).push(r.timing.ttftMs);
      if (reuse) tokens = { prompt: r.promptTokenCount, reused: r.timing.reusedTokens };
    }
  }
  const [a, b] = [median(ttft.reuse), median(ttft.fresh)];
  console.log(JSON.stringify({ bench: 'second-turn TTFT', model: name, promptTokens: tokens.prompt, reusedTokens: tokens.reused, ttftReuseMs: +a.toFixed(1), ttftFreshMs: +b.toFixed(1), speedup: +(b / a).toFixed(2) }));
}

// stories15M: a story prompt, then the story so far plus a new sentence.
await engine.loadModel({ model: await readLocal(bundledModel.model), tokenizer: await readLocal(bundledModel.tokenizer) });
const story = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends. One day, she found a shiny red ball under a big tree.';
await secondTurn('stories15M', async () => {
  const r = await engine.generate(story, { maxTokens: 24 }).complete();
  return `${r.text} Then her mom called her home.`;
});

// tiny-llama3 (Llama 3's template): user, assistant, user.
await engine.loadModel({ model: await modelFromPath(fixturePath('tiny-llama3')) });
await secondTurn('tiny-llama3 chat', async () => {
  const messages: ChatMessage[] = [{ role: 'system', content: 'You are a helpful assistant who answers briefly.' }, { role: 'user', content: story }];
  const r = await engine.generate({ messages }, { maxTokens: 24 }).complete();
  return { messages: [...messages, { role: 'assistant', content: r.completion }, { role: 'user', content: 'What happened next?' }] };
});

// SirLLM dialogue past the context: GPU bytes and kept positions per turn.
await engine.loadModel({ model: await readLocal(bundledModel.model), tokenizer: await readLocal(bundledModel.tokenizer) });
const lines = ['Lily said, "Can we play in the park today?"', 'Mom said, "Yes, but first eat your lunch."', 'Tom asked, "Where is my red ball?"', 'Dad said, "It is under the big tree."'];
let text = 'Once upon a time, a wizard named Zorblax Quimbleworth hid a golden key.';
let turn = 0;
for (let total = 0; total < Number(values['dialogue-tokens']); turn++) {
  text += ` ${lines[turn % lines.length]} The cat sat on the mat.`;
  const r = await engine.generate(text, { maxTokens: 16, memory: { policy: 'sirllm' } }).complete();
  text = r.text;
  total = r.tokens.length;
  const m = r.memory!;
  if (turn % 5 === 0 || m.evictions.length) {
    console.log(JSON.stringify({
      bench: 'sirllm dialogue', turn, tokens: total, kept: m.kept.length, evictions: m.evictions.length, gpuBytes: engine.memory().total,
      prefillTokens: r.timing.prefillTokens, ttftMs: +r.timing.ttftMs.toFixed(1),
    }));
  }
}
await engine.dispose();
