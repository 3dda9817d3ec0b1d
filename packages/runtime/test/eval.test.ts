import fs from "node:fs";
import { dataFile, hasData } from "@lowbit/testing";
import { beforeAll, describe, expect, it } from "vitest";
import {
  documentHalf,
  encodeDocuments,
  evaluate,
  evaluationWindows,
  Llama2cTokenizer,
  type LlamaModel,
  loadLlama2c,
  splitDocuments,
} from "../src/index";
import { readRawLlama2c, Reference64 } from "./reference";

describe("evaluation windows", () => {
  it.each([
    [10, 4, 2],
    [12, 4, 3],
    [3, 4, 0],
  ])("%i tokens in windows of %i give %i full windows (partial last dropped), BOS first", (n, L, count) => {
    const toks = Array.from({ length: n }, (_, i) => 100 + i);
    const w = evaluationWindows(toks, L, 1);
    expect(w.length).toBe(count);
    w.forEach((win, i) => {
      expect(win).toEqual([1, ...toks.slice(i * L + 1, (i + 1) * L)]);
    });
  });
});

describe.runIf(hasData)("evaluation on stories260K", () => {
  let model: LlamaModel;
  let tokens: number[];
  beforeAll(async () => {
    model = await loadLlama2c(dataFile("stories260K", "stories260K.bin"));
    const tok = await Llama2cTokenizer.fromFile(dataFile("stories260K", "tok512.bin"));
    const docs = documentHalf(splitDocuments(fs.readFileSync(dataFile("text", "tinystories-valid.txt"), "utf8")), "second");
    tokens = encodeDocuments(tok, docs, 4 * 64);
  });

  it("perplexity equals exp(mean NLL) of the float64 reference under the window convention", () => {
    const L = 64;
    const progress: number[] = [];
    const r = evaluate(model, tokens, { windowLength: L, onProgress: (p) => progress.push(p.window) });
    expect(r.windows).toBe(4);
    expect(r.scored).toBe(4 * 63);
    expect(progress).toEqual([1, 2, 3, 4]);
    const raw = readRawLlama2c(dataFile("stories260K", "stories260K.bin"));
    let nll = 0;
    for (const win of evaluationWindows(tokens, L, 1)) {
      const ref = new Reference64(raw.config, raw.weights);
      for (let t = 0; t < L - 1; t++) {
        const l = ref.step(win[t]!);
        const m = Math.max(...l);
        const lse = m + Math.log(l.reduce((a, v) => a + Math.exp(v - m), 0));
        nll += lse - l[win[t + 1]!]!;
      }
    }
    expect(r.meanNll).toBeCloseTo(nll / r.scored, 5);
    // the data README: about 1.4 nats/token on this text; far below chance (ln 512 = 6.24)
    expect(r.meanNll).toBeGreaterThan(1);
    expect(r.meanNll).toBeLessThan(2.5);
  });

  it("against itself: KL 0 and top-1 agreement 1; against a perturbed copy: KL > 0, top-1 < 1", async () => {
    const self = evaluate(model, tokens, { windowLength: 64, reference: model });
    expect(self.kl).toBeCloseTo(0, 10);
    expect(self.top1).toBe(1);
    expect(self.referencePerplexity).toBeCloseTo(self.perplexity, 10);
    const other = await loadLlama2c(dataFile("stories260K", "stories260K.bin"));
    const norms = other.layerNorms(2);
    for (let i = 0; i < norms.ffnNorm.length; i++) norms.ffnNorm[i] = norms.ffnNorm[i]! * (i % 2 ? 1.5 : 0.5);
    const r = evaluate(other, tokens, { windowLength: 64, reference: model });
    expect(r.kl).toBeGreaterThan(1e-3);
    expect(r.top1).toBeLessThan(1);
    expect(r.top1).toBeGreaterThan(0.3);
    expect(r.referencePerplexity).toBeCloseTo(self.perplexity, 10);
  });
});
