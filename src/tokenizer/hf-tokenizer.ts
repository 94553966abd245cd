// A TextTokenizer over tokenizer.json (Hugging Face `tokenizers` format) through
// @huggingface/tokenizers, the tokenizer of transformers.js, with chat templates rendered by
// @huggingface/jinja as transformers' apply_chat_template renders them.
//
// encode follows the tokenizer.json: `special` is add_special_tokens, so BOS comes from the
// post-processor where it has one (TemplateProcessing: stories15M, Meta's Llama 3 files) and not
// otherwise (Qwen; ByteLevel post-processors). Special-token text inside the input is always
// matched as that token, as HF does. decode drops special tokens (added tokens marked special and
// the special tokens named in tokenizer_config) and ids the vocabulary has no piece for (Qwen pads
// its embedding past the tokenizer), and never applies clean_up_tokenization_spaces, so decoded
// text is what the tokens spell (as the Rust tokenizers' decode gives it).
import { Environment, Interpreter, Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { ForkwiseError, InvalidArgumentError, TokenizerFormatError } from '../errors.ts';
import { preview } from '../model/preview.ts';
import type { ChatMessage, TextTokenizer, TokenTextStream } from './types.ts';

export interface HfTokenizerOptions {
  /** More ids that end a generation (e.g. from the model's generation_config), besides eos_token. */
  eosIds?: readonly number[];
  /**
   * BOS and EOS by id rather than by tokenizer_config's bos_token / eos_token text (a GGUF
   * vocabulary names them by id). `bosId: null`: no BOS.
   */
  bosId?: number | null;
  /** Replaces the EOS id of eos_token (eosIds are still added). */
  baseEosIds?: readonly number[];
}

/** The special-token names transformers passes to a chat template (its special_tokens_map). */
const TEMPLATE_TOKENS = ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token'] as const;
/** Context ids a stream decodes ahead of the first generated one (leading-space rules). */
const STREAM_CONTEXT = 4;
/**
 * Generated tokens a stream holds back at most while the text ends in U+FFFD. An unfinished UTF-8
 * sequence spans at most 3 bytes, so at most 3 tokens; a longer run is a real U+FFFD (a vocabulary
 * piece for it, or invalid bytes) and is let out.
 */
const STREAM_MAX_PENDING = 8;
const REPLACEMENT = '\uFFFD';
/** Texts firstTokenMidText puts in front of the text, in order (see there). */
const MID_TEXT_ANCHORS = ['\n', 'a', ' ', '0'];

export class HfTokenizer implements TextTokenizer {
  readonly vocabSize: number;
  readonly bosId: number | null;
  /**
   * A prompt starts with BOS: tokenizer_config's add_bos_token, or where it is absent, whether
   * there is a bos_token (as llama.cpp adds BOS for Llama 3's vocabulary). Tokenizer files whose
   * post-processor does not add it themselves (some Llama 3 copies) still get it.
   */
  readonly addsBos: boolean;
  readonly eosIds: readonly number[];
  readonly chatTemplate: string | null;
  private readonly tokenizer: Tokenizer;
  /** Piece of each id (undefined where the vocabulary has a hole). */
  private readonly pieces: readonly (string | undefined)[];
  /** 1 for ids that decode to nothing: special tokens and holes. */
  private readonly hidden: Uint8Array;
  /** Special-token strings for the chat template (bos_token, eos_token, ...). */
  private readonly templateTokens: Record<string, unknown>;
  private compiled: Template | undefined;

  private constructor(tokenizer: Tokenizer, config: Record<string, unknown>, options: HfTokenizerOptions) {
    const model = tokenizer.model;
    if (model === null) throw new TokenizerFormatError('tokenizer.json has no model');
    this.tokenizer = tokenizer;
    const pieces = model.vocab;
    this.pieces = pieces;
    this.vocabSize = pieces.length;
    if (this.vocabSize === 0) throw new TokenizerFormatError('tokenizer.json has an empty vocabulary');

    const hidden = new Uint8Array(this.vocabSize);
    for (let id = 0; id < this.vocabSize; id++) if (pieces[id] === undefined) hidden[id] = 1;
    for (const [id, token] of tokenizer.get_added_tokens_decoder()) if (token.special) hidden[id] = 1;
    const specialNames: unknown[] = TEMPLATE_TOKENS.map((name) => config[name]);
    if (Array.isArray(config.additional_special_tokens)) specialNames.push(...config.additional_special_tokens);
    for (const name of specialNames) {
      const id = this.idOfConfigToken(name);
      if (id !== undefined) hidden[id] = 1;
    }
    this.hidden = hidden;

    this.bosId = options.bosId === null ? null
      : options.bosId !== undefined ? this.checkOptionId('bosId', options.bosId) : this.idOfConfigToken(config.bos_token) ?? null;
    this.addsBos = this.bosId !== null && (typeof config.add_bos_token === 'boolean' ? config.add_bos_token : true);
    const eos = options.baseEosIds ?? [this.idOfConfigToken(config.eos_token)].filter((id) => id !== undefined);
    const extra = options.eosIds ?? [];
    if (!Array.isArray(extra)) throw new InvalidArgumentError(`eosIds must be an array of token ids, got ${describe(extra)}`);
    this.eosIds = [...new Set([...eos, ...extra].map((id) => this.checkOptionId('eosIds[]', id)))];

    this.chatTemplate = pickChatTemplate(config.chat_template);
    const templateTokens: Record<string, unknown> = {};
    for (const name of TEMPLATE_TOKENS) {
      const text = tokenText(config[name]);
      if (text !== undefined) templateTokens[name] = text;
    }
    if (Array.isArray(config.additional_special_tokens)) {
      templateTokens.additional_special_tokens = config.additional_special_tokens.map(tokenText).filter((t) => t !== undefined);
    }
    this.templateTokens = templateTokens;
  }

  /**
   * From tokenizer.json and tokenizer_config.json, both parsed. A tokenizer.json that
   * @huggingface/tokenizers cannot build is a TokenizerFormatError.
   */
  static fromJson(tokenizerJson: unknown, tokenizerConfig: Record<string, unknown> | null = {}, options: HfTokenizerOptions = {}): HfTokenizer {
    if (tokenizerJson === null || typeof tokenizerJson !== 'object' || Array.isArray(tokenizerJson)) {
      throw new TokenizerFormatError(`tokenizer.json must be a JSON object, got ${describe(tokenizerJson)}`);
    }
    const config = tokenizerConfig ?? {};
    if (typeof config !== 'object' || Array.isArray(config)) {
      throw new TokenizerFormatError(`tokenizer_config.json must be a JSON object, got ${describe(config)}`);
    }
    if (typeof options !== 'object' || options === null) throw new InvalidArgumentError(`options must be an object, got ${describe(options)}`);
    checkIds(tokenizerJson as Record<string, unknown>);
    let tokenizer: Tokenizer;
    try {
      tokenizer = new Tokenizer(withSplitMerges(tokenizerJson as Record<string, unknown>), config);
    } catch (error) {
      throw new TokenizerFormatError(`tokenizer.json could not be read: ${message(error)}`);
    }
    return new HfTokenizer(tokenizer, config, options);
  }

  encode(text: string, options: { special?: boolean } = {}): number[] {
    if (typeof text !== 'string') throw new InvalidArgumentError(`text must be a string, got ${describe(text)}`);
    if (typeof options !== 'object' || options === null) throw new InvalidArgumentError(`options must be an object, got ${describe(options)}`);
    const special = options.special ?? true;
    if (typeof special !== 'boolean') throw new InvalidArgumentError(`options.special must be a boolean, got ${describe(special)}`);
    let ids: (number | undefined)[];
    try {
      ids = this.tokenizer.encode(text, { add_special_tokens: special }).ids;
    } catch (error) {
      throw new TokenizerFormatError(`the tokenizer failed on this text: ${message(error)}`);
    }
    // A piece with no id and no unk token is dropped, as the Rust tokenizers drop it.
    const out = ids.every((id) => id !== undefined) ? (ids as number[]) : (ids.filter((id) => id !== undefined) as number[]);
    if (special && this.addsBos && out[0] !== this.bosId) out.unshift(this.bosId!);
    return out;
  }

  decode(ids: readonly number[]): string {
    if (!Array.isArray(ids)) throw new InvalidArgumentError(`ids must be an array, got ${describe(ids)}`);
    const visible: number[] = [];
    for (const id of ids) if (this.isVisible(checkId(id))) visible.push(id);
    return this.decodeVisible(visible);
  }

  stream(context: readonly number[] = []): TokenTextStream {
    if (!Array.isArray(context)) throw new InvalidArgumentError(`context must be an array of token ids, got ${describe(context)}`);
    const window: number[] = [];
    for (let i = context.length - 1; i >= 0 && window.length < STREAM_CONTEXT; i--) {
      if (this.isVisible(checkId(context[i]))) window.push(context[i]);
    }
    return new HfTextStream(this, window.reverse());
  }

  tokenIdOf(piece: string): number | undefined {
    if (typeof piece !== 'string') throw new InvalidArgumentError(`piece must be a string, got ${describe(piece)}`);
    return this.tokenizer.token_to_id(piece);
  }

  /**
   * The first id of `text` where it follows other text. Encodes anchor + text and the anchor
   * alone (no special tokens) and, when the anchor's ids are a strict prefix of the combined ids,
   * returns the id that follows them. Anchors, tried in order: '\n' (its own pre-token in GPT-2
   * style regexes, and a byte token no SentencePiece merge takes, so the text's tokens start
   * fresh: '▁the' for ' the', '.' for '.'), then 'a', ' ' and '0' for texts that the newline
   * merges with (e.g. '\n' itself). undefined when no anchor separates (or text is '').
   */
  firstTokenMidText(text: string): number | undefined {
    if (typeof text !== 'string') throw new InvalidArgumentError(`text must be a string, got ${describe(text)}`);
    if (text === '') return undefined;
    for (const anchor of MID_TEXT_ANCHORS) {
      const base = this.encode(anchor, { special: false });
      const ids = this.encode(anchor + text, { special: false });
      if (ids.length > base.length && base.every((id, i) => ids[i] === id)) return ids[base.length];
    }
    return undefined;
  }

  /**
   * Renders with the chat template as transformers' apply_chat_template does: `messages`,
   * `add_generation_prompt` (default true), the special-token strings of tokenizer_config
   * (bos_token, eos_token, ...), `raise_exception` and `strftime_now`. A template's
   * raise_exception is an InvalidArgumentError; a template the engine cannot render is a
   * TokenizerFormatError.
   */
  applyChatTemplate(messages: readonly ChatMessage[], options: { addGenerationPrompt?: boolean } = {}): string {
    if (this.chatTemplate === null) throw new InvalidArgumentError('this model has no chat template');
    const plain = checkMessages(messages);
    if (typeof options !== 'object' || options === null) throw new InvalidArgumentError(`options must be an object, got ${describe(options)}`);
    const addGenerationPrompt = options.addGenerationPrompt ?? true;
    if (typeof addGenerationPrompt !== 'boolean') {
      throw new InvalidArgumentError(`options.addGenerationPrompt must be a boolean, got ${describe(addGenerationPrompt)}`);
    }
    const template = this.template();
    const env = chatTemplateGlobals();
    const items: Record<string, unknown> = {
      ...this.templateTokens,
      messages: plain,
      add_generation_prompt: addGenerationPrompt,
      tools: null,
      documents: null,
    };
    try {
      for (const [name, value] of Object.entries(items)) env.set(name, value);
      return (new Interpreter(env).run(template.parsed) as { value: string }).value;
    } catch (error) {
      if (error instanceof ForkwiseError) throw error;
      throw new TokenizerFormatError(`the chat template could not be rendered: ${message(error)}`);
    }
  }

  /** @internal Whether an id decodes to any text (not special, not a hole). */
  isVisible(id: number): boolean {
    return id < this.vocabSize && this.hidden[id] === 0;
  }

  /** @internal Decodes ids that are all visible. */
  decodeVisible(ids: readonly number[]): string {
    if (ids.length === 0) return '';
    try {
      return this.tokenizer.decode(ids as number[], { skip_special_tokens: false, clean_up_tokenization_spaces: false });
    } catch (error) {
      throw new TokenizerFormatError(`the tokenizer failed to decode: ${message(error)}`);
    }
  }

  /** @internal The piece of an id (undefined for holes and ids past the vocabulary). */
  pieceOf(id: number): string | undefined {
    return this.pieces[id];
  }

  /**
   * @internal Gives a hole in the vocabulary (an id whose piece another id also has, which the
   * tokenizer.json form cannot say) its piece for decode; `special`: it decodes to nothing.
   */
  setPiece(id: number, piece: string, special: boolean): void {
    if (id >= this.vocabSize || this.pieces[id] !== undefined) return;
    (this.pieces as (string | undefined)[])[id] = piece;
    this.hidden[id] = special ? 1 : 0;
  }

  private template(): Template {
    if (this.compiled === undefined) {
      try {
        this.compiled = new Template(this.chatTemplate as string);
      } catch (error) {
        throw new TokenizerFormatError(`the chat template could not be parsed: ${message(error)}`);
      }
    }
    return this.compiled;
  }

  private idOfConfigToken(value: unknown): number | undefined {
    const text = tokenText(value);
    return text === undefined ? undefined : this.tokenizer.token_to_id(text);
  }

  private checkOptionId(name: string, id: unknown): number {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
      throw new InvalidArgumentError(`${name} must be a token id (an integer ≥ 0), got ${describe(id)}`);
    }
    return id;
  }
}

