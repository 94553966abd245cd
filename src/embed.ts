// Entry of the script-tag build (dist/forkwise.iife.js, global `forkwise`): the public API of
// index.ts plus the custom element <forkwise-generate>, which streams a generation into the page:
//
//   <script src="forkwise.iife.js"></script>
//   <forkwise-generate prompt="Once upon a time" decoder="greedy" max-tokens="20"></forkwise-generate>
//
// The element shows the prompt followed by each generated piece. Attributes: model, tokenizer (URLs; default /models/stories15M.bin, /models/tokenizer.bin),
// prompt, decoder, max-tokens, seed, temperature. The element sets `state` to
// loading | generating | done | error and dispatches `forkwise-done` (detail: { result } or
// { error }). Text is only ever appended as text nodes, never parsed as HTML.
import { type DecoderName, type GenerateOptions, type GenerationResult, createEngine } from './engine.ts';

export * from './index.ts';

export const DEFAULT_MODEL_URL = '/models/stories15M.bin';
export const DEFAULT_TOKENIZER_URL = '/models/tokenizer.bin';

export type GenerateElementState = 'loading' | 'generating' | 'done' | 'error';

export interface GenerateElementDoneDetail {
  result?: GenerationResult;
  error?: unknown;
}

/** Base class: HTMLElement in a browser, a stub elsewhere (so the module imports in Node). */
const ElementBase: typeof HTMLElement = typeof HTMLElement === 'undefined' ? (class {} as typeof HTMLElement) : HTMLElement;

export class ForkwiseGenerateElement extends ElementBase {
  private started = false;

  connectedCallback(): void {
    if (this.started) return; // moving the element in the DOM does not start it again
    this.started = true;
    void this.run();
  }

  private number(name: string): number | undefined {
    const value = this.getAttribute(name);
    return value === null || value.trim() === '' ? undefined : Number(value);
  }

  private options(): GenerateOptions {
    const options: GenerateOptions = {};
    const decoder = this.getAttribute('decoder');
    if (decoder) options.decoder = decoder as DecoderName;
    const maxTokens = this.number('max-tokens');
    if (maxTokens !== undefined) options.maxTokens = maxTokens;
    const seed = this.number('seed');
    if (seed !== undefined) options.seed = seed;
    const temperature = this.number('temperature');
    if (temperature !== undefined) options.temperature = temperature;
    return options;
  }

  private async run(): Promise<void> {
    const detail: GenerateElementDoneDetail = {};
    try {
      this.setAttribute('state', 'loading' satisfies GenerateElementState);
      const engine = await createEngine();
      await engine.loadModel({
        model: this.getAttribute('model') || DEFAULT_MODEL_URL,
        tokenizer: this.getAttribute('tokenizer') || DEFAULT_TOKENIZER_URL,
      });
      this.setAttribute('state', 'generating' satisfies GenerateElementState);
      const prompt = this.getAttribute('prompt') ?? '';
      this.textContent = prompt; // then each step's text: the element reads as result.text
      const generation = engine.generate(prompt, this.options());
      for await (const step of generation) this.append(document.createTextNode(step.text));
      detail.result = await generation.result;
      this.setAttribute('state', 'done' satisfies GenerateElementState);
    } catch (error) {
      detail.error = error;
      this.textContent = `forkwise: ${error instanceof Error ? error.message : String(error)}`;
      this.setAttribute('state', 'error' satisfies GenerateElementState);
    }
    this.dispatchEvent(new CustomEvent<GenerateElementDoneDetail>('forkwise-done', { detail, bubbles: true }));
  }
}

if (typeof customElements !== 'undefined' && !customElements.get('forkwise-generate')) {
  customElements.define('forkwise-generate', ForkwiseGenerateElement);
}

declare global {
  interface HTMLElementTagNameMap {
    'forkwise-generate': ForkwiseGenerateElement;
  }
}
