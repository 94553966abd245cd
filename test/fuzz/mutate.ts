// Mutators: byte-level (truncations at structural boundaries, bit flips in headers, integer
// fields overwritten with extreme values, spliced structures) and JSON-level (a node of the tree
// replaced by a hostile value, deep nesting, non-UTF-8 bytes).
import { type Built, type Rng, int, pick } from './build.ts';

/** Values an integer field is overwritten with: 0, ±1, sign and width edges, 2^40, 2^53 + 1, 2^63, 2^64 − 1. */
export const EXTREME_U64: readonly bigint[] = [
  0n, 1n, 2n ** 64n - 1n, 2n ** 31n - 1n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 40n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 32n, 7n,
];
export const EXTREME_U32: readonly number[] = [0, 1, 0xffffffff, 0x7fffffff, 0x80000000, 0xfffffffe, 3, 1 << 20, 1 << 24, 13, 30, 255];

export interface Mutated {
  bytes: Uint8Array;
  what: string;
}

export function truncate(rng: Rng, b: Built): Mutated {
  const at = Math.max(0, Math.min(b.bytes.length - 1, pick(rng, b.boundaries) + pick(rng, [-1, 0, 0, 0, 1])));
  return { bytes: b.bytes.slice(0, at), what: `truncated at ${at} of ${b.bytes.length}` };
}

export function flipBits(rng: Rng, b: Built): Mutated {
  const bytes = b.bytes.slice();
  const n = 1 + int(rng, 8);
  const at: number[] = [];
  for (let i = 0; i < n; i++) {
    const byte = int(rng, Math.max(1, Math.min(b.headerEnd, bytes.length)));
    bytes[byte] ^= 1 << int(rng, 8);
    at.push(byte);
  }
  return { bytes, what: `bits flipped at ${at.join(',')}` };
}

export function overwriteField(rng: Rng, b: Built): Mutated {
  const bytes = b.bytes.slice();
  if (b.fields.length === 0) return flipBits(rng, b);
  const f = pick(rng, b.fields);
  const view = new DataView(bytes.buffer);
  let value: string;
  if (f.width === 8) {
    const v = pick(rng, EXTREME_U64);
    view.setBigUint64(f.at, v, true);
    value = String(v);
  } else {
    const v = pick(rng, EXTREME_U32);
    view.setUint32(f.at, v, true);
    value = String(v);
  }
  return { bytes, what: `${f.width * 8}-bit field at ${f.at} set to ${value}` };
}

/** Deletes or repeats the bytes between two boundaries (a structure missing or doubled). */
export function splice(rng: Rng, b: Built): Mutated {
  const header = b.boundaries.filter((x) => x <= b.headerEnd);
  const i = int(rng, Math.max(1, header.length - 1));
  const from = header[i] ?? 0;
  const to = header[Math.min(header.length - 1, i + 1 + int(rng, 3))] ?? from;
  const part = b.bytes.subarray(from, to);
  const repeat = rng() < 0.5;
  const bytes = new Uint8Array(b.bytes.length + (repeat ? part.length : -part.length));
  bytes.set(b.bytes.subarray(0, repeat ? to : from));
  if (repeat) {
    bytes.set(part, to);
    bytes.set(b.bytes.subarray(to), to + part.length);
  } else {
    bytes.set(b.bytes.subarray(to), from);
  }
  return { bytes, what: `${repeat ? 'repeated' : 'deleted'} bytes ${from}..${to}` };
}

export function garbageTail(rng: Rng, b: Built): Mutated {
  const extra = new Uint8Array(1 + int(rng, 64)).map(() => int(rng, 256));
  const bytes = new Uint8Array(b.bytes.length + extra.length);
  bytes.set(b.bytes);
  bytes.set(extra, b.bytes.length);
  return { bytes, what: `${extra.length} bytes appended` };
}

const BINARY = [truncate, truncate, truncate, flipBits, flipBits, overwriteField, overwriteField, overwriteField, splice, garbageTail];

export function mutateBinary(rng: Rng, b: Built): Mutated {
  return pick(rng, BINARY)(rng, b);
}

// ---------------------------------------------------------------------------------------------
// JSON

type DeepKind = 'array' | 'object' | 'sequence';

/**
 * A stand-in for a value nested `depth` deep (JSON.stringify and structuredClone overflow the
 * stack on those): jsonText writes the nesting in its place.
 */
export function deepJson(depth: number, kind: DeepKind): string {
  return `\u0000deep:${kind}:${depth}\u0000`;
}

function deepText(kind: DeepKind, depth: number): string {
  switch (kind) {
    case 'array': return '['.repeat(depth) + '0' + ']'.repeat(depth);
    case 'object': return '{"a":'.repeat(depth) + '0' + '}'.repeat(depth);
    case 'sequence': return '{"type":"Sequence","normalizers":['.repeat(depth) + '{"type":"NFC"}' + ']}'.repeat(depth);
  }
}

/** JSON text of `value`, deep stand-ins written out. */
export function jsonText(value: unknown): string {
  return JSON.stringify(value).replace(/"\\u0000deep:(\w+):(\d+)\\u0000"/g, (_, kind: DeepKind, depth: string) => deepText(kind, Number(depth)));
}

