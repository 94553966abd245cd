// SRGen on stories15M (algorithms.md §4): the adaptive threshold on hand-computed histories,
// AdamW's first step, the runtime's kept hidden states and reflect() against plain steps, equality
// with plain sampling when δ never moves, and the reflection loss going down on a real context.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { eventsOf } from '../../src/decode/registry.ts';
import { SRGEN_DEFAULTS, srgenThreshold } from '../../src/decode/srgen.ts';
import type { Engine, GenerateOptions } from '../../src/engine.ts';
import { AdamW, SRGEN_ADAMW } from '../../src/runtime/adamw.ts';
import { SessionRuntime } from '../../src/runtime/decode-runtime.ts';
import type { SamplingParams, Session } from '../../src/runtime/session.ts';
import { loadedEngine } from '../support/engine.ts';

const close = (a: number, b: number, tol: number, what: string) => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

describe('SRGen threshold', () => {
  const d = SRGEN_DEFAULTS;
  // `history`: the entropies of the steps before the current one (the authors' window).
  test('fewer than N entries: θ_0', () => {
    assert.equal(srgenThreshold([], d), 3.0);
    assert.equal(srgenThreshold(Array(24).fill(9), d), 3.0);
    assert.equal(srgenThreshold([1, 2, 3], { ...d, window: 4, theta0: 2.5 }), 2.5);
  });
  test('N entries at the defaults: mean + K·std (unbiased)', () => {
    // 24 × 1.0 and one 6.0: mean 1.2, Σ(x − mean)² = 24·0.04 + 4.8² = 24, s² = 24/24 = 1 → θ = 1.2 + 4·1.
    close(srgenThreshold([...Array(24).fill(1), 6], d), 5.2, 1e-12, 'θ');
    // Only the last N count: an old spike changes nothing.
    close(srgenThreshold([50, 50, ...Array(24).fill(1), 6], d), 5.2, 1e-12, 'θ over the last N');
    // N = 4, K = 2: [1, 2, 3, 4] → mean 2.5, s² = 5/3 → θ = 2.5 + 2·√(5/3).
    close(srgenThreshold([1, 2, 3, 4], { ...d, window: 4, k: 2 }), 2.5 + 2 * Math.sqrt(5 / 3), 1e-12, 'θ');
  });
  test('σ_min and θ_min floors', () => {
    // Constant 0.2: std 0 < σ_min → 0.2 + 4·0.5 = 2.2 (above θ_min).
    close(srgenThreshold(Array(25).fill(0.2), d), 2.2, 1e-12, 'σ_min');
    // Constant 0, K = 1: 0 + 0.5 < θ_min → 1.8.
    assert.equal(srgenThreshold(Array(25).fill(0), { ...d, k: 1 }), 1.8);
    // [0.1, 0.2, 0.1, 0.2] with N = 4, K = 1: s = √(0.01/3) ≈ 0.058 < σ_min → max(0.15 + 0.5, 1.8) = 1.8.
    assert.equal(srgenThreshold([0.1, 0.2, 0.1, 0.2], { ...d, window: 4, k: 1 }), 1.8);
    // … and with θ_min 0: 0.15 + 0.5.
    close(srgenThreshold([0.1, 0.2, 0.1, 0.2], { ...d, window: 4, k: 1, thetaMin: 0 }), 0.65, 1e-12, 'σ_min, no θ_min');
  });
});

test('AdamW: the first step from 0 moves each coordinate by about −lr·sign(g)', () => {
  const g = [3, -0.5, 1e-2, -2e-3, 1e-3, 0, -40];
  const adam = new AdamW(g.length);
  assert.deepEqual(adam.options, SRGEN_ADAMW);
  const delta = adam.step(g);
  const lr = SRGEN_ADAMW.lr;
  g.forEach((gi, i) => {
    // Exactly −lr·g/(|g| + eps) (m̂ = g, v̂ = g², weight decay of 0 is 0): within lr·eps/|g| of −lr·sign(g).
    close(delta[i], (-lr * gi) / (Math.abs(gi) + SRGEN_ADAMW.eps), 1e-15, `δ[${i}]`);
    close(delta[i], -lr * Math.sign(gi), gi === 0 ? 0 : (lr * SRGEN_ADAMW.eps) / Math.abs(gi) + 1e-15, `δ[${i}] ≈ −lr·sign(g)`);
  });
  // Second step with the same gradient: m̂ = g, v̂ = g² again, plus the decay of the first step's δ.
  const before = Float64Array.from(delta);
  adam.step(g);
  g.forEach((gi, i) => {
    const expected = before[i] - lr * SRGEN_ADAMW.weightDecay * before[i] - (lr * gi) / (Math.abs(gi) + SRGEN_ADAMW.eps);
    close(delta[i], expected, 1e-15, `second step δ[${i}]`);
  });
});

