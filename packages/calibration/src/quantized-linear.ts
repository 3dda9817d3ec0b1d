import type { Linear } from "@lowbit/tensor";
import { dequantizeMatrix, type QuantizedMatrix } from "@lowbit/int4";
import { makeF32Linear } from "@lowbit/runtime";
import { bitsPerWeight } from "./plugin";

/** Short backend name of a quantized matrix: "w4g32", "w3g43", "w8pc" (per channel). */
export function quantizedKind(qm: Pick<QuantizedMatrix, "bits" | "groupSize" | "cols">): string {
  return `w${qm.bits}${qm.groupSize === qm.cols ? "pc" : `g${qm.groupSize}`}`;
}

/**
 * A linear layer computing with the dequantized weights of a QuantizedMatrix in f32 ("fake
 * quantization", what GPTQ's and AWQ's reference code evaluate with), keeping the matrix itself
 * for exporters (codecs in @lowbit/int4 pack it into GPTQ/AWQ/GGUF layouts).
 */
export class DequantizedLinear implements Linear {
  readonly kind: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly storageBytes: number;
  readonly bias: Float32Array | undefined;
  private readonly inner: Linear;

  constructor(
    readonly qm: QuantizedMatrix,
    bias?: Float32Array,
  ) {
    this.kind = quantizedKind(qm);
    this.inFeatures = qm.cols;
    this.outFeatures = qm.rows;
    this.bias = bias;
    this.storageBytes =
      Math.ceil((qm.rows * qm.cols * bitsPerWeight(qm.bits, qm.groupSize)) / 8) + (bias?.byteLength ?? 0);
    this.inner = makeF32Linear(dequantizeMatrix(qm), qm.rows, qm.cols, bias);
  }

  forward(x: Float32Array, m: number, out?: Float32Array): Float32Array {
    return this.inner.forward(x, m, out);
  }

  dequantizedWeight(): Float32Array {
    return this.inner.dequantizedWeight();
  }

  dispose(): void {
    this.inner.dispose?.();
  }
}
