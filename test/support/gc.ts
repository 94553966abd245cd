// A full garbage collection without --expose-gc on the command line (node --test starts test
// files itself): the flag is set at run time and `gc` taken from a fresh context.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Collects garbage (twice, for objects freed by finalizers) and returns the heap bytes in use. */
export function forceGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}
