// Page side of test/browser/golden.test.ts: the public API on navigator.gpu with the model
// served by Vite from public/models, driven from Node through window.forkwisePage.
import { type Engine, type GenerateOptions, type LoadProgress, createEngine } from '../../../src/index.ts';

let engine: Engine | null = null;

async function load() {
  const progress: LoadProgress[] = [];
  engine = await createEngine();
  const info = await engine.loadModel({
    model: '/models/stories15M.bin',
    tokenizer: '/models/tokenizer.bin',
    onProgress: (p) => progress.push(p),
  });
  return { info, adapter: engine.adapter, progress: { count: progress.length, last: progress.at(-1), phases: [...new Set(progress.map((p) => p.phase))] } };
}

async function generate(prompt: string, options: GenerateOptions) {
  if (!engine) throw new Error('load() first');
  const r = await engine.generate(prompt, options).complete();
  return {
    tokens: r.tokens,
    text: r.text,
    finish: r.finish,
    timing: r.timing,
    steps: r.steps.map((s) => ({ pos: s.pos, inputToken: s.inputToken, tokenId: s.tokenId, lse: s.lse, entropy: s.entropy })),
  };
}

export const forkwisePage = { load, generate };

declare global {
  interface Window {
    forkwisePage: typeof forkwisePage;
  }
}
window.forkwisePage = forkwisePage;
