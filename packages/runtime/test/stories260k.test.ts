import { dataFile, hasData } from "@lowbit/testing";
import { describe, expect, it } from "vitest";
import { buildModel, makeConfig, memorySource } from "../src/index";
import { argmax } from "../src/ops";
import { argmax64, readRawLlama2c, Reference64 } from "./reference";

describe.runIf(hasData)("stories260K f32 against the float64 reference", () => {
  it("greedy decoding from BOS for 256 tokens matches token for token, logits within 1e-4 relative", async () => {
    const raw = readRawLlama2c(dataFile("stories260K", "stories260K.bin"));
    const c = raw.config;
    const cfg = makeConfig({ ...c, maxSeqLen: c.seqLen, tiedEmbeddings: true });
    const model = await buildModel(cfg, memorySource(raw.f32));
    const ref = new Reference64(c, raw.weights);
    const cache = model.createCache();
    let tok = 1;
    let tokRef = 1;
    const ours: number[] = [];
    const theirs: number[] = [];
    let worst = 0;
    for (let step = 0; step < 256; step++) {
      const logits = model.forward([tok], cache);
      const lr = ref.step(tokRef);
      let maxAbs = 0;
      let maxDiff = 0;
      for (let i = 0; i < lr.length; i++) {
        maxAbs = Math.max(maxAbs, Math.abs(lr[i]!));
        maxDiff = Math.max(maxDiff, Math.abs(lr[i]! - logits[i]!));
      }
      worst = Math.max(worst, maxDiff / maxAbs);
      tok = argmax(logits);
      tokRef = argmax64(lr);
      ours.push(tok);
      theirs.push(tokRef);
    }
    expect(ours).toEqual(theirs);
    expect(worst).toBeLessThan(1e-4);
  });
});
