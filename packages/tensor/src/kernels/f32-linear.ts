import { type KernelBuffer, getEngine, getKernelBackend } from "../engine/engine";
import { LowbitError } from "../errors";
import type { Linear } from "../linear";
import { checkDims, checkLength, f32Kernels, gemmParts, gemmThreaded, gemvThreaded, stage } from "./f32";
import { matmulABtRef } from "./f32-ref";

/**
 * An f32 linear layer y = x W^T + b with W [out, in] resident in kernel memory (copied once at
 * construction), so a forward pass copies only the activations. m = 1 runs the GEMV kernel,
 * larger batches the register-blocked GEMM.
 */
export class F32Linear implements Linear {
  readonly kind = "f32";
  readonly storageBytes: number;
  private weight: KernelBuffer | undefined;
  private bias: KernelBuffer | undefined;

  constructor(
    weight: Float32Array,
    readonly outFeatures: number,
    readonly inFeatures: number,
    bias?: Float32Array,
  ) {
    checkDims("F32Linear", { outFeatures, inFeatures });
    checkLength("F32Linear", "weight", weight, outFeatures * inFeatures, `[out=${outFeatures}, in=${inFeatures}]`);
    if (bias) checkLength("F32Linear", "bias", bias, outFeatures, `[out=${outFeatures}]`);
    const engine = getEngine();
    this.weight = engine.buffer(Math.max(4, weight.length * 4));
    this.weight.f32(0, weight.length).set(weight);
    if (bias) {
      this.bias = engine.buffer(Math.max(4, bias.length * 4));
      this.bias.f32(0, bias.length).set(bias);
    }
    this.storageBytes = 4 * (weight.length + (bias ? bias.length : 0));
  }

  private live(): KernelBuffer {
    if (!this.weight) throw new LowbitError("E_INVALID_ARGUMENT", "F32Linear: used after dispose()");
    return this.weight;
  }

  forward(x: Float32Array, m: number, out: Float32Array = new Float32Array(m * this.outFeatures)): Float32Array {
    const w = this.live();
    const n = this.outFeatures;
    const k = this.inFeatures;
    checkDims("F32Linear.forward", { m });
    checkLength("F32Linear.forward", "x", x, m * k, `[m=${m}, in=${k}]`);
    checkLength("F32Linear.forward", "out", out, m * n, `[m=${m}, out=${n}]`);
    if (m * n === 0) return out;
    if (getKernelBackend() === "ref") {
      matmulABtRef(x, w.f32(0, n * k), m, n, k, out);
      if (this.bias) {
        const b = this.bias.f32(0, n);
        for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) out[i * n + j]! += b[j]!;
      }
      return out;
    }
    const engine = getEngine();
    const kx = f32Kernels(engine);
    const parts = m === 1 ? 0 : gemmParts(m, n, k);
    const [px, py, pw] = stage(engine, [x], m * n, parts * kx.pack_bytes(n, k)) as [number, number, number];
    const pb = this.bias ? this.bias.ptr : 0;
    if (m === 1) gemvThreaded(engine, w.ptr, px, py, pb, n, k);
    else gemmThreaded(engine, "abt", px, w.ptr, py, pb, m, n, k, pw, parts);
    out.set(engine.f32(py, m * n));
    return out;
  }

  dequantizedWeight(): Float32Array {
    return this.live().f32(0, this.outFeatures * this.inFeatures).slice();
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
