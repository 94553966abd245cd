// `npm run bench:decoders`: what the entropy-aware decoders cost and buy, on stories15M in Node
// (the `webgpu` package; SwiftShader here). Everything is measured in one process, side by side:
//   1. readback bytes per decode step, per decoder;
//   2. one batched step at B = 1, 2, 4, 8, 10 rows: cost of a trial token relative to a single-row
//      token (CNTP's trials are such rows);
//   3. CNTP vs plain sampling at the same temperature / top-p over many seeds: stories15M
//      perplexity of the produced text, distinct-2, time per emitted token;
//   4. EAD over a τ sweep: large-model share, cost ratio (formula and wall time vs large-only),
//      greedy agreement with large-only, stories15M perplexity; a table and an SVG chart;
//   5. SRGen at its defaults: reflections per 256 tokens, time per reflection in decode-step
//      units (against plain sampling at T = 0.6 with the same seed), mean loss reduction;
//   6. quality (`--only quality`): every sampling decoder at its defaults — sample T 1, CNTP,
//      SRGen, entropix, adaptive temperature, entropy top-k, typical 0.9, top-H — on stories15M
//      and on the student (stories-student.bin), prompts × seeds × tokens: stories15M perplexity of
//      the text (teacher-forced GPU statistics), distinct-2, mean stories15M entropy of the
//      generated positions (nats), decode tok/s, and entropix's branch histogram.
// Writes bench/results/decoders-<date>.json, .md and .svg.
//
// Usage: npm run bench:decoders [-- --seeds 50 --tokens 32 --ead-tokens 64 --only srgen,ead]
//        npm run bench:decoders -- --only quality --quality-seeds 20 --quality-tokens 128
//        (each finished row is appended to bench/results/decoder-quality-<date>.jsonl as it ends; a run cut
//        short goes on with `--resume <that file>`, which skips the rows it holds and appends;
//        `--quality-arms sample,cntp` runs only those arms: sample, cntp, srgen, entropix, adaptive,
//        entropy, typical, top-h)
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Engine, GenerateOptions, GenerationResult } from '../src/engine.ts';
import { summaryOf } from '../src/decode/registry.ts';
import { bundledModel, createNodeEngine } from '../src/node/index.ts';
import type { Session } from '../src/runtime/session.ts';
import { modelSession } from '../test/support/engine.ts';
import { machineInfo } from './machine.ts';

const { values: args } = parseArgs({
  options: {
    seeds: { type: 'string', default: '50' },
    tokens: { type: 'string', default: '32' },
    'ead-tokens': { type: 'string', default: '64' },
    only: { type: 'string' },
    'quality-seeds': { type: 'string', default: '20' },
    'quality-tokens': { type: 'string', default: '128' },
    'quality-models': { type: 'string', default: 'stories15M,student' },
    'quality-arms': { type: 'string' },
    resume: { type: 'string' },
  },
});
/** Sections to run (comma-separated: readback,batch,cntp,ead,srgen); all by default. */
const ONLY = new Set((args.only ?? 'readback,batch,cntp,ead,srgen').split(','));
const SEEDS = Number(args.seeds);
const TOKENS = Number(args.tokens);
const EAD_TOKENS = Number(args['ead-tokens']);
const PROMPTS = ['Once upon a time', 'Lily and Ben were best friends', 'The little dog'];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** stories15M perplexity of tokens[from..] given everything before. */
async function perplexity(session: Session, tokens: number[], from: number): Promise<number> {
  return (await scoreText(session, tokens, from)).ppl;
}

/**
 * stories15M perplexity of tokens[from..] and its mean entropy (nats) at those positions, from one
 * teacher-forced pass: each position's lse, entropy and next token's logit from the GPU statistics
 * (float32 reductions over the full logits; the llama2.c golden tests hold them within 2e-5 nats
 * of float64), rather than each position's 32k logits read back.
 */
