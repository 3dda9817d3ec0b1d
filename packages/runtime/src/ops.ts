import type { RopeStyle } from "./config";

/**
 * RMSNorm of `rows` rows of width `dim`: out = x / sqrt(mean(x^2) + eps) * weight.
 * `out` may alias `x`.
 */
export function rmsNorm(
  x: Float32Array,
  weight: Float32Array,
  rows: number,
  dim: number,
  eps: number,
  out: Float32Array = new Float32Array(rows * dim),
): Float32Array {
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let ss = 0;
    for (let i = 0; i < dim; i++) {
      const v = x[o + i]!;
      ss += v * v;
    }
    const inv = 1 / Math.sqrt(ss / dim + eps);
    for (let i = 0; i < dim; i++) out[o + i] = x[o + i]! * inv * weight[i]!;
  }
  return out;
}

/** Numerically stable in-place softmax of x[offset, offset + n). */
export function softmaxInPlace(x: Float32Array | Float64Array, offset: number, n: number): void {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) if (x[offset + i]! > max) max = x[offset + i]!;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const e = Math.exp(x[offset + i]! - max);
    x[offset + i] = e;
    sum += e;
  }
  const inv = 1 / sum;
  for (let i = 0; i < n; i++) x[offset + i] = x[offset + i]! * inv;
}

/** log(sum(exp(x))) over x[offset, offset + n), in float64. */
export function logSumExp(x: Float32Array, offset: number, n: number): number {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) if (x[offset + i]! > max) max = x[offset + i]!;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(x[offset + i]! - max);
  return max + Math.log(sum);
}

/** Index of the largest value of x[offset, offset + n) (first one on ties). */
export function argmax(x: Float32Array, offset = 0, n = x.length - offset): number {
  let best = 0;
  let bv = x[offset]!;
  for (let i = 1; i < n; i++) {
    const v = x[offset + i]!;
    if (v > bv) {
      bv = v;
      best = i;
    }
  }
  return best;
}

/**
 * Rotary position embedding tables: cos/sin of pos * theta^(-2i/headDim) for i < headDim/2, grown
 * on demand. Shared by both pairing conventions; only the pairing of dimensions differs.
 */
export class RopeTable {
  private cos = new Float32Array(0);
  private sin = new Float32Array(0);
  private positions = 0;
  private readonly half: number;
  private readonly invFreq: Float64Array;

  constructor(
    readonly headDim: number,
    readonly theta: number,
    readonly style: RopeStyle,
  ) {
    this.half = headDim / 2;
    this.invFreq = new Float64Array(this.half);
    for (let i = 0; i < this.half; i++) this.invFreq[i] = 1 / theta ** ((2 * i) / headDim);
  }

  private ensure(positions: number): void {
    if (positions <= this.positions) return;
    const n = Math.max(positions, this.positions * 2, 64);
    const cos = new Float32Array(n * this.half);
    const sin = new Float32Array(n * this.half);
    for (let p = 0; p < n; p++) {
      for (let i = 0; i < this.half; i++) {
        const a = p * this.invFreq[i]!;
        cos[p * this.half + i] = Math.cos(a);
        sin[p * this.half + i] = Math.sin(a);
      }
    }
    this.cos = cos;
    this.sin = sin;
    this.positions = n;
  }

  /**
   * Rotates `nHeads` heads stored contiguously at x[offset ...] for absolute position `pos`.
   */
  apply(x: Float32Array, offset: number, nHeads: number, pos: number): void {
    this.ensure(pos + 1);
    const half = this.half;
    const hd = this.headDim;
    const cos = this.cos;
    const sin = this.sin;
    const base = pos * half;
    if (this.style === "interleaved") {
      for (let h = 0; h < nHeads; h++) {
        const o = offset + h * hd;
        for (let i = 0; i < half; i++) {
          const c = cos[base + i]!;
          const s = sin[base + i]!;
          const a = x[o + 2 * i]!;
          const b = x[o + 2 * i + 1]!;
          x[o + 2 * i] = a * c - b * s;
          x[o + 2 * i + 1] = a * s + b * c;
        }
      }
    } else {
      for (let h = 0; h < nHeads; h++) {
        const o = offset + h * hd;
        for (let i = 0; i < half; i++) {
          const c = cos[base + i]!;
          const s = sin[base + i]!;
          const a = x[o + i]!;
          const b = x[o + i + half]!;
          x[o + i] = a * c - b * s;
          x[o + i + half] = a * s + b * c;
        }
      }
    }
  }
}
