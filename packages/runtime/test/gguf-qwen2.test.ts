import path from "node:path";
import { GGML_TYPE, GgufMetadataBuilder, ggufDimsFromShape, writeGguf } from "@lowbit/formats";
import { tmpDir } from "@lowbit/testing";
import { describe, expect, it } from "vitest";
import { loadGguf } from "../src/index";
import { type RefConfig, Reference64 } from "./reference";
import { hfTensors, randomWeights } from "./random-model";
import { internalNameFromHf } from "../src/load-hf";

const cfg: RefConfig = {
  dim: 32,
  hiddenDim: 64,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  vocabSize: 50,
  seqLen: 32,
  ropeStyle: "half",
  ropeTheta: 1000000,
  eps: 1e-6,
};

describe("GGUF qwen2 (half-split RoPE, q/k/v biases, written in the test)", () => {
  it("loads lazily and matches the float64 reference", async () => {
    const w = randomWeights(cfg, 21, { bias: true, tied: false });
    const tensors = hfTensors(cfg, w, false).map((t) => ({
      name: internalNameFromHf(t.name)!,
      type: GGML_TYPE.F32,
      dims: ggufDimsFromShape(t.shape),
      data: t.data,
    }));
    const metadata = new GgufMetadataBuilder()
      .string("general.architecture", "qwen2")
      .u32("qwen2.context_length", cfg.seqLen)
      .u32("qwen2.embedding_length", cfg.dim)
      .u32("qwen2.block_count", cfg.nLayers)
      .u32("qwen2.feed_forward_length", cfg.hiddenDim)
      .u32("qwen2.attention.head_count", cfg.nHeads)
      .u32("qwen2.attention.head_count_kv", cfg.nKvHeads)
      .f32("qwen2.rope.freq_base", cfg.ropeTheta)
      .f32("qwen2.attention.layer_norm_rms_epsilon", cfg.eps);
    const file = path.join(tmpDir(), "qwen2.gguf");
    await writeGguf(file, { metadata, tensors });
    const model = await loadGguf(file, { lazy: true });
    expect(model.config).toMatchObject({ ropeStyle: "half", attnBias: true, tiedEmbeddings: false, vocabSize: 50 });
    await model.loadAll();
    const prompt = [1, 7, 30, 44, 2, 9, 13];
    const logits = model.forward(prompt, model.createCache(), "all");
    const ref = new Reference64(cfg, w);
    let worst = 0;
    prompt.forEach((tok, t) => {
      const lr = ref.step(tok);
      const maxAbs = Math.max(...lr.map(Math.abs));
      lr.forEach((v, i) => {
        worst = Math.max(worst, Math.abs(v - logits[t * cfg.vocabSize + i]!) / maxAbs);
      });
    });
    expect(worst).toBeLessThan(1e-4);
  });
});
