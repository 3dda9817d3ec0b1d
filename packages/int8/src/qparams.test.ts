import { isLowbitError } from "@lowbit/tensor";
import { describe, expect, it } from "vitest";
import { chooseQParams, computeQParams, type QuantRangeOptions, resolveRange, roundHalfEven } from "./qparams";

const f = Math.fround;

describe("resolveRange", () => {
  it.each([
    [{}, -128, 127],
    [{ dtype: "uint8" }, 0, 255],
    [{ reduceRange: true }, -64, 63],
    [{ dtype: "uint8", reduceRange: true }, 0, 127],
    [{ quantMin: -127 }, -127, 127],
    [{ dtype: "uint8", quantMin: 0, quantMax: 15 }, 0, 15],
  ] as Array<[QuantRangeOptions, number, number]>)("%j -> [%i, %i]", (opts, qmin, qmax) => {
    const r = resolveRange(opts);
    expect([r.qmin, r.qmax]).toEqual([qmin, qmax]);
  });

  it.each([
    [{ dtype: "int4" }, /dtype/],
    [{ scheme: "weird" }, /scheme/],
    [{ quantMin: 5, quantMax: 5 }, /quantMin/],
    [{ dtype: "uint8", quantMin: -1 }, /quantMin/],
    [{ eps: 0 }, /eps/],
  ] as Array<[QuantRangeOptions, RegExp]>)("rejects %j", (opts, msg) => {
    expect(() => resolveRange(opts)).toThrow(msg);
  });
});

describe("roundHalfEven", () => {
  it.each([
    [2.5, 2],
    [3.5, 4],
    [-2.5, -2],
    [-3.5, -4],
    [1.4999999, 1],
    [-7.6, -8],
    [126.5, 126],
  ])("%f -> %i", (v, r) => {
    expect(roundHalfEven(v)).toBe(r);
  });
});

describe("chooseQParams (torch.ao _calculate_qparams)", () => {
  it.each([
    // [label, min, max, options, scale, zeroPoint], worked by hand
    ["symmetric int8: amax / 127.5", -1, 2, {}, f(2 / 127.5), 0],
    ["symmetric uint8: zero point 128", -1, 2, { dtype: "uint8" }, f(2 / 127.5), 128],
    ["symmetric int8 reduce_range: amax / 63.5", -4, 1, { reduceRange: true }, f(4 / 63.5), 0],
    ["symmetric narrow [-127, 127]: amax / 127", -3, 1, { quantMin: -127 }, f(3 / 127), 0],
    ["affine int8: (max - min) / 255, zp = -128 + 50", -0.5, 2.05, { scheme: "affine" }, f(f(2.55) / 255), -78],
    ["affine uint8: zp = round(63.75) = 64", -1, 3, { scheme: "affine", dtype: "uint8" }, f(4 / 255), 64],
    ["affine widens min to 0 (all positive)", 0.5, 2, { scheme: "affine" }, f(2 / 255), -128],
    ["affine widens max to 0 (all negative)", -3, -1, { scheme: "affine" }, f(3 / 255), 127],
    ["all zero symmetric: eps, exact zero", 0, 0, {}, 2 ** -23, 0],
    ["all zero affine int8: eps", 0, 0, { scheme: "affine" }, 2 ** -23, -128],
    ["all zero affine uint8: eps", 0, 0, { scheme: "affine", dtype: "uint8" }, 2 ** -23, 0],
  ] as Array<[string, number, number, QuantRangeOptions, number, number]>)("%s", (_l, min, max, opts, scale, zp) => {
    const p = chooseQParams(min, max, resolveRange(opts));
    expect(p.scale).toBe(scale);
    expect(p.zeroPoint).toBe(zp);
  });

  it("keeps the zero point inside [qmin, qmax] and the scale at least eps", () => {
    const r = resolveRange({ scheme: "affine", dtype: "uint8", quantMin: 0, quantMax: 3 });
    for (const [lo, hi] of [
      [-1e-30, 0],
      [-5, -4.9],
      [1e-9, 2e-9],
      [-1e6, 1],
    ]) {
      const p = chooseQParams(lo!, hi!, r);
      expect(p.zeroPoint).toBeGreaterThanOrEqual(0);
      expect(p.zeroPoint).toBeLessThanOrEqual(3);
      expect(p.scale).toBeGreaterThanOrEqual(2 ** -23);
    }
  });
});

describe("computeQParams granularities", () => {
  // 2 x 3 x 4 tensor with distinct magnitudes per slice
  const shape = [2, 3, 4];
  const x = new Float32Array(24).map((_, i) => (i % 2 === 0 ? 1 : -1) * (i + 1));

  it.each([
    ["per-tensor", {}, 1, [24]],
    ["per-channel axis 0", { granularity: "per-channel", axis: 0 }, 2, [11, 23].map((v) => v + 1)],
    ["per-channel axis 1", { granularity: "per-channel", axis: 1 }, 3, [16, 20, 24]],
    ["per-channel axis -1", { granularity: "per-channel", axis: -1 }, 4, [21, 22, 23, 24]],
    ["per-group 2", { granularity: "per-group", groupSize: 2 }, 12, Array.from({ length: 12 }, (_, g) => 2 * g + 2)],
    ["per-token", { granularity: "per-token" }, 6, [4, 8, 12, 16, 20, 24]],
  ] as Array<[string, object, number, number[]]>)("%s", (_l, opts, count, amax) => {
    const p = computeQParams(x, shape, opts);
    expect(p.scale.length).toBe(count);
    expect(Array.from(p.scale)).toEqual(amax.map((a) => f(a / 127.5)));
    expect(Array.from(p.zeroPoint)).toEqual(new Array(count).fill(0));
  });

  it.each([
    [{ granularity: "per-group", groupSize: 3 }, /group size 3/],
    [{ granularity: "per-channel", axis: 3 }, /axis 3/],
    [{ granularity: "per-diagonal" }, /granularity/],
  ])("rejects %j", (opts, msg) => {
    expect(() => computeQParams(x, shape, opts as object)).toThrow(msg);
  });

  it("rejects a shape that does not match the data", () => {
    expect(() => computeQParams(x, [5, 5], { name: "w" })).toThrow(/"w".*25 values, got 24/);
  });

  it("names the tensor and the first non-finite index", () => {
    const y = x.slice();
    y[13] = Number.NaN;
    y[20] = Number.POSITIVE_INFINITY;
    try {
      computeQParams(y, [6, 4], { name: "blk.0.ffn_up.weight" });
      expect.unreachable();
    } catch (e) {
      expect(isLowbitError(e) && e.code).toBe("E_NON_FINITE");
      expect((e as Error).message).toMatch(/"blk\.0\.ffn_up\.weight".*NaN at index 13 \(row 3, column 1\)/);
    }
  });

  it("gives all-zero channels a finite scale", () => {
    const w = new Float32Array(8);
    w.set([1, -2, 3, 4], 4);
    const p = computeQParams(w, [2, 4], { granularity: "per-channel", scheme: "affine" });
    expect(p.scale[0]).toBe(2 ** -23);
    expect(Number.isFinite(p.scale[1]!)).toBe(true);
  });
});