describe('SRGen on stories15M', () => {
  let engine: Engine;
  let session: Session;
  const prompt = 'Once upon a time, there was a little girl named Lily';
  before(async () => {
    engine = await loadedEngine();
    // The engine's own session (one model load for the file); generate() resets it each time.
    session = (engine as unknown as { loaded: { session: Session } }).loaded.session;
  });
  after(() => engine.dispose());

  const sampling: SamplingParams = { temperature: 0.6, seed: 5, statsTemperature: 0.6 };

  test('every position of row 0 keeps its final hidden state (prefill and decode steps)', async () => {
    const tokens = engine.tokenizer.encode('Lily and Ben');
    session.reset();
    await session.keepHiddenStates(); // as generate() does for SRGen
    const runtime = new SessionRuntime(session);
    await runtime.feed(tokens, sampling);
    const extra = [263, 3186];
    for (const id of extra) await runtime.feed([id], sampling);
    const all = [...tokens, ...extra];
    assert.equal(session.keptHiddenPositions, all.length);
    // Teacher-forced stats of every position at T = 0.6 on a second pass (the same kernels)…
    session.reset();
    const scored = await session.score(0, all, { temperature: 0, seed: 0, statsTemperature: 0.6 });
    // … against the xent kernel's entropy term over the kept states: with λ = 1, δ = 0 and k
    // positions, the loss is the entropy of softmax(W·h_{k−1}/0.6).
    const zero = new Float32Array(session.config.dim);
    for (let k = 1; k <= all.length; k++) {
      const r = await session.xent(k, all.slice(1, k), zero, { lambda: 1, temperature: 0.6, backward: false });
      close(r.entropy, scored[k - 1].entropy, 1e-4, `entropy at position ${k - 1}`);
      close(r.loss, r.entropy, 1e-6, 'λ = 1: loss = Ent');
    }
  });

  test('reflect with 0 steps (δ = 0) gives the plain step\'s stats', async () => {
    const tokens = engine.tokenizer.encode(prompt);
    session.reset();
    await session.keepHiddenStates();
    const runtime = new SessionRuntime(session);
    const plain = await runtime.feed(tokens, sampling);
    const r = await runtime.reflect({ tokens, lambda: 0.05, steps: 0, temperature: 0.6, sampling });
    assert.equal(r.losses.length, 1);
    assert.ok(Number.isFinite(r.losses[0]) && r.losses[0] > 0);
    assert.equal(r.stats.argmax, plain.argmax);
    assert.equal(r.stats.sampled, plain.sampled, 'the GPU draw is keyed as the step\'s');
    close(r.stats.lse, plain.lse, 1e-4, 'lse');
    close(r.stats.entropy, plain.entropy, 1e-4, 'entropy');
    assert.deepEqual(r.stats.topK.map((c) => c.id), plain.topK.map((c) => c.id));
  });

  const base: GenerateOptions = { temperature: 0.6, seed: 3, maxTokens: 8 };

  test('opt-steps 0 gives exactly the plain sampler\'s tokens; reflections where H > θ(previous N)', async () => {
    // SRGen defaults to top-k 50 and top-p 0.95 (algorithms.md §4, step 0); so must plain.
    const plain = await engine.generate(prompt, { ...base, maxTokens: 16, decoder: 'sample', topK: 50, topP: 0.95 }).complete();
    // A short window so the adaptive threshold acts within 16 tokens; θ_0 = 0: the first N steps reflect.
    const t = { window: 3, k: 1, sigmaMin: 0.1, thetaMin: 0.2, theta0: 0 };
    const maxReflections = 8;
    const srgen = await engine.generate(prompt, { ...base, maxTokens: 16, decoder: 'srgen', optSteps: 0, maxReflections, ...t }).complete();
    assert.deepEqual(srgen.tokens, plain.tokens);
    // δ = 0 leaves every step's stats as plain sampling's: replay the rule on its entropies, from
    // the second generated token on (the prefill forward's token is never checked nor recorded).
    const expected: number[] = [];
    const history: number[] = [];
    for (const step of plain.steps.slice(1)) {
      if (expected.length >= maxReflections) break;
      if (step.entropy > srgenThreshold(history, t)) expected.push(step.pos);
      history.push(step.entropy);
    }
    assert.ok(expected.length > t.window, 'the adaptive threshold triggered too');
    assert.deepEqual(srgen.events.map((e) => e.pos), expected);
    for (const e of eventsOf(srgen.events, 'srgen')) assert.equal(e.loss.length, 1);
    // Gauges replay the rule too (entropy against θ of the previous N), while monitoring lasts.
    assert.equal(srgen.steps[0].gauge, undefined, 'the first token is not monitored');
    assert.equal(srgen.steps[0].event, undefined);
    const monitored = srgen.steps.filter((s) => s.gauge);
    assert.deepEqual(monitored.map((s) => s.index), srgen.steps.slice(1, 1 + monitored.length).map((s) => s.index));
    assert.ok(monitored.length >= expected.length);
    monitored.forEach((s, i) => {
      // A reflected step's statistics are of W(h_T + δ) through the reflection's own head (kept
      // logits + W·δ): with δ = 0 the same distribution, within float32 rounding.
      if (s.event) assert.ok(Math.abs(s.gauge!.value - s.entropy) < 1e-5, `entropy at ${s.pos}`);
      else assert.equal(s.gauge!.value, s.entropy);
      // θ from the previous gauges: the entropies SRGen compared (before any reflection).
      assert.equal(s.gauge!.threshold, srgenThreshold(monitored.slice(0, i).map((x) => x.gauge!.value), t));
      assert.equal(s.event !== undefined, s.gauge!.value > s.gauge!.threshold, `event at ${s.pos}`);
    });
  });

  test('reflections lower the loss on a real context; events describe them', async () => {
    const r = await engine.generate(prompt, { ...base, maxTokens: 6, decoder: 'srgen', theta0: 0, maxReflections: 2 }).complete();
    assert.equal(r.events.length, 2);
    for (const e of r.events as unknown as { type: string; pos: number; entropy: number; threshold: number; loss: number[]; token: number }[]) {
      assert.equal(e.type, 'srgen');
      assert.equal(e.threshold, 0);
      assert.ok(e.entropy > e.threshold);
      assert.equal(e.loss.length, 1 + SRGEN_DEFAULTS.optSteps);
      assert.ok(e.loss.at(-1)! < e.loss[0], `loss after AdamW ${e.loss} below the loss before`);
      assert.equal(r.tokens[e.pos + 1], e.token, 'the reflected token is the one emitted');
    }
    // θ_0 = 0 reflects at every monitored step: tokens 1 and 2 (token 0 is never checked).
    assert.deepEqual(r.events.map((e) => e.pos), [1, 2].map((i) => r.steps[i].pos));
    // After the budget: no more monitoring, plain sampling.
    assert.equal(r.steps.length, 6);
  });

  test('bad SRGen options are rejected before any work', () => {
    assert.throws(() => engine.generate('x', { decoder: 'srgen', lambda: 2 }), /lambda/);
    assert.throws(() => engine.generate('x', { decoder: 'srgen', optSteps: -1 }), /optSteps/);
    assert.throws(() => engine.generate('x', { decoder: 'srgen', window: 0 }), /window/);
    assert.throws(() => engine.generate('x', { decoder: 'srgen', lr: Number.NaN }), /lr/);
  });
});

test('CLI: --decoder srgen with its flags; events in --json; bad values exit 2', () => {
  const bin = join(import.meta.dirname, '..', '..', 'bin', 'forkwise.mjs');
  const cli = (...args: string[]) => spawnSync(process.execPath, [bin, 'generate', ...args], { encoding: 'utf8', timeout: 300_000 });
  const bad = cli('--decoder', 'srgen', '--lambda', '2');
  assert.equal(bad.status, 2, bad.stderr);
  assert.match(bad.stderr, /lambda/);
  const r = cli(
    '--prompt', 'Lily', '--decoder', 'srgen', '--max-tokens', '3', '--seed', '2', '--theta0', '0', '--opt-steps', '1',
    '--max-reflections', '1', '--lr', '0.02', '--lambda', '0.1', '--window', '25', '--k', '4', '--sigma-min', '0.5',
    '--theta-min', '1.8', '--json',
  );
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.events.length, 1);
  assert.equal(out.events[0].type, 'srgen');
  assert.equal(out.events[0].loss.length, 2);
  assert.equal(out.steps.length, 3);
});
