import type { QuantizedMatrix } from "@lowbit/int4";
import { type Linear, LowbitError } from "@lowbit/tensor";
import type { MlpClassifier } from "../nn/mlp";
import { accuracyFromLogits } from "../nn/mlp";
import { type FakeQuantParams, quantizeDequantize } from "../quant/fake-quantize";
import { linearToQuantizedMatrix } from "./to-quantized";

/** Builds the deployed Linear backend of one quantized weight (e.g. @lowbit/int4's Int4Linear). */
export type QuantizedLinearFactory = (qm: QuantizedMatrix, name: string) => Linear;

/** One layer of a converted classifier. */
export interface QuantizedMlpLayer {
  name: string;
  linear: Linear;
  bias: Float32Array | null;
  /** Frozen input quantization (static activation quantizer), when the layer had one. */
  inputParams: FakeQuantParams | null;
  /** The real quantized weight the linear was built from. */
  weight: QuantizedMatrix;
}

/**
 * A trained fake-quantized MLP turned into real quantized layers: its forward pass runs the Linear
 * backends on the stored codes (plus the frozen input quantization), and its outputs equal the
 * fake-quantized training graph within float rounding.
 */
export class QuantizedMlp {
  constructor(
    readonly layers: QuantizedMlpLayer[],
    readonly inFeatures: number,
    readonly classes: number,
  ) {}

  /** Logits [m, classes] for x [m, inFeatures]. */
  forward(x: Float32Array, m: number): Float32Array {
    let h = x;
    this.layers.forEach((l, i) => {
      const width = l.linear.inFeatures;
      const xin = l.inputParams ? quantizeDequantize(h, m, width, l.inputParams).values : h;
      const y = l.linear.forward(xin, m);
      const n = l.linear.outFeatures;
      if (l.bias) for (let r = 0; r < m; r++) for (let j = 0; j < n; j++) y[r * n + j]! += l.bias[j]!;
      if (i + 1 < this.layers.length) for (let k = 0; k < y.length; k++) if (!(y[k]! > 0)) y[k] = 0;
      h = y;
    });
    return h;
  }

  accuracy(x: Float32Array, labels: Int32Array): number {
    return accuracyFromLogits(this.forward(x, labels.length), labels, this.classes);
  }

  /** Bytes of weight storage of all layers (as each backend reports it). */
  get storageBytes(): number {
    return this.layers.reduce((s, l) => s + l.linear.storageBytes + (l.bias ? l.bias.length * 4 : 0), 0);
  }

  dispose(): void {
    for (const l of this.layers) l.linear.dispose?.();
  }
}

/** Converts every layer of a fake-quantized MLP (all layers need weight quantizers). */
export function convertMlp(model: MlpClassifier, makeLinear: QuantizedLinearFactory): QuantizedMlp {
  const layers = model.layers.map((l) => {
    const weight = linearToQuantizedMatrix(l);
    const iq = l.inputQuant;
    let inputParams: FakeQuantParams | null = null;
    if (iq?.enabled) {
      if (iq.config.mode === "dynamic") {
        throw new LowbitError(
          "E_UNSUPPORTED",
          `${l.name}: dynamic input quantization has no frozen parameters to convert`,
        );
      }
      inputParams = iq.params() ?? null;
    }
    return {
      name: l.name,
      linear: makeLinear(weight, l.name),
      bias: l.bias ? l.bias.value.slice() : null,
      inputParams,
      weight,
    };
  });
  return new QuantizedMlp(layers, model.inFeatures, model.classes);
}
