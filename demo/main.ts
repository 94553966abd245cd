// The demo page: stories15M loaded with a progress bar into an engine in a Web Worker (so the
// page stays responsive), every decoder with its main parameters, tokens streamed and tinted by
// entropy, a live entropy chart with the decoder's threshold, and a compare view (same prompt
// and seed through two decoders). Model text is only ever inserted as text (textContent).
//
// `?engine=page` runs the engine on the main thread instead (for comparison); so does a browser
// whose workers lack WebGPU.
import {
  type DecoderName, type Engine, type GenerateOptions, type GenerationStep, WebGPUUnavailableError, createEngine,
} from '../src/index.ts';
import { createWorkerEngine } from '../src/worker/client.ts';
import { showEventDialog } from './event-dialog.ts';
import { OutputPanel, describeEvent, describeStep } from './panel.ts';

/** What the page needs from an engine: the in-page Engine and the WorkerEngine both fit. */
type DemoEngine = Pick<Engine, 'adapter' | 'loadModel' | 'generate'>;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const ui = {
  progress: $<HTMLProgressElement>('load-progress'),
  status: $('load-status'),
  adapter: $('adapter'),
  form: $<HTMLFormElement>('controls'),
  prompt: $<HTMLTextAreaElement>('prompt'),
  decoder: $<HTMLSelectElement>('decoder'),
  compare: $<HTMLSelectElement>('compare'),
  temperature: $<HTMLInputElement>('temperature'),
  topP: $<HTMLInputElement>('top-p'),
  maxTrials: $<HTMLInputElement>('max-trials'),
  tau: $<HTMLInputElement>('tau'),
  theta0: $<HTMLInputElement>('theta0'),
  thetaMin: $<HTMLInputElement>('theta-min'),
  seed: $<HTMLInputElement>('seed'),
  maxTokens: $<HTMLInputElement>('max-tokens'),
  generate: $<HTMLButtonElement>('generate'),
  stop: $<HTMLButtonElement>('stop'),
  panelB: $('panel-b'),
  details: $('details'),
  error: $('error'),
  dialog: $<HTMLDialogElement>('event-dialog'),
  dialogBody: $('event-body'),
};

function inspect(step: GenerationStep, open: boolean) {
  ui.details.textContent = [describeStep(step), step.event && describeEvent(step.event)].filter(Boolean).join('\n');
  if (open && step.event) showEventDialog(ui.dialog, ui.dialogBody, step);
}

const panels = [
  new OutputPanel($('output'), $('stats'), $('title-a'), inspect, $('chart')),
  new OutputPanel($('output-b'), $('stats-b'), $('title-b'), inspect, $('chart-b')),
];

function showError(message: string) {
  ui.error.hidden = false;
  ui.error.textContent = message;
}

/** Shows each decoder's parameters only when a chosen decoder uses them. */
function showParameters() {
  const chosen = new Set([ui.decoder.value, ui.compare.value]);
  for (const label of document.querySelectorAll<HTMLElement>('#controls .param')) label.hidden = !chosen.has(label.dataset.for!);
  ui.panelB.hidden = ui.compare.value === '';
}

function options(decoder: DecoderName): GenerateOptions {
  const o: GenerateOptions = {
    decoder,
    temperature: Number(ui.temperature.value),
    topP: Number(ui.topP.value),
    seed: Number(ui.seed.value),
    maxTokens: Number(ui.maxTokens.value),
  };
  if (decoder === 'cntp') o.maxTrials = Number(ui.maxTrials.value);
  if (decoder === 'ead') o.tau = Number(ui.tau.value);
  if (decoder === 'srgen') Object.assign(o, { theta0: Number(ui.theta0.value), thetaMin: Number(ui.thetaMin.value) });
  return o;
}

const CHART_LABEL: Partial<Record<DecoderName, string>> = {
  ead: 'blue: rolling mean, red: τ', srgen: 'red: adaptive threshold θ',
};

/** Streams one generation into `panel`; false if it was stopped. */
async function runInto(engine: DemoEngine, panel: OutputPanel, decoder: DecoderName, signal: AbortSignal): Promise<boolean> {
  const o = options(decoder);
  panel.begin(ui.prompt.value, decoder, o.maxTokens!, CHART_LABEL[decoder] ?? '', decoder === 'ead');
  try {
    const generation = engine.generate(ui.prompt.value, { ...o, signal });
    for await (const step of generation) panel.push(step);
    panel.finish(await generation.result);
    return true;
  } catch (error) {
    if ((error as { code?: string }).code !== 'aborted') throw error;
    panel.stopped();
    return false;
  }
}

function wire(engine: DemoEngine) {
  let controller: AbortController | null = null;
  ui.decoder.addEventListener('change', showParameters);
  ui.compare.addEventListener('change', showParameters);
  ui.stop.addEventListener('click', () => controller?.abort());
  ui.form.addEventListener('submit', async (event) => {
    event.preventDefault();
    ui.error.hidden = true;
    controller = new AbortController();
    ui.generate.disabled = true;
    ui.stop.disabled = false;
    const decoders = [ui.decoder.value, ui.compare.value].filter(Boolean) as DecoderName[];
    try {
      for (const [i, decoder] of decoders.entries()) {
        if (!(await runInto(engine, panels[i], decoder, controller.signal))) break;
      }
    } catch (error) {
      showError((error as Error).message);
    } finally {
      ui.generate.disabled = false;
      ui.stop.disabled = true;
    }
  });
}

/** The engine in a Web Worker; on the page when asked to, or when workers have no WebGPU. */
async function startEngine(): Promise<{ engine: DemoEngine; where: string }> {
  if (new URLSearchParams(location.search).get('engine') !== 'page') {
    const worker = new Worker(new URL('./engine-worker.ts', import.meta.url), { type: 'module' });
    try {
      return { engine: await createWorkerEngine(worker), where: 'engine in a Web Worker' };
    } catch (error) {
      worker.terminate();
      if (!(error instanceof WebGPUUnavailableError) || !('gpu' in navigator)) throw error;
    }
  }
  return { engine: await createEngine(), where: 'engine on the page' };
}

async function main() {
  showParameters();
  let started: Awaited<ReturnType<typeof startEngine>>;
  try {
    started = await startEngine();
  } catch (error) {
    if (!(error instanceof WebGPUUnavailableError)) throw error;
    $('no-webgpu').hidden = false;
    $('no-webgpu-reason').textContent = error.message;
    $('load').hidden = true;
    ui.form.hidden = true;
    return;
  }
  const { engine, where } = started;
  const a = engine.adapter;
  ui.adapter.textContent = `adapter: ${[a.vendor, a.architecture, a.description].filter(Boolean).join(' · ')}` +
    `${a.isFallback ? ' (CPU fallback)' : ''} · ${where}`;
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
    wire(engine);
  } catch (error) {
    showError((error as Error).message);
  }
}

void main();