/**
 * Incremental decode over a small window: the ids of the last emitted text (or of the context)
 * followed by the pending ids. Each push decodes the window with and without the pending ids and
 * lets out the difference once it does not end in U+FFFD (an unfinished character), so leading
 * spaces (SentencePiece's '▁' after other text, the stripped first space) and characters split
 * across byte tokens come out as the whole sequence's decode has them. Cost per token: two decodes
 * of a few ids, independent of the generation's length.
 */
class HfTextStream implements TokenTextStream {
  private window: number[];
  /** window[0..read) is text already out (or the context); window[read..] is pending. */
  private read: number;
  private readText: string;

  constructor(private readonly tokenizer: HfTokenizer, context: number[]) {
    this.window = context;
    this.read = context.length;
    this.readText = tokenizer.decodeVisible(context);
  }

  push(id: number): string {
    if (!this.tokenizer.isVisible(checkId(id))) return '';
    this.window.push(id);
    const text = this.tokenizer.decodeVisible(this.window);
    if (text.endsWith(REPLACEMENT) && this.window.length - this.read < STREAM_MAX_PENDING) return '';
    return this.advance(text);
  }

  flush(): string {
    if (this.read === this.window.length) return '';
    return this.advance(this.tokenizer.decodeVisible(this.window));
  }

