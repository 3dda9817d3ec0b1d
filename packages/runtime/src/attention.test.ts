import { Rng } from "@lowbit/tensor";
import { describe, expect, it } from "vitest";
import { type AttentionShape, causalAttention, causalAttentionRef } from "./attention";
import { normal, rowRelDiff, withRef } from "./kernels/test-util";

// [nHeads, nKvHeads, headDim, T (query rows), startPos (cached positions before them), window]
const CASES: Array<[number, number, number, number, number, number | undefined]> = [
  [8, 4, 8, 256, 0, undefined], // stories260K: a whole 256-token window
  [1, 1, 5, 1, 0, undefined], // one token, odd head width
  [3, 1, 7, 13, 0, undefined], // three query heads on one key/value head
  [6, 2, 10, 1, 37, undefined], // decode step after 37 cached positions, head width 10
  [4, 4, 3, 9, 20, undefined], // several new rows after a cache, head width 3
  [12, 4, 64, 5, 300, undefined], // the 100M model's heads
  [2, 1, 6, 40, 0, 7], // sliding window of 7
  [4, 2, 18, 17, 50, 16], // sliding window with a cache
  [2, 2, 4, 600, 0, undefined], // long window
  [2, 1, 130, 3, 2, 1], // window 1: each query sees only itself
];

describe("causal attention: WebAssembly SIMD against the f64 reference twin", () => {
  it.each(CASES)("heads %i/%i, width %i, %i rows after %i cached, window %s: within 1e-5 relative per head row", (nHeads, nKv, hd, T, startPos, window) => {
    const rng = new Rng(nHeads * 1000 + hd * 10 + T);
    const shape: AttentionShape = { nHeads, nKvHeads: nKv, headDim: hd, window };
    const qDim = nHeads * hd;
    const kvDim = nKv * hd;
    // rows before/after the used ones check the row offsets; scaled q gives peaked softmaxes
    const qRow0 = 2;
    const kvRow0 = 3;
    const q = normal(rng, (qRow0 + T + 1) * qDim, 2.5);
    const k = normal(rng, (kvRow0 + startPos + T + 2) * kvDim);
    const v = normal(rng, k.length);
    const fast = new Float32Array(q.length);
    const ref = new Float32Array(q.length);
    causalAttention(shape, q, qRow0, T, k, v, kvRow0, startPos, fast);
    causalAttentionRef(shape, q, qRow0, T, k, v, kvRow0, startPos, ref);
    expect(rowRelDiff(fast, ref, hd)).toBeLessThan(1e-5);
    // rows outside qRow0 .. qRow0 + T are untouched
    expect(fast.subarray(0, qRow0 * qDim).every((x) => x === 0)).toBe(true);
    expect(fast.subarray((qRow0 + T) * qDim).every((x) => x === 0)).toBe(true);
  });

  it("the \"ref\" kernel backend runs the reference twin exactly", () => {
    const rng = new Rng(5);
    const shape = { nHeads: 4, nKvHeads: 2, headDim: 6 };
    const q = normal(rng, 11 * 24);
    const k = normal(rng, 11 * 12);
    const v = normal(rng, 11 * 12);
    const a = new Float32Array(q.length);
    const b = new Float32Array(q.length);
    withRef(() => causalAttention(shape, q, 0, 11, k, v, 0, 0, a));
    causalAttentionRef(shape, q, 0, 11, k, v, 0, 0, b);
    expect(Array.from(a)).toEqual(Array.from(b));
  });

  it("one key: the output is that key's value; equal scores: the mean of the values", () => {
    const shape = { nHeads: 2, nKvHeads: 1, headDim: 3 };
    const v = Float32Array.from([1, 2, 3, 5, -1, 0]);
    const q = Float32Array.from([0.3, 0.1, 0.2, 1, 2, 3, 0, 0, 0, 0, 0, 0]);
    const k = Float32Array.from([0.5, 0.5, 0.5, 9, 9, 9]);
    const out = new Float32Array(12);
    causalAttention(shape, q, 0, 2, k, v, 0, 0, out);
    expect(Array.from(out.subarray(0, 6))).toEqual([1, 2, 3, 1, 2, 3]);
    // query row 1 has q = 0: softmax of equal scores averages the two values
    const mean = [3, 0.5, 1.5];
    for (let d = 0; d < 3; d++) {
      expect(out[6 + d]).toBeCloseTo(mean[d]!, 6);
      expect(out[9 + d]).toBeCloseTo(mean[d]!, 6);
    }
  });
});
