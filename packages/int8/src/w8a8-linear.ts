import { getEngine, type Linear, LowbitError } from "@lowbit/tensor";
import { checkForward, scaledPackedRef, scaledPackedWasm } from "./gemm";
import {
  checkBias,
  checkFeatures,
  checkStoredInt8,
  type Int8WeightOptions,
  quantizeWeightInt8,
} from "./int8-weights";
import { quantKernels, useWasm, withScratch } from "./kernels";
import { checkDims, Int8Weights } from "./packed";
import { type QuantDType, type QuantScheme, type ResolvedRange, resolveRange } from "./qparams";
import { activationParams, quantizeValue } from "./quantize";

export interface DynamicW8A8Options extends Int8WeightOptions {
  /** Activation parameters per batch ("per-tensor", torch quantize_dynamic, default) or per row ("per-token"). */
  activation?: "per-tensor" | "per-token";
  /** Activation storage: "uint8" (default, as torch/fbgemm) or "int8". */
  activationDType?: QuantDType;
  /** "affine" (default) or "symmetric". */
  activationScheme?: QuantScheme;
  /** Activations in 7 bits (torch reduce_range, what fbgemm on x86 uses); default false. */
  activationReduceRange?: boolean;
}

/**
 * Dynamic W8A8 linear layer with torch `quantize_dynamic` semantics: weights symmetric int8
 * (per output channel by default, or per tensor), quantized once and resident in kernel memory;
 * activations quantized on the fly from each batch's min/max (widened to include 0) to uint8
 * affine by default, per tensor (torch) or per token; an exact i32 GEMM, then
 * y = aScale * wScale * (acc - aZero * rowSum(W)) (+ bias).
 */
export class DynamicW8A8Linear implements Linear {
  readonly kind = "w8a8";
  private readonly packed: Int8Weights;
  private readonly range: ResolvedRange;
  private readonly perTensor: boolean;
  private readonly name: string | undefined;

  private constructor(
    q: Int8Array,
    scale: Float32Array,
    readonly outFeatures: number,
    readonly inFeatures: number,
    bias: Float32Array | undefined,
    opts: DynamicW8A8Options,
  ) {
    checkDims("DynamicW8A8Linear", 1, outFeatures, inFeatures);
    this.range = resolveRange({
      dtype: opts.activationDType ?? "uint8",
      scheme: opts.activationScheme ?? "affine",
      reduceRange: opts.activationReduceRange,
    });
    const mode = opts.activation ?? "per-tensor";
    this.perTensor = mode === "per-tensor";
    if (!this.perTensor && mode !== "per-token") {
      throw new LowbitError("E_INVALID_ARGUMENT", `DynamicW8A8Linear: activation must be "per-tensor" or "per-token", got "${String(mode)}"`);
    }
    this.name = opts.name;
    this.packed = new Int8Weights(q, outFeatures, inFeatures, { scale, bias });
  }

  /** Quantizes an f32 weight [out, in]. */
  static fromWeight(w: Float32Array, outFeatures: number, inFeatures: number, opts: DynamicW8A8Options = {}): DynamicW8A8Linear {
    checkFeatures("DynamicW8A8Linear", outFeatures, inFeatures);
    const bias = checkBias(opts.bias, outFeatures, opts.name);
    const { q, scale } = quantizeWeightInt8(w, outFeatures, inFeatures, opts);
    return new DynamicW8A8Linear(q, scale, outFeatures, inFeatures, bias, opts);
  }

  /** From stored symmetric int8 weights [out, in] and per-channel scales [out]. */
  static fromInt8(
    q: Int8Array,
    scale: Float32Array,
    outFeatures: number,
    inFeatures: number,
    opts: Omit<DynamicW8A8Options, "granularity" | "reduceRange" | "quantMin" | "quantMax"> = {},
  ): DynamicW8A8Linear {
    checkStoredInt8("DynamicW8A8Linear", q, scale, outFeatures, inFeatures, opts.name);
    return new DynamicW8A8Linear(q, scale, outFeatures, inFeatures, checkBias(opts.bias, outFeatures, opts.name), opts);
  }

  get storageBytes(): number {
    return this.outFeatures * this.inFeatures + this.outFeatures * 4 + (this.packed.hasBias ? this.outFeatures * 4 : 0);
  }

  get qweight(): Int8Array {
    return this.packed.unpadded();
  }

  get scales(): Float32Array {
    return this.packed.scale().slice();
  }

  get bias(): Float32Array | undefined {
    return this.packed.bias()?.slice();
  }

  forward(x: Float32Array, m: number, out?: Float32Array): Float32Array {
    checkForward("DynamicW8A8Linear", x, m, this.inFeatures, this.outFeatures, out);
    const n = this.outFeatures;
    const k = this.inFeatures;
    const y = out ?? new Float32Array(m * n);
    if (m === 0) return y;
    const { qmin, qmax } = this.range;
    const actName = this.name ? `${this.name} input` : "input";
    if (!useWasm()) {
      const minmax = new Float32Array(2 * m);
      for (let i = 0; i < m; i++) {
        let lo = x[i * k]!;
        let hi = lo;
        for (let t = 1; t < k; t++) {
          lo = Math.min(lo, x[i * k + t]!);
          hi = Math.max(hi, x[i * k + t]!);
        }
        minmax[2 * i] = lo;
        minmax[2 * i + 1] = hi;
      }
      const p = activationParams(minmax, m, this.perTensor, this.range, x, k, actName);
      const aq = new Int16Array(m * k);
      for (let i = 0; i < m; i++) {
        const inv = p.inv[i]!;
        const zp = p.zero[i]!;
        for (let t = 0; t < k; t++) aq[i * k + t] = quantizeValue(x[i * k + t]!, inv, zp, qmin, qmax);
      }
      scaledPackedRef(aq, k, p.scale, p.zero, this.packed, m, y);
      return y;
    }
    const kp = this.packed.kp;
    withScratch([m * k * 4, m * 8, m * kp * 2, m * 4, m * 4, m * 4, m * 4, m * n * 4], (ptrs) => {
      const [xp, mm, a16, ip, zfp, sp, zp, yp] = ptrs as [number, number, number, number, number, number, number, number];
      const e = getEngine();
      const qk = quantKernels();
      e.f32(xp, m * k).set(x.subarray(0, m * k));
      qk.minmax_rows(xp, m, k, mm);
      const p = activationParams(e.f32(mm, 2 * m).slice(), m, this.perTensor, this.range, x, k, actName);
      e.f32(ip, m).set(p.inv);
      const zf = e.f32(zfp, m);
      for (let i = 0; i < m; i++) zf[i] = p.zero[i]!;
      e.f32(sp, m).set(p.scale);
      e.i32(zp, m).set(p.zero);
      qk.quantize_rows_i16(xp, a16, m, k, kp, ip, zfp, qmin, qmax);
      scaledPackedWasm(a16, sp, zp, this.packed, m, yp);
      y.set(e.f32(yp, m * n));
    });
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
