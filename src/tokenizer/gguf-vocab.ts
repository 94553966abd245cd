// A GGUF vocabulary (the `tokenizer.*` metadata keys) as the tokenizer.json that encodes like
// llama.cpp, built into an HfTokenizer.
//
// `gpt2` (byte-level BPE): the tokens are the BPE vocabulary, `tokenizer.ggml.merges` its merges
// ('a b', split at the first space after the first character, as llama.cpp splits them), the
// pre-tokenizer is the Split regex llama.cpp uses for `tokenizer.ggml.pre` followed by ByteLevel
// (as in the models' own tokenizer.json), merges are ignored for whole-vocabulary words where
// llama.cpp ignores them (llama-bpe). No normalizer: llama.cpp applies none (Qwen's tokenizer.json
// has NFC, which only matters for text that is not NFC already).
//
// `llama` (SentencePiece BPE with byte fallback): llama.cpp merges the adjacent pair whose
// concatenation is the vocabulary piece of highest score. As BPE merges that is transformers'
// SentencePieceExtractor (LlamaConverter): for every piece, every split into two vocabulary
// pieces is a merge, ranked by the piece's score, higher first (mergesFromScores). Normalizer:
// prepend '▁' (unless `tokenizer.ggml.add_space_prefix` is false) and replace ' ' by '▁';
// decoder: '▁' to ' ', ByteFallback, Fuse, strip the one leading space.
//
// Both: control tokens (token_type 3) are special added tokens, user-defined ones (4) non-special
// added tokens, the unknown token (2) a special one; like HF and llama.cpp (which always matches
// user-defined tokens, and control tokens with parse_special), their text in the input is that
// token. BOS is added (a TemplateProcessing post-processor) when `tokenizer.ggml.add_bos_token`
// says so, by llama.cpp's defaults otherwise (SentencePiece and llama-bpe yes, qwen2 no); EOS
// likewise by `add_eos_token`. End-of-generation ids are llama.cpp's: eos, eot and eom ids and
// the tokens whose text llama.cpp recognises as ending a turn ('<|eot_id|>', '<|im_end|>', ...).
import { InvalidArgumentError, TokenizerFormatError } from '../errors.ts';
import { preview } from '../model/preview.ts';
import { HfTokenizer } from './hf-tokenizer.ts';

export interface GgufTokenizerOptions {
  /** More ids that end a generation (e.g. from the model's config). */
  eosIds?: readonly number[];
}

const TYPE_NORMAL = 1;
const TYPE_UNKNOWN = 2;
const TYPE_CONTROL = 3;
const TYPE_USER_DEFINED = 4;

/** Llama 3's pre-tokenizer regex, as in its tokenizer.json (llama.cpp LLAMA_VOCAB_PRE_TYPE_LLAMA3). */
const LLAMA3_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/** Qwen2's: single digits (llama.cpp LLAMA_VOCAB_PRE_TYPE_QWEN2). */
const QWEN2_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

interface PreTokenizerRule {
  regex: string;
  ignoreMerges: boolean;
  /** llama.cpp's add_bos when the file does not say. */
  addBos: boolean;
}

/** `tokenizer.ggml.pre` values llama.cpp maps to these pre-tokenizers. */
const PRE_TOKENIZERS: Record<string, PreTokenizerRule> = {
  'llama-bpe': { regex: LLAMA3_REGEX, ignoreMerges: true, addBos: true },
  llama3: { regex: LLAMA3_REGEX, ignoreMerges: true, addBos: true },
  'llama-v3': { regex: LLAMA3_REGEX, ignoreMerges: true, addBos: true },
  qwen2: { regex: QWEN2_REGEX, ignoreMerges: false, addBos: false },
  'deepseek-r1-qwen': { regex: QWEN2_REGEX, ignoreMerges: false, addBos: false },
};

/** Token texts llama.cpp treats as ending a generation wherever they are in the vocabulary. */
const EOG_TEXTS = new Set([
  '<|eot_id|>', '<|im_end|>', '<|end|>', '<|return|>', '<|call|>', '<end_of_turn>', '<|endoftext|>', '<|eom_id|>',
  '<EOT>', '_<EOT>', '<|end_of_text|>', '<end_of_utterance>',
]);

interface Vocabulary {
  tokens: string[];
  types: number[];
}

