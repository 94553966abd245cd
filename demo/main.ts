// The demo page: a model loaded with a progress bar into an engine in a Web Worker (so the page
// stays responsive), every decoder with its main parameters, tokens streamed and tinted by
// entropy, a live entropy chart with the decoder's threshold, and a compare view (same prompt
// and seed through two decoders). Model text and file names are only ever inserted as text
// (textContent).
//
// Models: the bundled stories15M (with EAD's small model), the model fixtures the dev server
// lists at /fixtures/models.json, files or a folder from disk, or a Hugging Face id. A model with
// a chat template gets a chat mode: the conversation so far goes to the template as messages.
//
// `?engine=page` runs the engine on the main thread instead (for comparison); so does a browser
// whose workers lack WebGPU. `?hub=<url>` loads Hugging Face ids from another hub (a mirror).
import {
  type ChatMessage, DECODER_SPECS, type DecoderName, type Engine, type GenerateOptions, type GenerationStep, type LoadModelOptions,
  type MemoryPolicy, type ModelInfo, type ParamSpec, type Prompt, WebGPUUnavailableError, createEngine,
} from '../src/index.ts';
import { createWorkerEngine } from '../src/worker/client.ts';
import { showEventDialog } from './event-dialog.ts';
import { OutputPanel, describeEvent, describeStep } from './panel.ts';

