import fc from "fast-check";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { getEngine, setKernelBackend } from "../engine/engine";
import { getKernelThreads, kernelThreadsInfo, kernelThreadsReady, setKernelThreads, shutdownKernelThreads } from "../engine/threads";
import { isLowbitError } from "../errors";
import { Rng } from "../rng";
import { subOuterF32 } from "./f32";

afterEach(() => setKernelBackend("wasm"));

/** The update as plain Float32Array arithmetic (what GPTQ's column loop computed). */
function expected(w: Float32Array, ldw: number, rows: number, x: Float32Array, y: Float32Array, n: number): Float32Array {
  const out = w.slice();
  for (let r = 0; r < rows; r++) for (let j = 0; j < n; j++) out[r * ldw + j] = out[r * ldw + j]! - Math.fround(x[r]! * y[j]!);
  return out;
}

const sameBits = (a: Float32Array, b: Float32Array): boolean => {
  const ia = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ib = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return ia.length === ib.length && ia.every((v, i) => v === ib[i]);
};

describe("subOuterF32 (W -= x y^T on a strided block)", () => {
  it("equals the Float32Array loop bit for bit: plain arrays, kernel-memory views and the ref backend", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 0, max: 37 }),
        fc.integer({ min: 0, max: 5 }),
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        (rows, n, pad, seed) => {
          const ldw = n + pad;
          const rng = new Rng(seed);
          const len = Math.max(0, (rows - 1) * ldw + n) + pad;
          const w = rng.fillNormal(new Float32Array(len), 0, 3);
          const x = rng.fillNormal(new Float32Array(rows), 0, 1);
          const y = rng.fillNormal(new Float32Array(n), 0, 1e-2);
          const want = expected(w, ldw, rows, x, y, n);
          // plain arrays: copied in and back
          const a = w.slice();
          subOuterF32(a, ldw, rows, x, y, n);
          expect(sameBits(a, want)).toBe(true);
          // kernel-memory views: updated in place
          const engine = getEngine();
          const bw = engine.buffer(Math.max(4, len * 4));
          const bx = engine.buffer(Math.max(4, rows * 4));
          const by = engine.buffer(Math.max(4, n * 4));
          try {
            bw.f32(0, len).set(w);
            bx.f32(0, rows).set(x);
            by.f32(0, n).set(y);
            subOuterF32(bw.f32(0, len), ldw, rows, bx.f32(0, rows), by.f32(0, n), n);
            expect(sameBits(bw.f32(0, len), want)).toBe(true);
          } finally {
            bw.dispose();
            bx.dispose();
            by.dispose();
          }
          setKernelBackend("ref");
          const c = w.slice();
          subOuterF32(c, ldw, rows, x, y, n);
          setKernelBackend("wasm");
          expect(sameBits(c, want)).toBe(true);
        },
      ),
      { seed: 1234, numRuns: 150 },
    );
  });

  it("allocates nothing when w, x and y are all kernel-memory views; with plain x and y, a fresh view of w holds the result", () => {
    const engine = getEngine();
    const [rows, n] = [300, 45];
    const rng = new Rng(5);
    const w = rng.fillNormal(new Float32Array(rows * n), 0, 1);
    const x = rng.fillNormal(new Float32Array(rows), 0, 1);
    const y = rng.fillNormal(new Float32Array(n), 0, 1);
    const want = expected(w, n, rows, x, y, n);
    const bw = engine.buffer(rows * n * 4);
    const bx = engine.buffer(rows * 4);
    const by = engine.buffer(n * 4);
    try {
      bw.f32(0, rows * n).set(w);
      bx.f32(0, rows).set(x);
      by.f32(0, n).set(y);
      const view = bw.f32(0, rows * n);
      const stats = { ...engine.stats };
      subOuterF32(view, n, rows, bx.f32(0, rows), by.f32(0, n), n);
      expect(engine.stats).toEqual(stats);
      expect(sameBits(view, want)).toBe(true); // the caller's view is still live
      // plain x and y are copied in (which may allocate); the result is in w's kernel memory
      bw.f32(0, rows * n).set(w);
      subOuterF32(bw.f32(0, rows * n), n, rows, x, y, n);
      expect(sameBits(bw.f32(0, rows * n), want)).toBe(true);
    } finally {
      bw.dispose();
      bx.dispose();
      by.dispose();
    }
  });

  it("leaves the padding between rows alone and handles inf/NaN like the loop", () => {
    const w = new Float32Array([1, 2, 3, 99, 4, 5, 6, 99]);
    const x = new Float32Array([Infinity, 2]);
    const y = new Float32Array([0, 1, Number.NaN]);
    const want = expected(w, 4, 2, x, y, 3);
    subOuterF32(w, 4, 2, x, y, 3);
    expect(sameBits(w, want)).toBe(true);
    expect(w[3]).toBe(99);
    expect(w[7]).toBe(99);
  });

  it.each([
    ["n beyond the row stride", () => subOuterF32(new Float32Array(8), 2, 2, new Float32Array(2), new Float32Array(3), 3), /exceeds the row stride/],
    ["w too short", () => subOuterF32(new Float32Array(5), 4, 2, new Float32Array(2), new Float32Array(4), 4), /w must hold at least 8/],
    ["x too short", () => subOuterF32(new Float32Array(8), 4, 2, new Float32Array(1), new Float32Array(4), 4), /x must hold at least 2/],
    ["y too short", () => subOuterF32(new Float32Array(8), 4, 2, new Float32Array(2), new Float32Array(3), 4), /y must hold at least 4/],
    ["a negative size", () => subOuterF32(new Float32Array(8), 4, -1, new Float32Array(2), new Float32Array(4), 4), /rows must be a non-negative integer/],
  ])("rejects %s with a LowbitError", (_name, call, message) => {
    let err: unknown;
    try {
      call();
    } catch (e) {
      err = e;
    }
    expect(isLowbitError(err)).toBe(true);
    expect((err as Error).message).toMatch(message);
  });
});

describe("subOuterF32 on 2 and 3 kernel threads: bit-identical to one thread", () => {
  afterAll(async () => {
    await shutdownKernelThreads();
  });
  // 2101 rows x 301 columns: 632k multiply-adds, enough for two parts (2^18 each); ragged on purpose
  const [rows, n, ldw] = [2101, 301, 307];
  const rng = new Rng(77);
  const w = rng.fillNormal(new Float32Array(rows * ldw), 0, 1);
  const x = rng.fillNormal(new Float32Array(rows), 0, 1);
  const y = rng.fillNormal(new Float32Array(n), 0, 1);
  const want = expected(w, ldw, rows, x, y, n);

  it.each([2, 3])("%i threads", async (t) => {
    expect(getKernelThreads()).toBe(1);
    expect(setKernelThreads(t, { spinMicros: 50 })).toBe(t);
    expect(await kernelThreadsReady()).toBe(t);
    const before = kernelThreadsInfo().dispatches;
    const got = w.slice();
    subOuterF32(got, ldw, rows, x, y, n);
    expect(sameBits(got, want)).toBe(true);
    // the call really was split; a small one is not
    expect(kernelThreadsInfo().dispatches - before).toBe(1);
    subOuterF32(got.subarray(0, 64 * ldw), ldw, 64, x, y, n);
    expect(kernelThreadsInfo().dispatches - before).toBe(1);
    await shutdownKernelThreads();
  });
});
