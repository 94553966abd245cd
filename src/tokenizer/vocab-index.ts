// Piece lookup exactly as llama2.c's str_lookup behaves on glibc. run.c sorts the vocabulary with
// qsort (glibc: a stable merge sort) and bsearches it. A vocabulary with duplicate pieces (the
// July-2023 tokenizer.bin stores the 256 byte tokens as raw characters, so ' ', 'a', 'é', ... each
// appear twice) then resolves a lookup to whichever duplicate the binary search probes first:
// sometimes the byte token, sometimes the regular one. We replay that search once per duplicate.

/** Byte string -> id, as llama2.c's str_lookup returns it. */
export function buildLookup(keys: readonly string[]): Map<string, number> {
  const idsByKey = new Map<string, number[]>();
  keys.forEach((key, id) => {
    const ids = idsByKey.get(key);
    if (ids) ids.push(id);
    else idsByKey.set(key, [id]);
  });
  const lookup = new Map<string, number>();
  const duplicates: string[] = [];
  for (const [key, ids] of idsByKey) {
    if (ids.length === 1) lookup.set(key, ids[0]);
    else duplicates.push(key);
  }
  if (duplicates.length > 0) resolveDuplicates(idsByKey, duplicates, lookup);
  return lookup;
}

function resolveDuplicates(idsByKey: Map<string, number[]>, duplicates: string[], lookup: Map<string, number>): void {
  // Default sort orders by UTF-16 code unit, which for latin1 strings is strcmp's unsigned byte
  // order; a stable sort keeps equal pieces in id order.
  const sortedKeys: string[] = [];
  const sortedIds: number[] = [];
  for (const key of [...idsByKey.keys()].sort()) {
    for (const id of idsByKey.get(key) ?? []) {
      sortedKeys.push(key);
      sortedIds.push(id);
    }
  }
  for (const key of duplicates) lookup.set(key, sortedIds[glibcBsearch(sortedKeys, key)]);
}

/** glibc's bsearch (bits/stdlib-bsearch.h): midpoint (l + u) / 2, returns the first equal probe. */
function glibcBsearch(sorted: readonly string[], key: string): number {
  let l = 0;
  let u = sorted.length;
  while (l < u) {
    const idx = (l + u) >>> 1;
    const probe = sorted[idx];
    if (key < probe) u = idx;
    else if (key > probe) l = idx + 1;
    else return idx;
  }
  return -1;
}