  private advance(text: string): string {
    const out = text.slice(sharedPrefix(text, this.readText));
    this.window = this.window.slice(this.read);
    this.read = this.window.length;
    this.readText = this.tokenizer.decodeVisible(this.window);
    return out;
  }
}

/** Length of the common prefix of text and prefix (prefix.length when text extends it), never splitting a surrogate pair. */
function sharedPrefix(text: string, prefix: string): number {
  if (text.startsWith(prefix)) return prefix.length;
  let n = 0;
  while (n < prefix.length && n < text.length && text.charCodeAt(n) === prefix.charCodeAt(n)) n++;
  if (n > 0 && isHighSurrogate(text.charCodeAt(n - 1))) n--;
  return n;
}

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}

/**
 * The globals of transformers' chat-template environment: Jinja's constants, `range`,
 * `raise_exception` (an InvalidArgumentError here) and `strftime_now` (local time, C-locale names
 * as Python's strftime gives them).
 */
function chatTemplateGlobals(): Environment {
  const env = new Environment();
  const globals: Record<string, unknown> = {
    false: false, true: true, none: null, False: false, True: true, None: null,
    range,
    raise_exception: (why: unknown) => {
      throw new InvalidArgumentError(`the chat template refused the messages: ${String(why)}`);
    },
    strftime_now: (format: unknown) => strftime(new Date(), String(format)),
  };
  for (const [name, value] of Object.entries(globals)) env.set(name, value);
  return env;
}