async function scoreText(session: Session, tokens: number[], from: number): Promise<{ ppl: number; entropy: number }> {
  session.reset();
  const stats = await session.score(0, tokens);
  let nll = 0;
  let entropy = 0;
  for (let t = from - 1; t < tokens.length - 1; t++) {
    nll += stats[t].lse - stats[t].nextLogit!;
    entropy += stats[t].entropy;
  }
  const n = Math.max(1, tokens.length - from);
  return { ppl: Math.exp(nll / n), entropy: entropy / n };
}

function distinct2(texts: number[][]): number {
  const pairs = new Set<string>();
  let total = 0;
  for (const t of texts) for (let i = 1; i < t.length; i++, total++) pairs.add(`${t[i - 1]},${t[i]}`);
  return total ? pairs.size / total : 0;
}

async function timed(engine: Engine, prompt: string, o: GenerateOptions): Promise<GenerationResult & { wallMs: number }> {
  const t0 = performance.now();
  const r = await engine.generate(prompt, { reuse: false, ...o }).complete();
  return { ...r, wallMs: performance.now() - t0 };
}

async function batchedRows(session: Session) {
  const rows = [1, 2, 4, 8, 10];
  const prompt = [1, 9038, 2501, 263, 931];
  const perB: Record<number, number[]> = {};
  for (let rep = 0; rep < 5; rep++) {
    for (const B of rows) {
      session.reset();
      await session.step(prompt.map((id, pos) => ({ id, pos, row: 0 })));
      session.fork(0, Array.from({ length: B - 1 }, (_, i) => i + 1));
      const times: number[] = [];
      for (let s = 0; s < 4; s++) {
        const t0 = performance.now();
        await session.step(Array.from({ length: B }, (_, row) => ({ id: 300 + row + s, pos: 5 + s, row })), B);
        times.push(performance.now() - t0);
      }
      (perB[B] ??= []).push(median(times));
    }
  }
  const single = median(perB[1]);
  return rows.map((B) => ({ B, stepMs: median(perB[B]), perRowRelative: median(perB[B]) / B / single }));
}

