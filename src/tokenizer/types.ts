// What the engine needs of a tokenizer, whichever format built it (llama2.c tokenizer.bin,
// tokenizer.json through @huggingface/tokenizers, a GGUF vocabulary).

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | (string & {});
  content: string;
}

/** Incremental detokenisation: text appears once it is complete (multi-byte characters, byte-level BPE). */
export interface TokenTextStream {
  /** Feeds the next generated id; returns the newly complete text ('' while a character is pending). */
  push(id: number): string;
  /** Ends the stream: whatever is held back (U+FFFD for an unfinished byte sequence). */
  flush(): string;
}

export interface TextTokenizer {
  /** Ids the tokenizer knows (the model's vocabulary may be larger: Qwen pads it). */
  readonly vocabSize: number;
  readonly bosId: number | null;
  /** Ids that end a generation. */
  readonly eosIds: readonly number[];
  /** The chat template (Jinja), or null when the model has none. */
  readonly chatTemplate: string | null;
  /**
   * Text → ids. `special` (default true) adds what the format adds to a prompt: BOS for llama2.c,
   * for GGUF vocabularies that add it (add_bos_token; llama.cpp's default: SentencePiece and
   * llama-bpe yes, qwen2 no), and whatever a tokenizer.json's post-processor adds (BOS for
   * stories15M and Meta's Llama 3 files; nothing for Qwen or a ByteLevel post-processor). Special
   * tokens written in the text are those tokens either way, as in HF and llama.cpp (llama2.c has
   * none). Encode a chat template's rendering with `special: false`: it writes BOS itself.
   */
  encode(text: string, options?: { special?: boolean }): number[];
  /**
   * Ids → text; special tokens (BOS, EOS, control tokens) and ids the tokenizer has no piece for
   * (a model vocabulary padded past the tokenizer's) decode to nothing.
   */
  decode(ids: readonly number[]): string;
  /**
   * A stream that decodes generated ids following `context` (the prompt's ids), so that a leading
   * space or a character split across tokens comes out as the whole sequence's decode would.
   */
  stream(context: readonly number[]): TokenTextStream;
  /** The id of a piece as the vocabulary stores it (e.g. '.', '▁the', 'Ġthe'), if any. */
  tokenIdOf(piece: string): number | undefined;
  /** First token id of `text` as it is encoded mid-text (CNTP's stop pieces). */
  firstTokenMidText(text: string): number | undefined;
  /**
   * Renders messages with the chat template, `addGenerationPrompt` defaulting to true (throws
   * InvalidArgumentError when there is none).
   */
  applyChatTemplate(messages: readonly ChatMessage[], options?: { addGenerationPrompt?: boolean }): string;
}
