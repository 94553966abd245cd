// Where model and tokenizer bytes come from: a URL fetched with byte progress and cancellation
// (from the browser's Cache API when a previous load stored it there), or bytes the caller has.
import { AbortedError, ModelFetchError } from '../errors.ts';

export type ByteSource = string | URL | ArrayBuffer | Uint8Array | Blob;

/** The Cache API's store, where it exists (browsers, secure contexts); null elsewhere. */
async function openCache(name: string | null): Promise<Cache | null> {
  if (!name || typeof caches === 'undefined') return null;
  try {
    return await caches.open(name);
  } catch {
    return null; // storage disabled (private mode, quota): load from the network
  }
}

export async function readSource(
  source: ByteSource, what: string, onBytes?: (loaded: number, total: number) => void, signal?: AbortSignal,
  cacheName: string | null = null,
): Promise<ArrayBuffer> {
  if (source instanceof ArrayBuffer) return source;
  if (source instanceof Uint8Array) return copyOut(source);
  if (typeof Blob !== 'undefined' && source instanceof Blob) return source.arrayBuffer();
  const url = String(source);
  if (url.trim() === '') throw new ModelFetchError(`${what} URL is empty`);
  const stored = await (await openCache(cacheName))?.match(url);
  if (stored) {
    const bytes = await stored.arrayBuffer();
    onBytes?.(bytes.byteLength, bytes.byteLength);
    return bytes;
  }
  let response: Response;
  try {
    response = await fetch(url, { signal });
  } catch (cause) {
    if (signal?.aborted) throw new AbortedError(`loading ${what} was aborted`);
    throw new ModelFetchError(`could not fetch ${what} from ${url}: ${(cause as Error).message}`, undefined, cause);
  }
  if (!response.ok) throw new ModelFetchError(`fetching ${what} from ${url} failed: HTTP ${response.status}`, response.status);
  const total = Number(response.headers.get('content-length') ?? 0);
  if (!response.body) return response.arrayBuffer();
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      loaded += value.byteLength;
      onBytes?.(loaded, Math.max(total, loaded));
    }
  } catch (cause) {
    if (signal?.aborted) throw new AbortedError(`loading ${what} was aborted`);
    throw new ModelFetchError(`reading ${what} from ${url} failed: ${(cause as Error).message}`, undefined, cause);
  }
  const bytes = new Uint8Array(loaded);
  let offset = 0;
  for (const c of chunks) {
    bytes.set(c, offset);
    offset += c.byteLength;
  }
  return bytes.buffer;
}

function copyOut(view: Uint8Array): ArrayBuffer {
  if (view.byteOffset === 0 && view.byteLength === view.buffer.byteLength && view.buffer instanceof ArrayBuffer) return view.buffer;
  return view.slice().buffer;
}

/**
 * Stores a URL's file in the Cache API (the browser downloads it into storage, not into JS
 * memory) unless it is there already, so the next load reads it from browser storage. Called
 * after a load succeeded; best effort.
 */
export async function rememberUrl(url: string, cacheName: string | null): Promise<void> {
  const cache = await openCache(cacheName);
  try {
    if (cache && !(await cache.match(url))) await cache.add(url);
  } catch {
    // quota exceeded or storage unavailable: the next load fetches again
  }
}
