// The counter-based RNG of the GPU (shaders/lm_head_stats.wgsl `pcg`, `uniform01`), mirrored on the
// CPU. A draw is a pure function of its key (seed, KV row, position, counter, index): no state to
// carry, save or fork, so a (seed, prompt, decoder) triple reproduces the same text wherever it
// runs, and the CPU can recompute any draw the GPU made.
//
// Only 32-bit integer operations (Math.imul, ^, >>>) are used for the hash, so it is bit-exact in
// every JavaScript engine. The uniform adds one exactly representable float64 division.

/** PCG-RXS-M-XS hash of a u32 (Jarzynski & Olano 2020), as the shader's `pcg`. */
export function pcgHash(v: number): number {
  const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/**
 * The 32 random bits of key (seed, row, pos, counter, index), chained as the shader does:
 * pcg(index ^ pcg(counter ^ pcg(pos ^ pcg(row ^ pcg(seed))))). Every argument is taken mod 2^32.
 * On the GPU `index` is the token id; `row` is the KV row and `pos` the position of the step's
 * input token.
 */
export function rngBits(seed: number, row: number, pos: number, counter: number, index: number): number {
  return pcgHash(index ^ pcgHash(counter ^ pcgHash(pos ^ pcgHash(row ^ pcgHash(seed)))));
}

/** 2^24: the uniform keeps the top 24 bits of the hash, as many as a float32 mantissa holds. */
const UNIFORM_STEPS = 16777216;

/**
 * A uniform in the open interval (0, 1): ((bits >>> 8) + 1/2) / 2^24, in float64, so it lies in
 * [2^-25, 1 − 2^-25] and never reaches 0 or 1 (−log u and −log(1 − u) are always finite). This is
 * the value the shader means to draw; `uniform01F32` is the one it actually computes.
 */
export function uniform01(seed: number, row: number, pos: number, counter: number, index: number): number {
  return ((rngBits(seed, row, pos, counter, index) >>> 8) + 0.5) / UNIFORM_STEPS;
}

/**
 * The shader's uniform bit for bit: it adds the 1/2 in float32, which rounds to even once
 * bits >>> 8 ≥ 2^23, and gives exactly 1.0 when bits >>> 8 = 2^24 − 1 (a shader bug: the
 * Gumbel key −log(−log 1) is +∞ there). Use it to compare with GPU output; sample with `uniform01`.
 */
export function uniform01F32(seed: number, row: number, pos: number, counter: number, index: number): number {
  // The float64 sum is exact, so rounding it to float32 is the float32 addition.
  return Math.fround((rngBits(seed, row, pos, counter, index) >>> 8) + 0.5) / UNIFORM_STEPS;
}