/** The HfTokenizer of a GGUF file's `tokenizer.*` metadata. */
export function tokenizerFromGguf(metadata: Record<string, unknown>, options: GgufTokenizerOptions = {}): HfTokenizer {
  if (metadata === null || typeof metadata !== 'object') {
    throw new InvalidArgumentError(`GGUF metadata must be an object, got ${describe(metadata)}`);
  }
  const model = metadata['tokenizer.ggml.model'];
  const vocab = readVocabulary(metadata);
  let json: Record<string, unknown>;
  let addBos: boolean;
  if (model === 'gpt2') {
    const pre = metadata['tokenizer.ggml.pre'];
    const rule = typeof pre === 'string' ? PRE_TOKENIZERS[pre] : undefined;
    if (rule === undefined) {
      throw new TokenizerFormatError(
        `GGUF pre-tokenizer ${preview(pre)} is not supported (supported: ${Object.keys(PRE_TOKENIZERS).join(', ')})`,
      );
    }
    addBos = flag(metadata, 'tokenizer.ggml.add_bos_token', rule.addBos);
    json = gpt2Json(metadata, vocab, rule);
  } else if (model === 'llama') {
    addBos = flag(metadata, 'tokenizer.ggml.add_bos_token', true);
    json = sentencePieceJson(metadata, vocab);
  } else {
    throw new TokenizerFormatError(`GGUF tokenizer model ${preview(model)} is not supported (supported: gpt2, llama)`);
  }
  const addEos = flag(metadata, 'tokenizer.ggml.add_eos_token', false);
  const bosId = optionalId(metadata, 'tokenizer.ggml.bos_token_id', vocab);
  const eosId = optionalId(metadata, 'tokenizer.ggml.eos_token_id', vocab);
  if (addBos && bosId === null) throw new TokenizerFormatError('GGUF vocabulary adds BOS but has no tokenizer.ggml.bos_token_id');
  if (addEos && eosId === null) throw new TokenizerFormatError('GGUF vocabulary adds EOS but has no tokenizer.ggml.eos_token_id');
  json.post_processor = templateProcessing(vocab, addBos ? bosId : null, addEos ? eosId : null);

  const config: Record<string, unknown> = { add_bos_token: addBos };
  const named: [string, string][] = [
    ['bos_token', 'tokenizer.ggml.bos_token_id'],
    ['eos_token', 'tokenizer.ggml.eos_token_id'],
    ['unk_token', 'tokenizer.ggml.unknown_token_id'],
    ['pad_token', 'tokenizer.ggml.padding_token_id'],
  ];
  for (const [name, key] of named) {
    const id = optionalId(metadata, key, vocab);
    if (id !== null) config[name] = vocab.tokens[id];
  }
  const template = metadata['tokenizer.chat_template'];
  if (template !== undefined && typeof template !== 'string') {
    throw new TokenizerFormatError(`GGUF tokenizer.chat_template must be a string, got ${describe(template)}`);
  }
  if (template !== undefined) config.chat_template = template;

  const tokenizer = HfTokenizer.fromJson(json, config, {
    bosId,
    baseEosIds: endOfGenerationIds(metadata, vocab, eosId),
    eosIds: options.eosIds,
  });
  restorePieces(tokenizer, vocab);
  return tokenizer;
}

function gpt2Json(metadata: Record<string, unknown>, vocab: Vocabulary, rule: PreTokenizerRule): Record<string, unknown> {
  const raw = metadata['tokenizer.ggml.merges'];
  if (!Array.isArray(raw)) throw new TokenizerFormatError('GGUF gpt2 vocabulary has no tokenizer.ggml.merges array');
  const merges = raw.map((merge, i) => {
    const at = typeof merge === 'string' ? merge.indexOf(' ', 1) : -1;
    if (at < 0) throw new TokenizerFormatError(`GGUF merge ${i} is not two pieces separated by a space: ${preview(merge)}`);
    return [(merge as string).slice(0, at), (merge as string).slice(at + 1)];
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens(vocab),
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: rule.regex }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: rule.ignoreMerges,
      vocab: vocabObject(vocab.tokens),
      merges,
    },
  };
}

