// The per-step uniform `Step` of shaders/prelude.wgsl, written from TypeScript: the one encoder
// of its layout. Every graph kernel reads it; a session writes it once per step.

/** Bytes of `Step`. */
export const STEP_UNIFORM_BYTES = 32;
/** Bytes of one `TokenSlot` (id, pos, row, pad). */
export const TOKEN_SLOT_BYTES = 16;
/** TokenSlot.next when the step does not know the following token (prelude.wgsl NO_TOKEN). */
export const NO_TOKEN = 0xffffffff;

export interface StepUniform {
  /** Token rows in the step. */
  nTokens: number;
  /** First token row the LM head runs on, and how many. */
  statsRowStart: number;
  statsRows: number;
  /** RNG seed and stream salt of the GPU sample. */
  seed: number;
  counter: number;
  /** Temperature of the reported statistics (1 = raw logits). */
  statsTemperature: number;
  /** Temperature of the GPU sample; 0 = no sample (the argmax). */
  sampleTemperature: number;
}

/** Writes `s` into `out` (STEP_UNIFORM_BYTES) in the prelude's field order. */
export function encodeStep(out: ArrayBuffer, s: StepUniform): ArrayBuffer {
  const u = new DataView(out);
  u.setUint32(0, s.nTokens, true);
  u.setUint32(4, s.statsRowStart, true);
  u.setUint32(8, s.statsRows, true);
  u.setUint32(12, s.seed >>> 0, true);
  u.setUint32(16, s.counter >>> 0, true);
  u.setFloat32(20, 1 / s.statsTemperature, true);
  u.setFloat32(24, s.sampleTemperature > 0 ? 1 / s.sampleTemperature : 0, true);
  u.setUint32(28, 0, true);
  return out;
}
