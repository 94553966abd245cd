// `npm run bench:serve`: throughput of the OpenAI-compatible server (src/server) with 1, 4 and 8
// concurrent clients (requests/s, generated tokens/s; the engine runs one generation at a time, so
// concurrency measures queueing overhead, not batching), and the cost of logprobs with
// top_logprobs 5 against none (the same step record: expected ~0). One run, printed as JSON lines.
//
//   npm run bench:serve -- [--model PATH] [--clients 1,4,8] [--requests 4] [--max-tokens 32] [--chat]
import { parseArgs } from 'node:util';
import { bundledModel, createNodeEngine, modelFromPath, readLocal, startServer } from '../src/node/index.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: bundledModel.model },
    clients: { type: 'string', default: '1,4,8' },
    requests: { type: 'string', default: '4' },
    'max-tokens': { type: 'string', default: '32' },
    chat: { type: 'boolean', default: false },
    stream: { type: 'boolean', default: false },
  },
});
const maxTokens = Number(values['max-tokens']);
const perClient = Number(values.requests);

const engine = await createNodeEngine();
const tokenizer = values.model!.endsWith('.bin') ? await readLocal(bundledModel.tokenizer) : undefined;
const info = await engine.loadModel({ model: await modelFromPath(values.model!), tokenizer, topK: 20 });
const server = await startServer({ engine, port: 0, topK: 20, model: 'bench' });
const path = values.chat ? '/v1/chat/completions' : '/v1/completions';
const prompts = ['Once upon a time', 'The little dog', 'One day, a girl named Lily', 'In a big forest'];

/** One request; resolves with its completion tokens. */
async function request(i: number, extra: Record<string, unknown> = {}): Promise<number> {
  const prompt = prompts[i % prompts.length];
  const body = {
    model: 'bench', max_tokens: maxTokens, temperature: 0, stream: values.stream,
    ...(values.chat ? { messages: [{ role: 'user', content: prompt }] } : { prompt }),
    ...(values.stream ? { stream_options: { include_usage: true } } : {}),
    ...extra,
  };
  const res = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  if (res.status !== 200) throw new Error(`${res.status}: ${await res.text()}`);
  if (!values.stream) return (await res.json()).usage.completion_tokens;
  const frames = (await res.text()).split('\n\n').filter((f) => f.startsWith('data: {'));
  return JSON.parse(frames.at(-1)!.slice(6)).usage.completion_tokens;
}

async function run(clients: number, extra: Record<string, unknown> = {}) {
  const t0 = performance.now();
  const tokens = await Promise.all(Array.from({ length: clients }, async (_, c) => {
    let n = 0;
    for (let r = 0; r < perClient; r++) n += await request(c * perClient + r, extra);
    return n;
  }));
  const s = (performance.now() - t0) / 1000;
  const total = tokens.reduce((a, b) => a + b, 0);
  return { requests: clients * perClient, seconds: +s.toFixed(2), requestsPerSec: +((clients * perClient) / s).toFixed(3), tokensPerSec: +(total / s).toFixed(1), tokens: total };
}

console.log(JSON.stringify({ model: values.model, architecture: info.config.architecture, parameters: info.parameterCount, path, maxTokens, stream: values.stream }));
await request(0); // warm-up: pipelines, first readbacks
{
  // The engine alone, the same requests one after another: what the server adds is the rest.
  const t0 = performance.now();
  let tokens = 0;
  for (let r = 0; r < perClient; r++) {
    const prompt = prompts[r % prompts.length];
    const g = engine.generate(values.chat ? { messages: [{ role: 'user', content: prompt }] } : prompt, { maxTokens });
    tokens += (await g.complete()).steps.length;
  }
  const s = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({ direct: true, requests: perClient, seconds: +s.toFixed(2), requestsPerSec: +(perClient / s).toFixed(3), tokensPerSec: +(tokens / s).toFixed(1), tokens }));
}
for (const clients of values.clients!.split(',').map(Number)) console.log(JSON.stringify({ clients, ...(await run(clients)) }));
// logprobs overhead: alternate the two settings, one client, so drift hits both alike.
const plain: number[] = [];
const withLogprobs: number[] = [];
const logprobs = values.chat ? { logprobs: true, top_logprobs: 5 } : { logprobs: 5 };
for (let round = 0; round < 2; round++) {
  plain.push((await run(1)).tokensPerSec);
  withLogprobs.push((await run(1, logprobs)).tokensPerSec);
}
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
console.log(JSON.stringify({ logprobs, tokensPerSecPlain: plain, tokensPerSecLogprobs: withLogprobs, overhead: +(1 - mean(withLogprobs) / mean(plain)).toFixed(3) }));
await server.close();
await engine.dispose();
process.exit(0);