async function main() {
  const pair = await createNodeEngine();
  const bytes = (p: string) => new Uint8Array(readFileSync(p));
  await pair.loadModel({ model: bytes(bundledModel.model), tokenizer: bytes(bundledModel.tokenizer), smallModel: bytes(bundledModel.smallModel) });
  const { session: scorer } = await modelSession(10);
  const report: Record<string, unknown> = { date: new Date().toISOString(), machine: machineInfo(), adapter: pair.adapter, protocol: { seeds: SEEDS, tokens: TOKENS, eadTokens: EAD_TOKENS, prompts: PROMPTS } };

  if (ONLY.has('readback')) {
  console.log('# readback bytes per decode step');
  const readback: Record<string, number> = {};
  const decoders: [string, GenerateOptions][] = [
    ['greedy', { decoder: 'greedy' }],
    ['sample T=1', { decoder: 'sample', temperature: 1 }],
    ['sample T=1 top-p 0.9', { decoder: 'sample', temperature: 1, topP: 0.9 }],
    ['cntp T=1 top-p 0.9', { decoder: 'cntp', temperature: 1, topP: 0.9 }],
    ['ead τ=1', { decoder: 'ead', tau: 1 }],
    ['srgen (defaults)', { decoder: 'srgen' }],
  ];
  for (const [name, o] of decoders) {
    const r = await timed(pair, PROMPTS[0], { ...o, maxTokens: TOKENS, seed: 1 });
    readback[name] = r.timing.readbackBytesPerStep;
    console.log(`${name.padEnd(24)} ${readback[name].toFixed(0)} B/step`);
  }
  report.readbackBytesPerStep = readback;
  }

  let batch: Awaited<ReturnType<typeof batchedRows>> = [];
  if (ONLY.has('batch')) {
    console.log('# batched rows');
    batch = await batchedRows(scorer);
    for (const b of batch) console.log(`B=${String(b.B).padStart(2)}  step ${b.stepMs.toFixed(1)} ms  per-row cost ${b.perRowRelative.toFixed(3)} of a single-row step`);
    report.batchedRows = batch;
  }

  let cntpSummary: Record<string, Record<string, number>> = {};
  if (ONLY.has('cntp')) {
  console.log(`# CNTP vs plain sampling (T = 1, top-p 0.9), ${SEEDS} seeds × ${TOKENS} tokens`);
  const base: GenerateOptions = { temperature: 1, topP: 0.9, maxTokens: TOKENS };
  const arms: Record<string, { ppl: number[]; tokens: number[][]; msPerToken: number[]; branches: number }> = {
    plain: { ppl: [], tokens: [], msPerToken: [], branches: 0 },
    cntp: { ppl: [], tokens: [], msPerToken: [], branches: 0 },
  };
  for (let seed = 0; seed < SEEDS; seed++) {
    const prompt = PROMPTS[seed % PROMPTS.length];
    for (const [arm, decoder] of [['plain', 'sample'], ['cntp', 'cntp']] as const) {
      const r = await timed(pair, prompt, { ...base, decoder, seed });
      const generated = r.tokens.slice(r.promptTokenCount);
      arms[arm].ppl.push(await perplexity(scorer, r.tokens, r.promptTokenCount));
      arms[arm].tokens.push(generated);
      arms[arm].msPerToken.push(r.wallMs / Math.max(1, generated.length));
      arms[arm].branches += r.events.length;
    }
  }
  cntpSummary = Object.fromEntries(Object.entries(arms).map(([arm, a]) => [arm, {
    meanPerplexity: mean(a.ppl), medianPerplexity: median(a.ppl), distinct2: distinct2(a.tokens),
    msPerToken: median(a.msPerToken), branches: a.branches,
  }]));
  console.table(cntpSummary);
  report.cntp = cntpSummary;
  }

  const sweep: Record<string, number>[] = [];
  if (ONLY.has('ead')) {
  console.log(`# EAD τ sweep (greedy, w = 5, d_min = 4), ${PROMPTS.length} prompts × ${EAD_TOKENS} tokens`);
  const taus = [-Infinity, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, Infinity];
  const largeOnly = new Map<string, GenerationResult & { wallMs: number }>();
  for (const tau of taus) {
    const rows = [];
    for (const prompt of PROMPTS) {
      const r = await timed(pair, prompt, { decoder: 'ead', tau, maxTokens: EAD_TOKENS });
      if (tau === -Infinity) largeOnly.set(prompt, r);
      const ref = largeOnly.get(prompt)!;
      const gen = r.tokens.slice(r.promptTokenCount);
      const refGen = ref.tokens.slice(ref.promptTokenCount);
      const agree = gen.filter((t, i) => t === refGen[i]).length / Math.max(gen.length, refGen.length);
      const summary = summaryOf(r.summary, 'ead');
      rows.push({
        largeShare: summary.largeShare, costRatio: summary.costRatio,
        wallRatio: (r.wallMs / Math.max(1, gen.length)) / (ref.wallMs / Math.max(1, refGen.length)),
        catchUpTokens: summary.catchUpTokens, agreement: agree,
        perplexity: await perplexity(scorer, r.tokens, r.promptTokenCount),
      });
    }
    const row = {
      tau, largeShare: mean(rows.map((x) => x.largeShare)), costRatio: mean(rows.map((x) => x.costRatio)),
      wallRatio: mean(rows.map((x) => x.wallRatio)), catchUpTokens: mean(rows.map((x) => x.catchUpTokens)),
      agreement: mean(rows.map((x) => x.agreement)), perplexity: mean(rows.map((x) => x.perplexity)),
    };
    sweep.push(row);
    console.log(`τ=${String(tau).padStart(9)} large ${row.largeShare.toFixed(2)} cost ${row.costRatio.toFixed(3)} wall ${row.wallRatio.toFixed(3)} ` +
      `catch-up ${row.catchUpTokens.toFixed(1)} agreement ${row.agreement.toFixed(2)} ppl ${row.perplexity.toFixed(2)}`);
  }
  report.ead = sweep;
  }

  if (ONLY.has('srgen')) report.srgen = await srgenSection(pair);
  if (ONLY.has('quality')) report.quality = await qualitySection(pair, scorer);

  const dir = join(import.meta.dirname, 'results');
  mkdirSync(dir, { recursive: true });
  const stem = join(dir, `decoders-${String(report.date).replace(/:/g, '-')}`);
  writeFileSync(`${stem}.json`, JSON.stringify(report, null, 2));
  writeFileSync(`${stem}.md`, markdown(report, batch, cntpSummary, sweep) + (report.quality ? qualityMarkdown(report.quality as QualityRow[]) : ''));
  if (sweep.length) writeFileSync(`${stem}.svg`, chart(sweep));
  console.log(`wrote ${stem}.json, .md, .svg`);
  pair.dispose();
  process.exit(0);
}

