import { getEngine, getKernelBackend, hasWasmSimd, isLowbitError, type Linear } from "@lowbit/tensor";
import { describe, expect, it } from "vitest";
import { quantizeQ8_0 } from "./q8-0";
import { Q8_0Linear } from "./q8-0-linear";
import { gaussian, matmulRef, maxRelDiff, rms, rmse, SHAPES, withRef } from "./test-util";
import { DynamicW8A8Linear } from "./w8a8-linear";
import { Int8WeightOnlyLinear } from "./weight-only-linear";

type Factory = (w: Float32Array, n: number, k: number, opts: { bias?: Float32Array; name?: string }) => Linear;

/** [label, factory, relative RMSE of the output vs f32 on Gaussian data, fast-vs-ref exact?] */
const LAYERS: Array<[string, Factory, number, boolean]> = [
  ["Int8WeightOnlyLinear", (w, n, k, o) => Int8WeightOnlyLinear.fromWeight(w, n, k, o), 0.01, false],
  ["DynamicW8A8Linear per-tensor uint8", (w, n, k, o) => DynamicW8A8Linear.fromWeight(w, n, k, o), 0.02, true],
  [
    "DynamicW8A8Linear per-token int8 symmetric",
    (w, n, k, o) => DynamicW8A8Linear.fromWeight(w, n, k, { ...o, activation: "per-token", activationDType: "int8", activationScheme: "symmetric" }),
    0.02,
    true,
  ],
  [
    "DynamicW8A8Linear per-tensor weights, reduce_range activations",
    (w, n, k, o) => DynamicW8A8Linear.fromWeight(w, n, k, { ...o, granularity: "per-tensor", activationReduceRange: true }),
    0.04,
    true,
  ],
  ["Q8_0Linear q8_0 activations", (w, n, k, o) => Q8_0Linear.fromWeight(w, n, k, o), 0.01, true],
  ["Q8_0Linear f32 activations", (w, n, k, o) => Q8_0Linear.fromWeight(w, n, k, { ...o, activation: "f32" }), 0.01, false],
];

const Q8_SHAPES = SHAPES.map(([m, n, k]) => [m, n, Math.max(32, Math.ceil(k / 32) * 32)] as const);

describe.each(LAYERS)("%s", (label, make, tol, exact) => {
  const isQ8 = label.startsWith("Q8_0");
  const shapes = isQ8 ? Q8_SHAPES : SHAPES;

  it("runs on the wasm backend with SIMD here", () => {
    expect(getKernelBackend()).toBe("wasm");
    expect(hasWasmSimd()).toBe(true);
  });

  it.each(shapes)("fast = reference at m=%i n=%i k=%i", (m, n, k) => {
    const w = gaussian(n * k, n * 7 + k, 0.05);
    const x = gaussian(m * k, m * 3 + k);
    const bias = gaussian(n, n);
    const layer = make(w, n, k, { bias });
    const fast = layer.forward(x, m);
    const ref = withRef(() => layer.forward(x, m));
    if (exact) expect(Array.from(fast)).toEqual(Array.from(ref));
    else expect(maxRelDiff(fast, ref)).toBeLessThan(2e-6);
    layer.dispose?.();
  });

  it("approximates the f32 layer on Gaussian data", () => {
    const [m, n, k] = [8, 48, 256];
    const w = gaussian(n * k, 1, 0.05);
    const x = gaussian(m * k, 2);
    const bias = gaussian(n, 3, 0.1);
    const layer = make(w, n, k, { bias });
    const y = layer.forward(x, m);
    const want = matmulRef(x, w, m, n, k).map((v, i) => v + bias[i % n]!);
    expect(rmse(y, want) / rms(want)).toBeLessThan(tol);
    // the dequantized weight is what the layer multiplies by
    expect(rmse(layer.dequantizedWeight(), w) / rms(w)).toBeLessThan(isQ8 ? 0.006 : 0.01);
    layer.dispose?.();
  });

  it("writes into `out`, accepts m = 0 and checks sizes", () => {
    const layer = make(gaussian(4 * 64, 5), 4, 64, {});
    const out = new Float32Array(8).fill(Number.NaN);
    expect(layer.forward(gaussian(128, 6), 2, out)).toBe(out);
    expect(out.every(Number.isFinite)).toBe(true);
    expect(layer.forward(new Float32Array(0), 0).length).toBe(0);
    expect(() => layer.forward(new Float32Array(63), 1)).toThrow(/x holds 63 values, needs/);
    expect(() => layer.forward(new Float32Array(64), 1, new Float32Array(3))).toThrow(/out holds 3/);
    layer.dispose?.();
  });

  it("names the weight and first bad index on NaN/Inf", () => {
    const w = gaussian(4 * 64, 5);
    w[70] = Number.POSITIVE_INFINITY;
    w[100] = Number.NaN;
    try {
      make(w, 4, 64, { name: "blk.3.attn_v.weight" });
      expect.unreachable();
    } catch (e) {
      expect(isLowbitError(e) && e.code).toBe("E_NON_FINITE");
      expect((e as Error).message).toMatch(/"blk\.3\.attn_v\.weight".*Infinity at index 70 \(row 1, column 6\)/);
    }
  });

  it("gives all-zero rows a finite scale and exact zero outputs", () => {
    const w = gaussian(3 * 64, 8);
    w.fill(0, 64, 128);
    const layer = make(w, 3, 64, {});
    const deq = layer.dequantizedWeight();
    expect(Array.from(deq.subarray(64, 128))).toEqual(new Array(64).fill(0));
    expect(deq.every(Number.isFinite)).toBe(true);
    const y = layer.forward(gaussian(2 * 64, 9), 2);
    expect(y[1]).toBe(0);
    expect(y[4]).toBe(0);
    layer.dispose?.();
  });

  it("frees its kernel memory on dispose", () => {
    const before = getEngine().stats.allocatedBytes;
    const layer = make(gaussian(16 * 64, 5), 16, 64, {});
    layer.forward(gaussian(3 * 64, 1), 3);
    expect(getEngine().stats.allocatedBytes).toBeGreaterThan(before);
    layer.dispose?.();
    expect(getEngine().stats.allocatedBytes).toBe(before);
  });
});

