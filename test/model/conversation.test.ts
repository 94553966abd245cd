// Multi-turn conversations on one engine: the next turn keeps the KV rows of the common token
// prefix (GenerateOptions.reuse) and prefills only what follows, with the same tokens and
// statistics as a fresh prefill; an edited earlier message falls back to the prefix before it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Engine, GenerationResult } from '../../src/engine.ts';
import type { ChatMessage } from '../../src/tokenizer/types.ts';
import { bundledModel, createNodeEngine, modelFromPath, readLocal } from '../../src/node/index.ts';
import { fixturePath } from '../support/fixtures.ts';

let engine: Engine;
before(async () => {
  engine = await createNodeEngine();
});
after(() => engine.dispose());

/** Same tokens, and statistics equal to float32 rounding (the same sums in the same order). */
function assertSameGeneration(a: GenerationResult, b: GenerationResult, what: string) {
  assert.deepEqual(a.tokens, b.tokens, `${what}: tokens`);
  a.steps.forEach((s, i) => {
    assert.ok(Math.abs(s.lse - b.steps[i].lse) <= 1e-5 * Math.max(1, Math.abs(s.lse)), `${what}: step ${i} lse ${s.lse} vs ${b.steps[i].lse}`);
    assert.ok(Math.abs(s.entropy - b.steps[i].entropy) <= 1e-4, `${what}: step ${i} entropy ${s.entropy} vs ${b.steps[i].entropy}`);
  });
}

describe('stories15M: the next turn reuses the KV prefix', () => {
  before(async () => {
    await engine.loadModel({ model: await readLocal(bundledModel.model), tokenizer: await readLocal(bundledModel.tokenizer) });
  });

  test('a continued text prefills only its new tokens, with the same result as a fresh prefill', async () => {
    const first = await engine.generate('Once upon a time, there was a little fox', { maxTokens: 12 }).complete();
    assert.equal(first.timing.reusedTokens, 0, 'a fresh engine has nothing to reuse');
    const next = `${first.text} Then the fox said`;
    const reused = await engine.generate(next, { maxTokens: 10 }).complete();
    // Row 0 held the first prompt and all generated tokens but the last (never fed).
    assert.ok(reused.timing.reusedTokens >= first.tokens.length - 2, `reused ${reused.timing.reusedTokens} of ${first.tokens.length - 1} held`);
    assert.equal(reused.timing.prefillTokens, reused.promptTokenCount - reused.timing.reusedTokens);
    const fresh = await engine.generate(next, { maxTokens: 10, reuse: false }).complete();
    assert.equal(fresh.timing.reusedTokens, 0);
    assert.equal(fresh.timing.prefillTokens, fresh.promptTokenCount);
    assertSameGeneration(reused, fresh, 'reuse vs fresh');
  });

  test('a prompt that diverges early keeps only the prefix before the divergence', async () => {
    await engine.generate('Once upon a time, there was a little fox', { maxTokens: 4 }).complete();
    const edited = await engine.generate('Once upon a time, there was a big bear', { maxTokens: 6 }).complete();
    const common = (await engine.generate('Once upon a time, there was a', { maxTokens: 1, reuse: false }).complete()).promptTokenCount;
    // "Once upon a time, there was a" is the common prefix (the last prompt token is always fed)
    const afterEdit = await engine.generate('Once upon a time, there was a little fox', { maxTokens: 6 }).complete();
    assert.equal(afterEdit.timing.reusedTokens, common, 'kept exactly the common prefix');
    const fresh = await engine.generate('Once upon a time, there was a little fox', { maxTokens: 6, reuse: false }).complete();
    assertSameGeneration(afterEdit, fresh, 'after an edit');
    assert.ok(edited.timing.reusedTokens <= common);
  });

  test('decoders with their own prompt pass or per-position state start fresh', async () => {
    await engine.generate('Once upon a time', { maxTokens: 4 }).complete();
    const srgen = await engine.generate('Once upon a time', { maxTokens: 2, decoder: 'srgen' }).complete();
    assert.equal(srgen.timing.reusedTokens, 0);
    assert.throws(() => engine.generate('x', { reuse: 'yes' as never }), { code: 'invalid-argument' });
  });
});

describe('stories15M: OpenAI\'s frequency and presence penalties', () => {
  test('each greedy token is the argmax of logit − count·f − p over the text so far', async () => {
    const prompt = 'The cat sat on the mat. The cat sat on the mat. The cat';
    const plain = await engine.generate(prompt, { maxTokens: 24, reuse: false }).complete();
    const r = await engine.generate(prompt, { maxTokens: 24, frequencyPenalty: 1.5, presencePenalty: 0.5, reuse: false }).complete();
    assert.notDeepEqual(r.tokens, plain.tokens, 'the penalties change the text');
    let checked = 0;
    for (const step of r.steps) {
      const history = r.tokens.slice(0, step.pos + 1);
      const pen = (id: number, logit: number) => {
        const c = history.filter((h) => h === id).length;
        return logit - (c ? 1.5 * c + 0.5 : 0);
      };
      const best = step.topK.reduce((a, c) => (pen(c.id, c.logit) > pen(a.id, a.logit) ? c : a));
      if (step.topK.some((c) => c.id === step.tokenId)) {
        assert.equal(step.tokenId, best.id, `step ${step.index}: the penalised argmax`);
        checked++;
      }
    }
    assert.ok(checked >= r.steps.length / 2, `checked ${checked} of ${r.steps.length} steps`);
  });
});

describe('tiny-llama3: a chat keeps its KV rows across turns', () => {
  before(async () => {
    await engine.loadModel({ model: await modelFromPath(fixturePath('tiny-llama3')) });
  });

  test('the second turn prefills only what the template adds', async () => {
    const messages: ChatMessage[] = [{ role: 'user', content: 'Hello there, who are you?' }];
    const first = await engine.generate({ messages }, { maxTokens: 8 }).complete();
    messages.push({ role: 'assistant', content: first.completion }, { role: 'user', content: 'Tell me more.' });
    const second = await engine.generate({ messages }, { maxTokens: 8 }).complete();
    const fresh = await engine.generate({ messages }, { maxTokens: 8, reuse: false }).complete();
    assert.ok(second.timing.reusedTokens >= first.promptTokenCount, `reused ${second.timing.reusedTokens} ≥ the first prompt's ${first.promptTokenCount}`);
    assert.ok(second.timing.prefillTokens < fresh.timing.prefillTokens / 2, `prefilled ${second.timing.prefillTokens} of ${fresh.timing.prefillTokens}`);
    assertSameGeneration(second, fresh, 'second turn');
  });
});