/** The decoders of the quality table, each at its defaults (sampling T 1 where it has none of its own). */
const QUALITY_ARMS: [string, GenerateOptions][] = [
  ['sample T 1', { decoder: 'sample', temperature: 1 }],
  ['cntp', { decoder: 'cntp' }],
  ['srgen', { decoder: 'srgen' }],
  ['entropix', { decoder: 'entropix' }],
  ['adaptive temperature', { decoder: 'adaptive-temperature' }],
  ['entropy top-k', { decoder: 'entropy-top-k' }],
  ['typical 0.9', { decoder: 'sample', temperature: 1, typical: 0.9 }],
  ['top-H', { decoder: 'sample', temperature: 1, topH: {} }],
];

interface QualityRow {
  model: string; arm: string; runs: number; tokens: number;
  meanPerplexity: number; medianPerplexity: number; distinct2: number; meanEntropy: number; tokPerSec: number;
  branches?: Record<string, number>;
  /** The protocol: seeds per prompt and tokens per generation (a resumed table keeps its own). */
  seeds: number; maxTokens: number;
  /** When the process that measured the row started (rows of a resumed table come from several). */
  run: string;
  wallSeconds: number;
  /**
   * That run's plain-sampling speed on this model (sample T 1, one seed per prompt, measured at the
   * run's start): tok/s ÷ it compares rows of different runs, which absolute tok/s do not.
   */
  referenceTokPerSec: number;
}

/** Decode tok/s of sample T 1 over one seed per prompt (a run's speed reference). */
async function referenceSpeed(engine: Engine, tokens: number): Promise<number> {
  let ms = 0;
  let n = 0;
  for (const prompt of PROMPTS) {
    const r = await engine.generate(prompt, { decoder: 'sample', temperature: 1, seed: 1000, maxTokens: tokens, reuse: false }).complete();
    ms += r.timing.decodeMs;
    n += r.steps.length;
  }
  return n / (ms / 1000);
}

/** The arm's name as --quality-arms takes it: 'sample T 1' → 'sample', 'top-H' → 'top-h'. */
const armKey = (arm: string) => arm.split(' ')[0].toLowerCase();

/**
 * Every arm on each model (stories15M; the student, a llama2.c model with the same tokenizer),
 * PROMPTS × seeds × tokens; the text scored by stories15M.
 */
