// A Hugging Face transformers folder: config.json (+ generation_config.json), safetensors weights
// (model.safetensors, or shards listed by model.safetensors.index.json), tokenizer.json and
// tokenizer_config.json. Read through a folder of ByteReaders, so the same code serves a URL
// (a repo's resolve/main/), a dropped directory, files in memory or a path in Node.
import {
  AbortedError, ForkwiseError, InvalidArgumentError, ModelFetchError, ModelFormatError, TokenizerFormatError, shown,
} from '../../errors.ts';
import { type Architecture, type ModelConfig, expectedTensors, llama3FreqFactors } from '../config.ts';
import { blobReader, checkedReader, urlReader, type UrlReaderOptions } from '../readers.ts';
import type { ByteReader, ModelFiles, TensorInfo, TensorType } from '../tensors.ts';
import { bare, preview } from '../preview.ts';
import { readSafetensorsHeader } from './safetensors.ts';

/** A folder's files by name; null for a file that is not there. */
export interface HfFolder {
  get(name: string): Promise<ByteReader | null>;
}

/** JSON files larger than this are refused (a tokenizer.json is tens of MB at most). */
const MAX_JSON_BYTES = 256 * 1024 * 1024;

type JsonObject = Record<string, unknown>;
type FormatErrorClass = typeof ModelFormatError | typeof TokenizerFormatError;

/** A small file parsed as JSON; a file that is not valid JSON throws `error` naming it. */
export async function readJson(
  file: ByteReader, signal?: AbortSignal, error: FormatErrorClass = ModelFormatError,
): Promise<unknown> {
  if (file.size > MAX_JSON_BYTES) throw new error(`${file.name} is ${file.size} bytes, too large for a JSON file`);
  const bytes = await file.read(0, file.size, signal);
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (cause) {
    throw new error(`${file.name} is not valid JSON: ${(cause as Error).message}`);
  }
}

/** readJson of a file that must hold a JSON object. */
async function readJsonObject(file: ByteReader, signal?: AbortSignal, error: FormatErrorClass = ModelFormatError) {
  const value = await readJson(file, signal, error);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new error(`${file.name} is not a JSON object`);
  }
  return value as JsonObject;
}

const ARCHITECTURES: Record<string, Architecture> = {
  LlamaForCausalLM: 'llama',
  MistralForCausalLM: 'mistral',
  Qwen2ForCausalLM: 'qwen2',
  Qwen3ForCausalLM: 'qwen3',
};

/** Largest size (layers, widths, vocabulary, context) a config may give. */
const MAX_SIZE = 1 << 24;

/** transformers' default max_position_embeddings per architecture. */
const DEFAULT_CONTEXT: Record<Architecture, number> = { llama2c: 2048, llama: 2048, mistral: 131072, qwen2: 32768, qwen3: 32768 };

/**
 * config.json (and generation_config.json, whose bos/eos ids win) as a ModelConfig. Defaults are
 * transformers' for the architecture; anything the forward graph cannot run (sliding windows,
 * rope scalings other than llama3, activations other than SiLU) is a ModelFormatError.
 */
