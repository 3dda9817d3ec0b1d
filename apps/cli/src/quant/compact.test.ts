import { DequantizedLinear } from "@lowbit/calibration";
import { dequantizeMatrix, quantizeRTN } from "@lowbit/int4";
import { buildModel, expectedTensors, LINEAR_NAMES, makeConfig, memorySource } from "@lowbit/runtime";
import { Rng } from "@lowbit/tensor";
import { describe, expect, it } from "vitest";
import { quantizedMatrixOf } from "./collect";
import { compactLayer, KeptQuantizedLinear } from "./compact";

async function quantizedModel(bits: number) {
  const cfg = makeConfig({ dim: 64, hiddenDim: 96, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 50, maxSeqLen: 32 });
  const rng = new Rng(11);
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, shape] of expectedTensors(cfg)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (name.endsWith("norm.weight")) data.fill(1);
    else rng.fillNormal(data, 0, 1 / Math.sqrt(shape.at(-1)!));
    tensors.set(name, { shape, data });
  }
  const model = await buildModel(cfg, memorySource(tensors));
  for (let i = 0; i < cfg.nLayers; i++) {
    for (const name of LINEAR_NAMES) {
      const w = model.getLinear(i, name);
      const qm = quantizeRTN(w.dequantizedWeight(), w.outFeatures, w.inFeatures, { bits, groupSize: 32, sym: false });
      model.setLinear(i, name, new DequantizedLinear(qm));
    }
  }
  return model;
}

describe("compactLayer: finished layers keep only their quantized matrices", () => {
  it.each([4, 8])("%i-bit: same matrices for the exporters, the same function when run", async (bits) => {
    const model = await quantizedModel(bits);
    const tokens = [1, 7, 3, 9, 12, 4];
    const before = model.forward(tokens, model.createCache(), "all");
    const qms = LINEAR_NAMES.map((n) => quantizedMatrixOf(model.getLinear(0, n)));
    compactLayer(model, 0);
    LINEAR_NAMES.forEach((n, j) => {
      const lin = model.getLinear(0, n);
      expect(lin).toBeInstanceOf(KeptQuantizedLinear);
      expect(quantizedMatrixOf(lin)).toBe(qms[j]); // the exporters read the very same matrix
      expect(lin.dequantizedWeight()).toEqual(dequantizeMatrix(qms[j]!));
    });
    expect(model.getLinear(1, "attn_q")).toBeInstanceOf(DequantizedLinear); // other layers untouched
    compactLayer(model, 0); // idempotent
    const after = model.forward(tokens, model.createCache(), "all");
    // f32 GEMM over dequantized weights vs the packed kernel: same values, other summation order
    let worst = 0;
    for (let i = 0; i < before.length; i++) worst = Math.max(worst, Math.abs(after[i]! - before[i]!) / (1e-3 + Math.abs(before[i]!)));
    expect(worst).toBeLessThan(1e-3);
  });
});
