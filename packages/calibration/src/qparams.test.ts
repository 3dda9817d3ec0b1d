import { describe, expect, it } from "vitest";
import { computeQParams, fakeQuantize, quantizeAffine, roundHalfEven } from "./qparams";

describe("computeQParams (torch.ao _calculate_qparams semantics)", () => {
  it.each([
    // affine int8 [-128, 127]: scale = (max - min) / 255, zp = -128 - round(min / scale)
    { min: -1, max: 3, o: {}, scale: 4 / 255, zp: -128 + 64 },
    // range widened to include 0
    { min: 1, max: 2, o: {}, scale: 2 / 255, zp: -128 },
    { min: -2, max: -1, o: {}, scale: 2 / 255, zp: 127 },
    // symmetric signed: amax / 127.5 (torch full range), zp 0
    { min: -1, max: 0.5, o: { sym: true }, scale: 1 / 127.5, zp: 0 },
    // narrow symmetric: amax / 127 (ONNX Runtime / TensorRT)
    { min: -0.5, max: 2, o: { sym: true, narrow: true }, scale: 2 / 127, zp: 0 },
    // unsigned affine (quint8): in f32, -min/scale is 127.49999 (not 127.5), so the zero point is 127 as in torch
    { min: -1, max: 1, o: { signed: false }, scale: 2 / 255, zp: 127 },
    // unsigned symmetric: zero point in the middle
    { min: -1, max: 1, o: { signed: false, sym: true }, scale: 1 / 127.5, zp: 128 },
    // 4-bit affine
    { min: -1, max: 2, o: { bits: 4 }, scale: 3 / 15, zp: -8 + 5 },
  ])("[$min, $max] $o", ({ min, max, o, scale, zp }) => {
    const p = computeQParams(min, max, o);
    expect(p.scale).toBeCloseTo(scale, 7);
    expect(p.zeroPoint).toBe(zp);
  });

  it("keeps the scale at least eps for an all-zero range, and 0 maps to the zero point exactly", () => {
    const p = computeQParams(0, 0);
    expect(p.scale).toBeGreaterThan(0);
    expect(p.scale * (quantizeAffine(0, p) - p.zeroPoint)).toBe(0);
  });

  it.each([
    { min: 2, max: 1 },
    { min: Number.NaN, max: 1 },
    { min: 0, max: Number.POSITIVE_INFINITY },
  ])("rejects the range [$min, $max]", ({ min, max }) => {
    expect(() => computeQParams(min, max)).toThrow(expect.objectContaining({ code: "E_CALIBRATION" }));
  });

  it("fake-quantizes to within half a step inside the range and clamps outside", () => {
    const p = computeQParams(-1, 1);
    const x = Float32Array.from([-1, -0.3, 0, 0.2, 0.99, 5, -5]);
    const y = fakeQuantize(x, p, new Float32Array(x.length));
    for (let i = 0; i < 5; i++) expect(Math.abs(y[i]! - x[i]!)).toBeLessThanOrEqual(p.scale / 2 + 1e-7);
    expect(y[5]).toBeCloseTo(p.scale * (127 - p.zeroPoint), 6);
    expect(y[6]).toBeCloseTo(p.scale * (-128 - p.zeroPoint), 6);
  });

  it.each([
    [0.5, 0],
    [1.5, 2],
    [2.5, 2],
    [-0.5, -0],
    [-1.5, -2],
    [2.4, 2],
  ])("roundHalfEven(%d) = %d", (x, r) => {
    expect(roundHalfEven(x)).toBe(r);
  });
});