/** Numbers one range() call may make (a hostile template's range(10**9) would hang the page). */
const MAX_RANGE = 100_000;

/** Python's range(): range(stop), range(start, stop[, step]). */
function range(start: number, stop?: number, step = 1): number[] {
  if (stop === undefined) [start, stop] = [0, start];
  // A template's own mistakes (the template comes with the model) are the tokenizer file's.
  if (![start, stop, step].every(Number.isInteger)) throw new TokenizerFormatError('the chat template calls range() with non-integers');
  if (step === 0) throw new TokenizerFormatError('the chat template calls range() with step 0');
  const length = Math.max(0, Math.ceil((stop - start) / step));
  if (length > MAX_RANGE) throw new TokenizerFormatError(`the chat template calls range() for ${length} numbers, over ${MAX_RANGE}`);
  const out: number[] = [];
  for (let i = start; step > 0 ? i < stop : i > stop; i += step) out.push(i);
  return out;
}

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

/** Python's strftime in the C locale for the directives chat templates use (%-d: no padding, glibc). */
function strftime(date: Date, format: string): string {
  const pad = (n: number, width = 2): string => String(n).padStart(width, '0');
  const hour12 = date.getHours() % 12 === 0 ? 12 : date.getHours() % 12;
  const dayOfYear = Math.floor((Date.UTC(date.getFullYear(), date.getMonth(), date.getDate()) - Date.UTC(date.getFullYear(), 0, 1)) / 86400000) + 1;
  const fields: Record<string, string> = {
    Y: String(date.getFullYear()), y: pad(date.getFullYear() % 100), m: pad(date.getMonth() + 1), d: pad(date.getDate()),
    e: String(date.getDate()).padStart(2, ' '), H: pad(date.getHours()), I: pad(hour12), M: pad(date.getMinutes()),
    S: pad(date.getSeconds()), p: date.getHours() < 12 ? 'AM' : 'PM', j: pad(dayOfYear, 3),
    a: DAYS[date.getDay()].slice(0, 3), A: DAYS[date.getDay()], b: MONTHS[date.getMonth()].slice(0, 3), B: MONTHS[date.getMonth()], '%': '%',
  };
  return format.replace(/%(-?)([a-zA-Z%])/g, (whole, unpadded: string, directive: string) => {
    const value = fields[directive];
    if (value === undefined) return whole;
    return unpadded ? value.replace(/^[0 ]+(?=.)/, '') : value;
  });
}

