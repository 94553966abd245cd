// AdamW on the CPU for SRGen's δ (DESIGN §4): one vector of the model width, a few steps per
// reflection, so the optimiser state is three small float64 arrays. PyTorch's torch.optim.AdamW:
//   θ ← θ − lr·wd·θ;  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
//   θ ← θ − lr·m̂ / (√v̂ + eps),  m̂ = m/(1−β1^t),  v̂ = v/(1−β2^t)
// From θ = 0 the first step is −lr·g/(|g| + eps) ≈ −lr·sign(g) per coordinate.

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
    this.options = { ...SRGEN_ADAMW, ...options };
    this.params = initial ? Float64Array.from(initial) : new Float64Array(size);
    if (this.params.length !== size) throw new RangeError(`AdamW: ${this.params.length} initial values for ${size} parameters`);
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
    if (grad.length !== this.params.length) throw new RangeError(`AdamW: gradient of ${grad.length} for ${this.params.length} parameters`);
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
