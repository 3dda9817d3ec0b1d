import { getKernelBackend, hasWasmSimd, type Linear, LowbitError } from "@lowbit/tensor";
import { gemmRef, gemmWasm, makeResident, type ResidentLayout, residentParams } from "./kernels/kernels";
import { layoutDequantize, packLayout } from "./kernels/layout";
import type { QuantizedMatrix } from "./quantized-matrix";

let simd: boolean | undefined;
function wasmAvailable(): boolean {
  simd ??= hasWasmSimd();
  return simd;
}

export interface Int4LinearOptions {
  /** Optional bias [outFeatures]. */
  bias?: Float32Array;
  /**
   * "f32" (default): weights dequantized on the fly, f32 activations. "int8": activations quantized
   * to int8 per token and weight group at run time (w4a8), integer dot products.
   */
  activations?: "f32" | "int8";
  /** Shown in reports; defaults to `int<bits>-g<groupSize>` (+ "-a8" for int8 activations). */
  kind?: string;
  /** Tensor name for error messages. */
  name?: string;
}

/**
 * A linear layer over group-quantized weights (2..8 bits, any dividing group size, optional
 * act-order gIdx). Weights stay packed in kernel memory (codes in 2/4/8-bit containers); forward
 * dequantizes on the fly (f32 activations) or runs int8 x int-n dot products (int8 activations),
 * with a WebAssembly SIMD fast path and a plain TypeScript reference chosen by getKernelBackend().
 */
export class Int4Linear implements Linear {
  readonly kind: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly storageBytes: number;
  readonly bits: number;
  readonly groupSize: number;
  readonly activations: "f32" | "int8";
  private readonly resident: ResidentLayout;
  private readonly bias?: Float32Array;
  private readonly name: string;
  private disposed = false;

  constructor(qm: QuantizedMatrix, options: Int4LinearOptions = {}) {
    this.name = options.name ?? "weight";
    this.activations = options.activations ?? "f32";
    if (this.activations !== "f32" && this.activations !== "int8") {
      throw new LowbitError("E_INVALID_ARGUMENT", `Int4Linear ${this.name}: activations must be "f32" or "int8", got ${String(this.activations)}`);
    }
    const layout = packLayout(qm, this.name);
    this.resident = makeResident(layout);
    this.inFeatures = qm.cols;
    this.outFeatures = qm.rows;
    this.bits = qm.bits;
    this.groupSize = qm.groupSize;
    if (options.bias) {
      if (options.bias.length !== qm.rows) {
        throw new LowbitError("E_SHAPE_MISMATCH", `Int4Linear ${this.name}: bias has ${options.bias.length} values, expected ${qm.rows}`);
      }
      this.bias = Float32Array.from(options.bias);
    }
    const g = qm.groupSize === qm.cols ? "pc" : `g${qm.groupSize}`;
    this.kind = options.kind ?? `int${qm.bits}-${g}${this.activations === "int8" ? "-a8" : ""}`;
    this.storageBytes =
      this.resident.weights.bytes + this.resident.params.bytes + (this.bias ? this.bias.byteLength : 0) + (layout.colMap ? layout.colMap.byteLength : 0);
  }

  forward(x: Float32Array, m: number, out?: Float32Array): Float32Array {
    return this.run(x, m, out, this.activations === "int8", getKernelBackend() === "wasm" && wasmAvailable() ? "wasm" : "ref");
  }

  /** Forward with an explicit activation mode and backend (tests and benchmarks). */
  run(x: Float32Array, m: number, out: Float32Array | undefined, int8: boolean, backend: "wasm" | "ref"): Float32Array {
    if (this.disposed) throw new LowbitError("E_INVALID_ARGUMENT", `Int4Linear ${this.name}: used after dispose()`);
    if (!(Number.isInteger(m) && m >= 0) || x.length < m * this.inFeatures) {
      throw new LowbitError(
        "E_SHAPE_MISMATCH",
        `Int4Linear ${this.name}: input has ${x.length} values, expected ${m} x ${this.inFeatures}`,
      );
    }
    const n = this.outFeatures;
    const y = out ?? new Float32Array(m * n);
    if (y.length < m * n) throw new LowbitError("E_SHAPE_MISMATCH", `Int4Linear ${this.name}: output has ${y.length} values, expected ${m} x ${n}`);
    if (m === 0) return y;
    if (backend === "wasm") gemmWasm(this.resident, x, m, y, int8);
    else gemmRef(this.resident, x, m, y, int8);
    if (this.bias) {
      for (let t = 0; t < m; t++) for (let j = 0; j < n; j++) y[t * n + j] = y[t * n + j]! + this.bias[j]!;
    }
    return y;
  }

  dequantizedWeight(): Float32Array {
    const r = this.resident;
    const { scales, zeros } = residentParams(r);
    return layoutDequantize({ ...r.layout, weights: new Uint8Array(0), scales: new Float32Array(0), zeros: new Float32Array(0) }, r.weights.u8(), scales, zeros);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.resident.weights.dispose();
    this.resident.params.dispose();
  }
}