describe("stored forms", () => {
  it("Int8WeightOnlyLinear.fromInt8 keeps weights, scales and bias", () => {
    const q = Int8Array.from({ length: 6 }, (_, i) => i * 20 - 50);
    const s = Float32Array.from([0.5, 0.25]);
    const layer = Int8WeightOnlyLinear.fromInt8(q, s, 2, 3, { bias: Float32Array.from([1, -1]) });
    expect(Array.from(layer.qweight)).toEqual(Array.from(q));
    expect(Array.from(layer.scales)).toEqual([0.5, 0.25]);
    expect(layer.storageBytes).toBe(6 + 8 + 8);
    expect(Array.from(layer.dequantizedWeight())).toEqual([-25, -15, -5, 2.5, 7.5, 12.5]);
    expect(Array.from(layer.forward(Float32Array.from([1, 0, 2]), 1))).toEqual([-35 + 1, 27.5 - 1]);
    expect(() => Int8WeightOnlyLinear.fromInt8(q, Float32Array.from([0.5, Number.NaN]), 2, 3)).toThrow(/scale 1 is NaN/);
  });

  it("DynamicW8A8Linear.fromInt8 reproduces fromWeight", () => {
    const w = gaussian(24 * 40, 2);
    const a = DynamicW8A8Linear.fromWeight(w, 24, 40);
    const b = DynamicW8A8Linear.fromInt8(a.qweight, a.scales, 24, 40);
    const x = gaussian(5 * 40, 3);
    expect(Array.from(b.forward(x, 5))).toEqual(Array.from(a.forward(x, 5)));
    expect(a.kind).toBe("w8a8");
    expect(a.storageBytes).toBe(24 * 40 + 24 * 4);
  });

  it("Q8_0Linear round-trips GGUF bytes", () => {
    const w = gaussian(6 * 64, 4);
    const bytes = quantizeQ8_0(w);
    const layer = Q8_0Linear.fromBytes(bytes, 6, 64);
    expect(layer.toBytes()).toEqual(bytes);
    expect(layer.storageBytes).toBe(6 * 2 * 34);
    expect(Q8_0Linear.fromWeight(w, 6, 64).toBytes()).toEqual(bytes);
    expect(() => Q8_0Linear.fromBytes(bytes.subarray(0, 100), 6, 64, { name: "w" })).toThrow(/"w" has 100 bytes, expected 408/);
  });

  // the one-token kernel runs groups of four row tiles side by side, then the n4 % 4 left one by one
  it.each([1, 2, 3, 4, 5, 6, 7, 8, 9, 13])("Q8_0Linear one token, %i row tiles: fast = reference, bit for bit", (n4) => {
    const n = 4 * n4 - (n4 % 3); // some shapes end in a ragged tile
    const k = 96;
    const w = gaussian(n * k, n4, 0.05);
    const x = gaussian(k, n4 + 100);
    const layer = Q8_0Linear.fromWeight(w, n, k, { bias: gaussian(n, n4 + 200) });
    const fast = layer.forward(x, 1);
    const ref = withRef(() => layer.forward(x, 1));
    expect(Array.from(fast)).toEqual(Array.from(ref));
    layer.dispose();
  });

  it("Q8_0Linear rejects inFeatures that are not a multiple of 32", () => {
    expect(() => Q8_0Linear.fromWeight(new Float32Array(2 * 40), 2, 40, { name: "output.weight" })).toThrow(
      /"output\.weight" has inFeatures 40, not a multiple of the Q8_0 block size 32/,
    );
  });

  it("W8A8 reports non-finite activations with their index", () => {
    const layer = DynamicW8A8Linear.fromWeight(gaussian(4 * 16, 1), 4, 16, { name: "ffn_down" });
    const x = gaussian(32, 2);
    x[21] = Number.NaN;
    expect(() => layer.forward(x, 2)).toThrow(/"ffn_down input".*index 21 \(row 1, column 5\)/);
    expect(() => withRef(() => layer.forward(x, 2))).toThrow(/"ffn_down input".*index 21/);
  });
});
