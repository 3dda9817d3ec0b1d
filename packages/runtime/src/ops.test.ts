import { Rng } from "@lowbit/tensor";
import { describe, expect, it } from "vitest";
import { normal, rowRelDiff, withRef } from "./kernels/test-util";
import { addVectors, addVectorsRef, RopeTable, rmsNorm, rmsNormRef, siluMul, siluMulRef } from "./ops";

describe("RMSNorm: WebAssembly SIMD against the reference twin", () => {
  it.each([
    [1, 1],
    [3, 7],
    [256, 64],
    [2, 769],
    [1, 4096],
  ])("%i rows of width %i within 1e-5 relative per row", (rows, dim) => {
    const rng = new Rng(rows * 31 + dim);
    const x = normal(rng, rows * dim, 3);
    const w = normal(rng, dim);
    const fast = rmsNorm(x, w, rows, dim, 1e-5);
    const ref = rmsNormRef(x, w, rows, dim, 1e-5);
    expect(rowRelDiff(fast, ref, dim)).toBeLessThan(1e-5);
  });

  it("writes in place when out is x, and the \"ref\" backend runs the twin exactly", () => {
    const rng = new Rng(2);
    const x = normal(rng, 5 * 13);
    const w = normal(rng, 13);
    const expected = rmsNormRef(x, w, 5, 13, 1e-6);
    const y = x.slice();
    expect(rmsNorm(y, w, 5, 13, 1e-6, y)).toBe(y);
    expect(rowRelDiff(y, expected, 13)).toBeLessThan(1e-5);
    expect(Array.from(withRef(() => rmsNorm(x, w, 5, 13, 1e-6)))).toEqual(Array.from(expected));
  });

  it("a zero row stays zero (eps keeps the scale finite)", () => {
    const out = rmsNorm(new Float32Array(9), Float32Array.from({ length: 9 }, () => 2), 1, 9, 1e-5);
    expect(Array.from(out)).toEqual(new Array(9).fill(0));
  });
});

describe("SiLU(gate) * up: WebAssembly SIMD against the reference twin", () => {
  it.each([1, 3, 4, 172, 2049])("%i values within 1e-5 relative", (n) => {
    const rng = new Rng(n);
    const g = normal(rng, n, 4);
    const u = normal(rng, n);
    const fast = siluMul(g, u);
    const ref = siluMulRef(g, u);
    for (let i = 0; i < n; i++) expect(Math.abs(fast[i]! - ref[i]!)).toBeLessThanOrEqual(1e-5 * Math.abs(ref[i]!) + 1e-30);
  });

  it("saturates like the reference: large gates pass the up value through, very negative ones give ~0", () => {
    const g = Float32Array.from([0, 100, -100, 30, -30, 88.5, -88.5, 1e-3]);
    const u = Float32Array.from([5, 2, 2, 1, 1, 1, 1, 1]);
    const fast = siluMul(g, u);
    const ref = siluMulRef(g, u);
    for (let i = 0; i < g.length; i++) expect(Math.abs(fast[i]! - ref[i]!)).toBeLessThanOrEqual(1e-6 * Math.abs(ref[i]!) + 1e-30);
    expect(fast[0]).toBe(0);
    expect(fast[1]).toBe(200);
  });
});

describe("residual add: WebAssembly SIMD against the reference twin", () => {
  it.each([1, 5, 64, 16387])("%i values exactly equal (one f32 rounding either way), in place too", (n) => {
    const rng = new Rng(n + 1);
    const a = normal(rng, n);
    const b = normal(rng, n);
    const ref = addVectorsRef(a, b);
    expect(Array.from(addVectors(a, b))).toEqual(Array.from(ref));
    const c = a.slice();
    expect(addVectors(c, b, c)).toBe(c);
    expect(Array.from(c)).toEqual(Array.from(ref));
  });
});

describe("RoPE over many rows: WebAssembly SIMD against the reference apply()", () => {
  it.each([
    ["interleaved", 2, 3, 5, 0, undefined],
    ["interleaved", 6, 4, 9, 17, undefined],
    ["interleaved", 8, 8, 256, 0, 64],
    ["half", 10, 2, 7, 300, undefined],
    ["half", 64, 12, 5, 1000, undefined],
    ["half", 128, 2, 40, 0, 20],
  ] as const)("%s pairs, head width %i, %i heads, %i rows from position %i (period %s)", (style, hd, heads, rows, pos0, period) => {
    const rope = new RopeTable(hd, 10000, style);
    const rng = new Rng(hd * 7 + rows);
    const stride = heads * hd + 3; // rows wider than the rotated heads: the rest is untouched
    const x = normal(rng, rows * stride);
    const fast = x.slice();
    rope.rotateRows(fast, rows, stride, heads, pos0, period);
    const ref = x.slice();
    for (let r = 0; r < rows; r++) rope.apply(ref, r * stride, heads, period ? r % period : pos0 + r);
    expect(rowRelDiff(fast, ref, hd)).toBeLessThan(1e-5);
    for (let r = 0; r < rows; r++) {
      for (let i = heads * hd; i < stride; i++) expect(fast[r * stride + i]).toBe(x[r * stride + i]);
    }
    const viaRef = x.slice();
    withRef(() => rope.rotateRows(viaRef, rows, stride, heads, pos0, period));
    expect(Array.from(viaRef)).toEqual(Array.from(ref));
  });

  it("position 0 is the identity and rotations keep each pair's length", () => {
    const rope = new RopeTable(6, 10000, "interleaved");
    const x = Float32Array.from([1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6]);
    const y = x.slice();
    rope.rotateRows(y, 2, 6, 1, 0);
    expect(Array.from(y.subarray(0, 6))).toEqual([1, 2, 3, 4, 5, 6]);
    for (let i = 0; i < 3; i++) expect(Math.hypot(y[6 + 2 * i]!, y[7 + 2 * i]!)).toBeCloseTo(Math.hypot(x[2 * i]!, x[2 * i + 1]!), 5);
  });
});
