// Page side of test/browser/fixtures.test.ts: one engine on navigator.gpu loads model fixtures
// by URL (HF folder URLs, GGUF file URLs; served by Vite from test/fixtures with ranges) and
// generates greedily, driven from Node through window.fixturesPage.
import { type Engine, type LoadPhase, createEngine } from '../../../src/index.ts';

let engine: Engine | null = null;

async function run(model: string, prompt: string, maxTokens: number) {
  engine ??= await createEngine();
  const phases = new Set<LoadPhase>();
  const t0 = performance.now();
  const info = await engine.loadModel({ model, cache: false, onProgress: (p) => phases.add(p.phase) });
  const loadMs = performance.now() - t0;
  const r = await engine.generate(prompt, { maxTokens }).complete();
  return {
    info: { architecture: info.config.architecture, format: info.format, dtype: info.dtype, contextLength: info.contextLength },
    phases: [...phases],
    loadMs,
    tokens: r.tokens,
    promptTokenCount: r.promptTokenCount,
    finish: r.finish,
    steps: r.steps.map((s) => ({ pos: s.pos, tokenId: s.tokenId, lse: s.lse, entropy: s.entropy })),
    decodeTokPerSec: r.timing.decodeTokPerSec,
  };
}

export const fixturesPage = { run };

declare global {
  interface Window {
    fixturesPage: typeof fixturesPage;
  }
}
window.fixturesPage = fixturesPage;
