import { LowbitError } from "@lowbit/tensor";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { effectiveGroupSize, fitGroupParams, paramsFromRange, roundHalfEven, searchGroupParams } from "./group-params";
import { dequantizeMatrix, validateQuantizedMatrix } from "./quantized-matrix";
import { quantizeRTN } from "./rtn";
import { relRmse, TestRng } from "./test-rng";

describe("roundHalfEven (torch.round)", () => {
  it.each([
    [0.5, 0],
    [1.5, 2],
    [2.5, 2],
    [-0.5, -0],
    [-1.5, -2],
    [-2.5, -2],
    [2.4999, 2],
    [-3.7, -4],
  ])("round(%d) = %d", (x, r) => {
    expect(roundHalfEven(x)).toBe(r);
  });
});

describe("fitGroupParams", () => {
  it("asymmetric: scale = (max - min)/maxq over the range widened to 0, zero = round(-min/scale)", () => {
    const p = fitGroupParams([-1, 0.5, 2], 0, 3, 4, false);
    expect(p.scale).toBeCloseTo(3 / 15, 7);
    expect(p.zero).toBe(5);
  });
  it("range widened to include 0 (all positive)", () => {
    const p = fitGroupParams([1, 2, 3], 0, 3, 4, false);
    expect(p.scale).toBeCloseTo(3 / 15, 7);
    expect(p.zero).toBe(0);
  });
  it("symmetric groups without negative values still use max|x| on both sides (no clipping of the upper half)", () => {
    const p = fitGroupParams([0, 1, 3], 0, 3, 4, true);
    expect(p.zero).toBe(8);
    expect(p.scale).toBeCloseTo(6 / 15, 7);
  });
  it("symmetric: zero = (maxq+1)/2, scale = 2 max|x| / maxq", () => {
    const p = fitGroupParams([-3, 1, 2], 0, 3, 4, true);
    expect(p.zero).toBe(8);
    expect(p.scale).toBeCloseTo(6 / 15, 7);
  });
  it.each([2, 3, 4, 8])("all-zero and constant groups give finite scales and exact zeros at %i bits", (bits) => {
    for (const [vals, sym] of [
      [[0, 0, 0, 0], false],
      [[0, 0, 0, 0], true],
      [[2.5, 2.5, 2.5, 2.5], false],
      [[2.5, 2.5, 2.5, 2.5], true],
      [[-2.5, -2.5, -2.5, -2.5], true],
    ] as const) {
      const p = fitGroupParams(vals, 0, 4, bits, sym);
      expect(Number.isFinite(p.scale) && p.scale > 0).toBe(true);
      const qm = quantizeRTN([...vals, 0, 0, 0, 0], 1, 8, { bits, groupSize: -1, sym });
      const d = dequantizeMatrix(qm);
      for (let i = 4; i < 8; i++) expect(d[i]).toBe(0);
      for (let i = 0; i < 4; i++) expect(Math.abs(d[i]! - vals[i]!)).toBeLessThanOrEqual(Math.abs(vals[i]!) * 0.51 + 1e-7);
    }
  });
  it("subnormal ranges keep a finite positive scale", () => {
    const p = paramsFromRange(-1e-44, 1e-44, 4, false);
    expect(p.scale > 0 && Number.isFinite(p.scale)).toBe(true);
  });
  it("zero always reconstructs exactly (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.float({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }), { minLength: 1, maxLength: 40 }),
        fc.constantFrom(2, 3, 4, 8),
        fc.boolean(),
        (vals, bits, sym) => {
          const w = Float32Array.from([...vals, 0]);
          const qm = quantizeRTN(w, 1, w.length, { bits, groupSize: -1, sym });
          expect(dequantizeMatrix(qm)[w.length - 1]).toBe(0);
        },
      ),
      { seed: 11, numRuns: 200 },
    );
  });
});

describe("effectiveGroupSize and the group-size policy", () => {
  it.each([
    [4096, 128, 128],
    [4096, -1, 4096],
    [172, 32, 43],
    [172, 128, 172],
    [100, 30, 50],
    [64, 1000, 64],
    [7, 2, 7],
  ])("cols %i, requested %i -> %i", (cols, req, eff) => {
    expect(effectiveGroupSize(cols, req)).toBe(eff);
  });
  it.each([0, -2, 1.5, Number.NaN])("requested %d is a LowbitError", (req) => {
    expect(() => effectiveGroupSize(64, req)).toThrow(LowbitError);
  });
  it("quantizeRTN rejects a non-dividing group size and names the effective one", () => {
    expect(() => quantizeRTN(new Float32Array(172), 1, 172, { bits: 4, groupSize: 32, sym: false })).toThrow(
      /group size 32 does not divide 172.*= 43/,
    );
  });
});

