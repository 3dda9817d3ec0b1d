import { quantizeModel, sampleWindows } from "@lowbit/calibration";
import { buildModel, LINEAR_NAMES, makeConfig, memorySource } from "@lowbit/runtime";
import { Rng } from "@lowbit/tensor";
import { describe, expect, it } from "vitest";
import { noGrad, Variable } from "../autograd/variable";
import { defaultQuantizedLinear } from "../convert/default-linear";
import { type LayerQatResult, qatPlugin, trainLayerQat } from "./layer-qat";
import { QatDecoderLayer } from "./qat-decoder-layer";
import { QatLlama } from "./qat-llama";

const cfg = makeConfig({ dim: 16, hiddenDim: 32, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 40, tiedEmbeddings: true });

async function randomRuntimeModel() {
  const src = new QatLlama(cfg, undefined, 3, 0.25);
  return buildModel(cfg, memorySource(src.tensors()));
}

function relErr(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

describe("block-wise QAT of a decoder layer", () => {
  it("lowers the output error below the RTN start, and the converted layer runs in the runtime as trained", async () => {
    const model = await randomRuntimeModel();
    const rng = new Rng(5);
    const W = 6;
    const T = 12;
    const tokens = Array.from({ length: W * T }, () => rng.int(40));
    const x = model.embed(tokens);
    const targets = model.runLayer(0, x, W, T);
    const layer = QatDecoderLayer.fromModel(model, 0);
    const res = await trainLayerQat(layer, x, targets, W, T, {
      weight: { bits: 2, granularity: "group", groupSize: 8, sym: false },
      epochs: 15,
      batchWindows: 2,
      lr: 3e-3,
      scaleLr: 3e-3,
    });
    expect(res.steps).toBe(45);
    expect(res.finalMse).toBeLessThan(0.7 * res.initialMse);

    const fake = noGrad(() => layer.forward(Variable.constant(x, [W * T, 16]), T)).value;
    const q = layer.toQuantized();
    for (const n of LINEAR_NAMES) model.setLinear(0, n, defaultQuantizedLinear(q[n]!));
    model.layerNorms(0).attnNorm.set(layer.attnNorm.value);
    model.layerNorms(0).ffnNorm.set(layer.ffnNorm.value);
    expect(relErr(model.runLayer(0, x, W, T), fake)).toBeLessThan(1e-5);
  });

  it("runs as a plug-in of the calibration driver: every linear replaced, each layer improved", async () => {
    const model = await randomRuntimeModel();
    const rng = new Rng(6);
    const stream = Array.from({ length: 400 }, () => rng.int(40));
    const data = sampleWindows(stream, { windows: 4, seqLen: 16, seed: 1, bosId: 1 });
    const results: LayerQatResult[] = [];
    const report = await quantizeModel(
      model,
      data,
      qatPlugin({
        weight: { bits: 3, granularity: "group", groupSize: 8, sym: false },
        epochs: 8,
        batchWindows: 2,
        lr: 3e-3,
        scaleLr: 3e-3,
        onLayer: (_l, r) => results.push(r),
      }),
    );
    expect(report.records.length).toBe(2 * LINEAR_NAMES.length);
    expect(report.records.every((r) => r.bits === 3 && r.groupSize === 8)).toBe(true);
    expect(results.length).toBe(2);
    for (const r of results) expect(r.finalMse).toBeLessThan(r.initialMse);
  });
});