export function hfModelConfig(config: JsonObject, generation: JsonObject | null = null): ModelConfig {
  const fail = (why: string) => new ModelFormatError(`config.json: ${why}`);
  const archs = config.architectures;
  const archName = Array.isArray(archs) && typeof archs[0] === 'string' ? archs[0] : null;
  if (archName === null) throw fail('no "architectures" entry');
  const architecture = ARCHITECTURES[archName];
  if (!architecture) {
    throw fail(`architecture ${archName} is not supported (${Object.keys(ARCHITECTURES).join(', ')} are)`);
  }

  // Sizes up to 2^24, the bound validateConfig puts on every size (larger ones would cost loops
  // of that length, e.g. listing the expected tensors of 2^31 layers, before being refused).
  const int = (key: string, fallback?: number): number => {
    const v = config[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0 || v > MAX_SIZE) {
      throw fail(`${key} must be a positive integer up to ${MAX_SIZE}, got ${preview(config[key])}`);
    }
    return v;
  };
  const positive = (key: string, fallback: number): number => {
    const v = config[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      throw fail(`${key} must be a positive number, got ${preview(config[key])}`);
    }
    return v;
  };

  const act = config.hidden_act ?? 'silu';
  if (act !== 'silu') throw fail(`hidden_act ${bare(act)} is not supported (silu is)`);
  if (config.mlp_bias === true) throw fail('mlp_bias is not supported');

  const dim = int('hidden_size');
  const nHeads = int('num_attention_heads');
  const nKvHeads = int('num_key_value_heads', nHeads);
  if (nHeads % nKvHeads !== 0) throw fail(`num_attention_heads ${nHeads} is not a multiple of num_key_value_heads ${nKvHeads}`);
  if (config.head_dim == null && dim % nHeads !== 0) {
    throw fail(`hidden_size ${dim} is not a multiple of num_attention_heads ${nHeads} and head_dim is not set`);
  }
  const headDim = int('head_dim', dim / nHeads);
  if (headDim % 2 !== 0) throw fail(`head_dim ${headDim} is odd (RoPE rotates pairs)`);
  const trainedContext = int('max_position_embeddings', DEFAULT_CONTEXT[architecture]);

  if (architecture === 'mistral') {
    // transformers' MistralConfig defaults sliding_window to 4096
    const window = 'sliding_window' in config ? config.sliding_window : 4096;
    if (window != null && (typeof window !== 'number' || window < trainedContext)) {
      throw fail(`sliding window attention (sliding_window ${bare(window)} < max_position_embeddings ${trainedContext}) is not supported`);
    }
  }
  if ((architecture === 'qwen2' || architecture === 'qwen3') && config.use_sliding_window === true) {
    throw fail('sliding window attention (use_sliding_window) is not supported');
  }

  // transformers ≥ 5 keeps rope_theta and the scaling in rope_parameters
  const ropeParams = (config.rope_parameters ?? config.rope_scaling ?? null) as JsonObject | null;
  if (ropeParams !== null && (typeof ropeParams !== 'object' || Array.isArray(ropeParams))) {
    throw fail('rope_scaling is not an object');
  }
  const ropeTheta = (() => {
    const v = config.rope_theta ?? ropeParams?.rope_theta ?? 10000;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 1) throw fail(`rope_theta must be a number > 1, got ${preview(v)}`);
    return v;
  })();
  let ropeFreqFactors: number[] | null = null;
  const ropeType = ropeParams ? (ropeParams.rope_type ?? ropeParams.type ?? 'default') : 'default';
  if (ropeType === 'llama3') {
    const p = (key: string) => {
      const v = ropeParams![key];
      if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw fail(`rope_scaling.${key} must be a positive number`);
      return v;
    };
    const s = {
      factor: p('factor'), lowFreqFactor: p('low_freq_factor'), highFreqFactor: p('high_freq_factor'),
      originalContext: p('original_max_position_embeddings'),
    };
    if (s.highFreqFactor <= s.lowFreqFactor) throw fail('rope_scaling.high_freq_factor must exceed low_freq_factor');
    ropeFreqFactors = llama3FreqFactors(headDim, ropeTheta, s);
  } else if (ropeType !== 'default') {
    throw fail(`rope scaling ${bare(ropeType)} is not supported (only llama3 is)`);
  }

  const bias = config.attention_bias ?? false;
  if (typeof bias !== 'boolean') throw fail('attention_bias must be true or false');
  const tied = config.tie_word_embeddings ?? false;
  if (typeof tied !== 'boolean') throw fail('tie_word_embeddings must be true or false');

  const special = (key: string) => (generation && generation[key] !== undefined ? generation[key] : config[key]);
  const isId = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  const bos = special('bos_token_id');
  if (bos != null && !isId(bos)) throw fail(`bos_token_id ${preview(bos)} is not a token id`);
  const eos = special('eos_token_id');
  const eosList = eos == null ? [] : Array.isArray(eos) ? eos : [eos];
  if (!eosList.every(isId)) throw fail(`eos_token_id ${preview(eos)} is not a token id or a list of them`);

  return {
    architecture,
    dim,
    hiddenDim: int('intermediate_size'),
    nLayers: int('num_hidden_layers'),
    nHeads,
    nKvHeads,
    headDim,
    vocabSize: int('vocab_size'),
    normEps: positive('rms_norm_eps', 1e-6),
    ropeTheta,
    ropeLayout: 'half',
    ropeFreqFactors,
    qkvBias: architecture === 'qwen2' ? true : bias,
    qkNorm: architecture === 'qwen3',
    tiedEmbeddings: tied,
    bosId: bos ?? null,
    eosIds: [...new Set(eosList as number[])],
    trainedContext,
  };
}

