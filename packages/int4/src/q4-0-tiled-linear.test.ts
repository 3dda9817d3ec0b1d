import { getKernelThreads, kernelThreadsInfo, kernelThreadsReady, setKernelThreads, shutdownKernelThreads } from "@lowbit/tensor";
import { bitsEqual } from "@lowbit/testing";
import { afterAll, describe, expect, it } from "vitest";
import { dequantizeQ4_0Ref, quantizeGgufInt4, quantizeQ4_0Ref } from "./codec-gguf";
import { Q4_0TiledLinear } from "./q4-0-tiled-linear";
import { relRmse, TestRng } from "./test-rng";

function make(rows: number, cols: number, seed: number, bias = true): { lin: Q4_0TiledLinear; bytes: Uint8Array; w: Float32Array } {
  const rng = new TestRng(seed);
  const w = rng.normals(rows * cols, 0.05);
  const bytes = quantizeQ4_0Ref(w);
  const lin = new Q4_0TiledLinear(bytes, rows, cols, { bias: bias ? rng.normals(rows) : undefined, name: "blk.0.w" });
  return { lin, bytes, w };
}

// [rows, cols, m]: ragged tiles (rows % 4 != 0), 1- and 2-token passes of the GEMM
const SHAPES: Array<[number, number, number]> = [
  [1, 32, 1],
  [3, 64, 1],
  [4, 32, 2],
  [7, 96, 1],
  [13, 256, 3],
  [64, 768, 1],
  [33, 320, 5],
  [130, 512, 4],
  [29, 160, 6],
  [37, 224, 17],
];

describe("Q4_0TiledLinear", () => {
  it.each(SHAPES)("wasm = reference bit for bit at %i x %i, m = %i", (rows, cols, m) => {
    const { lin } = make(rows, cols, rows * 31 + cols);
    const x = new TestRng(m + cols).normals(m * cols);
    const fast = lin.run(x, m, undefined, "wasm");
    const ref = lin.run(x, m, undefined, "ref");
    expect(bitsEqual(fast, ref)).toBe(true);
    lin.dispose();
  });

  // the one-token kernel runs groups of four row tiles side by side, then the n4 % 4 left one by one
  it.each([1, 2, 3, 4, 5, 6, 7, 8, 9, 13])("one token over %i row tiles: wasm = reference bit for bit", (n4) => {
    const rows = 4 * n4 - (n4 % 3); // some shapes end in a ragged tile
    const { lin } = make(rows, 96, n4);
    const x = new TestRng(n4 + 50).normals(96);
    expect(bitsEqual(lin.run(x, 1, undefined, "wasm"), lin.run(x, 1, undefined, "ref"))).toBe(true);
    lin.dispose();
  });

  it.each([
    ["zeros", () => new Float32Array(64)],
    ["a spike", () => Float32Array.from({ length: 64 }, (_, i) => (i === 5 ? 1e4 : i === 40 ? -3e-3 : 0))],
    ["ties at half steps", () => Float32Array.from({ length: 64 }, (_, i) => (i % 32 === 0 ? 127 : (i % 7) - 3.5))],
    ["tiny values (f16 subnormal scales)", () => Float32Array.from({ length: 64 }, (_, i) => (i - 31) * 1e-7)],
  ])("wasm = reference on %s", (_, x) => {
    const { lin } = make(9, 64, 3);
    expect(bitsEqual(lin.run(x(), 1, undefined, "wasm"), lin.run(x(), 1, undefined, "ref"))).toBe(true);
    lin.dispose();
  });

  it("holds the file's bytes: toBytes round-trips and dequantizedWeight is dequantize_row_q4_0", () => {
    const { lin, bytes } = make(10, 128, 11, false);
    expect(lin.toBytes()).toEqual(bytes);
    expect(bitsEqual(lin.dequantizedWeight(), dequantizeQ4_0Ref(bytes, 10 * 128))).toBe(true);
    expect(lin.storageBytes).toBe(10 * 4 * 20);
    lin.dispose();
  });

  it("approximates x . W^T of the f32 weights (int8 activations, 4-bit weights)", () => {
    const [rows, cols, m] = [48, 512, 4];
    const rng = new TestRng(7);
    const w = rng.normals(rows * cols, 0.05);
    const lin = new Q4_0TiledLinear(quantizeGgufInt4("q4_0", w, rows, cols), rows, cols);
    const x = rng.normals(m * cols);
    const want = new Float32Array(m * rows);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < rows; j++) {
        let s = 0;
        for (let k = 0; k < cols; k++) s += x[i * cols + k]! * w[j * cols + k]!;
        want[i * rows + j] = s;
      }
    }
    expect(relRmse(lin.forward(x, m), want)).toBeLessThan(0.15);
    lin.dispose();
  });

  it.each([
    ["columns not whole blocks", () => new Q4_0TiledLinear(new Uint8Array(18), 1, 40), /not whole Q4_0 blocks/],
    ["too few bytes", () => new Q4_0TiledLinear(new Uint8Array(17), 1, 32, { name: "w" }), /Q4_0TiledLinear w: 17 bytes, expected 18/],
    ["bias length", () => new Q4_0TiledLinear(new Uint8Array(36), 2, 32, { bias: new Float32Array(3) }), /bias has 3 values, expected 2/],
    ["non-finite scale", () => new Q4_0TiledLinear(Uint8Array.from({ length: 18 }, (_, i) => (i === 1 ? 0x7c : 0)), 1, 32), /non-finite scale/],
  ])("rejects %s", (_, fn, msg) => {
    expect(fn).toThrow(msg);
  });

  it.each(["wasm", "ref"] as const)("names the first non-finite input (%s)", (backend) => {
    const { lin } = make(4, 64, 1);
    const x = new Float32Array(128);
    x[70] = Number.NaN;
    expect(() => lin.run(x, 2, undefined, backend)).toThrow(/token 1, column 6 is not finite/);
    expect(() => lin.run(new Float32Array(10), 1, undefined, backend)).toThrow(/input has 10 values, expected 1 x 64/);
    lin.dispose();
  });
});

describe("Q4_0TiledLinear on kernel threads", () => {
  // >= 2^18 multiply-adds per thread at 3 threads: every call is split; ragged last tile
  const cases: Array<[number, number, number]> = [
    [1029, 1024, 1],
    [263, 1024, 5],
    [263, 1024, 7], // the int8-tile GEMM (per-part tile scratch), odd m: the 1-token tail too
  ];
  const runAll = () =>
    cases.map(([rows, cols, m]) => {
      const { lin } = make(rows, cols, rows + cols);
      const y = lin.forward(new TestRng(m * 7 + cols).normals(m * cols), m);
      lin.dispose();
      return y;
    });
  afterAll(async () => {
    await shutdownKernelThreads();
  });

  it("2 and 3 threads give the one-thread result bit for bit, one dispatch per call", async () => {
    expect(getKernelThreads()).toBe(1);
    const single = runAll();
    for (const t of [2, 3]) {
      expect(setKernelThreads(t, { spinMicros: 50 })).toBe(t);
      expect(await kernelThreadsReady()).toBe(t);
      const before = kernelThreadsInfo().dispatches;
      const got = runAll();
      got.forEach((y, i) => {
        expect(bitsEqual(y, single[i]!), `${cases[i]} at ${t} threads`).toBe(true);
      });
      expect(kernelThreadsInfo().dispatches - before).toBe(cases.length);
    }
  });
});
