// `npm run bench:quality`: how far the quantised paths are from the f32 model, in Node on the
// `webgpu` package (Dawn; SwiftShader where there is no GPU). The reference is the bundled
// llama2.c stories15M (f32); the variants are the GGUF fixtures in their own types (Q8_0, Q4_0:
// the same weights quantised by llama.cpp's tools) and, where loadModel has the `weights` option,
// the bundled checkpoint quantised at load (q8, q4; f16 on request). Per variant, on the same
// prompts:
//   - greedy agreement: tokens generated until the first one that differs from f32's greedy
//     continuation (of `--tokens`; all of them = never diverged);
//   - teacher-forced on f32's greedy text (BOS + prompt + continuation, one prefill step each):
//     mean |Δ entropy| of the next-token distribution per position (engine.score's StepStats,
//     computed on the GPU over the full vocabulary), mean KL(f32 ‖ variant) of the full
//     distributions per position (the classifier GEMM over the kept hidden rows, as Session.logits,
//     16 rows per launch: the 32000 logits of each position read back),
//     the largest KL, the top-1 agreement per position, and the perplexity of f32's
//     continuation under each model (positions of the generated tokens only).
// Prints the table, writes bench/results/quality-<date>.json and .md, and bench/report/quality.md
// (committed; REPORT.md includes it).
//
// Usage: npm run bench:quality [-- --models gguf-q8,gguf-q4,q8,q4 --tokens 64 --out FILE.json]
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import type { Engine } from '../src/engine.ts';
import { MAP_MODE_READ, READBACK } from '../src/gpu/buffers.ts';
import { type KernelCall, encodeCalls } from '../src/gpu/pipelines.ts';
import type { Session } from '../src/runtime/session.ts';
import { createNodeEngine } from '../src/node/index.ts';
import { PROJECT_ROOT } from '../test/support/browser.ts';
import { machineInfo } from './machine.ts';
import { type ModelVariant, modelVariants } from './node-models.ts';

const { values: args } = parseArgs({
  options: {
    models: { type: 'string', default: 'gguf-q8,gguf-q4,q8,q4' },
    tokens: { type: 'string', default: '64' },
    out: { type: 'string' },
  },
});
const TOKENS = Number(args.tokens);
export const QUALITY_PROMPTS = ['Once upon a time', 'Lily and Ben were best friends', 'The little dog wanted to'];

const sessionOf = (e: Engine) => (e as unknown as { loaded: { session: Session } }).loaded.session;

interface PromptTrace {
  prompt: string;
  /** BOS + prompt ids. */
  promptTokens: number[];
  /** Greedy continuation. */
  generated: number[];
  /** Per position of the f32 text (next-token distribution after it): entropy (score) and log-softmax rows. */
  entropy: number[];
  logProbs: Float32Array[];
}

function logSoftmax(z: Float32Array): Float32Array {
  let max = -Infinity;
  for (const v of z) if (v > max) max = v;
  let sum = 0;
  for (const v of z) sum += Math.exp(v - max);
  const lse = max + Math.log(sum);
  const out = new Float32Array(z.length);
  for (let i = 0; i < z.length; i++) out[i] = z[i] - lse;
  return out;
}

/** KL(p ‖ q) from log-probabilities, nats. */
function kl(lp: Float32Array, lq: Float32Array): number {
  let s = 0;
  for (let i = 0; i < lp.length; i++) {
    const p = Math.exp(lp[i]);
    if (p > 0) s += p * (lp[i] - lq[i]);
  }
  return s;
}

const argmax = (xs: Float32Array) => {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i;
  return best;
};

/** Greedy continuation of `prompt` (what generate() does), and its prompt ids. */
async function greedy(engine: Engine, prompt: string) {
  const r = await engine.generate(prompt, { decoder: 'greedy', maxTokens: TOKENS, topK: 0 }).complete();
  return { promptTokens: r.tokens.slice(0, r.promptTokenCount), generated: r.tokens.slice(r.promptTokenCount) };
}

/** What the quality bench reaches inside the Session (private: a benchmark of internals). */
interface SessionInternals {
  ctx: { device: GPUDevice };
  graph: { logits: KernelCall[] };
  buffers: { step: GPUBuffer; logits: GPUBuffer };
  stepUniform: ArrayBuffer;
  maxStatsRows: number;
}

/**
 * The full logits of hidden rows start … start + count − 1 of the last step: Session.logits()
 * for up to maxStatsRows rows in one launch of the classifier GEMM (what the batched head does).
 */
