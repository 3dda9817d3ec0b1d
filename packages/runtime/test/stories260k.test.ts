import { dataFile, hasData } from "@lowbit/testing";
import { beforeAll, describe, expect, it } from "vitest";
import { buildModel, generate, Llama2cTokenizer, type LlamaModel, loadLlama2c, makeConfig, memorySource } from "../src/index";
import { argmax } from "../src/ops";
import { argmax64, type RefConfig, type RefWeights, readRawLlama2c, Reference64 } from "./reference";

describe.runIf(hasData)("stories260K f32 against the float64 reference", () => {
  let model: LlamaModel;
  let raw: { config: RefConfig; weights: RefWeights };
  let refTokens: number[];
  let refLogits: Float64Array[];
  beforeAll(async () => {
    raw = readRawLlama2c(dataFile("stories260K", "stories260K.bin"));
    model = await loadLlama2c(dataFile("stories260K", "stories260K.bin"));
    const ref = new Reference64(raw.config, raw.weights);
    refTokens = [];
    refLogits = [];
    let tok = 1;
    for (let step = 0; step < 256; step++) {
      const l = ref.step(tok);
      refLogits.push(l);
      tok = argmax64(l);
      refTokens.push(tok);
    }
  });

  it("loads the llama2.c config (tied classifier, GQA 8/4, interleaved RoPE)", () => {
    const c = model.config;
    expect([c.dim, c.hiddenDim, c.nLayers, c.nHeads, c.nKvHeads, c.vocabSize, c.maxSeqLen]).toEqual([64, 172, 5, 8, 4, 512, 512]);
    expect(c.tiedEmbeddings).toBe(true);
    expect(c.ropeStyle).toBe("interleaved");
  });

  it("logits along the reference's greedy path agree to 1e-4 relative (max |diff| / max |logit| per step)", () => {
    const cache = model.createCache();
    let worst = 0;
    let tok = 1;
    for (let step = 0; step < 256; step++) {
      const logits = model.forward([tok], cache);
      const lr = refLogits[step]!;
      let maxAbs = 0;
      let maxDiff = 0;
      for (let i = 0; i < lr.length; i++) {
        maxAbs = Math.max(maxAbs, Math.abs(lr[i]!));
        maxDiff = Math.max(maxDiff, Math.abs(lr[i]! - logits[i]!));
      }
      worst = Math.max(worst, maxDiff / maxAbs);
      expect(argmax(logits)).toBe(refTokens[step]);
      tok = refTokens[step]!;
    }
    expect(worst).toBeLessThan(1e-4);
  });

  it("greedy generate() from BOS for 256 tokens equals the reference and tells the Lily story", async () => {
    const tokenizer = await Llama2cTokenizer.fromFile(dataFile("stories260K", "tok512.bin"));
    let streamed = "";
    const res = generate(model, [1], {
      maxTokens: 256,
      stopTokens: [],
      tokenizer,
      onToken: (_id, text) => {
        streamed += text;
        return undefined;
      },
    });
    expect(res.tokens).toEqual(refTokens);
    expect(res.stopReason).toBe("max_tokens");
    expect(res.text.startsWith("Once upon a time, there was a little girl named Lily.")).toBe(true);
    expect(streamed).toBe(res.text);
    expect(res.text).toBe(tokenizer.decode([1, ...refTokens]));
  });

  it("an in-memory build from the raw checkpoint gives the same logits as the formats loader", async () => {
    const r = readRawLlama2c(dataFile("stories260K", "stories260K.bin"));
    const m2 = await buildModel(makeConfig({ ...r.config, maxSeqLen: 512, tiedEmbeddings: true }), memorySource(r.f32));
    const a = model.forward([1, 403, 407], model.createCache(), "all");
    const b = m2.forward([1, 403, 407], m2.createCache(), "all");
    expect(Array.from(a)).toEqual(Array.from(b));
  });
});
