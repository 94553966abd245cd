// The details of a marked token, in a <dialog>: a CNTP branch's trials with their perplexities,
// an SRGen reflection's loss curve, an EAD switch. Built from DOM nodes and textContent only.
import type { CntpEvent, GenerationStep } from '../src/index.ts';
import { describeEvent, describeStep } from './panel.ts';

const SVG = 'http://www.w3.org/2000/svg';

function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, className?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function trialsTable(e: CntpEvent): HTMLTableElement {
  const table = el('table', undefined, 'trials');
  const head = el('tr');
  for (const h of ['trial', 'text', 'perplexity', '']) head.append(el('th', h));
  table.append(head);
  const texts = e.texts ?? [];
  e.ppl.forEach((ppl, i) => {
    const row = el('tr', undefined, i === e.chosen ? 'chosen' : '');
    row.append(el('td', String(i + 1)), el('td', JSON.stringify(texts[i] ?? '')), el('td', ppl.toFixed(3)),
      el('td', i === e.chosen ? 'kept' : ''));
    table.append(row);
  });
  return table;
}

/** The loss at each AdamW step as a small line chart, values labelled. */
function lossCurve(losses: number[]): SVGSVGElement {
  const [w, h, pad] = [320, 120, 24];
  const chart = document.createElementNS(SVG, 'svg');
  chart.setAttribute('viewBox', `0 0 ${w} ${h}`);
  chart.setAttribute('class', 'loss-curve');
  chart.setAttribute('role', 'img');
  chart.setAttribute('aria-label', `reflection loss per AdamW step: ${losses.map((l) => l.toFixed(4)).join(', ')}`);
  const lo = Math.min(...losses);
  const span = Math.max(Math.max(...losses) - lo, 1e-9);
  const x = (i: number) => pad + (i / Math.max(1, losses.length - 1)) * (w - 2 * pad);
  const y = (v: number) => pad / 2 + (1 - (v - lo) / span) * (h - 1.5 * pad);
  const line = document.createElementNS(SVG, 'polyline');
  line.setAttribute('points', losses.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' '));
  chart.append(line);
  losses.forEach((v, i) => {
    const label = document.createElementNS(SVG, 'text');
    label.setAttribute('x', String(x(i)));
    label.setAttribute('y', String(Math.min(h - 4, y(v) + 14)));
    label.setAttribute('text-anchor', 'middle');
    label.textContent = `${i}: ${v.toFixed(4)}`;
    chart.append(label);
  });
  return chart;
}

export function showEventDialog(dialog: HTMLDialogElement, body: HTMLElement, step: GenerationStep): void {
  const e = step.event!;
  const parts: Node[] = [el('p', describeEvent(e)), el('pre', describeStep(step))];
  if (e.type === 'cntp') parts.splice(1, 0, trialsTable(e));
  if (e.type === 'srgen') parts.splice(1, 0, el('p', 'Loss of δ at each AdamW step (0 = before):'), lossCurve(e.loss));
  body.replaceChildren(...parts);
  if (!dialog.open) dialog.showModal();
}
