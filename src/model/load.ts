// From what a caller has to a format reader: a URL, 'hf:Owner/Name', bytes, a Blob, the Files of a
// folder, or a reader/folder made elsewhere (Node paths: src/node). Single files are told apart by
// their first bytes (GGUF magic, else a llama2.c header); folders are Hugging Face folders.
import { InvalidArgumentError, ModelFormatError } from '../errors.ts';
import { validateConfig } from './config.ts';
import { readGguf } from './formats/gguf.ts';
import { type HfFolder, checkedFolder, folderFromFiles, folderFromUrl, readHfFolder } from './formats/hf.ts';
import { looksLikeLlama2c, readLlama2c } from './formats/llama2c.ts';
import { blobReader, bytesReader, checkedReader, urlReader } from './readers.ts';
import type { ByteSource } from './source.ts';
import type { ByteReader, ModelFiles } from './tensors.ts';

/**
 * A model: a URL of a file (llama2.c .bin or .gguf) or of a Hugging Face folder (ending in '/'),
 * 'hf:Owner/Name' (or 'hf:Owner/Name/file.gguf'), bytes, a Blob/File, the Files of a folder, or
 * a ByteReader / HfFolder.
 */
export type ModelSource = ByteSource | ByteReader | HfFolder | readonly Blob[] | FileList;

export interface OpenOptions {
  signal?: AbortSignal;
  /** Bytes received from the network (or storage) so far, over all of the model's files. */
  onBytes?: (loaded: number) => void;
  /** Cache API store to read URLs through (browsers); null for none. */
  cache?: string | null;
  /** Base of 'hf:' sources; default https://huggingface.co. */
  hubUrl?: string;
  /** Revision of 'hf:' sources; default main. */
  revision?: string;
}

export interface OpenedModel {
  files: ModelFiles;
  /** URLs the model was read from, for the Cache API once the load has succeeded. */
  urls: string[];
}

export const DEFAULT_HUB = 'https://huggingface.co';

/** Opens `source` with the reader of its format; reads headers only (tensors are read later, on upload). */
export async function openModel(source: ModelSource, o: OpenOptions = {}): Promise<OpenedModel> {
  const urls: string[] = [];
  const net = { signal: o.signal, cacheName: o.cache ?? null, onBytes: o.onBytes };
  const files = await (async () => {
    if (typeof source === 'string' || source instanceof URL) {
      const url = String(source);
      if (url.startsWith('hf:')) return openHub(url.slice(3), o, urls);
      if (url.endsWith('/')) return readHfFolder(recording(folderFromUrl(url, net), url, urls), o.signal);
      urls.push(url);
      return openFile(await urlReader(url, net), o.signal);
    }
    if (source instanceof ArrayBuffer || source instanceof Uint8Array) return openFile(bytesReader('model', source), o.signal);
    if (typeof Blob !== 'undefined' && source instanceof Blob) return openFile(blobReader(source), o.signal);
    if (isFileList(source)) return openFiles(Array.from(source), o.signal);
    // a caller's reader or folder is held to the contract (typed errors, exact reads)
    if (isReader(source)) return openFile(checkedReader(source), o.signal);
    if (isFolder(source)) return readHfFolder(checkedFolder(source), o.signal);
    throw new InvalidArgumentError('model must be a URL, hf:Owner/Name, bytes, a Blob, the Files of a folder, a ByteReader or a folder');
  })();
  validateConfig(files.config, 'model');
  return { files, urls };
}

/** 'Owner/Name' (a folder) or 'Owner/Name/path/file.gguf' on the hub. */
function openHub(id: string, o: OpenOptions, urls: string[]): Promise<ModelFiles> {
  const [owner, name, ...path] = id.split('/');
  if (!owner || !name) throw new InvalidArgumentError(`a hub model is hf:Owner/Name, got hf:${id}`);
  const base = `${(o.hubUrl ?? DEFAULT_HUB).replace(/\/+$/, '')}/${owner}/${name}/resolve/${encodeURIComponent(o.revision ?? 'main')}/`;
  const net = { signal: o.signal, cacheName: o.cache ?? null, onBytes: o.onBytes };
  if (path.length > 0) {
    const url = base + path.map(encodeURIComponent).join('/');
    urls.push(url);
    return urlReader(url, net).then((r) => openFile(r, o.signal));
  }
  return readHfFolder(recording(folderFromUrl(base, net), base, urls), o.signal);
}

/** A folder whose files' URLs are noted as they are found. */
function recording(folder: HfFolder, base: string, urls: string[]): HfFolder {
  return {
    async get(name) {
      const file = await folder.get(name);
      if (file) urls.push(base + name);
      return file;
    },
  };
}

/** A single model file: GGUF by its magic, else llama2.c. */
async function openFile(file: ByteReader, signal?: AbortSignal): Promise<ModelFiles> {
  const head = await file.read(0, Math.min(file.size, 28), signal);
  if (head.length >= 4 && String.fromCharCode(...head.subarray(0, 4)) === 'GGUF') return readGguf(file, signal);
  if (!looksLikeLlama2c(head) && head.length >= 9 && head[8] === 0x7b /* '{' */) {
    throw new ModelFormatError(`${file.name} looks like a lone safetensors file: load its folder (config.json, tokenizer.json, *.safetensors)`);
  }
  // No magic: a llama2.c checkpoint, whose reader says what is wrong with its header.
  return readLlama2c(file, signal);
}

/** Files picked together: one .gguf or .bin, or a Hugging Face folder (config.json among them). */
function openFiles(files: File[], signal?: AbortSignal): Promise<ModelFiles> {
  if (!files.every((f) => typeof Blob !== 'undefined' && f instanceof Blob)) {
    throw new InvalidArgumentError('a list of model files must hold Files (or Blobs) only');
  }
  if (files.some((f) => f.name === 'config.json')) return readHfFolder(folderFromFiles(files), signal);
  const models = files.filter((f) => /\.(gguf|bin)$/i.test(f.name));
  if (models.length === 1) return openFile(blobReader(models[0], models[0].name), signal);
  throw new InvalidArgumentError(`expected a Hugging Face folder (with config.json) or one .gguf/.bin file, got ${files.map((f) => f.name).join(', ') || 'no files'}`);
}

function isFileList(s: unknown): s is readonly File[] | FileList {
  return Array.isArray(s) || (typeof FileList !== 'undefined' && s instanceof FileList);
}

function isReader(s: unknown): s is ByteReader {
  return typeof s === 'object' && s !== null && typeof (s as ByteReader).read === 'function' && typeof (s as ByteReader).size === 'number';
}

function isFolder(s: unknown): s is HfFolder {
  return typeof s === 'object' && s !== null && typeof (s as HfFolder).get === 'function';
}
