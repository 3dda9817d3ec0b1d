import { buildModel, type LlamaConfig, makeConfig, memorySource } from "@lowbit/runtime";
import { isLowbitError, Rng } from "@lowbit/tensor";
import { describe, expect, it } from "vitest";
import { CalibrationRows, deferHeads, UnloadedClassifier } from "./deferred-heads";

const cfg: LlamaConfig = makeConfig({ dim: 8, hiddenDim: 16, nLayers: 1, nHeads: 2, nKvHeads: 2, vocabSize: 11, maxSeqLen: 16 });

function tensors(c: LlamaConfig): Map<string, { shape: number[]; data: Float32Array }> {
  const rng = new Rng(3);
  const t = new Map<string, { shape: number[]; data: Float32Array }>();
  const add = (name: string, shape: number[]) => t.set(name, { shape, data: Float32Array.from({ length: shape.reduce((a, d) => a * d, 1) }, () => rng.normal()) });
  add("token_embd.weight", [c.vocabSize, c.dim]);
  add("output_norm.weight", [c.dim]);
  add("output.weight", [c.vocabSize, c.dim]);
  add("blk.0.attn_norm.weight", [c.dim]);
  add("blk.0.ffn_norm.weight", [c.dim]);
  for (const [n, s] of [
    ["attn_q", [c.dim, c.dim]],
    ["attn_k", [c.dim, c.dim]],
    ["attn_v", [c.dim, c.dim]],
    ["attn_output", [c.dim, c.dim]],
    ["ffn_gate", [c.hiddenDim, c.dim]],
    ["ffn_up", [c.hiddenDim, c.dim]],
    ["ffn_down", [c.dim, c.hiddenDim]],
  ] as const) {
    add(`blk.0.${n}.weight`, [...s]);
  }
  return t;
}

const code = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return isLowbitError(e) ? e.code : String(e);
  }
  return "no error";
};

describe("deferHeads: the model quantization runs on holds no classifier and only the calibration tokens' embedding rows", () => {
  it.each([
    ["calibration tokens", [3, 7, 3, 0, 10]],
    ["no calibration", []],
  ])("%s", async (_what, tokens) => {
    const t = tensors(cfg);
    const model = await buildModel(cfg, deferHeads(memorySource(t), cfg, tokens), { lazy: true });
    const full = await buildModel(cfg, memorySource(t), { lazy: true });
    expect(model.weights.output).toBeInstanceOf(UnloadedClassifier);
    expect(model.weights.embedding.length).toBe(0);
    expect(model.weights.embeddingTable?.storageBytes).toBe(new Set(tokens).size * cfg.dim * 4);
    // the rows it holds are the embedding's, exactly
    if (tokens.length > 0) expect(model.embed(tokens)).toEqual(full.embed(tokens));
    // anything else says what is missing
    expect(code(() => model.embed([5]))).toBe("E_INTERNAL");
    expect(code(() => model.head(new Float32Array(cfg.dim), 1))).toBe("E_INTERNAL");
    expect(code(() => model.weights.output.dequantizedWeight())).toBe("E_INTERNAL");
    // decoder layers read through unchanged
    await model.ensureLayer(0);
    await full.ensureLayer(0);
    expect(model.getLinear(0, "ffn_down").dequantizedWeight()).toEqual(full.getLinear(0, "ffn_down").dequantizedWeight());
  });

  it("tied embeddings: the classifier over the embedding is not loaded either", async () => {
    const tied = makeConfig({ ...cfg, tiedEmbeddings: true });
    const t = tensors(tied);
    t.delete("output.weight");
    const model = await buildModel(tied, deferHeads(memorySource(t), tied, [1, 2]), { lazy: true });
    expect(model.weights.output).toBeInstanceOf(UnloadedClassifier);
    expect(model.weights.embeddingTable).toBeInstanceOf(CalibrationRows);
  });
});
