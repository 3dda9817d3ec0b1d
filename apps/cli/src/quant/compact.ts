import { Int4Linear, type QuantizedMatrix } from "@lowbit/int4";
import { LINEAR_NAMES, type LlamaModel } from "@lowbit/runtime";
import type { Linear } from "@lowbit/tensor";
import { quantizedMatrixOf } from "./collect";

/**
 * A finished layer's quantized linear kept compact: the QuantizedMatrix (what exporters and the
 * resume store read) and the bias; the packed int4 backend is built only if the model is run.
 */
export class KeptQuantizedLinear implements Linear {
  readonly kind: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly storageBytes: number;
  private inner: Linear | undefined;
  constructor(readonly qm: QuantizedMatrix, readonly bias: Float32Array | undefined, kind: string, storageBytes: number) {
    this.kind = kind;
    this.inFeatures = qm.cols;
    this.outFeatures = qm.rows;
    this.storageBytes = storageBytes;
  }
  private backend(): Linear {
    if (!this.inner) {
      this.inner = new Int4Linear(this.qm, this.bias ? { bias: this.bias } : {});
    }
    return this.inner;
  }
  forward(x: Float32Array, m: number, out?: Float32Array): Float32Array {
    return this.backend().forward(x, m, out);
  }
  dequantizedWeight(): Float32Array {
    return this.backend().dequantizedWeight();
  }
  dispose(): void {
    this.inner?.dispose?.();
    this.inner = undefined;
  }
}

/** Swaps layer i's quantized backends (f32 over dequantized weights) for compact ones. */
export function compactLayer(model: LlamaModel, i: number): void {
  for (const name of LINEAR_NAMES) {
    const lin = model.getLinear(i, name);
    const qm = quantizedMatrixOf(lin);
    if (!qm || lin instanceof KeptQuantizedLinear) continue;
    const b = (lin as { bias?: unknown }).bias;
    model.setLinear(i, name, new KeptQuantizedLinear(qm, b instanceof Float32Array ? b : undefined, lin.kind, lin.storageBytes)).dispose?.();
  }
}