const TOP_TENSORS: Record<string, string> = {
  'embed_tokens.weight': 'token_embd.weight',
  'norm.weight': 'output_norm.weight',
};

const LAYER_TENSORS: Record<string, string> = {
  'input_layernorm.weight': 'attn_norm.weight',
  'self_attn.q_proj.weight': 'attn_q.weight',
  'self_attn.k_proj.weight': 'attn_k.weight',
  'self_attn.v_proj.weight': 'attn_v.weight',
  'self_attn.q_proj.bias': 'attn_q.bias',
  'self_attn.k_proj.bias': 'attn_k.bias',
  'self_attn.v_proj.bias': 'attn_v.bias',
  'self_attn.o_proj.weight': 'attn_output.weight',
  'self_attn.q_norm.weight': 'attn_q_norm.weight',
  'self_attn.k_norm.weight': 'attn_k_norm.weight',
  'post_attention_layernorm.weight': 'ffn_norm.weight',
  'mlp.gate_proj.weight': 'ffn_gate.weight',
  'mlp.up_proj.weight': 'ffn_up.weight',
  'mlp.down_proj.weight': 'ffn_down.weight',
};

/** Tensors the graph has no place for and cannot ignore without computing something else. */
const UNSUPPORTED_LAYER_TENSORS = new Set(['self_attn.o_proj.bias', 'mlp.gate_proj.bias', 'mlp.up_proj.bias', 'mlp.down_proj.bias']);

/**
 * The canonical name (config.ts TENSOR) of an HF tensor name; null for tensors we do not use
 * (rotary_emb.inv_freq and the like). Throws for tensors we would need but cannot run.
 */
export function canonicalTensorName(hfName: string): string | null {
  if (hfName === 'lm_head.weight') return 'output.weight';
  const name = hfName.startsWith('model.') ? hfName.slice(6) : hfName;
  if (TOP_TENSORS[name]) return TOP_TENSORS[name];
  const m = /^layers\.(\d+)\.(.+)$/.exec(name);
  if (!m) return null;
  if (UNSUPPORTED_LAYER_TENSORS.has(m[2])) throw new ModelFormatError(`tensor ${hfName}: biases on o_proj and the MLP are not supported`);
  const layerName = LAYER_TENSORS[m[2]];
  return layerName ? `blk.${Number(m[1])}.${layerName}` : null;
}

/** The usual HF name of a canonical tensor, for messages. */
function hfTensorName(canonical: string): string {
  if (canonical === 'output.weight') return 'lm_head.weight';
  for (const [hf, c] of Object.entries(TOP_TENSORS)) if (c === canonical) return `model.${hf}`;
  const m = /^blk\.(\d+)\.(.+)$/.exec(canonical);
  if (m) for (const [hf, c] of Object.entries(LAYER_TENSORS)) if (c === m[2]) return `model.layers.${m[1]}.${hf}`;
  return canonical;
}

function checkAborted(signal?: AbortSignal) {
  if (signal?.aborted) throw new AbortedError('loading the model was aborted');
}

/**
 * A shard name of an index: a .safetensors file inside the folder (subfolders allowed), never a
 * path out of it ('..', absolute paths, backslashes, a URL).
 */
function isShardName(name: string): boolean {
  if (!name.endsWith('.safetensors') || name.startsWith('/') || /[\\:\0]/.test(name)) return false;
  return name.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}