async function logitsRows(session: Session, vocab: number, start: number, count: number): Promise<Float32Array[]> {
  const s = session as unknown as SessionInternals;
  const device = s.ctx.device;
  const u = new DataView(s.stepUniform);
  u.setUint32(4, start, true);
  u.setUint32(8, count, true);
  device.queue.writeBuffer(s.buffers.step, 0, s.stepUniform);
  const rowFloats = Math.ceil(vocab / 4) * 4;
  const bytes = count * rowFloats * 4;
  const staging = device.createBuffer({ label: 'quality logits', size: bytes, usage: READBACK });
  try {
    const encoder = device.createCommandEncoder({ label: 'quality logits' });
    const pass = encoder.beginComputePass();
    encodeCalls(pass, s.graph.logits, { nTokens: start + count, statsRows: count });
    pass.end();
    encoder.copyBufferToBuffer(s.buffers.logits, 0, staging, 0, bytes);
    device.queue.submit([encoder.finish()]);
    await staging.mapAsync(MAP_MODE_READ);
    const all = new Float32Array(staging.getMappedRange().slice(0));
    return Array.from({ length: count }, (_, r) => all.subarray(r * rowFloats, r * rowFloats + vocab));
  } finally {
    staging.destroy();
  }
}

/** Teacher forcing over `text` (BOS first): entropy per position from score(), full log-probs from the logits. */
async function teacherForce(engine: Engine, text: number[]) {
  const stats = await engine.score(text);
  const session = sessionOf(engine);
  const vocab = session.config.vocabSize;
  // One prefill step over the whole text leaves every position's hidden row in place for the logits.
  session.reset();
  await session.step(text.map((id, pos) => ({ id, pos, row: 0 })));
  const logProbs: Float32Array[] = [];
  const chunk = (session as unknown as SessionInternals).maxStatsRows;
  for (let i = 0; i < text.length; i += chunk) {
    for (const row of await logitsRows(session, vocab, i, Math.min(chunk, text.length - i))) logProbs.push(logSoftmax(row));
  }
  session.reset();
  return { entropy: stats.map((s) => s.entropy), logProbs };
}

let adapterSeen: unknown;

async function withEngine<T>(variant: ModelVariant, f: (e: Engine) => Promise<T>): Promise<T> {
  const engine = await createNodeEngine();
  adapterSeen ??= { architecture: engine.adapter.architecture, description: engine.adapter.description };
  try {
    await engine.loadModel(await variant.options());
    return await f(engine);
  } finally {
    await engine.dispose();
  }
}

interface VariantQuality {
  label: string;
  /** Per prompt: tokens until the first divergence (TOKENS = none). */
  agreement: number[];
  meanAbsDeltaEntropy: number;
  meanKl: number;
  maxKl: number;
  top1Agreement: number;
  /** Perplexity of f32's continuations (all prompts' generated positions together). */
  perplexity: number;
  error?: string;
}

function perplexity(traces: { text: number[]; promptLen: number; logProbs: Float32Array[] }[]): number {
  let nll = 0;
  let n = 0;
  for (const t of traces) {
    // Position i's distribution predicts token i + 1; the continuation starts at promptLen.
    for (let i = t.promptLen - 1; i < t.text.length - 1; i++) {
      nll -= t.logProbs[i][t.text[i + 1]];
      n++;
    }
  }
  return Math.exp(nll / n);
}

