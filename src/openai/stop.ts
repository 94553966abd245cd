// Stop strings on a stream of decoded text: a match may span tokens, the matched text is never
// emitted, and text that could still be the start of a stop string is held back until it cannot.

export interface StopPush {
  /** Text that can be shown now. */
  emit: string;
  /** A stop string matched: nothing after `emit` belongs to the output. */
  stopped: boolean;
}

export class StopBuffer {
  private held = '';
  private done = false;

  constructor(private readonly stops: readonly string[]) {}

  /** Appends `text`; returns what is safe to emit (everything when there are no stop strings). */
  push(text: string): StopPush {
    if (this.done) return { emit: '', stopped: true };
    const buffer = this.held + text;
    if (this.stops.length === 0) return { emit: buffer, stopped: false };
    // The earliest complete match wins (as it would be seen first reading left to right).
    let at = -1;
    let end = Infinity;
    for (const stop of this.stops) {
      const i = buffer.indexOf(stop);
      if (i >= 0 && (i + stop.length < end || (i + stop.length === end && i < at))) {
        end = i + stop.length;
        at = i;
      }
    }
    if (at >= 0) {
      // A match that completes first; any other stop string starting before it would have to
      // complete later, so the text before this one is the output.
      this.done = true;
      this.held = '';
      return { emit: buffer.slice(0, at), stopped: true };
    }
    const keep = this.heldLength(buffer);
    this.held = buffer.slice(buffer.length - keep);
    return { emit: buffer.slice(0, buffer.length - keep), stopped: false };
  }

  /** At the end of the text: what is still held (it never became a stop string). */
  flush(): string {
    const rest = this.done ? '' : this.held;
    this.held = '';
    return rest;
  }

  /** The longest suffix of `buffer` that is a proper prefix of some stop string. */
  private heldLength(buffer: string): number {
    let best = 0;
    for (const stop of this.stops) {
      for (let n = Math.min(stop.length - 1, buffer.length); n > best; n--) {
        if (buffer.endsWith(stop.slice(0, n))) {
          best = n;
          break;
        }
      }
    }
    return best;
  }
}
