import { dequantizeMatrix, validateQuantizedMatrix } from "@lowbit/int4";
import { describe, expect, it } from "vitest";
import { awqPseudoQuantize } from "./awq-quantizer";
import { candidateScales, divideColumns, divideRows, scaleColumns, weightMean, activationMean } from "./scales";

describe("awqPseudoQuantize (llm-awq pseudo_quantize_tensor)", () => {
  it.each([
    // [-1, 2]: scale = 3/15 = 0.2, zero = -round(-1/0.2) = 5
    { w: [-1, 0, 0.5, 2], scale: 0.2, zero: 5, deq: [-1, 0, 0.4, 2] },
    // all positive: the range is NOT widened to 0: zero = -round(1/0.2) = -5 -> clamped to 0, so 4 clips to 3
    { w: [1, 2, 3, 4], scale: 0.2, zero: 0, deq: [1, 2, 3, 3] },
    // constant group: scale from the 1e-5 floor
    { w: [0.5, 0.5, 0.5, 0.5], scale: 1e-5 / 15, zero: 0, deq: [0.5, 0.5, 0.5, 0.5].map(() => Math.fround((15 * 1e-5) / 15)) },
  ])("one 4-bit group $w", ({ w, scale, zero, deq }) => {
    const out = new Float32Array(4);
    const qm = awqPseudoQuantize(Float32Array.from(w), 1, 4, { bits: 4, groupSize: 4 }, out);
    validateQuantizedMatrix(qm);
    expect(qm.scales[0]).toBe(Math.fround(scale));
    expect(qm.zeros[0]).toBe(zero);
    for (let i = 0; i < 4; i++) expect(out[i]).toBeCloseTo(deq[i]!, 6);
    expect(dequantizeMatrix(qm)).toEqual(out);
  });

  it("symmetric branch stores codes shifted by 2^(b-1)", () => {
    const out = new Float32Array(4);
    const qm = awqPseudoQuantize(Float32Array.from([-1, 0.5, 0.25, 0.7]), 1, 4, { bits: 4, groupSize: 4, zeroPoint: false }, out);
    expect(qm.sym).toBe(true);
    expect(qm.zeros[0]).toBe(8);
    expect(dequantizeMatrix(qm)).toEqual(out);
    expect(out[0]).toBeCloseTo(-1, 6); // scale = 1/7, code -7
  });

  it("rejects a group size that does not divide the columns", () => {
    expect(() => awqPseudoQuantize(new Float32Array(6), 1, 6, { bits: 4, groupSize: 4 })).toThrow(
      expect.objectContaining({ code: "E_SHAPE_MISMATCH" }),
    );
  });
});

describe("scales", () => {
  const xMean = Float32Array.from([0.1, 1, 4, 0.5]);

  it.each([0, 0.25, 0.5, 0.95])("candidateScales(r = %d) normalises sqrt(max * min) to 1", (r) => {
    const s = candidateScales(xMean, r);
    const max = Math.max(...s);
    const min = Math.min(...s);
    expect(Math.sqrt(max * min)).toBeCloseTo(1, 5);
    if (r === 0) expect(Array.from(s)).toEqual([1, 1, 1, 1]);
    // larger activations get larger scales
    expect(s[2]! >= s[1]! && s[1]! >= s[3]! && s[3]! >= s[0]!).toBe(true);
  });

  it("duo scaling divides by w_mean^(1-r)", () => {
    const wMean = Float32Array.from([1, 0.5, 0.25, 1]);
    const s = candidateScales(xMean, 0.5, wMean);
    const raw = Array.from(xMean, (x, i) => Math.sqrt(x) / (Math.sqrt(wMean[i]!) + 1e-4));
    const norm = Math.sqrt(Math.max(...raw) * Math.min(...raw));
    for (let i = 0; i < raw.length; i++) expect(s[i]).toBeCloseTo(raw[i]! / norm, 5);
  });

  it("weightMean and activationMean average per input channel", () => {
    // two rows, one group of 2: |w| / max|w| per row group, then the mean over rows
    expect(Array.from(weightMean([Float32Array.from([1, -2, 4, 1])], 2, 2))).toEqual([
      Math.fround((1 / (2 + 1e-6) + 4 / (4 + 1e-6)) / 2),
      Math.fround((2 / (2 + 1e-6) + 1 / (4 + 1e-6)) / 2),
    ]);
    expect(Array.from(activationMean(Float32Array.from([1, -2, -3, 4]), 2))).toEqual([2, 3]);
  });

  it("scaling columns, dividing rows and inputs leave products unchanged", () => {
    const w = Float32Array.from([1, 2, 3, 4, 5, 6]); // [2, 3]
    const s = Float32Array.from([2, 0.5, 4]);
    const x = Float32Array.from([1, 1, 1]);
    const before = [1 * 1 + 2 + 3, 4 + 5 + 6];
    scaleColumns(w, 3, s);
    divideColumns(x, 3, s);
    expect([w[0]! * x[0]! + w[1]! * x[1]! + w[2]! * x[2]!, w[3]! * x[0]! + w[4]! * x[1]! + w[5]! * x[2]!]).toEqual(before);
    const up = Float32Array.from([2, 4, 6, 8, 10, 12]); // [3 rows, 2 cols]
    divideRows(up, 2, s);
    expect(Array.from(up)).toEqual([1, 2, 12, 16, 2.5, 3]);
  });
});
