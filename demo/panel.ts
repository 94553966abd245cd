// One generation's view: the streamed text (tokens tinted by entropy, decoder actions marked),
// its live entropy chart and a stats line. The demo shows one panel, or two in compare view.
// Model text is only ever inserted with textContent.
import type { DecoderEvent, GenerationResult, GenerationStep } from '../src/index.ts';
import { EntropyChart } from './chart.ts';

/** Entropy (nats) to a background: white when certain, orange to red as it grows past ~3 nats. */
export function entropyColor(entropy: number): string {
  const t = Math.min(1, Math.max(0, entropy / 3));
  return `hsla(${40 - 40 * t}, 95%, 55%, ${0.08 + 0.6 * t})`;
}

export function describeStep(s: GenerationStep): string {
  const alts = s.topK.slice(0, 5).map((c) => `  ${JSON.stringify(c.text).padEnd(14)} ${(100 * c.prob).toFixed(1)}%`).join('\n');
  const gauge = s.gauge ? `\ndecoder gauge ${s.gauge.value.toFixed(3)} vs threshold ${s.gauge.threshold.toFixed(3)} nats` : '';
  return `token ${JSON.stringify(s.text)} (id ${s.tokenId}, position ${s.pos})${s.model ? `, ${s.model} model` : ''}\n` +
    `entropy ${s.entropy.toFixed(3)} nats, varentropy ${s.varentropy.toFixed(3)}${gauge}\ntop alternatives:\n${alts}`;
}

/** One line on what the decoder did at a token. */
export function describeEvent(e: DecoderEvent): string {
  switch (e.type) {
    case 'cntp':
      return `CNTP branch: entropy ${Number(e.entropy).toFixed(2)} nats → ${e.trials} trials, kept trial ${Number(e.chosen) + 1} (lowest perplexity)`;
    case 'ead':
      return `EAD switch ${e.from} → ${e.to}: rolling entropy ${Number(e.meanEntropyBits).toFixed(2)} bits; ${e.catchUpTokens} tokens caught up`;
    case 'srgen':
      return `SRGen reflection: entropy ${e.entropy.toFixed(2)} > θ ${e.threshold.toFixed(2)} nats; loss ${e.loss.map((l) => l.toFixed(4)).join(' → ')}`;
    case 'entropix': {
      const d = e.draw ? `: T ${e.draw.temperature.toFixed(3)}, top-k ${e.draw.topK}, top-p ${e.draw.topP.toFixed(3)}, min-p ${e.draw.minP.toFixed(3)}` +
        `${e.samples ? `, ${e.samples.length} samples, kept ${e.chosen! + 1}` : ''}` : '';
      return `entropix ${e.branch}: entropy ${e.ent.toFixed(2)} bits, varentropy ${e.vent.toFixed(2)} bits²${e.attention ? '' : ' (no attention statistics)'}${d}`;
    }
    default:
      return `${(e as { type: string }).type} event`;
  }
}

const EVENT_CLASS: Record<string, string> = { cntp: 'branch', srgen: 'reflect', ead: 'switch' };
/** entropix marks every token with its branch, colour-coded (style.css). */
const eventClass = (e: DecoderEvent) => (e.type === 'entropix' ? `entropix-${e.branch}` : EVENT_CLASS[e.type] ?? 'event');

/** Live counters for the stats line. */
interface Tally {
  tokens: number;
  branches: number;
  reflections: number;
  large: number;
  started: number;
}

export class OutputPanel {
  readonly chart = new EntropyChart();
  private tally: Tally = { tokens: 0, branches: 0, reflections: 0, large: 0, started: 0 };
  /** The generated text shown so far (the tokens' texts). */
  private shown = '';
  /** The memory indicator (showMemory), made on first use. */
  private memoryView: HTMLDetailsElement | null = null;

  constructor(
    readonly output: HTMLElement,
    readonly stats: HTMLElement,
    private readonly title: HTMLElement,
    private readonly onInspect: (step: GenerationStep, open: boolean) => void,
    chartSlot: HTMLElement,
  ) {
    chartSlot.replaceChildren(this.chart.element);
  }

