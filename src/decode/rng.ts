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

/** Steps of the uniform: the top 23 bits of the hash, so (bits + 1/2) / 2^23 is exact in float32. */
const UNIFORM_STEPS = 8388608;

/**
 * A uniform in the open interval (0, 1): ((bits >>> 9) + 1/2) / 2^23, exactly the shader's
 * float32 value (23 bits plus a half fit a float32 mantissa), in [2^-24, 1 − 2^-24]: −log u and
 * −log(1 − u) are always finite.
 */
export function uniform01(seed: number, row: number, pos: number, counter: number, index: number): number {
  return ((rngBits(seed, row, pos, counter, index) >>> 9) + 0.5) / UNIFORM_STEPS;
}
