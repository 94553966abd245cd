// The demo page: load stories15M with a progress bar, generate with greedy or seeded sampling,
// stream tokens tinted by entropy. Model text is only ever inserted as text (textContent).
import {
  type Engine, type GenerateOptions, type GenerationStep, WebGPUUnavailableError, createEngine,
} from '../src/index.ts';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const ui = {
  progress: $<HTMLProgressElement>('load-progress'),
  status: $('load-status'),
  adapter: $('adapter'),
  form: $<HTMLFormElement>('controls'),
  prompt: $<HTMLTextAreaElement>('prompt'),
  decoder: $<HTMLSelectElement>('decoder'),
  temperature: $<HTMLInputElement>('temperature'),
  topP: $<HTMLInputElement>('top-p'),
  tau: $<HTMLInputElement>('tau'),
  seed: $<HTMLInputElement>('seed'),
  maxTokens: $<HTMLInputElement>('max-tokens'),
  generate: $<HTMLButtonElement>('generate'),
  stop: $<HTMLButtonElement>('stop'),
  output: $('output'),
  details: $('details'),
  stats: $('stats'),
  error: $('error'),
};

/** Entropy (nats) to a background: white when certain, orange to red as it grows past ~3 nats. */
export function entropyColor(entropy: number): string {
  const t = Math.min(1, Math.max(0, entropy / 3));
  return `hsla(${40 - 40 * t}, 95%, 55%, ${0.08 + 0.6 * t})`;
}

function showError(message: string) {
  ui.error.hidden = false;
  ui.error.textContent = message;
}

function describeStep(s: GenerationStep): string {
  const alts = s.topK.slice(0, 5).map((c) => `  ${JSON.stringify(c.text).padEnd(14)} ${(100 * c.prob).toFixed(1)}%`).join('\n');
  return `token ${JSON.stringify(s.text)} (id ${s.tokenId}, position ${s.pos})\n` +
    `entropy ${s.entropy.toFixed(3)} nats, varentropy ${s.varentropy.toFixed(3)}\ntop alternatives:\n${alts}`;
}

/** What a decoder did at a position, shown on the token (event types of the decoders). */
interface Marks {
  branch: Map<number, string>;
  reflect: Map<number, string>;
}

function appendToken(step: GenerationStep, marks: Marks) {
  const span = document.createElement('span');
  span.className = 'tok';
  if (step.model === 'small') span.classList.add('small');
  span.textContent = step.text;
  span.tabIndex = 0;
  span.style.background = entropyColor(step.entropy);
  span.dataset.entropy = String(step.entropy);
  const show = () => {
    const extra = [marks.branch.get(step.pos), marks.reflect.get(step.pos), step.model && `model: ${step.model}`].filter(Boolean);
    ui.details.textContent = [describeStep(step), ...extra].join('\n');
  };
  span.addEventListener('mouseenter', show);
  span.addEventListener('focus', show);
  ui.output.append(span);
  return span;
}

/** Describes decoder events; marks the token at each event's position once it is shown. */
function noteEvent(event: Record<string, unknown>, marks: Marks) {
  const pos = Number(event.pos);
  if (event.type === 'cntp') {
    const ppl = (event.ppl as number[]).map((p) => p.toFixed(2)).join(', ');
    marks.branch.set(pos, `CNTP: entropy ${Number(event.entropy).toFixed(2)} nats, ${event.trials} trials, perplexities [${ppl}], kept trial ${event.chosen}`);
  } else if (event.type === 'srgen') {
    const loss = (event.loss as number[]).map((l) => l.toFixed(4)).join(' → ');
    marks.reflect.set(pos, `SRGen reflection: entropy ${Number(event.entropy).toFixed(2)} > threshold ${Number(event.threshold).toFixed(2)}; loss ${loss}`);
  }
}

function options(): GenerateOptions {
  const decoder = ui.decoder.value as GenerateOptions['decoder'];
  const o: GenerateOptions = {
    decoder,
    temperature: Number(ui.temperature.value),
    topP: Number(ui.topP.value),
    seed: Number(ui.seed.value),
    maxTokens: Number(ui.maxTokens.value),
  };
  if (decoder === 'ead') o.tau = Number(ui.tau.value);
  return o;
}

