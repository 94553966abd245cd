// Bytes -> text, incrementally, holding back what the next token may still complete.
//
// Plain mode: a streaming TextDecoder; an unfinished UTF-8 sequence waits for its last byte.
//
// Legacy mode, for the July-2023 tokenizer.bin, which stores byte tokens 0x80..0xFF as the UTF-8
// of the characters U+0080..U+00FF. There llama2.c's encode uses those ids both for raw bytes
// (byte fallback, which is what the model means by them) and for the Latin-1 characters (its
// lookup of 'é', 'ñ', ... lands on the byte token for about half of them); its merges can also
// absorb a fallback byte's Latin-1 character into a regular piece (' ⚼' becomes ' â' + 0x9A + 0xBC).
// So a run of Latin-1 characters whose byte values spell a valid UTF-8 sequence, with at least one
// of them from an ambiguous byte token, is read as that UTF-8 character; everything else is read
// literally. This is a best reading, not an inverse: that encode is not injective (it maps ' ⚼' and
// ' â\u009a¼' to the same ids).

interface Unit {
  byte: number; // the character's code, U+0080..U+00FF, as a byte
  ambiguous: boolean; // from an ambiguous byte token rather than from a regular piece
}

export class TextSink {
  private readonly utf8 = new TextDecoder('utf-8'); // not fatal: invalid bytes become U+FFFD
  private pending: Unit[] = []; // a valid but unfinished UTF-8 prefix, Latin-1 units (legacy mode)

  constructor(private readonly legacy: boolean) {}

  /** Bytes of a regular token; returns the text they complete. */
  write(bytes: Uint8Array): string {
    const text = this.utf8.decode(bytes, { stream: true });
    return this.legacy ? this.writeLegacyText(text) : text;
  }

  /** One byte of an ambiguous byte token (legacy mode); returns the text it completes. */
  writeAmbiguous(byte: number): string {
    return this.feed({ byte, ambiguous: true });
  }

  /** Ends the stream: returns what was held back (U+FFFD for an unfinished UTF-8 sequence). */
  end(): string {
    return this.settle() + this.utf8.decode();
  }

  private writeLegacyText(text: string): string {
    let out = '';
    let i = 0;
    // Leading Latin-1 characters may finish a pending sequence.
    while (this.pending.length > 0 && i < text.length && continues(this.pending, text.charCodeAt(i))) {
      out += this.feed({ byte: text.charCodeAt(i), ambiguous: false });
      i++;
    }
    if (i === text.length) return out; // all of it continued the pending sequence
    out += this.settle();
    // A trailing lead character (plus its continuations) may be finished by the next token.
    const tail = unfinishedSuffix(text, i);
    out += text.slice(i, text.length - tail);
    for (let k = text.length - tail; k < text.length; k++) out += this.feed({ byte: text.charCodeAt(k), ambiguous: false });
    return out;
  }

  private feed(unit: Unit): string {
    if (this.pending.length > 0 && continues(this.pending, unit.byte)) {
      this.pending.push(unit);
      return this.pending.length < sequenceLength(this.pending[0].byte) ? '' : this.resolve();
    }
    const settled = this.settle();
    if (sequenceLength(unit.byte) > 1) {
      this.pending = [unit];
      return settled;
    }
    return settled + String.fromCharCode(unit.byte);
  }

  /** A complete sequence: UTF-8 if an ambiguous byte token took part, else the literal characters. */
  private resolve(): string {
    const units = this.pending;
    this.pending = [];
    if (!units.some((u) => u.ambiguous)) return String.fromCharCode(...units.map((u) => u.byte));
    return new TextDecoder().decode(Uint8Array.from(units, (u) => u.byte));
  }

  /** Pending units that can no longer complete are Latin-1 characters. */
  private settle(): string {
    if (this.pending.length === 0) return '';
    const text = String.fromCharCode(...this.pending.map((u) => u.byte));
    this.pending = [];
    return text;
  }
}

/** Length of the UTF-8 sequence a lead byte starts; 1 for ASCII and for bytes that cannot lead. */
function sequenceLength(lead: number): number {
  if (lead >= 0xc2 && lead <= 0xdf) return 2;
  if (lead >= 0xe0 && lead <= 0xef) return 3;
  if (lead >= 0xf0 && lead <= 0xf4) return 4;
  return 1;
}

/** Whether `byte` validly continues `prefix` (Unicode Table 3-7: no overlongs, surrogates, > U+10FFFF). */
function continues(prefix: readonly Unit[], byte: number): boolean {
  let lo = 0x80;
  let hi = 0xbf;
  if (prefix.length === 1) {
    const lead = prefix[0].byte;
    if (lead === 0xe0) lo = 0xa0;
    else if (lead === 0xed) hi = 0x9f;
    else if (lead === 0xf0) lo = 0x90;
    else if (lead === 0xf4) hi = 0x8f;
  }
  return byte >= lo && byte <= hi;
}

/** Length of the suffix of text[from..] that is a lead character plus valid continuations, unfinished. */
function unfinishedSuffix(text: string, from: number): number {
  for (let back = 1; back <= 3 && text.length - back >= from; back++) {
    const start = text.length - back;
    const need = sequenceLength(text.charCodeAt(start));
    if (need > 1) return back < need && validChain(text, start) ? back : 0;
    const c = text.charCodeAt(start);
    if (c < 0x80 || c > 0xbf) return 0; // neither a lead nor a continuation character
  }
  return 0;
}

function validChain(text: string, start: number): boolean {
  const units: Unit[] = [{ byte: text.charCodeAt(start), ambiguous: false }];
  for (let k = start + 1; k < text.length; k++) {
    if (!continues(units, text.charCodeAt(k))) return false;
    units.push({ byte: text.charCodeAt(k), ambiguous: false });
  }
  return true;
}