/** Token ids above this are refused (a model's vocabulary has at most 2^24 rows). */
const MAX_TOKEN_ID = (1 << 24) - 1;

/**
 * Checks the ids of tokenizer.json's vocabulary and added tokens before the tokenizer is built
 * from them: it lays the vocabulary out as an array indexed by id, so an id of 2^31 would mean a
 * 2^31-entry array, and an id that is not an integer an entry no lookup finds.
 */
function checkIds(json: Record<string, unknown>): void {
  const isId = (id: unknown) => typeof id === 'number' && Number.isInteger(id) && id >= 0 && id <= MAX_TOKEN_ID;
  const model = json.model as { vocab?: unknown } | null | undefined;
  const vocab = model !== null && typeof model === 'object' ? model.vocab : undefined;
  if (Array.isArray(vocab)) {
    // Unigram: [piece, score] pairs, the id is the position
    if (vocab.length > MAX_TOKEN_ID + 1) throw new TokenizerFormatError(`tokenizer.json has ${vocab.length} tokens, over ${MAX_TOKEN_ID + 1}`);
    vocab.forEach((entry, id) => {
      if (!Array.isArray(entry) || typeof entry[0] !== 'string' || typeof entry[1] !== 'number') {
        throw new TokenizerFormatError(`tokenizer.json vocabulary entry ${id} is not a [piece, score] pair: ${preview(entry)}`);
      }
    });
  } else if (vocab !== null && typeof vocab === 'object') {
    for (const [piece, id] of Object.entries(vocab)) {
      if (!isId(id)) throw new TokenizerFormatError(`tokenizer.json vocabulary piece ${preview(piece)} has id ${preview(id)}, not an integer in [0, ${MAX_TOKEN_ID}]`);
    }
  } else if (vocab !== undefined) {
    throw new TokenizerFormatError(`tokenizer.json model.vocab must be an object or an array, got ${describe(vocab)}`);
  }
  const added = json.added_tokens;
  if (added === undefined || added === null) return;
  if (!Array.isArray(added)) throw new TokenizerFormatError(`tokenizer.json added_tokens must be an array, got ${describe(added)}`);
  added.forEach((token, i) => {
    const t = token as { id?: unknown; content?: unknown } | null;
    if (t === null || typeof t !== 'object' || !isId(t.id) || typeof t.content !== 'string') {
      throw new TokenizerFormatError(`tokenizer.json added token ${i} needs an integer id in [0, ${MAX_TOKEN_ID}] and a string content, got ${preview(token)}`);
    }
  });
}

