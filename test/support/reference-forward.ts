// A float64 CPU forward pass of the Llama family (llama2.c run.c style, one token at a time with a
// KV cache), straight from ModelConfig and canonical tensor names, for checking format readers
// and the GPU graph against goldens:
//
//   x = embed[token]
//   per layer: h = rmsnorm(x)·w_attn_norm;  q, k, v = Wq h (+bq), Wk h (+bk), Wv h (+bv)
//              qkNorm: q, k = rmsnorm over headDim per head · attn_q_norm / attn_k_norm
//              RoPE at pos: pairs (2i, 2i+1) ('interleaved') or (i, i+d/2) ('half'),
//                angle = pos · θ^(−2i/d) / ropeFreqFactors[i]
//              causal GQA attention (query head h reads kv head h / (nHeads/nKvHeads)),
//              scores scaled by 1/sqrt(headDim);  x += Wo · attn
//              h = rmsnorm(x)·w_ffn_norm;  x += Wdown · (silu(Wgate h) ⊙ Wup h)
//   logits = W_out · (rmsnorm(x)·w_out_norm), W_out = output.weight or token_embd when tied
//
// Weights are read as stored (float32 values are exact in float64); all arithmetic is float64.
import { type LayerTensorName, type ModelConfig, TENSOR, kvDim, qDim } from '../../src/model/config.ts';

export type Weights = (name: string) => Float64Array | Float32Array;

export interface ReferencePosition {
  logits: Float64Array;
  /** log Σ exp(logits) */
  lse: number;
  /** Entropy of softmax(logits), nats. */
  entropy: number;
  argmax: number;
}

/** y[o] = Σ_i W[o][i]·x[i] (+ b[o]) for row-major W [out][in]. */
function matvec(W: ArrayLike<number>, x: Float64Array, out: number, b?: ArrayLike<number>): Float64Array {
  const n = x.length;
  const y = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    const row = o * n;
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    let i = 0;
    for (; i + 3 < n; i += 4) {
      s0 += W[row + i] * x[i];
      s1 += W[row + i + 1] * x[i + 1];
      s2 += W[row + i + 2] * x[i + 2];
      s3 += W[row + i + 3] * x[i + 3];
    }
    for (; i < n; i++) s0 += W[row + i] * x[i];
    const s = s0 + s1 + (s2 + s3);
    y[o] = b ? s + b[o] : s;
  }
  return y;
}

/** RMSNorm of x[from, from+n) times w, in place into y (x and y may be the same). */
function rmsnorm(y: Float64Array, x: Float64Array, w: ArrayLike<number>, eps: number, from = 0, n = x.length): void {
  let ss = 0;
  for (let i = 0; i < n; i++) ss += x[from + i] * x[from + i];
  const s = 1 / Math.sqrt(ss / n + eps);
  for (let i = 0; i < n; i++) y[from + i] = x[from + i] * s * w[i];
}

export class ReferenceModel {
  private readonly keys: Float64Array[][] = [];
  private readonly values: Float64Array[][] = [];
  private readonly invFreq: Float64Array;
  pos = 0;

  constructor(readonly c: ModelConfig, private readonly w: Weights) {
    const half = c.headDim / 2;
    this.invFreq = new Float64Array(half);
    for (let i = 0; i < half; i++) {
      this.invFreq[i] = Math.pow(c.ropeTheta, (-2 * i) / c.headDim) / (c.ropeFreqFactors?.[i] ?? 1);
    }
    for (let l = 0; l < c.nLayers; l++) {
      this.keys.push([]);
      this.values.push([]);
    }
  }

