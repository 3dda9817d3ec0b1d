import type { QuantizedMatrix } from "@lowbit/int4";
import { LowbitError } from "@lowbit/tensor";
import type { QatLinear } from "../nn/qat-linear";
import { type FakeQuantParams, quantizeDequantize } from "../quant/fake-quantize";
import type { WeightFakeQuant } from "../quant/quantizers";

/**
 * The real quantized weight of a fake-quantized matrix: codes, scales and zeros in
 * QuantizedMatrix layout (per-tensor parameters are repeated per row), so that
 * dequantizeMatrix(result) equals the fake-quantized weight of the forward pass bit for bit.
 */
export function fakeQuantToQuantizedMatrix(
  weight: Float32Array,
  rows: number,
  cols: number,
  quant: WeightFakeQuant,
  name = "weight",
): QuantizedMatrix {
  if (weight.length !== rows * cols || quant.rows !== rows || quant.cols !== cols) {
    throw new LowbitError(
      "E_SHAPE_MISMATCH",
      `${name}: weight of ${weight.length} values and quantizer for [${quant.rows}, ${quant.cols}] do not match [${rows}, ${cols}]`,
    );
  }
  const params = quant.params(weight);
  return paramsToQuantizedMatrix(weight, rows, cols, params, quant.config.sym);
}

/** Codes + parameters in QuantizedMatrix layout for weight-style layouts (tensor or row groups). */
export function paramsToQuantizedMatrix(
  weight: Float32Array,
  rows: number,
  cols: number,
  params: FakeQuantParams,
  sym: boolean,
): QuantizedMatrix {
  const { codes } = quantizeDequantize(weight, rows, cols, params);
  const layout = params.layout;
  if (layout.kind === "column") {
    throw new LowbitError("E_UNSUPPORTED", "per-column (per input feature) parameters have no QuantizedMatrix layout");
  }
  if (layout.kind === "tensor") {
    return {
      bits: params.bits,
      groupSize: cols,
      rows,
      cols,
      sym,
      q: codes,
      scales: new Float32Array(rows).fill(params.scale[0]!),
      zeros: new Float32Array(rows).fill(params.zero[0]!),
    };
  }
  return {
    bits: params.bits,
    groupSize: layout.groupSize,
    rows,
    cols,
    sym,
    q: codes,
    scales: params.scale.slice(),
    zeros: params.zero.slice(),
  };
}

/** A QatLinear's weight as a QuantizedMatrix (it must have a weight quantizer). */
export function linearToQuantizedMatrix(layer: QatLinear): QuantizedMatrix {
  if (!layer.weightQuant?.enabled) {
    throw new LowbitError("E_INVALID_ARGUMENT", `${layer.name}: has no (enabled) weight quantizer to convert`);
  }
  return fakeQuantToQuantizedMatrix(layer.weight.value, layer.outFeatures, layer.inFeatures, layer.weightQuant, layer.name);
}