/** What the page needs from an engine: the in-page Engine and the WorkerEngine both fit. */
type DemoEngine = Pick<Engine, 'adapter' | 'loadModel' | 'generate'>;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const ui = {
  model: $<HTMLSelectElement>('model'),
  fixtureModels: $<HTMLOptGroupElement>('fixture-models'),
  openedModels: $<HTMLOptGroupElement>('opened-models'),
  openFiles: $<HTMLInputElement>('open-files'),
  openFolder: $<HTMLInputElement>('open-folder'),
  hfForm: $<HTMLFormElement>('hf-form'),
  hfId: $<HTMLInputElement>('hf-id'),
  progress: $<HTMLProgressElement>('load-progress'),
  status: $('load-status'),
  adapter: $('adapter'),
  form: $<HTMLFormElement>('controls'),
  promptLabel: $('prompt-label'),
  prompt: $<HTMLTextAreaElement>('prompt'),
  chatToggle: $('chat-toggle'),
  chat: $<HTMLInputElement>('chat'),
  newChat: $<HTMLButtonElement>('new-chat'),
  chatLog: $('chat-log'),
  messages: $<HTMLOListElement>('messages'),
  decoder: $<HTMLSelectElement>('decoder'),
  compare: $<HTMLSelectElement>('compare'),
  temperature: $<HTMLInputElement>('temperature'),
  topP: $<HTMLInputElement>('top-p'),
  decoderParams: $('decoder-params'),
  seed: $<HTMLInputElement>('seed'),
  maxTokens: $<HTMLInputElement>('max-tokens'),
  memory: $<HTMLSelectElement>('memory'),
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

/** A parameter's control: the older short flag's name where it has one (`tau`), else `<decoder>-<param>`. */
const controlId = (decoder: string, name: string, p: ParamSpec) =>
  (p.legacy ?? `${decoder}-${name}`).replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** The decoder menus and each decoder's demo parameters, from the registry. */
function buildDecoderControls() {
  for (const spec of DECODER_SPECS) {
    for (const select of [ui.decoder, ui.compare]) {
      const option = document.createElement('option');
      option.value = spec.name;
      option.textContent = spec.title;
      option.title = spec.doc;
      select.append(option);
    }
    for (const [name, p] of Object.entries(spec.params as Record<string, ParamSpec>)) {
      if (!p.demo || p.type === 'boolean' || p.type === 'token') continue;
      const label = document.createElement('label');
      label.className = 'param';
      label.dataset.for = spec.name;
      label.title = p.doc;
      const input = document.createElement('input');
      input.id = controlId(spec.name, name, p);
      input.type = 'number';
      // 'any': a default off the arrows' step (k_max 2000 from 1 by 100) must not block the form.
      input.step = 'any';
      if (!p.infinite) Object.assign(input, { min: String(p.min), max: String(Math.min(p.max, 1e9)) });
      input.value = String(p.default);
      label.append(`${spec.title} ${name}${p.unit ? ` (${p.unit})` : ''} `, input);
      ui.decoderParams.append(label);
    }
  }
}
buildDecoderControls();

function options(decoder: DecoderName): GenerateOptions {
  const o: GenerateOptions = {
    decoder,
    temperature: Number(ui.temperature.value),
    topP: Number(ui.topP.value),
    seed: Number(ui.seed.value),
    maxTokens: Number(ui.maxTokens.value),
  };
  const spec = DECODER_SPECS.find((s) => s.name === decoder)!;
  const section: Record<string, number> = {};
  for (const [name, p] of Object.entries(spec.params as Record<string, ParamSpec>)) {
    const input = p.demo && document.getElementById(controlId(spec.name, name, p)) as HTMLInputElement | null;
    if (input) section[name] = Number(input.value);
  }
  if (Object.keys(section).length) Object.assign(o, { [spec.key]: section });
  // Memory policies run on one model's row 0: not for EAD (two models) or SRGen (per-position state).
  const policy = ui.memory.value as MemoryPolicy;
  const req = spec.requires(Object.fromEntries(Object.entries(spec.params as Record<string, ParamSpec>).map(([k, p]) => [k, p.default])) as never);
  if (policy !== 'none' && !req.smallModel && !req.hiddenStates) o.memory = { policy };
  return o;
}

const CHART_LABEL: Partial<Record<DecoderName, string>> = {
  ead: 'blue: rolling mean, red: τ', srgen: 'red: adaptive threshold θ', 'adaptive-temperature': 'red: calibration pivot e^m',
  entropix: 'underline: branch (grey first, green argmax, amber clarify, blue explore, red resample, purple adaptive)',
};

/** Streams one generation into `panel` (showing `shown` as its prompt): the completion, and whether it was stopped. */
async function runInto(
  engine: DemoEngine, panel: OutputPanel, decoder: DecoderName, prompt: Prompt, shown: string, signal: AbortSignal,
): Promise<{ completion: string; stopped: boolean }> {
  const o = options(decoder);
  panel.begin(shown, decoder, o.maxTokens!, CHART_LABEL[decoder] ?? '', decoder === 'ead');
  let completion = '';
  try {
    const generation = engine.generate(prompt, { ...o, signal });
    for await (const step of generation) {
      panel.push(step);
      completion += step.text;
    }
    const result = await generation.result;
    panel.finish(result);
    return { completion: result.completion, stopped: false };
  } catch (error) {
    if ((error as { code?: string }).code !== 'aborted') throw error;
    panel.stopped();
    return { completion, stopped: true };
  }
}

/** A model the page can load: its name on the page, and what loadModel gets. */
interface ModelChoice {
  /** Its <option>'s value. */
  key: string;
  label: string;
  load: Omit<LoadModelOptions, 'onProgress' | 'signal'>;
}

const BUNDLED: ModelChoice = {
  key: 'bundled',
  label: 'stories15M',
  load: {
    model: '/models/stories15M.bin',
    tokenizer: '/models/tokenizer.bin',
    smallModel: '/models/stories-student.bin', // EAD's small model
  },
};

/** A model fixture as the dev server lists it (vite.config.ts). */
interface FixtureModel {
  id: string;
  label: string;
  url: string;
}

/** The dev server's model fixtures; none where the list is not served (a production build). */
async function fixtureModels(): Promise<FixtureModel[]> {
  try {
    const response = await fetch('/fixtures/models.json');
    if (!response.ok) return [];
    const list: unknown = await response.json();
    if (!Array.isArray(list)) return [];
    return list.filter((m): m is FixtureModel => typeof m === 'object' && m !== null &&
      typeof m.id === 'string' && typeof m.label === 'string' && typeof m.url === 'string');
  } catch {
    return [];
  }
}

/**
 * Files picked together as a model: a Hugging Face folder, one .gguf, or a llama2.c .bin with its
 * tokenizer.bin (passed as the tokenizer).
 */
function filesChoice(files: File[], key: string): ModelChoice {
  const tokenizer = files.find((f) => f.name === 'tokenizer.bin');
  const pair = tokenizer && files.some((f) => f !== tokenizer && /\.bin$/i.test(f.name)) ? tokenizer : undefined;
  const model = pair ? files.filter((f) => f !== pair) : files;
  const folder = files[0].webkitRelativePath.split('/')[0];
  const main = model.find((f) => /\.(gguf|bin)$/i.test(f.name));
  const names = model.map((f) => f.name);
  const label = folder || main?.name || (names.length > 3 ? `${names.slice(0, 3).join(', ')} + ${names.length - 3} more` : names.join(', '));
  return { key, label, load: { model, ...(pair ? { tokenizer: pair } : {}) } };
}

/** Hugging Face ids are read from this hub: ?hub=<url> (made absolute: the worker resolves nothing), else huggingface.co. */
const HUB_URL = (() => {
  const hub = new URLSearchParams(location.search).get('hub');
  return hub ? new URL(hub, location.href).href : undefined;
})();

function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} M`;
  return `${(n / 1e3).toFixed(0)} k`;
}

function readyLine(label: string, info: ModelInfo): string {
  const kind = info.config.architecture === info.format ? info.format : `${info.config.architecture} · ${info.format}`;
  return `${label} ready: ${kind} · ${info.dtype} · ` +
    `${formatCount(info.parameterCount)} parameters · context ${info.contextLength} · ` +
    `${(info.gpuBytes / 2 ** 20).toFixed(0)} MiB on the GPU · loaded in ${(info.loadMs / 1000).toFixed(1)} s`;
}

function wire(engine: DemoEngine) {
  /** The model the engine holds (a failed load keeps it). */
  let current: { choice: ModelChoice; status: string } | null = null;
  let loading: AbortController | null = null;
  let generating: AbortController | null = null;
  const choices = new Map<string, ModelChoice>([[BUNDLED.key, BUNDLED]]);
  let opened = 0;
  /** Chat mode: the turns so far (user and assistant), sent with each new message. */
  let history: ChatMessage[] = [];

  const chatOn = () => ui.chat.checked && !ui.chatToggle.hidden;
  const refresh = () => {
    const busy = loading !== null || generating !== null;
    ui.generate.disabled = !current || busy;
    ui.stop.disabled = !busy;
    for (const control of [ui.model, ui.openFiles, ui.openFolder, ui.hfId, $<HTMLButtonElement>('hf-load')]) control.disabled = loading !== null;
  };

  function renderHistory() {
    ui.messages.replaceChildren(...history.map((m) => {
      const item = document.createElement('li');
      item.className = `msg ${m.role}`;
      const role = document.createElement('span');
      role.className = 'role';
      role.textContent = m.role;
      const content = document.createElement('span');
      content.className = 'content';
      content.textContent = m.content;
      item.append(role, content);
      return item;
    }));
    ui.chatLog.hidden = !chatOn() || history.length === 0;
  }

  function chatChanged() {
    ui.newChat.hidden = !chatOn();
    ui.promptLabel.textContent = chatOn() ? 'Message' : 'Prompt';
    renderHistory();
  }

  /** EAD needs a small model (only the bundled stories15M brings one); chat needs a template. */
  function modelChanged(info: ModelInfo) {
    const ead = info.smallParameterCount !== null;
    for (const select of [ui.decoder, ui.compare]) {
      const option = select.querySelector<HTMLOptionElement>('option[value="ead"]')!;
      option.disabled = !ead;
      option.title = ead ? '' : 'needs a small model with the same vocabulary (the bundled stories15M has one)';
      if (!ead && select.value === 'ead') select.value = select === ui.decoder ? 'greedy' : '';
    }
    showParameters();
    ui.chatToggle.hidden = !info.hasChatTemplate;
    history = [];
    chatChanged();
  }

  /** Loads `choice`; on failure shows why and keeps the model there was. */
  async function load(choice: ModelChoice): Promise<void> {
    const controller = new AbortController();
    loading = controller;
    refresh();
    ui.error.hidden = true;
    ui.progress.value = 0;
    ui.status.textContent = `Loading ${choice.label}…`;
    try {
      const info = await engine.loadModel({
        ...choice.load,
        signal: controller.signal,
        onProgress: (p) => {
          ui.progress.value = p.fraction;
          ui.status.textContent = p.phase === 'download'
            ? `${choice.label}: downloading ${(p.loaded / 1e6).toFixed(1)} / ${(p.total / 1e6).toFixed(1)} MB`
            : `${choice.label}: ${p.phase}… ${Math.round(100 * p.fraction)}%`;
        },
      });
      current = { choice, status: readyLine(choice.label, info) };
      ui.progress.value = 1;
      ui.status.textContent = current.status;
      if (choice.key.startsWith('opened:') && !choices.has(choice.key)) {
        choices.set(choice.key, choice);
        const option = document.createElement('option');
        option.value = choice.key;
        option.textContent = choice.label;
        ui.openedModels.append(option);
        ui.openedModels.hidden = false;
      }
      modelChanged(info);
    } catch (error) {
      const stopped = (error as { code?: string }).code === 'aborted';
      if (!stopped) showError(`Could not load ${choice.label}: ${(error as Error).message}`);
      ui.progress.value = current ? 1 : 0;
      ui.status.textContent = `${stopped ? `Loading ${choice.label} was stopped. ` : ''}${current?.status ?? 'No model is loaded.'}`;
    } finally {
      loading = null;
      ui.model.value = current?.choice.key ?? '';
      refresh();
    }
  }

  ui.decoder.addEventListener('change', showParameters);
  ui.compare.addEventListener('change', showParameters);
  ui.stop.addEventListener('click', () => {
    generating?.abort();
    loading?.abort();
  });
  ui.chat.addEventListener('change', chatChanged);
  ui.newChat.addEventListener('click', () => {
    history = [];
    renderHistory();
  });
  ui.model.addEventListener('change', () => {
    const choice = choices.get(ui.model.value);
    if (choice) void load(choice);
  });
  for (const input of [ui.openFiles, ui.openFolder]) {
    input.addEventListener('change', () => {
      const files = [...(input.files ?? [])];
      input.value = ''; // picking the same files again is a change too
      if (files.length) void load(filesChoice(files, `opened:${++opened}`));
    });
  }
  ui.hfForm.addEventListener('submit', (event) => {
    event.preventDefault();
    // An id, or a pasted hub URL of one.
    const id = ui.hfId.value.trim().replace(/^hf:/, '').replace(/^https?:\/\/huggingface\.co\//, '').replace(/\/+$/, '');
    if (!/^[^/\s]+\/[^/\s]+(\/\S+)?$/.test(id)) {
      showError('A Hugging Face model is Owner/Name, e.g. HuggingFaceTB/SmolLM2-135M-Instruct (or Owner/Name/file.gguf).');
      return;
    }
    void load({ key: `opened:${++opened}`, label: `hf:${id}`, load: { model: `hf:${id}`, ...(HUB_URL ? { hubUrl: HUB_URL } : {}) } });
  });
  ui.form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!current || loading || generating) return;
    ui.error.hidden = true;
    const controller = new AbortController();
    generating = controller;
    refresh();
    const text = ui.prompt.value;
    const chat = chatOn();
    const prompt: Prompt = chat ? { messages: [...history, { role: 'user', content: text }] } : text;
    for (const panel of panels) panel.output.classList.toggle('chat', chat); // the message on a line of its own
    renderHistory();
    const decoders = [ui.decoder.value, ui.compare.value].filter(Boolean) as DecoderName[];
    try {
      for (const [i, decoder] of decoders.entries()) {
        const reply = await runInto(engine, panels[i], decoder, prompt, text, controller.signal);
        if (i === 0 && chat) {
          history.push({ role: 'user', content: text }, { role: 'assistant', content: reply.completion });
          ui.prompt.value = '';
        }
        if (reply.stopped) break;
      }
    } catch (error) {
      showError((error as Error).message);
    } finally {
      generating = null;
      refresh();
    }
  });

  return {
    load,
    addFixtures(models: FixtureModel[]) {
      for (const m of models) {
        const choice: ModelChoice = { key: `fixture:${m.id}`, label: m.id, load: { model: m.url, cache: false } };
        choices.set(choice.key, choice);
        const option = document.createElement('option');
        option.value = choice.key;
        option.textContent = m.label;
        ui.fixtureModels.append(option);
      }
      ui.fixtureModels.hidden = ui.fixtureModels.childElementCount === 0;
    },
  };
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
  const fixtures = fixtureModels();
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
  const demo = wire(engine);
  demo.addFixtures(await fixtures);
  await demo.load(BUNDLED);
}

void main();
