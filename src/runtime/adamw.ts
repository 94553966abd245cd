// AdamW for SRGen's δ (algorithms.md §4); reflections run it on the GPU (shaders/adamw.wgsl),
// this CPU class is its float64 reference: one vector of the model width, a few steps per
// reflection, so the optimiser state is three small float64 arrays. PyTorch's torch.optim.AdamW:
//   θ ← θ − lr·wd·θ;  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
//   θ ← θ − lr·m̂ / (√v̂ + eps),  m̂ = m/(1−β1^t),  v̂ = v/(1−β2^t)
// From θ = 0 the first step is −lr·g/(|g| + eps) ≈ −lr·sign(g) per coordinate.
import { InvalidArgumentError, checkInteger, checkNumber } from '../errors.ts';

export interface AdamWOptions {
  lr: number;
  weightDecay: number;
  eps: number;
  beta1: number;
  beta2: number;
}

/** The SRGen authors' settings (lr is theirs too: 0.01). */
export const SRGEN_ADAMW: AdamWOptions = { lr: 0.01, weightDecay: 1e-8, eps: 1e-5, beta1: 0.9, beta2: 0.999 };

export class AdamW {
  readonly params: Float64Array;
  private readonly m: Float64Array;
  private readonly v: Float64Array;
  private t = 0;
  readonly options: AdamWOptions;

  /** Parameters start at 0 (SRGen's δ) unless `initial` is given. */
  constructor(size: number, options: Partial<AdamWOptions> = {}, initial?: ArrayLike<number>) {
    checkInteger('AdamW size', size, 0, 1 << 30);
    this.options = checkOptions(options);
    if (initial !== undefined) {
      checkVector('AdamW initial', initial);
      if (initial.length !== size) throw new InvalidArgumentError(`AdamW: ${initial.length} initial values for ${size} parameters`);
    }
    this.params = initial ? Float64Array.from(initial) : new Float64Array(size);
    this.m = new Float64Array(size);
    this.v = new Float64Array(size);
  }

  /** Steps taken. */
  get steps(): number {
    return this.t;
  }

  /** One step with gradient `grad`; returns the parameters. */
  step(grad: ArrayLike<number>): Float64Array {
    const { lr, weightDecay, eps, beta1, beta2 } = this.options;
    checkVector('AdamW gradient', grad);
    if (grad.length !== this.params.length) throw new InvalidArgumentError(`AdamW: gradient of ${grad.length} for ${this.params.length} parameters`);
    this.t++;
    const c1 = 1 - beta1 ** this.t;
    const c2 = 1 - beta2 ** this.t;
    for (let i = 0; i < this.params.length; i++) {
      const g = grad[i];
      this.params[i] -= lr * weightDecay * this.params[i];
      this.m[i] = beta1 * this.m[i] + (1 - beta1) * g;
      this.v[i] = beta2 * this.v[i] + (1 - beta2) * g * g;
      this.params[i] -= (lr * (this.m[i] / c1)) / (Math.sqrt(this.v[i] / c2) + eps);
    }
    return this.params;
  }
}

/** adamw.wgsl's `Adam` uniform (ADAMW_PARAMS_BYTES) for `o`. */
export function adamwUniform(o: AdamWOptions): ArrayBuffer {
  return Float32Array.of(o.lr, o.weightDecay, o.eps, o.beta1, o.beta2, 0, 0, 0).buffer;
}

/** adamw.wgsl's bias corrections (1−β1^t, 1−β2^t) for t = 1..steps, in float64, then rounded. */
export function biasCorrections(o: AdamWOptions, steps: number): Float32Array {
  const c = new Float32Array(2 * Math.max(1, steps));
  for (let t = 1; t <= steps; t++) c.set([1 - o.beta1 ** t, 1 - o.beta2 ** t], 2 * (t - 1));
  return c;
}

/** The settings over SRGEN_ADAMW, validated (InvalidArgumentError naming the bad one). */
export const adamwOptions = (options: Partial<AdamWOptions> = {}): AdamWOptions => checkOptions(options);

const OPTION_KEYS = new Set(['lr', 'weightDecay', 'eps', 'beta1', 'beta2']);

/** The settings over SRGEN_ADAMW, each finite and in range (InvalidArgumentError naming it). */
function checkOptions(options: Partial<AdamWOptions>): AdamWOptions {
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('AdamW options must be an object');
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) throw new InvalidArgumentError(`unknown AdamW option ${key}`);
  }
  const o = { ...SRGEN_ADAMW, ...options };
  return {
    lr: checkNumber('lr', o.lr, 0, Number.MAX_VALUE),
    weightDecay: checkNumber('weightDecay', o.weightDecay, 0, Number.MAX_VALUE),
    eps: checkNumber('eps', o.eps, Number.MIN_VALUE, Number.MAX_VALUE),
    beta1: checkNumber('beta1', o.beta1, 0, 1 - Number.EPSILON / 2),
    beta2: checkNumber('beta2', o.beta2, 0, 1 - Number.EPSILON / 2),
  };
}

/** An array-like of finite numbers (a NaN gradient would silently poison every later step). */
function checkVector(name: string, v: ArrayLike<number>): void {
  if (typeof v !== 'object' || v === null || !Number.isInteger(v.length)) throw new InvalidArgumentError(`${name} must be an array of numbers`);
  for (let i = 0; i < v.length; i++) {
    const x: unknown = v[i];
    if (typeof x !== 'number' || !Number.isFinite(x)) {
      // typeof, not String(x): String throws on an object without a prototype.
      throw new InvalidArgumentError(`${name}[${i}] must be a finite number, got ${typeof x === 'number' ? x : typeof x}`);
    }
  }
}
