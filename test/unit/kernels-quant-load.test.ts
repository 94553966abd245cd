// Quantisation at load (`loadModel({ weights })`) on the bundled stories15M (llama2.c, f32), and a
// GGUF K-quant mix kept in its own formats.
//
// Measured here (SwiftShader; the same numbers every run): weights on the GPU, f32 97.7 MB (the
// embedding and the transposed classifier are separate f32 copies), q8 16.2 MB (0.17×: Q8_0 blocks,
// one table for the tied embedding and classifier), q4 8.6 MB (0.09×). Greedy from three prompts,
// 32 tokens: q8 agrees with f32 for the first 32, 8 and 21 tokens, q4 for 17, 5 and 1; scoring
// f32's continuations, q8's argmax is f32's next token at 94 of 96 positions, q4's at 83. The
// assertions below leave margin under those numbers (another device may round differently).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { Engine, GenerationResult, ModelInfo } from '../../src/engine.ts';
import { InvalidArgumentError } from '../../src/errors.ts';
import type { ClassifierTile, WeightMatrix } from '../../src/gpu/kernels.ts';
import type { GpuWeights } from '../../src/model/weights.ts';
import { bundledModel, createNodeEngine, modelFromPath } from '../../src/node/index.ts';
import { fixturePath } from '../support/fixtures.ts';

const PROMPTS = ['Once upon a time', 'Lily and Ben were best friends', 'The little dog'];
const TOKENS = 20;

let engine: Engine;
before(async () => {
  engine = await createNodeEngine();
});
after(() => engine.dispose());

const weightsOf = (e: Engine) => (e as unknown as { loaded: { weights: GpuWeights } }).loaded.weights;
const weightBytes = (info: ModelInfo) => Object.values(info.weightBytes).reduce((a, b) => a + (b ?? 0), 0);

