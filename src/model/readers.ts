// ByteReaders: random access to one file's bytes, whatever holds them. Format readers (formats/)
// read headers and tensors through these, range by range, so a multi-GB file is never held in JS
// memory whole (except urlReader's fallback for servers that ignore Range, see below).
import {
  AbortedError, ForkwiseError, GpuAllocationError, InvalidArgumentError, ModelFetchError, ModelFormatError, shown,
} from '../errors.ts';
import type { ByteReader } from './tensors.ts';

/**
 * Throws ModelFormatError unless [offset, offset + length) is a valid range of a `size`-byte file
 * (ByteReader's contract: a read past the end means the file is shorter than its header says).
 */
export function checkRange(name: string, size: number, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new ModelFormatError(`${name}: invalid byte range (offset ${offset}, length ${length})`);
  }
  if (offset + length > size) {
    throw new ModelFormatError(
      `${name} is truncated: wanted bytes ${offset}..${offset + length} of a ${size}-byte file`);
  }
}

/** True for the RangeError of an ArrayBuffer or typed array too large to allocate. */
export function isAllocationFailure(e: unknown): boolean {
  return e instanceof RangeError && /allocation|array buffer length|typed array length|array length/i.test(e.message);
}

/**
 * `n` zeroed bytes, or GpuAllocationError when they do not fit in memory (a tensor or a whole-file
 * download of gigabytes), instead of the RangeError of the allocation.
 */
export function allocateBytes(n: number, what: string): Uint8Array {
  try {
    return new Uint8Array(n);
  } catch (e) {
    if (isAllocationFailure(e)) throw new GpuAllocationError(`${what}: ${n} bytes do not fit in memory`, e);
    throw e;
  }
}

/** Throws AbortedError when `signal` has fired. */
export function checkAborted(name: string, signal?: AbortSignal): void {
  if (signal?.aborted) throw new AbortedError(`reading ${name} was aborted`);
}

/** One signal that fires when any of the given ones does. */
function anySignal(a?: AbortSignal, b?: AbortSignal): AbortSignal | undefined {
  if (!a) return b;
  if (!b || a === b) return a;
  return AbortSignal.any([a, b]);
}

/**
 * Bytes already in memory. `read` returns views into them (no copy): callers must not modify
 * what they get.
 */
export function bytesReader(name: string, bytes: Uint8Array | ArrayBuffer): ByteReader {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  return {
    name,
    size: view.byteLength,
    async read(offset, length, signal) {
      checkAborted(name, signal);
      checkRange(name, view.byteLength, offset, length);
      return view.subarray(offset, offset + length);
    },
  };
}

/**
 * A caller's ByteReader held to the contract the format readers rely on: `size` a byte count
 * (else InvalidArgumentError), reads range-checked, returning exactly the bytes asked for, and
 * failing with a typed error (a plain Error from the reader becomes ModelFetchError naming it,
 * a read after an abort AbortedError).
 */
export function checkedReader(reader: ByteReader): ByteReader {
  const name = typeof reader.name === 'string' && reader.name !== '' ? reader.name : 'model';
  const size = reader.size;
  if (!Number.isSafeInteger(size) || size < 0) throw new InvalidArgumentError(`reader ${name}: size must be a byte count, got ${shown(size)}`);
  return {
    name,
    size,
    async read(offset, length, signal) {
      checkAborted(name, signal);
      checkRange(name, size, offset, length);
      let bytes: unknown;
      try {
        bytes = await reader.read(offset, length, signal);
      } catch (cause) {
        if (cause instanceof ForkwiseError) throw cause;
        if (signal?.aborted) throw new AbortedError(`reading ${name} was aborted`);
        throw new ModelFetchError(`could not read ${name}: ${cause instanceof Error ? cause.message : shown(cause)}`, undefined, cause);
      }
      if (!(bytes instanceof Uint8Array) || bytes.byteLength !== length) {
        const got = bytes instanceof Uint8Array ? `${bytes.byteLength} bytes` : shown(bytes);
        throw new ModelFetchError(`reading ${name} gave ${got} instead of ${length} bytes at ${offset}`);
      }
      return bytes;
    },
  };
}

/**
 * A Blob or File (from an <input type=file> or a drop). Each read slices the blob, so only the
 * bytes asked for are loaded; works for files over 2 GB. `name` defaults to the File's name.
 */
export function blobReader(blob: Blob, name?: string): ByteReader {
  const fileName = name ?? ((blob as Partial<File>).name || 'blob');
  return {
    name: fileName,
    size: blob.size,
    async read(offset, length, signal) {
      checkAborted(fileName, signal);
      checkRange(fileName, blob.size, offset, length);
      let bytes: ArrayBuffer;
      try {
        bytes = await blob.slice(offset, offset + length).arrayBuffer();
      } catch (cause) {
        // a File whose underlying file was changed or removed since it was picked
        throw new ModelFetchError(`could not read ${fileName}: ${(cause as Error).message}`, undefined, cause);
      }
      checkAborted(fileName, signal);
      if (bytes.byteLength !== length) {
        throw new ModelFetchError(`reading ${fileName} gave ${bytes.byteLength} bytes instead of ${length}`);
      }
      return new Uint8Array(bytes);
    },
  };
}

