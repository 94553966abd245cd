// Live chart of entropy per generated token (SVG, redrawn per step): the entropy line, the
// decoder's gauge and threshold when it has them (EAD: rolling mean entropy against τ; SRGen:
// entropy against its adaptive θ), and a dot where the decoder acted. All in nats.
import type { GenerationStep } from '../src/index.ts';

const SVG = 'http://www.w3.org/2000/svg';
const W = 640;
const H = 150;
const PAD = { left: 34, right: 8, top: 8, bottom: 18 };

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

export class EntropyChart {
  readonly element: SVGSVGElement;
  private readonly entropy = svg('polyline', { class: 'entropy' });
  private readonly gauge = svg('polyline', { class: 'gauge' });
  private readonly threshold = svg('polyline', { class: 'threshold' });
  private readonly marks = svg('g', { class: 'marks' });
  private readonly axis = svg('g', { class: 'axis' });
  private readonly caption = svg('text', { x: PAD.left + 4, y: PAD.top + 10, class: 'caption' });
  private steps: GenerationStep[] = [];
  private slots = 1;
  private showGauge = false;

  constructor() {
    this.element = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', class: 'entropy-chart' });
    this.element.append(this.axis, this.threshold, this.gauge, this.entropy, this.marks, this.caption);
    this.reset(1, '', false);
  }

  /** Clears the chart for a generation of at most `slots` tokens; `label` names its lines. */
  reset(slots: number, label: string, showGauge: boolean): void {
    this.steps = [];
    this.showGauge = showGauge;
    this.slots = Math.max(2, slots);
    this.caption.textContent = `entropy per token (nats)${label ? ` · ${label}` : ''}`;
    this.element.setAttribute('aria-label', this.caption.textContent);
    this.draw();
  }

  push(step: GenerationStep): void {
    this.steps.push(step);
    this.draw();
  }

  private draw(): void {
    const values = this.steps.flatMap((s) => [s.entropy, s.gauge?.value ?? 0, Number.isFinite(s.gauge?.threshold) ? s.gauge!.threshold : 0]);
    const top = Math.max(3, ...values) * 1.1;
    const x = (i: number) => PAD.left + (i / (this.slots - 1)) * (W - PAD.left - PAD.right);
    const y = (v: number) => PAD.top + (1 - Math.min(Math.max(v, 0), top) / top) * (H - PAD.top - PAD.bottom);
    const line = (pick: (s: GenerationStep) => number | undefined) =>
      this.steps.flatMap((s, i) => {
        const v = pick(s);
        return v === undefined || !Number.isFinite(v) ? [] : [`${x(i).toFixed(1)},${y(v).toFixed(1)}`];
      }).join(' ');
    this.entropy.setAttribute('points', line((s) => s.entropy));
    this.gauge.setAttribute('points', this.showGauge ? line((s) => s.gauge?.value) : '');
    this.threshold.setAttribute('points', line((s) => s.gauge?.threshold));
    this.marks.replaceChildren(...this.steps.flatMap((s, i) =>
      s.event ? [svg('circle', { cx: x(i), cy: y(s.entropy), r: 3.5, class: `mark ${s.event.type}` })] : []));
    this.drawAxis(top, y);
  }

  private drawAxis(top: number, y: (v: number) => number): void {
    const ticks = [0, top / 2, top].map((v) => {
      const g = svg('g', {});
      g.append(svg('line', { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: 'grid' }));
      const label = svg('text', { x: PAD.left - 4, y: y(v) + 4, 'text-anchor': 'end' });
      label.textContent = v.toFixed(1);
      g.append(label);
      return g;
    });
    const end = svg('text', { x: W - PAD.right, y: H - 4, 'text-anchor': 'end' });
    end.textContent = `token ${this.slots}`;
    this.axis.replaceChildren(...ticks, end);
  }
}