async function main() {
  const started = new Date();
  const [f32] = modelVariants('f32');
  console.log(`reference: f32 (bundled stories15M), ${QUALITY_PROMPTS.length} prompts, ${TOKENS} greedy tokens each`);
  const reference: PromptTrace[] = await withEngine(f32, async (e) => {
    const out: PromptTrace[] = [];
    for (const prompt of QUALITY_PROMPTS) {
      const g = await greedy(e, prompt);
      const tf = await teacherForce(e, [...g.promptTokens, ...g.generated]);
      out.push({ prompt, ...g, ...tf });
    }
    return out;
  });
  const textOf = (t: PromptTrace) => [...t.promptTokens, ...t.generated];
  const rows: VariantQuality[] = [{
    label: 'f32 (reference)', agreement: reference.map((t) => t.generated.length), meanAbsDeltaEntropy: 0, meanKl: 0, maxKl: 0, top1Agreement: 1,
    perplexity: perplexity(reference.map((t) => ({ text: textOf(t), promptLen: t.promptTokens.length, logProbs: t.logProbs }))),
  }];
  for (const variant of modelVariants(args.models!)) {
    process.stdout.write(`${variant.label} …\n`);
    try {
      rows.push(await withEngine(variant, async (e) => {
        const agreement: number[] = [];
        const dH: number[] = [];
        const kls: number[] = [];
        let top1 = 0;
        const traces = [];
        for (const ref of reference) {
          const g = await greedy(e, ref.prompt);
          if (g.promptTokens.join() !== ref.promptTokens.join()) throw new Error(`${variant.label} encodes ${JSON.stringify(ref.prompt)} differently`);
          let same = 0;
          while (same < ref.generated.length && g.generated[same] === ref.generated[same]) same++;
          agreement.push(same);
          const text = textOf(ref);
          const tf = await teacherForce(e, text);
          for (let i = 0; i < text.length; i++) {
            dH.push(Math.abs(tf.entropy[i] - ref.entropy[i]));
            kls.push(kl(ref.logProbs[i], tf.logProbs[i]));
            if (argmax(tf.logProbs[i]) === argmax(ref.logProbs[i])) top1++;
          }
          traces.push({ text, promptLen: ref.promptTokens.length, logProbs: tf.logProbs });
        }
        const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
        return {
          label: variant.label, agreement, meanAbsDeltaEntropy: mean(dH), meanKl: mean(kls), maxKl: Math.max(...kls),
          top1Agreement: top1 / kls.length, perplexity: perplexity(traces),
        };
      }));
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      console.log(`  ${variant.label}: ${message}`);
      rows.push({ label: variant.label, agreement: [], meanAbsDeltaEntropy: NaN, meanKl: NaN, maxKl: NaN, top1Agreement: NaN, perplexity: NaN, error: message });
    }
  }
  const positions = reference.reduce((s, t) => s + t.promptTokens.length + t.generated.length, 0);
  const md = qualityTable(rows, positions);
  console.log('\n' + md);
  const file = args.out ?? join(PROJECT_ROOT, 'bench', 'results', `quality-${started.toISOString().replace(/:/g, '-')}.json`);
  mkdirSync(join(file, '..'), { recursive: true });
  const result = {
    kind: 'quality', date: started.toISOString(), command: `npm run bench:quality -- ${process.argv.slice(2).join(' ')}`.trim(),
    machine: machineInfo(), prompts: QUALITY_PROMPTS, tokens: TOKENS, positions,
    reference: reference.map((t) => ({ prompt: t.prompt, promptTokens: t.promptTokens, generated: t.generated })), rows,
  };
  writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
  writeFileSync(file.replace(/\.json$/, '.md'), `# Quality of the quantised paths — ${result.date}\n\n${md}\n`);
  // The table REPORT.md includes (bench/matrix/report.ts), unless --out was given.
  if (!args.out) {
    writeFileSync(join(PROJECT_ROOT, 'bench', 'report', 'quality.md'), `## Quality of the quantised paths\n\n` +
      `\`${result.command}\` (${result.date.slice(0, 16)}, Node + Dawn on ${JSON.stringify(adapterSeen)}):\n\n${md}\n`);
  }
  console.log(`wrote ${relative(PROJECT_ROOT, file)} and .md`);
}

const n = (x: number, d: number) => (Number.isFinite(x) ? x.toFixed(d) : '—');

export function qualityTable(rows: VariantQuality[], positions: number): string {
  return [
    `| weights | greedy agreement (tokens until first divergence, of ${TOKENS}, per prompt) | mean abs Δ entropy (nats) | mean KL(f32 ‖ q) (nats) | max KL | top-1 agreement | perplexity of f32 text |`,
    '|---|---|---:|---:|---:|---:|---:|',
    ...rows.map((r) => r.error
      ? `| ${r.label} | not run: ${r.error.split('\n')[0].slice(0, 100)} | — | — | — | — | — |`
      : `| ${r.label} | ${r.agreement.join(', ')} | ${n(r.meanAbsDeltaEntropy, 4)} | ${n(r.meanKl, 5)} | ${n(r.maxKl, 4)} | ${n(100 * r.top1Agreement, 1)} % | ${n(r.perplexity, 3)} |`),
    '',
    `${positions} teacher-forced positions (${QUALITY_PROMPTS.length} prompts: ${QUALITY_PROMPTS.map((p) => JSON.stringify(p)).join(', ')}; BOS + prompt + f32's greedy continuation).`,
  ].join('\n');
}

await main();
