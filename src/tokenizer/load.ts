// The TextTokenizer of a model, whichever format its tokenizer comes in, checked against the
// model's vocabulary.
import { InvalidArgumentError, TokenizerFormatError, checkInteger } from '../errors.ts';
import { preview } from '../model/preview.ts';
import type { TokenizerSource } from '../model/tensors.ts';
import { tokenizerFromGguf } from './gguf-vocab.ts';
import { HfTokenizer } from './hf-tokenizer.ts';
import { Llama2cTextTokenizer } from './llama2c-text-tokenizer.ts';
import type { TextTokenizer } from './types.ts';

/** <unk>, <s>, </s> and the 256 byte tokens. */
const LLAMA2C_MIN_VOCAB = 259;

export interface BuildTokenizerOptions {
  /** Rows of the model's embedding (and output head): every id the tokenizer produces must be below it. */
  modelVocabSize: number;
  /** More ids that end a generation (the model config's eos_token_id, which may list several). */
  eosIds?: readonly number[];
}

/**
 * Builds the tokenizer and checks that it fits the model: a tokenizer that can produce an id the
 * model has no row for is a TokenizerFormatError. The model's vocabulary may be larger (Qwen pads
 * 151669 tokens to 151936 rows).
 */
export function buildTokenizer(source: TokenizerSource, options: BuildTokenizerOptions): TextTokenizer {
  if (source === null || typeof source !== 'object') throw new InvalidArgumentError('a tokenizer source must be an object');
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('options must be an object');
  const modelVocabSize = checkInteger('modelVocabSize', options.modelVocabSize, 1, 2 ** 31 - 1);
  const eosIds = options.eosIds ?? [];
  if (!Array.isArray(eosIds)) throw new InvalidArgumentError('eosIds must be an array of token ids');
  for (const id of eosIds) {
    checkInteger('eosIds[]', id, 0, Number.MAX_SAFE_INTEGER);
    if (id >= modelVocabSize) {
      throw new TokenizerFormatError(`EOS id ${id} is past the model's vocabulary of ${modelVocabSize} tokens`);
    }
  }
  let tokenizer: TextTokenizer;
  switch (source.kind) {
    case 'llama2c':
      if (modelVocabSize < LLAMA2C_MIN_VOCAB) {
        throw new TokenizerFormatError(
          `a llama2.c tokenizer has at least ${LLAMA2C_MIN_VOCAB} tokens (3 specials and 256 bytes); the model's vocabulary is ${modelVocabSize}`);
      }
      tokenizer = Llama2cTextTokenizer.fromBytes(source.bytes, modelVocabSize, { eosIds });
      break;
    case 'hf':
      tokenizer = HfTokenizer.fromJson(source.tokenizer, source.config, { eosIds });
      break;
    case 'gguf':
      tokenizer = tokenizerFromGguf(source.metadata, { eosIds });
      break;
    default:
      throw new InvalidArgumentError(`unknown tokenizer source kind ${preview((source as { kind?: unknown }).kind)}`);
  }
  if (tokenizer.vocabSize > modelVocabSize) {
    throw new TokenizerFormatError(
      `the vocabulary is smaller than the token ids the tokenizer produces: the model has ${modelVocabSize} tokens, ` +
        `the tokenizer ${tokenizer.vocabSize} (ids up to ${tokenizer.vocabSize - 1})`,
    );
  }
  for (const id of [tokenizer.bosId, ...tokenizer.eosIds]) {
    if (id !== null && id >= modelVocabSize) {
      throw new TokenizerFormatError(`special token id ${id} is past the model's vocabulary of ${modelVocabSize} tokens`);
    }
  }
  return tokenizer;
}