function hostileValue(rng: Rng): { value: unknown; what: string } {
  const choices: [string, () => unknown][] = [
    ['null', () => null],
    ['true', () => true],
    ['-1', () => -1],
    ['0', () => 0],
    ['1.5', () => 1.5],
    ['2^31', () => 2 ** 31],
    ['2^40', () => 2 ** 40],
    ['2^53+2', () => 2 ** 53 + 2],
    ['2^63', () => 2 ** 63],
    ['1e308', () => 1e308],
    ['-1e308', () => -1e308],
    ['-0', () => -0],
    ['""', () => ''],
    ['"x"', () => 'x'],
    ['"__proto__"', () => '__proto__'],
    ['[]', () => []],
    ['{}', () => ({})],
    ['[null]', () => [null]],
    ['{"__proto__":…}', () => JSON.parse('{"__proto__": {"polluted": 1}, "type": "BPE"}')],
    ['a 1 MB string', () => 'a'.repeat(1 << 20)],
    ['100k zeros', () => new Array(100_000).fill(0)],
    ['100k nested arrays', () => deepJson(100_000, 'array')],
    ['100k nested objects', () => deepJson(100_000, 'object')],
    ['100k nested Sequences', () => deepJson(100_000, 'sequence')],
    ['a bidi/NUL string', () => '\u202e\u0000<script>alert(1)</script>\ud800'],
  ];
  const [what, make] = pick(rng, choices);
  return { value: make(), what };
}

/** Paths of a JSON tree (shallow nodes first), at most `limit`; arrays sampled. */
function paths(rng: Rng, root: unknown, limit = 400): (string | number)[][] {
  const out: (string | number)[][] = [];
  const queue: { node: unknown; path: (string | number)[] }[] = [{ node: root, path: [] }];
  while (queue.length > 0 && out.length < limit) {
    const { node, path } = queue.shift()!;
    if (path.length > 0) out.push(path);
    if (Array.isArray(node)) {
      const n = node.length;
      const picks = n <= 6 ? [...Array(n).keys()] : [0, 1, n - 1, int(rng, n), int(rng, n)];
      for (const i of picks) queue.push({ node: node[i], path: [...path, i] });
    } else if (node !== null && typeof node === 'object') {
      const keys = Object.keys(node);
      const picks = keys.length <= 24 ? keys : [...keys.slice(0, 12), ...Array.from({ length: 6 }, () => pick(rng, keys))];
      for (const k of picks) queue.push({ node: (node as Record<string, unknown>)[k], path: [...path, k] });
    }
  }
  return out;
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

/** One node of `json` replaced (or deleted, or given an extra hostile key); a copy. */
export function mutateJson(rng: Rng, json: unknown): { value: unknown; what: string } {
  const root = clone(json);
  const all = paths(rng, root);
  if (all.length === 0) return { ...hostileValue(rng), what: 'the whole document replaced' };
  // shallow nodes are likelier: they are what the readers look at
  const path = all[Math.min(all.length - 1, Math.floor(all.length * rng() * rng()))];
  let parent = root as Record<string | number, unknown>;
  for (const k of path.slice(0, -1)) parent = parent[k] as Record<string | number, unknown>;
  const key = path[path.length - 1];
  const r = rng();
  if (r < 0.15 && !Array.isArray(parent)) {
    delete parent[key];
    return { value: root, what: `${path.join('.')} deleted` };
  }
  if (r < 0.22 && !Array.isArray(parent)) {
    const extra = pick(rng, ['__proto__', 'constructor', 'toString', '', '\u202e']);
    const { value, what } = hostileValue(rng);
    Object.defineProperty(parent, extra, { value, enumerable: true, configurable: true, writable: true });
    return { value: root, what: `${[...path.slice(0, -1), extra].join('.')} added as ${what}` };
  }
  const { value, what } = hostileValue(rng);
  parent[key] = value;
  return { value: root, what: `${path.join('.')} = ${what}` };
}

const utf8 = new TextEncoder();

/** JSON text as bytes, sometimes with invalid UTF-8 spliced into a string, or cut short. */
export function jsonBytes(rng: Rng, value: unknown): Mutated {
  const text = jsonText(value);
  const bytes = utf8.encode(text);
  const r = rng();
  if (r < 0.1) {
    const quote = text.indexOf('"', int(rng, text.length));
    const at = quote < 0 ? 1 : quote + 1;
    const bad = pick(rng, [[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xe2, 0x82]]);
    const out = new Uint8Array(bytes.length + bad.length);
    out.set(bytes.subarray(0, at));
    out.set(bad, at);
    out.set(bytes.subarray(at), at + bad.length);
    return { bytes: out, what: `invalid UTF-8 ${bad.map((b) => b.toString(16)).join(' ')} at ${at}` };
  }
  if (r < 0.15) {
    const at = int(rng, bytes.length);
    return { bytes: bytes.slice(0, at), what: `JSON cut at ${at}` };
  }
  return { bytes, what: '' };
}
