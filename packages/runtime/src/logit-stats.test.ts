import { Rng } from "@lowbit/tensor";
import { describe, expect, it } from "vitest";
import { normal, withRef } from "./kernels/test-util";
import { logitStats, logitStatsRef, STATS_STRIDE } from "./logit-stats";

/** The evaluation's quantities from a stats row: [nll, refNll, kl]. */
function finish(s: Float64Array, r: number): [number, number, number] {
  const o = r * STATS_STRIDE;
  const lnS = Math.log(s[o + 1]!);
  const lnSr = Math.log(s[o + 5]!);
  return [s[o]! + lnS - s[o + 2]!, s[o + 4]! + lnSr - s[o + 6]!, s[o + 7]! / s[o + 5]! - (s[o + 4]! - s[o]!) - lnSr + lnS];
}

/** Direct definitions in f64: log-softmax NLL and KL(ref || model) = sum p_ref (log p_ref - log p_model). */
function direct(x: Float32Array, ref: Float32Array, o: number, V: number, target: number): [number, number, number] {
  const lse = (a: Float32Array) => {
    const m = Math.max(...a.subarray(o, o + V));
    let s = 0;
    for (let j = 0; j < V; j++) s += Math.exp(a[o + j]! - m);
    return m + Math.log(s);
  };
  const lm = lse(x);
  const lr = lse(ref);
  let kl = 0;
  for (let j = 0; j < V; j++) {
    const pr = ref[o + j]! - lr;
    kl += Math.exp(pr) * (pr - (x[o + j]! - lm));
  }
  return [lm - x[o + target]!, lr - ref[o + target]!, kl];
}

describe("evaluation statistics over the vocabulary: WebAssembly SIMD (f64 sums) against the reference twin", () => {
  it.each([
    [1, 1],
    [3, 7],
    [5, 512],
    [2, 1001],
    [255, 512],
  ])("%i rows x vocabulary %i: stats within 1e-12 relative, NLL and KL match their definitions", (rows, V) => {
    const rng = new Rng(rows * 13 + V);
    const x = normal(rng, rows * V, 4);
    const ref = x.map((v) => v + 0.2 * rng.normal());
    const targets = Array.from({ length: rows }, () => rng.int(V));
    for (const withReference of [false, true]) {
      const r = withReference ? ref : undefined;
      const fast = logitStats(x, r, targets, rows, V);
      const slow = logitStatsRef(x, r, targets, rows, V);
      for (let i = 0; i < fast.length; i++) {
        expect(Math.abs(fast[i]! - slow[i]!)).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(slow[i]!)));
      }
    }
    const s = logitStats(x, ref, targets, rows, V);
    for (let row = 0; row < rows; row++) {
      const got = finish(s, row);
      const want = direct(x, ref, row * V, V, targets[row]!);
      for (let i = 0; i < 3; i++) expect(Math.abs(got[i]! - want[i]!)).toBeLessThan(1e-11 * Math.max(1, Math.abs(want[i]!)));
    }
  });

  it("a row against itself: KL exactly 0, the same argmax; argmax takes the first of tied maxima", () => {
    const x = Float32Array.from([1, 5, 2, 5, -3, 5, 0, 1, 4]);
    const s = logitStats(x, x, [0], 1, 9);
    expect(finish(s, 0)[2]).toBe(0);
    expect(s[3]).toBe(1);
    expect(s[8]).toBe(1);
    expect(Array.from(withRef(() => logitStats(x, x, [0], 1, 9)))).toEqual(Array.from(logitStatsRef(x, x, [0], 1, 9)));
  });

  it("tiny KL stays accurate in f64 (a 1e-4 logit perturbation)", () => {
    const rng = new Rng(9);
    const V = 512;
    const x = normal(rng, V, 3);
    const ref = x.map((v) => v + 1e-4 * rng.normal());
    const got = finish(logitStats(x, ref, [3], 1, V), 0)[2];
    const want = direct(x, ref, 0, V, 3)[2];
    expect(want).toBeGreaterThan(0);
    expect(Math.abs(got - want) / want).toBeLessThan(1e-5);
  });

  it("rejects targets outside the vocabulary and short inputs", () => {
    expect(() => logitStats(new Float32Array(4), undefined, [4], 1, 4)).toThrow(/target 4 of row 0 is outside the vocabulary/);
    expect(() => logitStats(new Float32Array(3), undefined, [0], 1, 4)).toThrow(/need 1 x 4 values, got 3/);
  });
});
