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
    const k4 = k - (k % 4);
    for (let r = 0; r < m; r++) {
      const xo = r * k;
      for (let o = 0; o < n; o++) {
        const wo = o * k;
        let s0 = 0;
        let s1 = 0;
        let s2 = 0;
        let s3 = 0;
        let i = 0;
        for (; i < k4; i += 4) {
          s0 += x[xo + i]! * w[wo + i]!;
          s1 += x[xo + i + 1]! * w[wo + i + 1]!;
          s2 += x[xo + i + 2]! * w[wo + i + 2]!;
          s3 += x[xo + i + 3]! * w[wo + i + 3]!;
        }
        for (; i < k; i++) s0 += x[xo + i]! * w[wo + i]!;
        out[r * n + o] = s0 + s1 + s2 + s3 + (b ? b[o]! : 0);
      }
    }
    return out;
  }

  dequantizedWeight(): Float32Array {
    return this.weight.slice();
  }
}
