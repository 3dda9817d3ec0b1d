import { dequantizeMatrix, quantizeRTN } from "@lowbit/int4";
import { Rng } from "@lowbit/tensor";
import { describe, expect, it } from "vitest";
import { relativeError } from "./collect";
import { ValueSample, weightError } from "./stats";

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
