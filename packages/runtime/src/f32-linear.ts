import { LowbitError, type Linear } from "@lowbit/tensor";

/**
 * Plain TypeScript f32 linear layer (weights on the JS heap). Stand-in until @lowbit/tensor's
 * F32Linear is available; kept internal.
 */
export class JsF32Linear implements Linear {
  readonly kind = "f32-js";
  readonly storageBytes: number;

  constructor(
    readonly weight: Float32Array,
    readonly outFeatures: number,
    readonly inFeatures: number,
    readonly bias?: Float32Array,
  ) {
    if (weight.length !== outFeatures * inFeatures) {
      throw new LowbitError(
        "E_SHAPE_MISMATCH",
        `f32 linear: weight has ${weight.length} values, expected ${outFeatures}x${inFeatures}`,
      );
    }
    if (bias && bias.length !== outFeatures) {
      throw new LowbitError("E_SHAPE_MISMATCH", `f32 linear: bias has ${bias.length} values, expected ${outFeatures}`);
    }
    this.storageBytes = weight.byteLength + (bias?.byteLength ?? 0);
  }

  forward(x: Float32Array, m: number, out: Float32Array = new Float32Array(m * this.outFeatures)): Float32Array {
    const n = this.outFeatures;
    const k = this.inFeatures;
    const w = this.weight;
    const b = this.bias;
    let r = 0;
    // four rows of x against each weight row: every weight load is used four times
    for (; r + 4 <= m; r += 4) {
      const x0 = r * k;
      const x1 = x0 + k;
      const x2 = x1 + k;
      const x3 = x2 + k;
      for (let o = 0; o < n; o++) {
        const wo = o * k;
        let s0 = 0;
        let s1 = 0;
        let s2 = 0;
        let s3 = 0;
        for (let i = 0; i < k; i++) {
          const wv = w[wo + i]!;
          s0 += x[x0 + i]! * wv;
          s1 += x[x1 + i]! * wv;
          s2 += x[x2 + i]! * wv;
          s3 += x[x3 + i]! * wv;
        }
        const bo = b ? b[o]! : 0;
        out[r * n + o] = s0 + bo;
        out[(r + 1) * n + o] = s1 + bo;
        out[(r + 2) * n + o] = s2 + bo;
        out[(r + 3) * n + o] = s3 + bo;
      }
    }
    for (; r < m; r++) {
      const xo = r * k;
      for (let o = 0; o < n; o++) {
        const wo = o * k;
        let s = 0;
        for (let i = 0; i < k; i++) s += x[xo + i]! * w[wo + i]!;
        out[r * n + o] = s + (b ? b[o]! : 0);
      }
    }
    return out;
  }

  dequantizedWeight(): Float32Array {
    return this.weight.slice();
  }
}