export interface UrlReaderOptions {
  /** Aborts the size probe and every later read (each read may also pass its own signal). */
  signal?: AbortSignal;
  /** Replaces globalThis.fetch (tests, or a fetch with credentials/retries). */
  fetch?: typeof fetch;
  /**
   * Called with the total bytes received so far for this URL (response bodies of reads, as they
   * stream in; the whole file once when the server ignores ranges; blob reads on a cache hit).
   * The 1-byte size probe does not count.
   */
  onBytes?: (loadedBytes: number) => void;
  /**
   * Browser only: a Cache API cache to look the URL up in first (e.g. the one readSource's
   * rememberSource fills). A hit is read as a Blob, range by range, with no network request.
   * Where `caches` does not exist (Node, insecure contexts) it is skipped.
   */
  cacheName?: string | null;
  /** File name for messages; defaults to the URL's last path segment. */
  name?: string;
}

/** The file name in a URL: its last path segment, decoded. */
export function urlFileName(url: string): string {
  try {
    const segments = new URL(url, 'http://x/').pathname.split('/');
    const last = segments[segments.length - 1];
    return last ? decodeURIComponent(last) : url;
  } catch {
    return url;
  }
}

/**
 * A URL read by HTTP Range requests. Resolves once the size is known: a `Range: bytes=0-0` GET
 * whose 206 answer's Content-Range gives the total (or, where a browser hides that header from a
 * cross-origin page, a HEAD's Content-Length). Each `read` is then one Range request.
 *
 * Fallback: a server that ignores Range (answers 200 with the whole body, to the probe or to a
 * later read) has the whole file downloaded once into memory, and every read is served from that
 * copy. A model file from such a server is therefore held in JS memory whole.
 *
 * HTTP errors reject with ModelFetchError carrying the status and the URL; aborts reject with
 * AbortedError; a read past the end with ModelFormatError (before any request is made).
 */
export async function urlReader(url: string | URL, options: UrlReaderOptions = {}): Promise<ByteReader> {
  const href = String(url);
  const name = options.name ?? urlFileName(href);
  if (href.trim() === '') throw new ModelFetchError('model URL is empty');
  const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  const outer = options.signal;
  let loaded = 0;
  const count = (n: number) => {
    if (n === 0) return;
    loaded += n;
    options.onBytes?.(loaded);
  };

  checkAborted(name, outer);
  const cached = await cachedBlob(href, options.cacheName ?? null);
  if (cached) {
    const blob = blobReader(cached, name);
    return {
      name,
      size: blob.size,
      async read(offset, length, signal) {
        const bytes = await blob.read(offset, length, anySignal(outer, signal));
        count(bytes.byteLength);
        return bytes;
      },
    };
  }

  /** fetch with our errors: AbortedError on abort, ModelFetchError on network or HTTP failure. */
  async function request(
    init: RequestInit, signal: AbortSignal | undefined, what: string, allow416 = false,
  ): Promise<Response> {
    let response: Response;
    try {
      response = await doFetch(href, { ...init, signal });
    } catch (cause) {
      if (signal?.aborted) throw new AbortedError(`loading ${name} was aborted`);
      throw new ModelFetchError(`could not fetch ${name} from ${href}: ${(cause as Error).message}`, undefined, cause);
    }
    if (!response.ok && !(allow416 && response.status === 416)) {
      await drain(response);
      throw new ModelFetchError(`${what} ${name} from ${href} failed: HTTP ${response.status}`, response.status);
    }
    return response;
  }

  let whole: Promise<Uint8Array> | null = null;
  /** Takes a 200 response as the one download of the whole file. */
  function keepWhole(response: Response, signal: AbortSignal | undefined): Promise<Uint8Array> {
    if (whole) {
      response.body?.cancel().catch(() => {}); // another read's download is under way
      return whole;
    }
    whole = readBody(response, lengthHint(response), false, name, href, signal, count);
    // a failed download (abort, reset) must not poison later reads: the next one fetches again
    const mine = whole;
    mine.catch(() => {
      if (whole === mine) whole = null;
    });
    return mine;
  }

  // Learn the size.
  let size: number | null = null;
  const probe = await request({ headers: { Range: 'bytes=0-0' } }, outer, 'fetching', true);
  if (probe.status === 416) {
    // no byte 0: an empty file (Content-Range: bytes */0)
    await drain(probe);
    const total = totalFromContentRange(probe.headers.get('content-range'));
    if (total !== null && total !== 0) throw new ModelFetchError(`fetching ${name} from ${href} failed: HTTP 416`, 416);
    size = 0;
  } else if (probe.status === 206) {
    size = totalFromContentRange(probe.headers.get('content-range'));
    await drain(probe);
    if (size === null) {
      const head = await request({ method: 'HEAD' }, outer, 'fetching');
      size = lengthHint(head);
    }
    if (size === null) {
      // ranges work, but no header tells the size: download the file whole after all
      const response = await request({}, outer, 'fetching');
      size = (await keepWhole(response, outer)).byteLength;
    }
  } else {
    size = (await keepWhole(probe, outer)).byteLength; // Range ignored
  }
  const fileSize = size;

  return {
    name,
    size: fileSize,
    async read(offset, length, readSignal) {
      const signal = anySignal(outer, readSignal);
      checkAborted(name, signal);
      checkRange(name, fileSize, offset, length);
      if (whole) {
        // a whole-file download is done or under way: serve from it
        const bytes = await whole;
        checkAborted(name, signal);
        return slice(bytes, offset, length, name, href);
      }
      if (length === 0) return new Uint8Array(0);
      const end = offset + length - 1;
      const response = await request({ headers: { Range: `bytes=${offset}-${end}` } }, signal, 'fetching');
      if (response.status !== 206) {
        // the server stopped honouring ranges (or a proxy strips them): fall back to the whole file
        const bytes = await keepWhole(response, signal);
        checkAborted(name, signal);
        return slice(bytes, offset, length, name, href);
      }
      const range = response.headers.get('content-range');
      const start = range ? /^\s*bytes\s+(\d+)-/i.exec(range)?.[1] : undefined;
      if (start !== undefined && Number(start) !== offset) {
        await response.body?.cancel().catch(() => {});
        throw new ModelFetchError(`${href} answered bytes ${range} to a request for ${offset}-${end}`, 206);
      }
      return readBody(response, length, true, name, href, signal, count);
    },
  };
}

