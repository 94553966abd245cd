// A minimal GGUF (v2/v3) metadata reader for tests: the key/value section only, no tensors.
// Layout: magic 'GGUF', u32 version, u64 tensor count, u64 kv count, then per kv a string key
// (u64 length + UTF-8), a u32 value type and the value; an array is a u32 element type, a u64
// count and the elements. Integers come back as numbers (u64/i64 as numbers when they fit).
import { readFileSync } from 'node:fs';

const utf8 = new TextDecoder('utf-8');

export function readGgufMetadata(path: string): Record<string, unknown> {
  const bytes = readFileSync(path);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const u32 = (): number => {
    const v = view.getUint32(at, true);
    at += 4;
    return v;
  };
  const u64 = (): number => {
    const v = view.getBigUint64(at, true);
    at += 8;
    return Number(v);
  };
  const str = (): string => {
    const n = u64();
    const s = utf8.decode(bytes.subarray(at, at + n));
    at += n;
    return s;
  };
  const value = (type: number): unknown => {
    switch (type) {
      case 0: return view.getUint8(at++);
      case 1: return view.getInt8(at++);
      case 2: { const v = view.getUint16(at, true); at += 2; return v; }
      case 3: { const v = view.getInt16(at, true); at += 2; return v; }
      case 4: return u32();
      case 5: { const v = view.getInt32(at, true); at += 4; return v; }
      case 6: { const v = view.getFloat32(at, true); at += 4; return v; }
      case 7: return view.getUint8(at++) !== 0;
      case 8: return str();
      case 9: {
        const elem = u32();
        const n = u64();
        const out = new Array<unknown>(n);
        for (let i = 0; i < n; i++) out[i] = value(elem);
        return out;
      }
      case 10: return u64();
      case 11: { const v = view.getBigInt64(at, true); at += 8; return Number(v); }
      case 12: { const v = view.getFloat64(at, true); at += 8; return v; }
      default: throw new Error(`GGUF value type ${type} at byte ${at}`);
    }
  };
  if (utf8.decode(bytes.subarray(0, 4)) !== 'GGUF') throw new Error(`${path} is not a GGUF file`);
  at = 4;
  const version = u32();
  if (version < 2) throw new Error(`GGUF version ${version} is not supported`);
  u64(); // tensor count
  const kvCount = u64();
  const metadata: Record<string, unknown> = {};
  for (let i = 0; i < kvCount; i++) {
    const key = str();
    metadata[key] = value(u32());
  }
  return metadata;
}

/** The `tokenizer.*` keys, as a GGUF reader hands them to the tokenizer (TokenizerSource 'gguf'). */
export function readGgufTokenizerMetadata(path: string): Record<string, unknown> {
  const all = readGgufMetadata(path);
  return Object.fromEntries(Object.entries(all).filter(([k]) => k.startsWith('tokenizer.')));
}