/** The safetensors files of the folder, each with the tensor names it must provide (null: all). */
async function weightFiles(files: HfFolder, signal?: AbortSignal): Promise<{ file: ByteReader; names: string[] | null }[]> {
  const index = await files.get('model.safetensors.index.json');
  if (!index) {
    const single = await files.get('model.safetensors');
    if (!single) throw new ModelFetchError('the folder has neither model.safetensors nor model.safetensors.index.json');
    return [{ file: single, names: null }];
  }
  const json = await readJsonObject(index, signal);
  const map = json.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) throw new ModelFormatError(`${index.name} has no weight_map`);
  const byShard = new Map<string, string[]>();
  for (const [tensor, shard] of Object.entries(map)) {
    if (typeof shard !== 'string' || shard === '') throw new ModelFormatError(`${index.name}: weight_map entry ${tensor} names no file`);
    if (!isShardName(shard)) {
      throw new ModelFormatError(`${index.name}: weight_map entry ${tensor} names ${preview(shard)}, which is not a .safetensors file of the folder`);
    }
    if (!byShard.has(shard)) byShard.set(shard, []);
    byShard.get(shard)!.push(tensor);
  }
  return Promise.all([...byShard].map(async ([shard, names]) => {
    const file = await files.get(shard);
    if (!file) throw new ModelFetchError(`weight shard ${shard}, named by ${index.name}, is missing`);
    return { file, names };
  }));
}

/**
 * Reads an HF folder's config, safetensors headers and tokenizer files (tensor data stays where
 * it is, to be read by range later). Missing config.json or weight files throw ModelFetchError;
 * anything malformed ModelFormatError (TokenizerFormatError for the tokenizer files), naming the
 * file or tensor. Without tokenizer.json, `tokenizer` is null.
 */
export async function readHfFolder(files: HfFolder, signal?: AbortSignal): Promise<ModelFiles> {
  checkAborted(signal);
  const configFile = await files.get('config.json');
  if (!configFile) throw new ModelFetchError('the folder has no config.json');
  const configJson = await readJsonObject(configFile, signal);
  const generationFile = await files.get('generation_config.json');
  const generation = generationFile ? await readJsonObject(generationFile, signal) : null;
  const config = hfModelConfig(configJson, generation);
  checkAborted(signal);

  const weights = await weightFiles(files, signal);
  const headers = await Promise.all(weights.map(async (w) => ({ ...w, header: await readSafetensorsHeader(w.file, signal) })));
  const found = new Map<string, { info: TensorInfo; hfName: string }>();
  for (const { file, names, header } of headers) {
    const wanted = names ?? [...header.keys()];
    for (const hfName of wanted) {
      const t = header.get(hfName);
      if (!t) throw new ModelFormatError(`tensor ${hfName} is not in ${file.name}, where the index puts it`);
      const name = canonicalTensorName(hfName);
      if (name === null) continue;
      const seen = found.get(name);
      if (seen) throw new ModelFormatError(`tensor ${name} appears twice (${seen.hfName} in ${seen.info.file.name}, ${hfName} in ${file.name})`);
      found.set(name, { hfName, info: { name, type: t.dtype, shape: t.shape, file, offset: t.offset, byteLength: t.byteLength } });
    }
  }

  // Every layer has at least 9 tensors: a layer count the weights cannot back is refused before
  // the expected names are listed.
  if (config.nLayers * 9 > found.size) {
    throw new ModelFormatError(`config.json: num_hidden_layers ${config.nLayers} needs more tensors than the weights' ${found.size}`);
  }
  const tensors = new Map<string, TensorInfo>();
  const bytesByType = new Map<TensorType, number>();
  for (const [name, shape] of expectedTensors(config)) {
    const t = found.get(name);
    if (!t) throw new ModelFormatError(`tensor ${name} (${hfTensorName(name)}) is missing from the weights`);
    const got = t.info.shape;
    if (got.length !== shape.length || got.some((d, i) => d !== shape[i])) {
      throw new ModelFormatError(`tensor ${name} (${t.hfName}) has shape [${got.join(', ')}]; config.json implies [${shape.join(', ')}]`);
    }
    tensors.set(name, t.info);
    bytesByType.set(t.info.type, (bytesByType.get(t.info.type) ?? 0) + t.info.byteLength);
  }
  const dtype = [...bytesByType].reduce((a, b) => (b[1] > a[1] ? b : a))[0];
  checkAborted(signal);

  const tokenizerFile = await files.get('tokenizer.json');
  let tokenizer: ModelFiles['tokenizer'] = null;
  if (tokenizerFile) {
    const parsed = await readJsonObject(tokenizerFile, signal, TokenizerFormatError);
    const tokenizerConfigFile = await files.get('tokenizer_config.json');
    const tokenizerConfig = tokenizerConfigFile ? await readJsonObject(tokenizerConfigFile, signal, TokenizerFormatError) : {};
    tokenizer = { kind: 'hf', tokenizer: parsed, config: tokenizerConfig };
  }
  return { format: 'hf', config, tensors, tokenizer, dtype };
}