describe("quantizeRTN", () => {
  // relative RMSE of the reconstruction of N(0,1) weights, 64 x 1024
  it.each([
    [8, 32, false, 0.005],
    [8, 32, true, 0.006],
    [8, 128, false, 0.007],
    [8, -1, true, 0.009],
    [4, 32, false, 0.1],
    [4, 128, false, 0.11],
    [4, 128, true, 0.12],
    [3, 128, false, 0.23],
    [3, 32, false, 0.19],
    [2, 32, false, 0.45],
    [2, 128, false, 0.55],
  ])("%i-bit group %i sym=%s: relative RMSE < %d", (bits, groupSize, sym, bound) => {
    const rows = 64;
    const cols = 1024;
    const w = new TestRng(bits * 1000 + groupSize).normals(rows * cols);
    const qm = quantizeRTN(w, rows, cols, { bits, groupSize, sym });
    validateQuantizedMatrix(qm);
    const err = relRmse(dequantizeMatrix(qm), w);
    expect(err).toBeLessThan(bound);
    expect(err).toBeGreaterThan(bound / 20); // a sanity floor: quantization did lose something
  });

  it("more bits never reconstruct worse", () => {
    const w = new TestRng(3).normals(32 * 256);
    const errs = [2, 3, 4, 8].map((bits) =>
      relRmse(dequantizeMatrix(quantizeRTN(w, 32, 256, { bits, groupSize: 64, sym: false })), w),
    );
    for (let i = 1; i < errs.length; i++) expect(errs[i]!).toBeLessThan(errs[i - 1]!);
  });

  it.each([2, 3, 4])("clip search at %i bits never does worse than plain RTN on heavy-tailed data", (bits) => {
    const rng = new TestRng(bits);
    const rows = 16;
    const cols = 256;
    const w = new Float32Array(rows * cols);
    for (let i = 0; i < w.length; i++) w[i] = rng.normal() * (rng.uniform() < 0.02 ? 8 : 1);
    const plain = quantizeRTN(w, rows, cols, { bits, groupSize: 128, sym: false });
    const clipped = quantizeRTN(w, rows, cols, { bits, groupSize: 128, sym: false, clipSearch: { norm: 2 } });
    const ePlain = relRmse(dequantizeMatrix(plain), w);
    const eClip = relRmse(dequantizeMatrix(clipped), w);
    expect(eClip).toBeLessThanOrEqual(ePlain + 1e-9);
    expect(eClip).toBeLessThan(ePlain * 0.98);
  });

  it("clip search with the identity grid equals plain RTN parameters", () => {
    const w = new TestRng(5).normals(64);
    const a = searchGroupParams(w, 0, 64, 4, false, { grid: 1, maxShrink: 0 });
    const b = fitGroupParams(w, 0, 64, 4, false);
    expect(a).toEqual(b);
  });

  it("codes stay within range and reproduce value = scale * (q - zero)", () => {
    const w = new TestRng(9).normals(8 * 96);
    const qm = quantizeRTN(w, 8, 96, { bits: 3, groupSize: 32, sym: true });
    expect(Math.max(...qm.q)).toBeLessThanOrEqual(7);
    expect(qm.scales.length).toBe(8 * 3);
    expect([...qm.zeros].every((z) => z === 4)).toBe(true);
    const d = dequantizeMatrix(qm);
    expect(d[5]).toBe(Math.fround(qm.scales[0]! * (qm.q[5]! - 4)));
  });

  it.each([
    [Number.NaN, 5],
    [Number.POSITIVE_INFINITY, 17],
    [Number.NEGATIVE_INFINITY, 0],
  ])("%d at index %i is E_NON_FINITE naming the tensor and index", (bad, idx) => {
    const w = new Float32Array(32);
    w[idx] = bad;
    try {
      quantizeRTN(w, 2, 16, { bits: 4, groupSize: 16, sym: false, name: "blk.0.attn_q.weight" });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(LowbitError);
      expect((e as LowbitError).code).toBe("E_NON_FINITE");
      expect((e as LowbitError).message).toContain("blk.0.attn_q.weight");
      expect((e as LowbitError).message).toContain(`element ${idx}`);
    }
  });

  it.each([1, 9, 16, 2.5])("bits %d is rejected", (bits) => {
    expect(() => quantizeRTN(new Float32Array(8), 1, 8, { bits, groupSize: -1, sym: false })).toThrow(LowbitError);
  });
});