/** The Cache API entry for `url` as a Blob, or null (no cache name, no Cache API, no entry). */
async function cachedBlob(url: string, cacheName: string | null): Promise<Blob | null> {
  if (!cacheName || typeof caches === 'undefined') return null;
  try {
    const cache = await caches.open(cacheName);
    const hit = await cache.match(url);
    return hit ? await hit.blob() : null;
  } catch {
    return null; // storage disabled (private mode, quota): use the network
  }
}

/** The total of a `Content-Range: bytes a-b/total` header; null when absent or `*`. */
function totalFromContentRange(header: string | null): number | null {
  const m = header ? /\/\s*(\d+)\s*$/.exec(header) : null;
  return m ? Number(m[1]) : null;
}

/** Content-Length when it is the body's length (not the length of a compressed encoding). */
function lengthHint(response: Response): number | null {
  const encoding = response.headers.get('content-encoding');
  if (encoding && encoding.toLowerCase() !== 'identity') return null;
  const header = response.headers.get('content-length');
  if (header === null || !/^\s*\d+\s*$/.test(header)) return null;
  return Number(header);
}

function slice(bytes: Uint8Array, offset: number, length: number, name: string, href: string): Uint8Array {
  if (offset + length > bytes.byteLength) {
    throw new ModelFetchError(`${name} from ${href} has ${bytes.byteLength} bytes, fewer than its size said`);
  }
  return bytes.subarray(offset, offset + length);
}

/**
 * A response body, streamed into one buffer with progress. `strict`: exactly `expected` bytes or
 * ModelFetchError; otherwise `expected` is only a hint for preallocation.
 */
async function readBody(
  response: Response, expected: number | null, strict: boolean, name: string, href: string,
  signal: AbortSignal | undefined, count: (n: number) => void,
): Promise<Uint8Array> {
  const short = (got: number) =>
    new ModelFetchError(`${href} sent ${got} bytes of ${name} where ${expected} were expected`, response.status);
  let buffer = allocateBytes(expected ?? 0, `reading ${name}`);
  let filled = 0;
  const chunks: Uint8Array[] = [];
  const append = (chunk: Uint8Array) => {
    if (chunks.length === 0 && filled + chunk.byteLength <= buffer.byteLength) {
      buffer.set(chunk, filled);
    } else {
      if (strict) throw short(filled + chunk.byteLength);
      if (chunks.length === 0 && filled > 0) chunks.push(buffer.subarray(0, filled));
      chunks.push(chunk);
    }
    filled += chunk.byteLength;
    count(chunk.byteLength);
  };
  try {
    if (response.body) {
      const reader = response.body.getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          append(value);
        }
      } finally {
        reader.releaseLock();
      }
    } else {
      append(new Uint8Array(await response.arrayBuffer()));
    }
  } catch (cause) {
    if (signal?.aborted) throw new AbortedError(`loading ${name} was aborted`);
    if (cause instanceof ModelFetchError) {
      await response.body?.cancel().catch(() => {});
      throw cause;
    }
    throw new ModelFetchError(`reading ${name} from ${href} failed: ${(cause as Error).message}`, undefined, cause);
  }
  if (chunks.length > 0) {
    buffer = allocateBytes(filled, `reading ${name}`);
    let at = 0;
    for (const c of chunks) {
      buffer.set(c, at);
      at += c.byteLength;
    }
    return buffer;
  }
  if (strict && filled !== expected) throw short(filled);
  return filled === buffer.byteLength ? buffer : buffer.subarray(0, filled);
}

/**
 * Reads a small response (the 1-byte size probe, an error page) to its end: a cancelled body
 * is logged by browsers as a failed request, which would be noise in every page's console.
 */
async function drain(response: Response): Promise<void> {
  await response.arrayBuffer().catch(() => {});
}