  /** Clears the panel for a generation; `chartLabel` names the decoder's lines (EAD shows its rolling mean). */
  begin(prompt: string, label: string, maxTokens: number, chartLabel: string, showGauge: boolean): void {
    this.title.textContent = label;
    this.output.replaceChildren();
    const promptSpan = document.createElement('span');
    promptSpan.className = 'prompt';
    promptSpan.textContent = prompt;
    this.output.append(promptSpan);
    this.stats.textContent = '';
    this.chart.reset(maxTokens, chartLabel, showGauge);
    this.tally = { tokens: 0, branches: 0, reflections: 0, large: 0, started: performance.now() };
    this.shown = '';
  }

  push(step: GenerationStep): void {
    this.output.append(this.tokenSpan(step));
    this.shown += step.text;
    this.chart.push(step);
    const t = this.tally;
    t.tokens++;
    if (step.event?.type === 'cntp') t.branches++;
    if (step.event?.type === 'srgen') t.reflections++;
    if (step.model === 'large') t.large++;
    const rate = t.tokens / ((performance.now() - t.started) / 1000);
    this.stats.textContent = [
      `${t.tokens} tokens`, `${rate.toFixed(1)} tok/s`,
      `${t.branches} branches`, `large model ${step.model ? `${((100 * t.large) / t.tokens).toFixed(0)}%` : '–'}`,
      `${t.reflections} reflections`,
    ].join(' · ');
  }

  finish(r: GenerationResult): void {
    // Text still pending at the end (an incomplete multi-byte character) is in the completion only.
    if (r.completion.length > this.shown.length && r.completion.startsWith(this.shown)) {
      const tail = document.createElement('span');
      tail.className = 'tail';
      tail.textContent = r.completion.slice(this.shown.length);
      this.output.append(tail);
    }
    const share = r.summary.decoder !== 'ead' ? '' : ` · large model ${(100 * r.summary.largeShare).toFixed(0)}%`;
    const { branches, reflections } = this.tally;
    this.stats.textContent = `${r.steps.length} tokens · finish: ${r.finish} · decode ${r.timing.decodeTokPerSec.toFixed(1)} tok/s · ` +
      `prefill ${r.timing.prefillTokPerSec.toFixed(1)} tok/s · first token ${r.timing.ttftMs.toFixed(0)} ms · ` +
      `${r.timing.readbackBytesPerStep.toFixed(0)} B read back per step · ${branches} branches${share} · ${reflections} reflections`;
    this.showMemory(r);
  }

  /**
   * The memory indicator, once a policy has evicted: how much of the conversation the model still
   * sees, and (opened) those tokens' text.
   */
  private showMemory(r: GenerationResult): void {
    const m = r.memory;
    this.memoryView ??= (() => {
      const details = document.createElement('details');
      details.className = 'memory muted';
      details.append(document.createElement('summary'), document.createElement('p'));
      this.stats.after(details);
      return details;
    })();
    const evicted = m ? r.tokens.length - 1 - m.kept.length : 0;
    this.memoryView.hidden = !m || evicted <= 0;
    if (!m || evicted <= 0) return;
    const [summary, kept] = [this.memoryView.children[0], this.memoryView.children[1]] as HTMLElement[];
    summary.textContent = `memory (${m.policy}): the model sees ${m.kept.length} of ${r.tokens.length - 1} tokens; ` +
      `${m.evictions.length ? `${m.evictions.reduce((a, e) => a + e.evicted, 0)} evicted in this turn` : 'none evicted in this turn'}`;
    kept.textContent = m.keptText;
  }

  stopped(): void {
    this.stats.textContent = `stopped after ${this.tally.tokens} tokens`;
  }

  private tokenSpan(step: GenerationStep): HTMLElement {
    const span = document.createElement('span');
    span.className = 'tok';
    if (step.model === 'small') span.classList.add('small');
    if (step.event) span.classList.add('marked', eventClass(step.event));
    span.textContent = step.text;
    span.tabIndex = 0;
    span.style.background = entropyColor(step.entropy);
    span.dataset.entropy = String(step.entropy);
    span.dataset.pos = String(step.pos);
    span.addEventListener('mouseenter', () => this.onInspect(step, false));
    span.addEventListener('focus', () => this.onInspect(step, false));
    if (step.event) {
      span.title = 'click or press Enter for details';
      span.addEventListener('click', () => this.onInspect(step, true));
      span.addEventListener('keydown', (e) => {
        if (e.key === 'Enter') this.onInspect(step, true);
      });
    }
    return span;
  }
}
