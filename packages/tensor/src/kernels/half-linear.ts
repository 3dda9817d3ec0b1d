import { type KernelBuffer, getEngine, getKernelBackend } from "../engine/engine";
import { LowbitError } from "../errors";
import { encodeBf16, encodeF16 } from "../half";
import type { Linear } from "../linear";
import { checkDims, checkLength, gemmParts, stage } from "./f32";
import { gemmHalfThreaded, gemvHalfThreaded, HALF_FMT, type HalfFormat, halfFormatCode, halfKernels } from "./half-kernels";
import { decodeHalfRef, matmulABtHalfRef } from "./half-ref";

/** Options of HalfLinear. */
export interface HalfLinearOptions {
  /** How the 16-bit weights are encoded: IEEE binary16 ("f16") or bfloat16 ("bf16"). */
  readonly format: HalfFormat;
  /** Bias [outFeatures] (f32). */
  readonly bias?: Float32Array;
}

/**
 * A linear layer y = x W^T + b whose weight W [out, in] stays as 16-bit f16 or bf16 bits in kernel
 * memory (copied once at construction): half the memory and bandwidth of F32Linear. The kernels
 * convert W to f32 exactly on the fly and accumulate in f32, so the result is the f32 product with
 * the decoded weight up to summation order. m = 1 runs the GEMV kernel; larger batches convert
 * panels of W to f32 once per panel and run the f32 GEMM micro-kernel.
 */
export class HalfLinear implements Linear {
  readonly kind: HalfFormat;
  readonly format: HalfFormat;
  readonly storageBytes: number;
  private readonly fmt: number;
  private weight: KernelBuffer | undefined;
  private bias: KernelBuffer | undefined;

  constructor(
    bits: Uint16Array,
    readonly outFeatures: number,
    readonly inFeatures: number,
    options: HalfLinearOptions,
  ) {
    const { format, bias } = options;
    if (format !== "f16" && format !== "bf16") {
      throw new LowbitError("E_INVALID_ARGUMENT", `HalfLinear: format must be "f16" or "bf16", got ${String(format)}`);
    }
    checkDims("HalfLinear", { outFeatures, inFeatures });
    checkLength("HalfLinear", "weight", bits, outFeatures * inFeatures, `[out=${outFeatures}, in=${inFeatures}]`);
    if (bias) checkLength("HalfLinear", "bias", bias, outFeatures, `[out=${outFeatures}]`);
    this.kind = format;
    this.format = format;
    this.fmt = halfFormatCode(format, bits);
    const engine = getEngine();
    this.weight = engine.buffer(Math.max(16, bits.length * 2));
    this.weight.u16(0, bits.length).set(bits);
    if (bias) {
      this.bias = engine.buffer(Math.max(4, bias.length * 4));
      this.bias.f32(0, bias.length).set(bias);
    }
    this.storageBytes = 2 * bits.length + 4 * (bias ? bias.length : 0);
  }

  /** A HalfLinear of an f32 weight rounded to `format` (round to nearest even). */
  static fromF32(
    weight: Float32Array,
    outFeatures: number,
    inFeatures: number,
    options: HalfLinearOptions,
  ): HalfLinear {
    checkLength("HalfLinear.fromF32", "weight", weight, outFeatures * inFeatures, `[out=${outFeatures}, in=${inFeatures}]`);
    const bits = options.format === "bf16" ? encodeBf16(weight) : encodeF16(weight);
    return new HalfLinear(bits, outFeatures, inFeatures, options);
  }

  private live(): KernelBuffer {
    if (!this.weight) throw new LowbitError("E_INVALID_ARGUMENT", "HalfLinear: used after dispose()");
    return this.weight;
  }

  forward(x: Float32Array, m: number, out: Float32Array = new Float32Array(m * this.outFeatures)): Float32Array {
    const w = this.live();
    const n = this.outFeatures;
    const k = this.inFeatures;
    checkDims("HalfLinear.forward", { m });
    checkLength("HalfLinear.forward", "x", x, m * k, `[m=${m}, in=${k}]`);
    checkLength("HalfLinear.forward", "out", out, m * n, `[m=${m}, out=${n}]`);
    if (m * n === 0) return out;
    if (getKernelBackend() === "ref") {
      return matmulABtHalfRef(x, w.u16(0, n * k), this.format, m, n, k, this.bias?.f32(0, n), out);
    }
    const engine = getEngine();
    const kx = halfKernels(engine);
    const parts = m === 1 ? 0 : gemmParts(m, n, k);
    const [px, py, pw] = stage(engine, [x], m * n, m === 1 ? 4 * k : parts * kx.pack_bytes()) as [number, number, number];
    const pb = this.bias ? this.bias.ptr : 0;
    if (m === 1) {
      // finite f16 weights: x times 2^112 once (exact unless some |x| >= 2^16) saves the GEMV a
      // multiply per weight, with the same products bit for bit
      if (this.fmt === HALF_FMT.f16Finite && kx.prescale_x(px, pw, k) === 1) {
        gemvHalfThreaded(engine, w.ptr, pw, py, pb, n, k, HALF_FMT.f16Prescaled);
      } else {
        gemvHalfThreaded(engine, w.ptr, px, py, pb, n, k, this.fmt);
      }
    } else {
      gemmHalfThreaded(engine, px, w.ptr, py, pb, m, n, k, this.fmt, pw, parts);
    }
    out.set(engine.f32(py, m * n));
    return out;
  }

  /** The weight decoded to f32 (exact). */
  dequantizedWeight(): Float32Array {
    return decodeHalfRef(this.weightBits(), this.format);
  }

  /** A copy of the weight's 16-bit codes [out, in]. */
  weightBits(): Uint16Array {
    return this.live().u16(0, this.outFeatures * this.inFeatures).slice();
  }

  /** A copy of the bias, if any. */
  biasValues(): Float32Array | undefined {
    return this.bias?.f32(0, this.outFeatures).slice();
  }

  dispose(): void {
    this.weight?.dispose();
    this.bias?.dispose();
    this.weight = undefined;
    this.bias = undefined;
  }
}