function sentencePieceJson(metadata: Record<string, unknown>, vocab: Vocabulary): Record<string, unknown> {
  const scores = metadata['tokenizer.ggml.scores'];
  if (!Array.isArray(scores) || scores.length !== vocab.tokens.length || !scores.every((s) => typeof s === 'number' && !Number.isNaN(s))) {
    throw new TokenizerFormatError(`GGUF llama vocabulary needs tokenizer.ggml.scores, one number per token (${vocab.tokens.length})`);
  }
  const unkId = optionalId(metadata, 'tokenizer.ggml.unknown_token_id', vocab) ?? firstOfType(vocab, TYPE_UNKNOWN);
  const addSpacePrefix = flag(metadata, 'tokenizer.ggml.add_space_prefix', true);
  const spaceToMeta = { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' };
  const decoders: unknown[] = [{ type: 'Replace', pattern: { String: '\u2581' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }];
  if (addSpacePrefix) decoders.push({ type: 'Strip', content: ' ', start: 1, stop: 0 });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens(vocab),
    normalizer: addSpacePrefix
      ? { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '\u2581' }, spaceToMeta] }
      : spaceToMeta,
    pre_tokenizer: null,
    decoder: { type: 'Sequence', decoders },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: unkId === null ? null : vocab.tokens[unkId],
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab: vocabObject(vocab.tokens),
      merges: mergesFromScores(vocab.tokens, scores as number[]),
    },
  };
}

/**
 * BPE merges that replay score-ordered SentencePiece merging (transformers' generate_merges with
 * vocab scores): every split of every piece into two vocabulary pieces, ordered by the piece's
 * score (descending, stable), the splits of one piece by their parts' ids. These are the merges
 * of stories15M's tokenizer.json exactly; newer transformers also order the splits of a piece by
 * their lengths, which cannot change an encoding (two splits of one piece never compete).
 */
export function mergesFromScores(tokens: readonly string[], scores: readonly number[]): [string, string][] {
  const ids = new Map<string, number>();
  tokens.forEach((token, id) => ids.set(token, id)); // a duplicate piece resolves to its last id, as llama.cpp's map does
  // A split can only be two vocabulary pieces where both parts have the length of some piece:
  // testing those positions alone keeps a long piece (a hostile 1 MiB token) from costing a
  // lookup of a prefix at each of its positions.
  const lengths = new Set<number>();
  for (const token of ids.keys()) lengths.add(token.length);
  const lefts: string[] = [];
  const rights: string[] = [];
  const score: number[] = [];
  const local: { left: string; right: string; leftId: number; rightId: number }[] = [];
  for (let id = 0; id < tokens.length; id++) {
    const piece = tokens[id];
    if (ids.get(piece) !== id) continue; // each piece once
    local.length = 0;
    // split points at code point boundaries
    for (let at = codePointLength(piece, 0); at < piece.length; at += codePointLength(piece, at)) {
      if (!lengths.has(at) || !lengths.has(piece.length - at)) continue;
      const leftId = ids.get(piece.slice(0, at));
      if (leftId === undefined) continue;
      const rightId = ids.get(piece.slice(at));
      if (rightId !== undefined) local.push({ left: piece.slice(0, at), right: piece.slice(at), leftId, rightId });
    }
    if (local.length > 1) local.sort((a, b) => a.leftId - b.leftId || a.rightId - b.rightId);
    for (const m of local) {
      lefts.push(m.left);
      rights.push(m.right);
      score.push(scores[id]);
    }
  }
  const order = Array.from({ length: lefts.length }, (_, i) => i);
  order.sort((a, b) => (score[a] === score[b] ? a - b : score[a] < score[b] ? 1 : -1));
  return order.map((i) => [lefts[i], rights[i]]);
}

/** UTF-16 length of the code point at `at`. */
function codePointLength(text: string, at: number): number {
  const c = text.charCodeAt(at);
  return c >= 0xd800 && c <= 0xdbff && at + 1 < text.length ? 2 : 1;
}

function readVocabulary(metadata: Record<string, unknown>): Vocabulary {
  const tokens = metadata['tokenizer.ggml.tokens'];
  if (!Array.isArray(tokens) || tokens.length === 0) throw new TokenizerFormatError('GGUF metadata has no tokenizer.ggml.tokens array');
  const out = tokens.map((token, i) => {
    if (typeof token !== 'string') throw new TokenizerFormatError(`GGUF token ${i} is not a string`);
    return token === '' ? `[EMPTY_${i}]` : token; // as llama.cpp names empty tokens
  });
  const rawTypes = metadata['tokenizer.ggml.token_type'];
  let types: number[];
  if (rawTypes === undefined) types = new Array<number>(out.length).fill(TYPE_NORMAL);
  else if (Array.isArray(rawTypes) && rawTypes.length === out.length && rawTypes.every((t) => Number.isInteger(t))) types = rawTypes as number[];
  else throw new TokenizerFormatError(`GGUF tokenizer.ggml.token_type must hold one integer per token (${out.length})`);
  return { tokens: out, types };
}

