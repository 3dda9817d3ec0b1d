import { LowbitError } from "@lowbit/tensor";
import { describe, expect, it } from "vitest";
import { Q4_0Linear, Q4_1Linear, Q4_KLinear } from "./block-linear";
import { dequantizeQ4_0Ref, dequantizeQ4_1Ref, quantizeGgufInt4 } from "./codec-gguf";
import { dequantizeQ4_KRef, quantizeQ4_K } from "./codec-q4k";
import { relRmse, TestRng } from "./test-rng";

describe.each([
  ["q4_0", Q4_0Linear, dequantizeQ4_0Ref],
  ["q4_1", Q4_1Linear, dequantizeQ4_1Ref],
] as const)("%s linear", (fmt, Cls, deq) => {
  it.each([
    [1, 16, 64],
    [3, 37, 96],
    [8, 64, 256],
  ])("m=%i %ix%i: weight equals llama.cpp's dequantization; wasm matches ref (f32 and int8 activations)", (m, rows, cols) => {
    const rng = new TestRng(rows * cols + m);
    const w = rng.normals(rows * cols, 0.05);
    const bytes = quantizeGgufInt4(fmt, w, rows, cols);
    const lin = new Cls(bytes, rows, cols);
    const ref = deq(bytes, rows * cols);
    const got = lin.dequantizedWeight();
    if (fmt === "q4_0") expect([...got]).toEqual([...ref]);
    else for (let i = 0; i < ref.length; i++) expect(Math.abs(got[i]! - ref[i]!)).toBeLessThanOrEqual(Math.abs(ref[i]!) * 2e-6 + 1e-7);
    expect(lin.kind).toBe(fmt);
    const x = rng.normals(m * cols);
    for (const int8 of [false, true]) {
      const a = lin.run(x, m, undefined, int8, "ref");
      const b = lin.run(x, m, undefined, int8, "wasm");
      expect(relRmse(b, a)).toBeLessThan(1e-5);
    }
    // int8 activations stay close to the f32 result
    expect(relRmse(lin.run(x, m, undefined, true, "wasm"), lin.run(x, m, undefined, false, "ref"))).toBeLessThan(0.02);
    lin.dispose();
  });

  it("refuses rows that are not a multiple of 32 and wrong byte counts", () => {
    expect(() => new Cls(new Uint8Array(100), 2, 48)).toThrow(LowbitError);
    expect(() => new Cls(new Uint8Array(10), 1, 32)).toThrow(/bytes, expected/);
  });
});

describe("q4_k linear", () => {
  it.each([
    [1, 8, 256],
    [3, 13, 512],
  ])("m=%i %ix%i: weight agrees with llama.cpp's dequantization; wasm matches ref", (m, rows, cols) => {
    const rng = new TestRng(rows + cols);
    const w = rng.normals(rows * cols, 0.05);
    const bytes = quantizeQ4_K(w, rows, cols);
    const lin = new Q4_KLinear(bytes, rows, cols);
    const ref = dequantizeQ4_KRef(bytes, rows * cols);
    const got = lin.dequantizedWeight();
    for (let i = 0; i < ref.length; i++) expect(Math.abs(got[i]! - ref[i]!)).toBeLessThanOrEqual(Math.abs(ref[i]!) * 2e-6 + 1e-7);
    expect(relRmse(ref, w)).toBeLessThan(0.12); // Q4_K keeps 4-bit accuracy on Gaussian weights
    expect(lin.kind).toBe("q4_k");
    const x = rng.normals(m * cols);
    for (const int8 of [false, true]) expect(relRmse(lin.run(x, m, undefined, int8, "wasm"), lin.run(x, m, undefined, int8, "ref"))).toBeLessThan(1e-5);
    lin.dispose();
  });
  it("refuses rows that are not a multiple of 256", () => {
    expect(() => quantizeQ4_K(new Float32Array(128), 1, 128)).toThrow(/not a multiple of 256/);
    expect(() => new Q4_KLinear(new Uint8Array(144), 1, 128)).toThrow(LowbitError);
  });
});