/**
 * tokenizer.json with 'a b' merge strings as ['a', 'b'] pairs (split at the first space after the
 * first character, as llama.cpp reads them), which @huggingface/tokenizers reads faster.
 */
function withSplitMerges(json: Record<string, unknown>): Record<string, unknown> {
  const model = json.model as { merges?: unknown } | null | undefined;
  if (model === null || typeof model !== 'object' || !Array.isArray(model.merges) || typeof model.merges[0] !== 'string') return json;
  const merges = (model.merges as unknown[]).map((merge, i) => {
    const at = typeof merge === 'string' ? merge.indexOf(' ', 1) : -1;
    if (at < 0) throw new TokenizerFormatError(`tokenizer.json merge ${i} is not two pieces separated by a space: ${preview(merge)}`);
    return [(merge as string).slice(0, at), (merge as string).slice(at + 1)];
  });
  return { ...json, model: { ...model, merges } };
}

/** tokenizer_config's chat_template: a string, or a list of {name, template} (the 'default' one). */
function pickChatTemplate(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    const named = value.find((t) => t !== null && typeof t === 'object' && (t as { name?: unknown }).name === 'default') as
      | { template?: unknown }
      | undefined;
    if (named && typeof named.template === 'string') return named.template;
    return null;
  }
  if (value === undefined || value === null) return null;
  throw new TokenizerFormatError(`tokenizer_config chat_template must be a string or a list of {name, template}, got ${describe(value)}`);
}

/** A special token as tokenizer_config writes it: a string or an AddedToken object {content}. */
function tokenText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value !== null && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return undefined;
}

function checkMessages(messages: readonly ChatMessage[]): ChatMessage[] {
  if (!Array.isArray(messages)) throw new InvalidArgumentError(`messages must be an array, got ${describe(messages)}`);
  return messages.map((m, i) => {
    if (m === null || typeof m !== 'object') throw new InvalidArgumentError(`messages[${i}] must be an object, got ${describe(m)}`);
    if (typeof m.role !== 'string') throw new InvalidArgumentError(`messages[${i}].role must be a string, got ${describe(m.role)}`);
    if (typeof m.content !== 'string') throw new InvalidArgumentError(`messages[${i}].content must be a string, got ${describe(m.content)}`);
    return { role: m.role, content: m.content };
  });
}

function checkId(id: unknown): number {
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
    throw new InvalidArgumentError(`a token id must be an integer ≥ 0, got ${describe(id)}`);
  }
  return id;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'object') return value.constructor?.name ?? 'object';
  return `${typeof value} ${String(value)}`;
}
