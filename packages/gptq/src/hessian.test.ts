import { kernelThreadsInfo, kernelThreadsReady, setKernelThreads, shutdownKernelThreads } from "@lowbit/tensor";
import { describe, expect, it } from "vitest";
import { HessianAccumulator } from "./hessian";
import { syntheticLayer } from "./test-helpers";

/** 2/n * sum over samples of X^T X, in f64, with n the number of samples. */
function naiveHessian(x: Float32Array, cols: number, tokens: number, samples: number): Float64Array {
  const h = new Float64Array(cols * cols);
  for (let t = 0; t < tokens; t++) {
    for (let i = 0; i < cols; i++) {
      const xi = x[t * cols + i]!;
      for (let j = 0; j < cols; j++) h[i * cols + j]! += xi * x[t * cols + j]!;
    }
  }
  for (let i = 0; i < h.length; i++) h[i] = (2 / samples) * h[i]!;
  return h;
}

function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let maxAbs = 0;
  let maxDiff = 0;
  for (let i = 0; i < a.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(b[i]!));
    maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
  }
  return maxDiff / maxAbs;
}

describe("HessianAccumulator", () => {
  it.each([
    { cols: 7, tokens: 40, batches: [10, 10, 20] },
    { cols: 33, tokens: 96, batches: [32, 32, 32] },
    { cols: 600, tokens: 24, batches: [8, 16] }, // more than one 512-column block
  ])("running average over batches equals 2/n sum x x^T (cols $cols)", ({ cols, tokens, batches }) => {
    const { x } = syntheticLayer(1, cols, tokens, 11);
    const acc = new HessianAccumulator(cols);
    let t0 = 0;
    for (const b of batches) {
      acc.addBatch(x.subarray(t0 * cols, (t0 + b) * cols), b);
      t0 += b;
    }
    expect(acc.nSamples).toBe(batches.length);
    const ref = naiveHessian(x, cols, tokens, batches.length);
    expect(maxRelDiff(acc.h, ref)).toBeLessThan(2e-5);
    // exactly symmetric
    let asymmetric = 0;
    for (let i = 0; i < cols; i++) for (let j = 0; j < i; j++) if (acc.h[i * cols + j] !== acc.h[j * cols + i]) asymmetric++;
    expect(asymmetric).toBe(0);
  });

  it("counts a batch of several samples as the reference does (H *= n/(n+b); n += b)", () => {
    const cols = 5;
    const { x } = syntheticLayer(1, cols, 12, 3);
    const acc = new HessianAccumulator(cols);
    acc.addBatch(x.subarray(0, 4 * cols), 4, 1);
    acc.addBatch(x.subarray(4 * cols), 8, 2);
    expect(acc.nSamples).toBe(3);
    expect(maxRelDiff(acc.h, naiveHessian(x, cols, 12, 3))).toBeLessThan(2e-6);
  });

  it.each([
    { cols: 7, parts: [[40], [3, 17, 20], [1, 1, 38]] },
    { cols: 600, parts: [[24], [5, 19], [8, 8, 8]] },
  ])("a batch given in parts (beginBatch/addRows/endBatch) equals addBatch bit for bit (cols $cols)", ({ cols, parts }) => {
    const tokens = parts[0]![0]!;
    const { x } = syntheticLayer(1, cols, 2 * tokens, 5);
    const whole = new HessianAccumulator(cols);
    whole.addBatch(x.subarray(0, tokens * cols), tokens, 2);
    whole.addBatch(x.subarray(tokens * cols), tokens, 3);
    for (const split of parts) {
      const acc = new HessianAccumulator(cols);
      for (let b = 0; b < 2; b++) {
        acc.beginBatch(tokens, b + 2);
        let t0 = b * tokens;
        for (const n of split) {
          acc.addRows(x.subarray(t0 * cols, (t0 + n) * cols), n);
          t0 += n;
        }
        acc.endBatch();
      }
      expect(acc.nSamples).toBe(5);
      expect(Buffer.from(acc.h.buffer).equals(Buffer.from(whole.h.buffer))).toBe(true);
    }
  });

  it.each([
    { name: "too many rows", fn: (a: HessianAccumulator) => a.addRows(new Float32Array(12), 3), code: "E_SHAPE_MISMATCH" },
    { name: "ended early", fn: (a: HessianAccumulator) => a.endBatch(), code: "E_SHAPE_MISMATCH" },
    { name: "begun twice", fn: (a: HessianAccumulator) => a.beginBatch(2), code: "E_INVALID_ARGUMENT" },
  ])("a batch in parts: rejects $name and leaves H and the sample count as they were", ({ fn, code }) => {
    const cols = 4;
    const { x } = syntheticLayer(1, cols, 4, 9);
    const acc = new HessianAccumulator(cols);
    acc.addBatch(x.subarray(0, 2 * cols), 2);
    const before = acc.h.slice();
    acc.beginBatch(2);
    acc.addRows(x.subarray(2 * cols, 3 * cols), 1);
    expect(() => fn(acc)).toThrow(expect.objectContaining({ code }));
    acc.releaseScratch();
    expect(acc.nSamples).toBe(1);
    expect(acc.h).toEqual(before);
    // usable again
    acc.addBatch(x.subarray(2 * cols), 2);
    expect(acc.nSamples).toBe(2);
  });

  it("rejects addRows and endBatch without beginBatch", () => {
    const acc = new HessianAccumulator(3);
    expect(() => acc.addRows(new Float32Array(3), 1)).toThrow(expect.objectContaining({ code: "E_INVALID_ARGUMENT" }));
    expect(() => acc.endBatch()).toThrow(expect.objectContaining({ code: "E_INVALID_ARGUMENT" }));
  });

  it.each([
    { name: "wrong length", fn: (a: HessianAccumulator) => a.addBatch(new Float32Array(7), 2), code: "E_SHAPE_MISMATCH" },
    { name: "zero tokens", fn: (a: HessianAccumulator) => a.addBatch(new Float32Array(0), 0), code: "E_INVALID_ARGUMENT" },
    { name: "bad samples", fn: (a: HessianAccumulator) => a.addBatch(new Float32Array(4), 1, 0), code: "E_INVALID_ARGUMENT" },
  ])("rejects $name", ({ fn, code }) => {
    expect(() => fn(new HessianAccumulator(4))).toThrow(expect.objectContaining({ code }));
  });

  it("on kernel threads equals one thread bit for bit (each block's GEMM is split)", async () => {
    const cols = 600; // three column blocks: 256, 256 and an 88 wide one
    const tokens = 96;
    const { x } = syntheticLayer(1, cols, 3 * tokens, 21);
    const run = () => {
      const acc = new HessianAccumulator(cols);
      for (let b = 0; b < 3; b++) acc.addBatch(x.subarray(b * tokens * cols, (b + 1) * tokens * cols), tokens);
      return acc.h;
    };
    const one = run();
    try {
      expect(setKernelThreads(2, { spinMicros: 50 })).toBe(2);
      await kernelThreadsReady();
      const two = run();
      // 3 batches x 6 upper-triangle blocks, each split over both threads
      expect(kernelThreadsInfo().dispatches).toBe(18);
      expect(new Uint32Array(two.buffer)).toEqual(new Uint32Array(one.buffer));
    } finally {
      await shutdownKernelThreads();
    }
  });
});