/** Control, user-defined and unknown tokens as tokenizer.json added tokens. */
function addedTokens(vocab: Vocabulary): unknown[] {
  const added: unknown[] = [];
  vocab.types.forEach((type, id) => {
    if (type !== TYPE_CONTROL && type !== TYPE_USER_DEFINED && type !== TYPE_UNKNOWN) return;
    added.push({
      id,
      content: vocab.tokens[id],
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: type !== TYPE_USER_DEFINED,
    });
  });
  return added;
}

function templateProcessing(vocab: Vocabulary, bos: number | null, eos: number | null): unknown {
  const single: unknown[] = [];
  const pair: unknown[] = [];
  const specials: Record<string, unknown> = {};
  const special = (id: number, typeId: number): unknown => {
    const token = vocab.tokens[id];
    specials[token] = { id: token, ids: [id], tokens: [token] };
    return { SpecialToken: { id: token, type_id: typeId } };
  };
  if (bos !== null) single.push(special(bos, 0));
  single.push({ Sequence: { id: 'A', type_id: 0 } });
  if (eos !== null) single.push(special(eos, 0));
  if (bos !== null) pair.push(special(bos, 0));
  pair.push({ Sequence: { id: 'A', type_id: 0 } });
  if (eos !== null) pair.push(special(eos, 0));
  if (bos !== null) pair.push(special(bos, 1));
  pair.push({ Sequence: { id: 'B', type_id: 1 } });
  if (eos !== null) pair.push(special(eos, 1));
  return { type: 'TemplateProcessing', single, pair, special_tokens: specials };
}

/** llama.cpp's end-of-generation ids: eos, eot, eom and the tokens with an EOG text. */
function endOfGenerationIds(metadata: Record<string, unknown>, vocab: Vocabulary, eosId: number | null): number[] {
  const ids = new Set<number>();
  for (const id of [
    eosId,
    optionalId(metadata, 'tokenizer.ggml.eot_token_id', vocab),
    optionalId(metadata, 'tokenizer.ggml.eom_token_id', vocab),
  ]) {
    if (id !== null) ids.add(id);
  }
  vocab.tokens.forEach((token, id) => {
    if (EOG_TEXTS.has(token)) ids.add(id);
  });
  return [...ids].sort((a, b) => a - b);
}

/**
 * Token text -> id; a null-prototype object, so a piece such as '__proto__' is an ordinary key. A
 * duplicate piece maps to its last id, as in llama.cpp (restorePieces gives the others their text back).
 */
function vocabObject(tokens: readonly string[]): Record<string, number> {
  const vocab = Object.create(null) as Record<string, number>;
  tokens.forEach((token, id) => {
    vocab[token] = id;
  });
  return vocab;
}

/** Ids whose piece is stored twice keep their own text for decode. */
function restorePieces(tokenizer: HfTokenizer, vocab: Vocabulary): void {
  vocab.tokens.forEach((token, id) => {
    const special = vocab.types[id] === TYPE_CONTROL || vocab.types[id] === TYPE_UNKNOWN;
    if (tokenizer.pieceOf(id) === undefined) tokenizer.setPiece(id, token, special);
  });
}

function firstOfType(vocab: Vocabulary, type: number): number | null {
  const id = vocab.types.indexOf(type);
  return id < 0 ? null : id;
}

function optionalId(metadata: Record<string, unknown>, key: string, vocab: Vocabulary): number | null {
  const value = metadata[key];
  if (value === undefined) return null;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new TokenizerFormatError(`GGUF ${key} must be a token id, got ${describe(value)}`);
  }
  return value < vocab.tokens.length ? value : null; // llama.cpp ignores an id past the vocabulary
}

function flag(metadata: Record<string, unknown>, key: string, fallback: boolean): boolean {
  const value = metadata[key];
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new TokenizerFormatError(`GGUF ${key} must be a boolean, got ${describe(value)}`);
  return value;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'object') return value.constructor?.name ?? 'object';
  return `${typeof value} ${String(value)}`;
}
