import { describe, expect, it } from "vitest";
import { LowbitError } from "./errors";
import { Rng } from "./rng";

describe("Rng", () => {
  it("is deterministic per seed and differs across seeds", () => {
    const a = new Rng(123);
    const b = new Rng(123);
    const c = new Rng(124);
    const sa = Array.from({ length: 8 }, () => a.nextU32());
    const sb = Array.from({ length: 8 }, () => b.nextU32());
    const sc = Array.from({ length: 8 }, () => c.nextU32());
    expect(sa).toEqual(sb);
    expect(sa).not.toEqual(sc);
    // large seeds use their high bits too
    expect(new Rng(2 ** 40).nextU32()).not.toBe(new Rng(0).nextU32());
    for (const x of sa) expect(Number.isInteger(x) && x >= 0 && x < 2 ** 32).toBe(true);
  });

  it("gives uniforms in [0,1) with the right mean and variance", () => {
    const r = new Rng(1);
    const n = 100_000;
    let s = 0;
    let s2 = 0;
    let outside = 0;
    for (let i = 0; i < n; i++) {
      const u = r.uniform();
      if (!(u >= 0 && u < 1)) outside++;
      s += u;
      s2 += u * u;
    }
    expect(outside).toBe(0);
    const mean = s / n;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.005);
    expect(Math.abs(s2 / n - mean * mean - 1 / 12)).toBeLessThan(0.002);
  });

  it("gives standard normals (mean, variance, tails)", () => {
    const r = new Rng(2);
    const x = r.fillNormal(new Float64Array(200_000));
    let s = 0;
    let s2 = 0;
    let beyond2 = 0;
    for (const v of x) {
      s += v;
      s2 += v * v;
      if (Math.abs(v) > 2) beyond2++;
    }
    expect(Math.abs(s / x.length)).toBeLessThan(0.01);
    expect(Math.abs(s2 / x.length - 1)).toBeLessThan(0.015);
    expect(Math.abs(beyond2 / x.length - 0.0455)).toBeLessThan(0.003);
    const y = new Rng(3).fillNormal(new Float32Array(10_000), 5, 0.5);
    let m = 0;
    for (const v of y) m += v;
    expect(Math.abs(m / y.length - 5)).toBeLessThan(0.02);
  });

  it.each([1, 2, 3, 10, 1000, 2 ** 32, 2 ** 40])("int(%i) stays in range and covers it", (n) => {
    const r = new Rng(n);
    const counts = new Map<number, number>();
    for (let i = 0; i < 5000; i++) {
      const v = r.int(n);
      expect(Number.isInteger(v) && v >= 0 && v < n).toBe(true);
      counts.set(v, (counts.get(v) ?? 0) + 1);
    }
    if (n <= 10) expect(counts.size).toBe(n);
  });

  it("int is uniform over a small range (chi-square)", () => {
    const r = new Rng(9);
    const k = 7;
    const n = 70_000;
    const c = new Array<number>(k).fill(0);
    for (let i = 0; i < n; i++) c[r.int(k)]!++;
    const chi = c.reduce((a, v) => a + (v - n / k) ** 2 / (n / k), 0);
    expect(chi).toBeLessThan(22.5); // p ~ 0.001 for 6 degrees of freedom
  });

  it("fillUniform respects bounds; shuffle permutes", () => {
    const r = new Rng(4);
    const u = r.fillUniform(new Float32Array(1000), -3, -1);
    for (const v of u) expect(v >= -3 && v <= -1).toBe(true);
    const arr = Array.from({ length: 50 }, (_, i) => i);
    const sh = r.shuffle([...arr]);
    expect(sh).not.toEqual(arr);
    expect([...sh].sort((a, b) => a - b)).toEqual(arr);
    const t = r.shuffle(new Int32Array([1, 2, 3, 4, 5]));
    expect([...t].sort()).toEqual([1, 2, 3, 4, 5]);
  });

  it("rejects bad arguments with a LowbitError", () => {
    expect(() => new Rng(Number.NaN)).toThrow(LowbitError);
    expect(() => new Rng(0).int(0)).toThrow(/positive integer/);
    expect(() => new Rng(0).int(1.5)).toThrow(LowbitError);
  });
});