  private rope(v: Float64Array, heads: number): void {
    const d = this.c.headDim;
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < d / 2; i++) {
        const [a, b] = this.c.ropeLayout === 'interleaved' ? [h * d + 2 * i, h * d + 2 * i + 1] : [h * d + i, h * d + i + d / 2];
        const angle = this.pos * this.invFreq[i];
        const cos = Math.cos(angle);
        const sin = Math.sin(angle);
        const x0 = v[a];
        const x1 = v[b];
        v[a] = x0 * cos - x1 * sin;
        v[b] = x0 * sin + x1 * cos;
      }
    }
  }

  /** Feeds one token at the next position; returns that position's next-token distribution. */
  step(token: number): ReferencePosition {
    const { c, w } = this;
    const { dim, headDim: hd, nHeads, nKvHeads, normEps: eps } = c;
    const layer = (l: number, name: LayerTensorName) => w(TENSOR.layer(l, name));
    const x = Float64Array.from(w(TENSOR.embedding).subarray(token * dim, (token + 1) * dim));
    const h = new Float64Array(dim);
    for (let l = 0; l < c.nLayers; l++) {
      rmsnorm(h, x, layer(l, 'attn_norm.weight'), eps);
      const bias = (name: LayerTensorName) => (c.qkvBias ? layer(l, name) : undefined);
      const q = matvec(layer(l, 'attn_q.weight'), h, qDim(c), bias('attn_q.bias'));
      const k = matvec(layer(l, 'attn_k.weight'), h, kvDim(c), bias('attn_k.bias'));
      const v = matvec(layer(l, 'attn_v.weight'), h, kvDim(c), bias('attn_v.bias'));
      if (c.qkNorm) {
        for (let hh = 0; hh < nHeads; hh++) rmsnorm(q, q, layer(l, 'attn_q_norm.weight'), eps, hh * hd, hd);
        for (let hh = 0; hh < nKvHeads; hh++) rmsnorm(k, k, layer(l, 'attn_k_norm.weight'), eps, hh * hd, hd);
      }
      this.rope(q, nHeads);
      this.rope(k, nKvHeads);
      this.keys[l].push(k);
      this.values[l].push(v);

      const att = new Float64Array(qDim(c));
      const T = this.pos + 1;
      const scores = new Float64Array(T);
      for (let hh = 0; hh < nHeads; hh++) {
        const kv = Math.floor(hh / (nHeads / nKvHeads)) * hd;
        let max = -Infinity;
        for (let t = 0; t < T; t++) {
          let s = 0;
          for (let i = 0; i < hd; i++) s += q[hh * hd + i] * this.keys[l][t][kv + i];
          scores[t] = s / Math.sqrt(hd);
          max = Math.max(max, scores[t]);
        }
        let z = 0;
        for (let t = 0; t < T; t++) z += (scores[t] = Math.exp(scores[t] - max));
        for (let t = 0; t < T; t++) {
          for (let i = 0; i < hd; i++) att[hh * hd + i] += (scores[t] / z) * this.values[l][t][kv + i];
        }
      }
      const o = matvec(layer(l, 'attn_output.weight'), att, dim);
      for (let i = 0; i < dim; i++) x[i] += o[i];

      rmsnorm(h, x, layer(l, 'ffn_norm.weight'), eps);
      const gate = matvec(layer(l, 'ffn_gate.weight'), h, c.hiddenDim);
      const up = matvec(layer(l, 'ffn_up.weight'), h, c.hiddenDim);
      for (let i = 0; i < c.hiddenDim; i++) gate[i] = (gate[i] / (1 + Math.exp(-gate[i]))) * up[i];
      const down = matvec(layer(l, 'ffn_down.weight'), gate, dim);
      for (let i = 0; i < dim; i++) x[i] += down[i];
    }
    rmsnorm(h, x, w(TENSOR.outputNorm), eps);
    const logits = matvec(w(c.tiedEmbeddings ? TENSOR.embedding : TENSOR.output), h, c.vocabSize);
    this.pos++;
    return distribution(logits);
  }
}

export function distribution(logits: Float64Array): ReferencePosition {
  let argmax = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[argmax]) argmax = i;
  const max = logits[argmax];
  // Z = Σ e^(z−max), lse = max + ln Z, H = −Σ p ln p = lse − Σ p·z
  let z = 0;
  let ez = 0;
  for (let i = 0; i < logits.length; i++) {
    const e = Math.exp(logits[i] - max);
    z += e;
    ez += e * (logits[i] - max);
  }
  const lse = max + Math.log(z);
  return { logits, lse, entropy: Math.log(z) - ez / z, argmax };
}

/** Runs `tokens` through a fresh model; one distribution per position. */
export function referenceForward(c: ModelConfig, w: Weights, tokens: readonly number[]): ReferencePosition[] {
  const m = new ReferenceModel(c, w);
  return tokens.map((t) => m.step(t));
}
