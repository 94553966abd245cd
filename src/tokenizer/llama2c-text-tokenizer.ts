// The llama2.c tokenizer (tokenizer.bin, token-exact with run.c) as a TextTokenizer.
//
// llama2.c's stories have no EOS: run.c stops when the model emits BOS (id 1), which the engine
// handles, so eosIds is empty unless the caller names some. There is no chat template.
import { InvalidArgumentError } from '../errors.ts';
import { preview } from '../model/preview.ts';
import { TokenStreamDecoder, Tokenizer } from './tokenizer.ts';
import type { ChatMessage, TextTokenizer, TokenTextStream } from './types.ts';

export class Llama2cTextTokenizer implements TextTokenizer {
  readonly vocabSize: number;
  readonly bosId: number = 1;
  readonly eosIds: readonly number[];
  readonly chatTemplate: null = null;

  constructor(readonly tokenizer: Tokenizer, options: { eosIds?: readonly number[] } = {}) {
    if (!(tokenizer instanceof Tokenizer)) throw new InvalidArgumentError('Llama2cTextTokenizer needs a llama2.c Tokenizer');
    this.vocabSize = tokenizer.vocabSize;
    const eosIds = options.eosIds ?? [];
    if (!Array.isArray(eosIds)) throw new InvalidArgumentError('eosIds must be an array of token ids');
    for (const id of eosIds) checkId(id, this.vocabSize);
    this.eosIds = [...new Set(eosIds)];
  }

  /** tokenizer.bin's bytes; vocabSize is the model's (the file does not store it). */
  static fromBytes(bytes: ArrayBuffer | Uint8Array, vocabSize: number, options: { eosIds?: readonly number[] } = {}): Llama2cTextTokenizer {
    return new Llama2cTextTokenizer(Tokenizer.fromBytes(bytes, vocabSize), options);
  }

  encode(text: string, options: { special?: boolean } = {}): number[] {
    if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('options must be an object');
    const special = options.special ?? true;
    if (typeof special !== 'boolean') throw new InvalidArgumentError(`options.special must be a boolean, got ${typeof special}`);
    return this.tokenizer.encode(text, { bos: special });
  }

  decode(ids: readonly number[]): string {
    return this.tokenizer.decode(ids);
  }

  /** Decodes each id after its predecessor (the context's last id for the first), as run.c prints. */
  stream(context: readonly number[] = []): TokenTextStream {
    if (!Array.isArray(context)) throw new InvalidArgumentError('context must be an array of token ids');
    let prev = context.length > 0 ? checkId(context[context.length - 1], this.vocabSize) : -1;
    const decoder = new TokenStreamDecoder(this.tokenizer);
    return {
      push: (id: number): string => {
        const text = decoder.push(prev, id);
        prev = id;
        return text;
      },
      flush: (): string => decoder.flush(),
    };
  }

  tokenIdOf(piece: string): number | undefined {
    return this.tokenizer.tokenIdOf(piece);
  }

  /**
   * The piece's own id when `text` is one piece (tokenIdOf, as the engine looks up CNTP's stop
   * pieces: llama2.c pieces carry their leading space, ' the', and '.', ',' or '\n' mid-text are
   * those pieces). Otherwise the first id of text encoded after a newline (which no piece merges
   * with): encode('\n' + text) without BOS, less the ids of encode('\n').
   */
  firstTokenMidText(text: string): number | undefined {
    if (typeof text !== 'string') throw new InvalidArgumentError(`text must be a string, got ${typeof text}`);
    if (text === '') return undefined;
    const id = this.tokenizer.tokenIdOf(text);
    if (id !== undefined) return id;
    const base = this.tokenizer.encode('\n', { bos: false });
    const ids = this.tokenizer.encode('\n' + text, { bos: false });
    return ids.length > base.length && base.every((b, i) => ids[i] === b) ? ids[base.length] : undefined;
  }

  applyChatTemplate(_messages: readonly ChatMessage[], _options?: { addGenerationPrompt?: boolean }): string {
    throw new InvalidArgumentError('this model has no chat template');
  }
}

function checkId(id: unknown, vocabSize: number): number {
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= vocabSize) {
    throw new InvalidArgumentError(`a token id must be an integer in [0, ${vocabSize - 1}], got ${preview(id)}`);
  }
  return id;
}