async function qualitySection(large: Engine, scorer: Session): Promise<QualityRow[]> {
  const seeds = Number(args['quality-seeds']);
  const tokens = Number(args['quality-tokens']);
  const models = new Set(args['quality-models']!.split(','));
  const armsWanted = args['quality-arms'] ? new Set(args['quality-arms'].split(',')) : null;
  const run = new Date().toISOString();
  const log = args.resume ?? join(import.meta.dirname, 'results', `decoder-quality-${run.replace(/:/g, '-')}.jsonl`);
  const done: QualityRow[] = args.resume && existsSync(args.resume)
    ? readFileSync(args.resume, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as QualityRow)
    : [];
  const other = done.find((r) => r.seeds !== seeds || r.maxTokens !== tokens);
  if (other) throw new Error(`${log} holds rows of ${other.seeds} seeds × ${other.maxTokens} tokens; this run asks for ${seeds} × ${tokens}`);
  mkdirSync(dirname(log), { recursive: true });
  console.log(`# quality: ${PROMPTS.length} prompts × ${seeds} seeds × ${tokens} tokens, perplexity under stories15M; rows → ${log}` +
    (done.length ? ` (${done.length} rows there already)` : ''));
  const engines: [string, Engine][] = [];
  if (models.has('stories15M')) engines.push(['stories15M', large]);
  let student: Engine | null = null;
  if (models.has('student')) {
    student = await createNodeEngine();
    const bytes = (p: string) => new Uint8Array(readFileSync(p));
    await student.loadModel({ model: bytes(bundledModel.smallModel), tokenizer: bytes(bundledModel.tokenizer) });
    engines.push(['student', student]);
  }
  const rows: QualityRow[] = [...done];
  for (const [model, engine] of engines) {
    const pending = QUALITY_ARMS.filter(([arm]) => (!armsWanted || armsWanted.has(armKey(arm))) && !done.some((r) => r.model === model && r.arm === arm));
    if (pending.length === 0) continue;
    const referenceTokPerSec = await referenceSpeed(engine, tokens);
    console.log(`${model}: reference (sample T 1, one seed per prompt) ${referenceTokPerSec.toFixed(1)} tok/s`);
    for (const [arm, o] of pending) {
      const t0 = performance.now();
      const ppl: number[] = [];
      const entropy: number[] = [];
      const texts: number[][] = [];
      let decodeMs = 0;
      let decodeTokens = 0;
      const branches: Record<string, number> = {};
      for (const prompt of PROMPTS) {
        for (let seed = 0; seed < seeds; seed++) {
          const r = await engine.generate(prompt, { ...o, seed, maxTokens: tokens, reuse: false }).complete();
          const scored = await scoreText(scorer, r.tokens, r.promptTokenCount);
          ppl.push(scored.ppl);
          entropy.push(scored.entropy);
          texts.push(r.tokens.slice(r.promptTokenCount));
          decodeMs += r.timing.decodeMs;
          decodeTokens += r.steps.length;
          if (r.summary.decoder === 'entropix') for (const [b, n] of Object.entries(r.summary.branches)) branches[b] = (branches[b] ?? 0) + n;
        }
      }
      const row: QualityRow = {
        model, arm, runs: ppl.length, tokens: decodeTokens, meanPerplexity: mean(ppl), medianPerplexity: median(ppl),
        distinct2: distinct2(texts), meanEntropy: mean(entropy), tokPerSec: decodeTokens / (decodeMs / 1000),
        ...(Object.keys(branches).length ? { branches } : {}),
        seeds, maxTokens: tokens, run, wallSeconds: (performance.now() - t0) / 1000, referenceTokPerSec,
      };
      rows.push(row);
      appendFileSync(log, `${JSON.stringify(row)}\n`);
      console.log(`${model.padEnd(10)} ${arm.padEnd(22)} ppl ${row.meanPerplexity.toFixed(2)} (median ${row.medianPerplexity.toFixed(2)}) ` +
        `distinct-2 ${row.distinct2.toFixed(3)} H ${row.meanEntropy.toFixed(3)} ${row.tokPerSec.toFixed(1)} tok/s${row.branches ? ` ${JSON.stringify(row.branches)}` : ''}` +
        ` (${row.wallSeconds.toFixed(0)} s)`);
    }
  }
  student?.dispose();
  const order = (r: QualityRow) => (r.model === 'stories15M' ? 0 : 1) * 100 + QUALITY_ARMS.findIndex(([arm]) => arm === r.arm);
  return rows.sort((a, b) => order(a) - order(b));
}

