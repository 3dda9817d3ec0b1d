import { readFileSync } from "node:fs";
import { encodeDocuments, quantizeModel, rtnPlugin, sampleWindows, splitOnBlankLines } from "@lowbit/calibration";
import { dequantizeMatrix, quantizeRTN } from "@lowbit/int4";
import { Llama2cTokenizer, loadLlama2c } from "@lowbit/runtime";
import { Rng } from "@lowbit/tensor";
import { dataFile, hasData } from "@lowbit/testing";
import { describe, expect, it } from "vitest";
import { relativeError } from "./collect";
import { type LayerStats, ValueSample, weightError, withStats } from "./stats";

describe("weightError: the weight error over row blocks is relativeError over the whole dequantized matrix", () => {
  it.each([
    [1, 64, 4, 32, false],
    [255, 64, 4, 32, false],
    [256, 32, 3, 32, false],
    [257, 96, 4, 32, true],
    [600, 64, 8, 64, false],
    [513, 48, 2, 48, true],
  ])("%i x %i at %i bits, group %i, act-order %s", (rows, cols, bits, groupSize, actOrder) => {
    const rng = new Rng(rows * 7 + cols);
    const w = Float32Array.from({ length: rows * cols }, () => rng.normal() * 0.1);
    const qm = quantizeRTN(w, rows, cols, { bits, groupSize, sym: false });
    if (actOrder) {
      // a column permutation of the groups (as GPTQ act-order records): gIdx[c] = group of column c
      const perm = Array.from({ length: cols }, (_, c) => c).sort(() => rng.uniform() - 0.5);
      qm.gIdx = Int32Array.from(perm, (c) => Math.floor(c / groupSize));
    }
    const a = new ValueSample(500, 3);
    const b = new ValueSample(500, 3);
    const deq = dequantizeMatrix(qm);
    const expected = relativeError(w, deq);
    a.add(w, deq);
    expect(weightError(w, qm, b)).toBe(expected);
    expect(b.weights).toEqual(a.weights);
    expect(b.errors).toEqual(a.errors);
  });
});

describe.runIf(hasData)("withStats on stories260K", () => {
  it.each([16, 64])("gives the same layer statistics with the float outputs in a temporary file (windows of %i)", async (seqLen) => {
    const tok = await Llama2cTokenizer.fromFile(dataFile("stories260K", "tok512.bin"));
    const docs = splitOnBlankLines(readFileSync(dataFile("text", "tinystories-valid.txt"), "utf8")).slice(0, 60);
    const data = sampleWindows(encodeDocuments(docs, tok), { windows: 6, seqLen, seed: 0, bosId: 1 });
    const run = async (spillOutputs: boolean) => {
      const stats: LayerStats[] = [];
      const plugin = withStats(rtnPlugin({ bits: 3, groupSize: 32 }), { onLayer: (s) => stats.push({ ...s, ms: 0 }), needsActivations: true, spillOutputs });
      await quantizeModel(await loadLlama2c(dataFile("stories260K", "stories260K.bin")), data, plugin, { batchWindows: 4 });
      return stats;
    };
    const inMemory = await run(false);
    const spilled = await run(true);
    expect(spilled).toEqual(inMemory);
    expect(inMemory).toHaveLength(5);
    for (const s of inMemory) {
      expect(s.outputError).toBeGreaterThan(0);
      expect(s.linears).toHaveLength(7);
      for (const l of s.linears) expect(l.outputError).toBeGreaterThan(0);
    }
  });
});
