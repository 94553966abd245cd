// The phase timings every peer's run reports, in one shape, so the matrix compares them cell by
// cell: prefill ends with the first generated token; decode counts the forwards after it.

export interface PeerTiming {
  /** From the call to the first generated token. */
  ttftMs: number;
  prefillMs: number;
  /** Positions forwarded during prefill. */
  prefillTokens: number;
  prefillTokPerSec: number;
  decodeMs: number;
  /** Forwards after the first generated token. */
  decodeTokens: number;
  decodeTokPerSec: number;
  /** Wall clock of the whole run. */
  totalMs: number;
}

/** Adds the tok/s rates to measured counts and times (no decode forwards: 0 tok/s). */
export function peerTiming(t: Omit<PeerTiming, 'prefillTokPerSec' | 'decodeTokPerSec'>): PeerTiming {
  return {
    ...t,
    prefillTokPerSec: t.prefillMs > 0 ? t.prefillTokens / (t.prefillMs / 1000) : 0,
    decodeTokPerSec: t.decodeTokens > 0 ? t.decodeTokens / (t.decodeMs / 1000) : 0,
  };
}