describe('weights: q8 and q4 on stories15M', () => {
  const model = readFileSync(bundledModel.model);
  const tokenizer = readFileSync(bundledModel.tokenizer);
  let f32: { info: ModelInfo; runs: GenerationResult[] };

  before(async () => {
    const info = await engine.loadModel({ model, tokenizer });
    assert.deepEqual(Object.keys(info.weightBytes), ['f32'], 'llama2.c loads as f32 by default');
    const runs: GenerationResult[] = [];
    for (const p of PROMPTS) runs.push(await engine.generate(p, { maxTokens: TOKENS }).complete());
    f32 = { info, runs };
  });

  for (const [weights, maxRatio, minPrefix, minAgreement, format] of [
    ['q8', 0.3, 4, 0.9, 'q8_0'], ['q4', 0.2, 1, 0.7, 'q4_0'],
  ] as const) {
    test(`${weights}: GPU bytes ≤ ${maxRatio}× f32, greedy agrees with f32 at first`, async () => {
      const info = await engine.loadModel({ model, tokenizer, weights });
      const ratio = weightBytes(info) / weightBytes(f32.info);
      console.log(`# ${weights}: weights ${weightBytes(info)} B = ${ratio.toFixed(3)}× f32 (${weightBytes(f32.info)} B); ` +
        `all GPU memory ${info.gpuBytes} B = ${(info.gpuBytes / f32.info.gpuBytes).toFixed(3)}× (activations and KV cache are f32)`);
      assert.ok(ratio <= maxRatio, `weights ${ratio.toFixed(3)}× f32`);
      assert.deepEqual(Object.keys(info.weightBytes).sort(), ['f32', format], 'matrices quantised, norms and RoPE f32');
      assert.ok(info.weightBytes.f32! < 0.01 * weightBytes(f32.info), 'only norms and the RoPE table stay f32');
      const w = weightsOf(engine);
      assert.equal(w.embedding, w.classifier, 'the tied embedding is the classifier\'s table');

      // Teacher-forced on f32's continuations: does the argmax pick f32's next token? Greedy
      // decoding sees the same contexts up to its first difference from f32, so the run of agreeing
      // positions from the prompt's end is the greedy prefix; the first prompt is also generated.
      let agree = 0;
      let positions = 0;
      const prefixes: number[] = [];
      for (const [i, p] of PROMPTS.entries()) {
        const ref = f32.runs[i];
        const stats = await engine.score(ref.tokens);
        let prefix = -1;
        for (let t = ref.promptTokenCount - 1; t < ref.tokens.length - 1; t++, positions++) {
          if (stats[t].argmax === ref.tokens[t + 1]) agree++;
          else if (prefix < 0) prefix = t + 1 - ref.promptTokenCount;
        }
        prefixes.push(prefix < 0 ? TOKENS : prefix);
        if (i > 0) continue;
        const r = await engine.generate(p, { maxTokens: TOKENS }).complete();
        assert.deepEqual(r.tokens.slice(0, r.promptTokenCount), ref.tokens.slice(0, ref.promptTokenCount), 'prompt ids');
        let same = ref.promptTokenCount;
        while (same < ref.tokens.length && r.tokens[same] === ref.tokens[same]) same++;
        assert.equal(same - ref.promptTokenCount, prefixes[0], 'the greedy run leaves f32 where the teacher-forced argmax does');
      }
      console.log(`# ${weights}: greedy tokens equal to f32's before the first difference: ${prefixes.join(', ')} of ${TOKENS}; ` +
        `argmax on f32's continuations = f32's token at ${agree} of ${positions} positions`);
      for (const [i, n] of prefixes.entries()) assert.ok(n >= minPrefix, `${JSON.stringify(PROMPTS[i])}: ${n} tokens agree`);
      assert.ok(agree >= minAgreement * positions, `argmax agreement ${agree} / ${positions}`);
    });
  }

  test("weights: 'f32' is the default for llama2.c; a bad value is an InvalidArgumentError", async () => {
    const info = await engine.loadModel({ model, tokenizer, weights: 'f32' });
    const r = await engine.generate(PROMPTS[0], { maxTokens: 8 }).complete();
    assert.deepEqual(r.tokens, f32.runs[0].tokens.slice(0, r.tokens.length));
    assert.equal(weightBytes(info), weightBytes(f32.info));
    await assert.rejects(engine.loadModel({ model, tokenizer, weights: 'q3' as never }), InvalidArgumentError);
    assert.equal(engine.model, info, 'the model stays loaded');
  });
});

test('a GGUF Q4_K_M keeps its Q4_K, Q5_K and Q6_K blocks on the GPU (only norms and RoPE f32)', async () => {
  const info = await engine.loadModel({ model: await modelFromPath(fixturePath('tiny-kquant/tiny-kquant-Q4_K_M.gguf')) });
  assert.deepEqual(Object.keys(info.weightBytes).sort(), ['f32', 'q4_k', 'q5_k', 'q6_k']);
  const c = info.config;
  const qkv = (c.nHeads + 2 * c.nKvHeads) * c.headDim;
  // per layer: two norms, q|k|v biases (zeros), q/k norms (ones); the output norm; the RoPE table
  const f32Bytes = 4 * (c.nLayers * (2 * c.dim + qkv + 2 * c.headDim) + c.dim + info.contextLength * c.headDim);
  assert.equal(info.weightBytes.f32, f32Bytes, 'f32: norms, biases and the RoPE table only');
  const w = weightsOf(engine);
  // q|k Q4_K and v Q6_K in layer 0: two parts of one output
  assert.deepEqual(w.layers[0].wqkv.map((p) => (p.w as WeightMatrix).format), ['q4_k', 'q6_k']);
  assert.equal((w.classifier[0].matrix as WeightMatrix).format, 'q6_k');
  assert.deepEqual((w.embedding as ClassifierTile[]).map((t) => t.matrix!.format), ['q4_k']);
});
