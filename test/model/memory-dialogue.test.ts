// Conversations longer than the context (GenerateOptions.memory) on stories15M loaded with a
// context of 128 (half its trained 256: every prompt past it costs half the prefill): a scripted
// dialogue (1.5 contexts here, 5,000 tokens in `npm run soak`) runs to the end with GPU memory flat after the first
// eviction; a fact stated early in surprising tokens survives under SirLLM where the sliding
// window evicts it; without a policy the same prompt is a ContextOverflowError.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Engine } from '../../src/engine.ts';
import { loadedEngine } from '../support/engine.ts';

const CONTEXT = 128;

let engine: Engine;
before(async () => {
  engine = await loadedEngine(CONTEXT);
  assert.equal(engine.model?.contextLength, CONTEXT);
});
after(() => engine.dispose());

const FACT = 'Once upon a time, a wizard named Zorblax Quimbleworth hid a golden key.';
const FILLER = ' The cat sat on the mat. The dog sat on the log.';

/** Tokens of the scripted dialogue: 1.5 contexts in `npm test`; `npm run soak` runs it at 5,000. */
const DIALOGUE_TOKENS = Number(process.env.FORKWISE_DIALOGUE_TOKENS ?? 1.5 * CONTEXT);

describe(`memory policies on stories15M (context ${CONTEXT})`, () => {
  test('a fact in surprising tokens survives under SirLLM and is evicted by the window', async () => {
    const prompt = FACT + FILLER.repeat(10);
    const kept: Record<string, string> = {};
    for (const policy of ['sirllm', 'window'] as const) {
      const r = await engine.generate(prompt, { maxTokens: 8, memory: { policy }, reuse: false }).complete();
      assert.ok(r.promptTokenCount > CONTEXT, `the prompt (${r.promptTokenCount} tokens) is longer than the context`);
      const m = r.memory!;
      assert.equal(m.policy, policy);
      assert.ok(m.evictions.length > 0, `${policy}: evicted`);
      assert.ok(m.kept.length <= CONTEXT);
      assert.deepEqual(m.kept, [...m.kept].sort((a, b) => a - b), 'kept positions ascending');
      assert.deepEqual(m.kept.slice(0, 4), [0, 1, 2, 3], 'attention sinks kept');
      assert.equal(m.kept.at(-1), r.tokens.length - 2, 'the last token fed is kept');
      if (policy === 'sirllm') assert.ok(m.scores.every((x) => x >= 0 && Number.isFinite(x)), 'scores are −ln p ≥ 0');
      kept[policy] = engine.tokenizer.decode(m.kept.filter((i) => i < 30).map((i) => r.tokens[i]));
      console.log(`# ${policy}: kept of the first 30 tokens: ${JSON.stringify(kept[policy])}; evictions ${JSON.stringify(m.evictions)}`);
    }
    assert.match(kept.sirllm, /Zor/, 'SirLLM keeps the name');
    assert.match(kept.sirllm, /Quim/, 'SirLLM keeps the name');
    assert.doesNotMatch(kept.window, /Zor|Quim/, 'the window has evicted it');
    await assert.rejects(async () => engine.generate(prompt, { maxTokens: 8 }).complete(), { code: 'context-overflow' });
    assert.throws(() => engine.generate(prompt, { memory: { policy: 'sirllm' }, decoder: 'srgen' }), { code: 'invalid-argument' });
  });

  test('a decoder that takes its statistics again (adaptive temperature) runs under a memory policy', async () => {
    // The prefill's last token goes through the decode runtime, so statsUnder finds its hidden row.
    const o = { decoder: 'adaptive-temperature' as const, maxTokens: 4, seed: 3, adaptiveTemperature: { warmup: 1 }, reuse: false };
    const r = await engine.generate('Once upon a time', { ...o, memory: { policy: 'sirllm' } }).complete();
    assert.equal(r.steps.length, 4);
    assert.equal(r.memory!.policy, 'sirllm');
    assert.ok(r.summary.decoder === 'adaptive-temperature' && r.summary.redrawnSteps >= 2, JSON.stringify(r.summary));
    const plain = await engine.generate('Once upon a time', o).complete();
    assert.deepEqual(r.tokens, plain.tokens, 'the same draws as without a memory (nothing evicted)');
  });

  test(`a ${DIALOGUE_TOKENS}-token scripted dialogue runs to the end with flat GPU memory`, async () => {
    const lines = ['Lily said, "Can we play in the park today?"', 'Mom said, "Yes, but first eat your lunch."', 'Tom asked, "Where is my red ball?"', 'Dad said, "It is under the big tree."'];
    let text = FACT;
    let total = 0;
    let turns = 0;
    let evictions = 0;
    const memoryAfter: number[] = [];
    const kept: number[] = [];
    while (total < DIALOGUE_TOKENS) {
      text += ` ${lines[turns % lines.length]}${FILLER.repeat(3)}`;
      const r = await engine.generate(text, { maxTokens: 12, memory: { policy: 'sirllm' } }).complete();
      text = r.text;
      total = r.tokens.length;
      turns++;
      evictions += r.memory!.evictions.length;
      kept.push(r.memory!.kept.length);
      if (evictions > 0) memoryAfter.push(engine.memory().total);
      assert.ok(r.memory!.kept.length <= CONTEXT);
      assert.ok(r.timing.prefillTokens < 100, `turn ${turns}: prefilled ${r.timing.prefillTokens} tokens, not the whole conversation`);
    }
    console.log(`# ${turns} turns, ${total} tokens, ${evictions} evictions; kept ${Math.min(...kept)}..${Math.max(...kept)} positions; GPU bytes ${[...new Set(memoryAfter)]}`);
    assert.ok(total >= DIALOGUE_TOKENS && evictions >= Math.floor(DIALOGUE_TOKENS / CONTEXT));
    assert.ok(memoryAfter.every((b) => b === memoryAfter[0]), `GPU memory flat after the first eviction: ${[...new Set(memoryAfter)]}`);
  });
});
