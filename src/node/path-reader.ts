// A ByteReader over a file on disk (Node): positioned reads through fs/promises, so only the bytes
// asked for are loaded, and files over 2 GB work.
import { open, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AbortedError, ModelFetchError } from '../errors.ts';
import { checkAborted, checkRange } from '../model/readers.ts';
import type { ByteReader } from '../model/tensors.ts';

/** Largest single fs read (Node caps one read's length near 2 GiB). */
const CHUNK = 1 << 30;

/**
 * Rejects with ModelFetchError when the path does not exist or is not a file. Each read opens
 * the file, reads its range and closes it, so the reader holds no descriptor between reads.
 */
export async function pathReader(path: string | URL, name?: string): Promise<ByteReader> {
  const file = typeof path === 'string' && !path.startsWith('file:') ? path : fileURLToPath(path);
  const fileName = name ?? basename(file);
  let size: number;
  try {
    const s = await stat(file);
    if (!s.isFile()) throw new Error('not a regular file');
    size = s.size;
  } catch (cause) {
    throw new ModelFetchError(`could not read ${file}: ${(cause as Error).message}`, undefined, cause);
  }
  return {
    name: fileName,
    size,
    async read(offset, length, signal) {
      checkAborted(fileName, signal);
      checkRange(fileName, size, offset, length);
      const out = new Uint8Array(length);
      let handle;
      try {
        handle = await open(file, 'r');
        let done = 0;
        while (done < length) {
          checkAborted(fileName, signal);
          const { bytesRead } = await handle.read(out, done, Math.min(CHUNK, length - done), offset + done);
          if (bytesRead === 0) {
            throw new ModelFetchError(`${file} ended at byte ${offset + done} (it was ${size} bytes when opened)`);
          }
          done += bytesRead;
        }
      } catch (cause) {
        if (cause instanceof ModelFetchError || cause instanceof AbortedError) throw cause;
        throw new ModelFetchError(`could not read ${file}: ${(cause as Error).message}`, undefined, cause);
      } finally {
        await handle?.close().catch(() => {});
      }
      return out;
    },
  };
}