/**
 * A caller's folder held to the contract: get() resolves to a ByteReader (checkedReader) or null,
 * and fails with a typed error (a plain Error from it becomes ModelFetchError naming the file).
 */
export function checkedFolder(folder: HfFolder): HfFolder {
  return {
    async get(name) {
      let file: unknown;
      try {
        file = await folder.get(name);
      } catch (cause) {
        if (cause instanceof ForkwiseError) throw cause;
        throw new ModelFetchError(`could not read ${name}: ${cause instanceof Error ? cause.message : shown(cause)}`, undefined, cause);
      }
      if (file === null || file === undefined) return null;
      const reader = file as Partial<ByteReader>;
      if (typeof reader !== 'object' || typeof reader.read !== 'function' || typeof reader.size !== 'number') {
        throw new InvalidArgumentError(`the folder's get(${JSON.stringify(name)}) must give a ByteReader or null`);
      }
      const r = reader as ByteReader;
      return checkedReader({ name: typeof r.name === 'string' && r.name !== '' ? r.name : name, size: r.size, read: (at, n, signal) => r.read(at, n, signal) });
    },
  };
}

/** A folder of readers already at hand, by file name. */
export function folderFromMap(map: Map<string, ByteReader>): HfFolder {
  return { get: async (name) => map.get(name) ?? null };
}

/**
 * A folder from a list of Files (an <input webkitdirectory>, a drop, a multi-select), matched by
 * base name; where several have the same base name, the one least deep in the picked folder wins.
 */
export function folderFromFiles(files: Iterable<File> | ArrayLike<File>): HfFolder {
  const byName = new Map<string, { file: File; depth: number }>();
  for (const file of Array.from(files)) {
    const path = (file as File & { webkitRelativePath?: string }).webkitRelativePath || file.name;
    const parts = path.split('/');
    const base = parts[parts.length - 1];
    const seen = byName.get(base);
    if (!seen || parts.length < seen.depth) byName.set(base, { file, depth: parts.length });
  }
  return { get: async (name) => {
    const hit = byName.get(name);
    return hit ? blobReader(hit.file, name) : null;
  } };
}

/**
 * A folder at a URL (e.g. https://huggingface.co/ORG/REPO/resolve/main/): each file is a
 * urlReader of `base` + name, and a 404 means the file is absent. `onBytes` reports the bytes
 * received across all of the folder's files together.
 */
export function folderFromUrl(base: string | URL, options: UrlReaderOptions = {}): HfFolder {
  const root = String(base).endsWith('/') ? String(base) : `${String(base)}/`;
  const path = (name: string) => root + name.split('/').map(encodeURIComponent).join('/');
  let total = 0;
  return {
    async get(name) {
      let last = 0;
      try {
        return await urlReader(path(name), {
          ...options,
          name,
          onBytes: (loaded) => {
            total += loaded - last;
            last = loaded;
            options.onBytes?.(total);
          },
        });
      } catch (e) {
        if (e instanceof ModelFetchError && e.status === 404) return null;
        throw e;
      }
    },
  };
}