async function run(engine: Engine) {
  let controller: AbortController | null = null;
  ui.stop.addEventListener('click', () => controller?.abort());
  ui.form.addEventListener('submit', async (event) => {
    event.preventDefault();
    ui.error.hidden = true;
    controller = new AbortController();
    ui.generate.disabled = true;
    ui.stop.disabled = false;
    ui.output.replaceChildren();
    const promptSpan = document.createElement('span');
    promptSpan.className = 'prompt';
    promptSpan.textContent = ui.prompt.value;
    ui.output.append(promptSpan);
    const started = performance.now();
    let count = 0;
    const marks: Marks = { branch: new Map(), reflect: new Map() };
    const spans = new Map<number, HTMLElement>();
    try {
      const generation = engine.generate(ui.prompt.value, { ...options(), signal: controller.signal });
      for await (const step of generation) {
        spans.set(step.pos, appendToken(step, marks));
        count++;
        ui.stats.textContent = `${count} tokens, ${(count / ((performance.now() - started) / 1000)).toFixed(1)} tok/s`;
      }
      const r = await generation.result;
      for (const event of r.events) noteEvent(event, marks);
      for (const pos of marks.branch.keys()) spans.get(pos)?.classList.add('branch');
      for (const pos of marks.reflect.keys()) spans.get(pos)?.classList.add('reflect');
      const summary = r.summary.largeShare === undefined ? '' : ` · large model ${(100 * Number(r.summary.largeShare)).toFixed(0)}% of tokens`;
      const branches = r.events.filter((e) => e.type === 'cntp').length;
      const reflections = r.events.filter((e) => e.type === 'srgen').length;
      ui.stats.textContent = `${r.steps.length} tokens · finish: ${r.finish} · decode ${r.timing.decodeTokPerSec.toFixed(1)} tok/s · ` +
        `prefill ${r.timing.prefillTokPerSec.toFixed(1)} tok/s · first token ${r.timing.ttftMs.toFixed(0)} ms · ` +
        `${r.timing.readbackBytesPerStep.toFixed(0)} B read back per step` +
        `${branches ? ` · ${branches} branch points` : ''}${reflections ? ` · ${reflections} reflections` : ''}${summary}`;
    } catch (error) {
      if ((error as { code?: string }).code === 'aborted') ui.stats.textContent = `stopped after ${count} tokens`;
      else showError((error as Error).message);
    } finally {
      ui.generate.disabled = false;
      ui.stop.disabled = true;
    }
  });
}

async function main() {
  let engine: Engine;
  try {
    engine = await createEngine();
  } catch (error) {
    if (error instanceof WebGPUUnavailableError) {
      $('no-webgpu').hidden = false;
      $('no-webgpu-reason').textContent = error.message;
      $('load').hidden = true;
      ui.form.hidden = true;
      return;
    }
    throw error;
  }
  const a = engine.adapter;
  ui.adapter.textContent = `adapter: ${[a.vendor, a.architecture, a.description].filter(Boolean).join(' · ')}${a.isFallback ? ' (CPU fallback)' : ''}`;
  try {
    const info = await engine.loadModel({
      model: '/models/stories15M.bin',
      tokenizer: '/models/tokenizer.bin',
      smallModel: '/models/stories-student.bin', // EAD's small model
      onProgress: (p) => {
        ui.progress.value = p.fraction;
        ui.status.textContent = p.phase === 'download'
          ? `downloading ${(p.loaded / 1e6).toFixed(1)} / ${(p.total / 1e6).toFixed(1)} MB`
          : `${p.phase}…`;
      },
    });
    ui.status.textContent = `stories15M ready: ${(info.parameterCount / 1e6).toFixed(1)} M parameters, ` +
      `${(info.gpuBytes / 2 ** 20).toFixed(0)} MiB on the GPU, loaded in ${(info.loadMs / 1000).toFixed(1)} s`;
    ui.generate.disabled = false;
    await run(engine);
  } catch (error) {
    showError((error as Error).message);
  }
}

void main();
