import { loadLlama2c, makeConfig } from "@lowbit/runtime";
import { Rng } from "@lowbit/tensor";
import { dataFile, hasData } from "@lowbit/testing";
import { describe, expect, it } from "vitest";
import { gradCheck } from "../autograd/gradcheck";
import { noGrad, Variable } from "../autograd/variable";
import { QatDecoderLayer } from "./qat-decoder-layer";
import { QatLlama } from "./qat-llama";

function relErr(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

const tiny = (tied: boolean) =>
  makeConfig({ dim: 8, hiddenDim: 12, nLayers: 2, nHeads: 2, nKvHeads: 1, vocabSize: 11, tiedEmbeddings: tied });

describe("QatLlama on a tiny random model", () => {
  it.each([true, false])("whole-model gradients match finite differences (tied classifier: %s)", (tied) => {
    const model = new QatLlama(tiny(tied), undefined, 1, 0.3);
    const tokens = [1, 4, 7, 2, 1, 10, 3, 3];
    const targets = [4, 7, 2, 9, 10, 3, 3, 0];
    const params = model.parameters();
    const fn = (_inputs: readonly Variable[]) => model.loss({ tokens: Int32Array.from(tokens), targets: Int32Array.from(targets), seqLen: 4 });
    // gradCheck perturbs the values in place: the model reads the same arrays
    const res = gradCheck(fn, params, { eps: 1e-2, atol: 1e-3, rtol: 2e-2, maxPerInput: 6 });
    expect(res.checked).toBeGreaterThan(50);
    expect(res.ok, JSON.stringify(res.worst)).toBe(true);
  });

  it("exports tensors under GGUF-style names and rebuilds the same model from them", () => {
    const a = new QatLlama(tiny(false), undefined, 2);
    const t = a.tensors();
    expect([...t.keys()]).toContain("blk.1.ffn_down.weight");
    expect(t.get("blk.0.attn_k.weight")!.shape).toEqual([4, 8]);
    const b = new QatLlama(tiny(false), t);
    const tokens = [1, 2, 3, 4];
    const la = noGrad(() => a.forward(tokens, 4)).value;
    const lb = noGrad(() => b.forward(tokens, 4)).value;
    expect(Array.from(lb)).toEqual(Array.from(la));
  });

  it("group size 32 on 12 inputs falls back to one group per row (effectiveGroupSize)", () => {
    const layer = new QatDecoderLayer(tiny(true), 0).quantize({ bits: 3, granularity: "group", groupSize: 32 });
    expect(layer.linears.ffn_down.weightQuant!.layout).toEqual({ kind: "group", groupSize: 12 });
  });
});

describe.skipIf(!hasData)("QatLlama against the runtime on stories260K", () => {
  it("decoder layers and logits equal LlamaModel's (runLayer / head) within f32 rounding", async () => {
    const model = await loadLlama2c(dataFile("stories260K", "stories260K.bin"));
    const rng = new Rng(4);
    const T = 24;
    const tokens = Array.from({ length: 2 * T }, () => rng.int(512));
    const qat = QatLlama.fromModel(model);
    let h = model.embed(tokens);
    let hq = noGrad(() => Variable.constant(h.slice(), [2 * T, 64]));
    for (let i = 0; i < model.nLayers; i++) {
      const ref = model.runLayer(i, h, 2, T);
      const layer = QatDecoderLayer.fromModel(model, i);
      const mine = noGrad(() => layer.forward(Variable.constant(h, [2 * T, 64]), T)).value;
      expect(relErr(mine, ref)).toBeLessThan(1e-5);
      h = ref;
      hq = noGrad(() => qat.layers[i]!.forward(hq, T));
    }
    const logits = noGrad(() => qat.forward(tokens, T)).value;
    expect(relErr(logits, model.head(h, 2 * T))).toBeLessThan(1e-5);
  });
});
