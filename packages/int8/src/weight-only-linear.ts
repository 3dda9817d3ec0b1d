import type { Linear } from "@lowbit/tensor";
import { checkForward, w8f32PackedRef, w8f32PackedWasm } from "./gemm";
import {
  checkBias,
  checkFeatures,
  checkStoredInt8,
  type Int8WeightOptions,
  quantizeWeightInt8,
} from "./int8-weights";
import { useWasm } from "./kernels";
import { checkDims, Int8Weights } from "./packed";

/**
 * Weight-only int8 linear layer (torchao int8_weight_only style): symmetric int8 weights with
 * one f32 scale per output channel, resident in kernel memory; activations stay f32 and each
 * weight is dequantized on the fly inside the f32 dot product (the scale applied once per output).
 */
export class Int8WeightOnlyLinear implements Linear {
  readonly kind = "int8-w";
  private readonly packed: Int8Weights;

  private constructor(
    q: Int8Array,
    scale: Float32Array,
    readonly outFeatures: number,
    readonly inFeatures: number,
    bias: Float32Array | undefined,
  ) {
    checkDims("Int8WeightOnlyLinear", 1, outFeatures, inFeatures);
    this.packed = new Int8Weights(q, outFeatures, inFeatures, { scale, bias });
  }

  /** Quantizes an f32 weight [out, in] (per channel by default). */
  static fromWeight(w: Float32Array, outFeatures: number, inFeatures: number, opts: Int8WeightOptions = {}): Int8WeightOnlyLinear {
    checkFeatures("Int8WeightOnlyLinear", outFeatures, inFeatures);
    const bias = checkBias(opts.bias, outFeatures, opts.name);
    const { q, scale } = quantizeWeightInt8(w, outFeatures, inFeatures, opts);
    return new Int8WeightOnlyLinear(q, scale, outFeatures, inFeatures, bias);
  }

  /** From stored int8 weights [out, in] and per-channel scales [out] (value = q * scale). */
  static fromInt8(
    q: Int8Array,
    scale: Float32Array,
    outFeatures: number,
    inFeatures: number,
    opts: { bias?: Float32Array; name?: string } = {},
  ): Int8WeightOnlyLinear {
    checkStoredInt8("Int8WeightOnlyLinear", q, scale, outFeatures, inFeatures, opts.name);
    return new Int8WeightOnlyLinear(q, scale, outFeatures, inFeatures, checkBias(opts.bias, outFeatures, opts.name));
  }

  get storageBytes(): number {
    return this.outFeatures * this.inFeatures + this.outFeatures * 4 + (this.packed.hasBias ? this.outFeatures * 4 : 0);
  }

  /** The stored int8 weights [out, in] (a copy). */
  get qweight(): Int8Array {
    return this.packed.unpadded();
  }

  /** Per-output-channel scales (a copy). */
  get scales(): Float32Array {
    return this.packed.scale().slice();
  }

  get bias(): Float32Array | undefined {
    return this.packed.bias()?.slice();
  }

  forward(x: Float32Array, m: number, out?: Float32Array): Float32Array {
    checkForward("Int8WeightOnlyLinear", x, m, this.inFeatures, this.outFeatures, out);
    const y = out ?? new Float32Array(m * this.outFeatures);
    if (m === 0) return y;
    if (useWasm()) w8f32PackedWasm(x, this.packed, m, y);
    else w8f32PackedRef(x, this.packed, m, y);
    return y;
  }

  dequantizedWeight(): Float32Array {
    const { outFeatures: n, inFeatures: k } = this;
    const q = this.packed.q();
    const s = this.packed.scale();
    const kp = this.packed.kp;
    const w = new Float32Array(n * k);
    for (let r = 0; r < n; r++) for (let c = 0; c < k; c++) w[r * k + c] = q[r * kp + c]! * s[r]!;
    return w;
  }

  dispose(): void {
    this.packed.dispose();
  }
}