function qualityMarkdown(rows: QualityRow[]): string {
  // tok/s compare only within one process on this machine: say which run measured each row
  const runs = [...new Set(rows.map((r) => r.run))];
  const runCol = runs.length > 1;
  const lines = ['', `| model | decoder | runs | mean ppl (stories15M) | median ppl | distinct-2 | mean H (nats) | decode tok/s | ÷ sample T 1 of its run |${runCol ? ' run |' : ''}`,
    `|---|---|---:|---:|---:|---:|---:|---:|---:|${runCol ? '---|' : ''}`];
  for (const r of rows) {
    lines.push(`| ${r.model} | ${r.arm} | ${r.runs} | ${r.meanPerplexity.toFixed(2)} | ${r.medianPerplexity.toFixed(2)} | ${r.distinct2.toFixed(3)} | ${r.meanEntropy.toFixed(3)} | ${r.tokPerSec.toFixed(1)} | ${(r.tokPerSec / r.referenceTokPerSec).toFixed(2)} |${runCol ? ` ${runs.indexOf(r.run) + 1} |` : ''}`);
  }
  if (runCol) lines.push('', runs.map((r, i) => `run ${i + 1}: ${r}`).join('; '));
  const hist = rows.filter((r) => r.branches);
  if (hist.length) {
    lines.push('', '| model | entropix branch | tokens |', '|---|---|---:|');
    for (const r of hist) for (const [b, n] of Object.entries(r.branches!)) lines.push(`| ${r.model} | ${b} | ${n} |`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * SRGen at its defaults on every prompt × 2 seeds, 256 tokens: reflections, their loss curves, and
 * their cost in decode steps — the SRGen run's extra time over plain sampling at T = 0.6 with the
 * same seed (same tokens until the first reflection), per reflection, over one plain step's time.
 */
async function srgenSection(engine: Engine) {
  console.log('# SRGen at defaults (T = 0.6), 256 tokens');
  let tokens = 0;
  let reflections = 0;
  const reductions: number[] = [];
  const costs: number[] = [];
  for (const prompt of PROMPTS) {
    for (const seed of [1, 2]) {
      const plain = await timed(engine, prompt, { decoder: 'sample', temperature: 0.6, seed, maxTokens: 256 });
      const srgen = await timed(engine, prompt, { decoder: 'srgen', seed, maxTokens: 256 });
      const n = srgen.steps.length;
      const events = srgen.events as unknown as { loss: number[] }[];
      tokens += n;
      reflections += events.length;
      for (const e of events) reductions.push(e.loss[0] - e.loss[e.loss.length - 1]);
      const stepMs = plain.wallMs / Math.max(1, plain.steps.length);
      if (events.length) costs.push((srgen.wallMs - stepMs * n) / events.length / stepMs);
      console.log(`${JSON.stringify(prompt)} seed ${seed}: ${events.length} reflections in ${n} tokens`);
    }
  }
  const result = {
    tokens, reflections, reflectionsPer256: (256 * reflections) / tokens,
    meanLossReduction: reductions.length ? mean(reductions) : null,
    reflectionCostInSteps: costs.length ? mean(costs) : null,
  };
  console.log(result);
  return result;
}

function markdown(report: Record<string, unknown>, batch: Awaited<ReturnType<typeof batchedRows>>, cntp: Record<string, Record<string, number>>, sweep: Record<string, number>[]): string {
  const lines = [`# Decoder benchmark ${report.date}`];
  // Each section's table only when its part ran (--only picks parts).
  const table = (head: string, align: string, rows: string[]) => {
    if (rows.length > 0) lines.push('', head, align, ...rows);
  };
  table('| decoder | readback B/step |', '|---|---:|',
    Object.entries((report.readbackBytesPerStep ?? {}) as Record<string, number>).map(([k, v]) => `| ${k} | ${v.toFixed(0)} |`));
  if (report.srgen) lines.push('', '```', JSON.stringify(report.srgen, null, 2), '```');
  table('| B rows | step ms | per-row cost vs B = 1 |', '|---:|---:|---:|',
    batch.map((b) => `| ${b.B} | ${b.stepMs.toFixed(1)} | ${b.perRowRelative.toFixed(3)} |`));
  table('| arm | mean ppl | median ppl | distinct-2 | ms/token | branches |', '|---|---:|---:|---:|---:|---:|',
    Object.entries(cntp).map(([k, v]) => `| ${k} | ${v.meanPerplexity.toFixed(3)} | ${v.medianPerplexity.toFixed(3)} | ${v.distinct2.toFixed(3)} | ${v.msPerToken.toFixed(1)} | ${v.branches} |`));
  table('| τ (bits) | large share | cost ratio | wall ratio | catch-up tokens | agreement | ppl |', '|---:|---:|---:|---:|---:|---:|---:|',
    sweep.map((r) => `| ${r.tau} | ${r.largeShare.toFixed(2)} | ${r.costRatio.toFixed(3)} | ${r.wallRatio.toFixed(3)} | ${r.catchUpTokens.toFixed(1)} | ${r.agreement.toFixed(2)} | ${r.perplexity.toFixed(2)} |`));
  return `${lines.join('\n')}\n`;
}

/** Perplexity against cost ratio, one point per τ. */
function chart(sweep: Record<string, number>[]): string {
  const W = 480, H = 320, m = 48;
  const xs = sweep.map((r) => r.costRatio), ys = sweep.map((r) => r.perplexity);
  const [x0, x1] = [Math.min(...xs, 0.2), 1.05], [y0, y1] = [Math.min(...ys) * 0.9, Math.max(...ys) * 1.1];
  const px = (x: number) => m + ((x - x0) / (x1 - x0)) * (W - 2 * m);
  const py = (y: number) => H - m - ((y - y0) / (y1 - y0)) * (H - 2 * m);
  const points = sweep.map((r) => `<circle cx="${px(r.costRatio).toFixed(1)}" cy="${py(r.perplexity).toFixed(1)}" r="4"/>` +
    `<text x="${(px(r.costRatio) + 6).toFixed(1)}" y="${(py(r.perplexity) - 6).toFixed(1)}" font-size="11">τ=${r.tau}</text>`).join('');
  const line = sweep.map((r, i) => `${i ? 'L' : 'M'}${px(r.costRatio).toFixed(1)},${py(r.perplexity).toFixed(1)}`).join(' ');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">` +
    `<rect width="${W}" height="${H}" fill="white"/><path d="${line}" fill="none" stroke="#888"/>${points}` +
    `<line x1="${m}" y1="${H - m}" x2="${W - m}" y2="${H - m}" stroke="black"/><line x1="${m}" y1="${m}" x2="${m}" y2="${H - m}" stroke="black"/>` +
    `<text x="${W / 2}" y="${H - 12}" text-anchor="middle" font-size="12">cost ratio (large = 1)</text>` +
    `<text x="14" y="${H / 2}" transform="rotate(-90 14 ${H / 2})" text-anchor="middle" font-size="12">stories15M perplexity</text>` +
    `<text x="${m}" y="${H - m + 14}" font-size="10">${x0.toFixed(2)}</text><text x="${W - m}" y="${H - m + 14}" font-size="10" text-anchor="end">${x1.toFixed(2)}</text>` +
    `<text x="${m - 4}" y="${H - m}" font-size="10" text-anchor="end">${y0.toFixed(1)}</text><text x="${m - 4}" y="${m + 4}" font-size="10" text-anchor="end">${y1.toFixed(1)}</text></svg>\n`;
}

await main();
