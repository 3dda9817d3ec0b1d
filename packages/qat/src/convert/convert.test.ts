import { dequantizeMatrix, validateQuantizedMatrix } from "@lowbit/int4";
import { makeF32Linear } from "@lowbit/runtime";
import { Rng } from "@lowbit/tensor";
import { describe, expect, it } from "vitest";
import { backward, noGrad, Variable } from "../autograd/variable";
import { MlpClassifier } from "../nn/mlp";
import { QatLinear } from "../nn/qat-linear";
import { AdamW } from "../optim/optimizers";
import type { WeightQuantConfig } from "../quant/quantizers";
import { defaultQuantizedLinear } from "./default-linear";
import { convertMlp, type QuantizedLinearFactory } from "./quantized-mlp";
import { linearToQuantizedMatrix } from "./to-quantized";

const dequantizedF32: QuantizedLinearFactory = (qm) => makeF32Linear(dequantizeMatrix(qm), qm.rows, qm.cols);

function relErr(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

describe("fake-quantized weight -> QuantizedMatrix", () => {
  it.each<[string, WeightQuantConfig]>([
    ["int4 per tensor, lsq", { bits: 4, granularity: "tensor" }],
    ["int3 per channel asym, minmax", { bits: 3, granularity: "channel", sym: false, mode: "minmax" }],
    ["int2 group 8, lsq", { bits: 2, granularity: "group", groupSize: 8 }],
    ["int8 per channel, lsq", { bits: 8, granularity: "channel" }],
    ["int4 group 16 asym, lsq mse init", { bits: 4, granularity: "group", groupSize: 16, sym: false, init: "mse" }],
  ])("%s: dequantized codes equal the forward's fake-quantized weight bit for bit", (_n, cfg) => {
    const rng = new Rng(3);
    const layer = new QatLinear("l", 32, 6, { rng }).quantize(cfg);
    // move the LSQ scales off their initial values, as training does
    const y = layer.forward(Variable.constant(rng.fillNormal(new Float32Array(4 * 32)), [4, 32]));
    backward(y, rng.fillNormal(new Float32Array(y.size)));
    const opt = new AdamW([...layer.parameters(), ...layer.quantizerParameters()], { lr: 0.01 });
    opt.step();
    const fakeW = noGrad(() => layer.weightQuant!.apply(layer.weight)).value;
    const qm = linearToQuantizedMatrix(layer);
    validateQuantizedMatrix(qm);
    expect(qm.bits).toBe(cfg.bits);
    expect(Array.from(dequantizeMatrix(qm))).toEqual(Array.from(fakeW));
  });

  it("refuses a layer without a weight quantizer", () => {
    expect(() => linearToQuantizedMatrix(new QatLinear("plain", 4, 2))).toThrow(/plain: has no/);
  });
});

describe("convertMlp", () => {
  it.each([
    ["int2 per channel weights, Int4Linear", { bits: 2, granularity: "channel" } as WeightQuantConfig, undefined, defaultQuantizedLinear],
    ["int4 group 8 weights, Int4Linear", { bits: 4, granularity: "group", groupSize: 8 } as WeightQuantConfig, undefined, defaultQuantizedLinear],
    ["int8 per tensor weights, Int4Linear", { bits: 8, granularity: "tensor" } as WeightQuantConfig, undefined, defaultQuantizedLinear],
    ["int4 per channel weights, f32 over dequantized codes", { bits: 4, granularity: "channel" } as WeightQuantConfig, undefined, dequantizedF32],
    [
      "int3 group 8 weights + static int8 inputs",
      { bits: 3, granularity: "group", groupSize: 8 } as WeightQuantConfig,
      { bits: 8, granularity: "tensor" } as const,
      defaultQuantizedLinear,
    ],
  ])("%s: converted logits equal the fake-quantized forward pass within float rounding", (_n, wq, aq, factory) => {
    const rng = new Rng(11);
    const model = new MlpClassifier([16, 24, 5], 2).quantize(wq, aq);
    const x = rng.fillNormal(new Float32Array(20 * 16));
    const labels = Int32Array.from({ length: 20 }, () => rng.int(5));
    const opt = new AdamW(model.parameters(), { lr: 0.01 });
    for (let i = 0; i < 5; i++) {
      opt.zeroGrad();
      backward(model.loss({ x, labels }));
      opt.step();
    }
    for (const l of model.layers) l.inputQuant?.freeze();
    const fake = noGrad(() => model.forward(Variable.constant(x, [20, 16]))).value;
    const q = convertMlp(model, factory);
    const real = q.forward(x, 20);
    expect(relErr(real, fake)).toBeLessThan(1e-6);
    expect(q.accuracy(x, labels)).toBe(model.accuracy(x, labels));
    expect(q.layers.map((l) => l.weight.bits)).toEqual([wq.bits, wq.bits]);
    q.dispose();
  });
});
