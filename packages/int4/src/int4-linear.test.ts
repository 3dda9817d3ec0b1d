import { fnv1a } from "@lowbit/testing";
import { LowbitError, setKernelBackend } from "@lowbit/tensor";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { Int4Linear } from "./int4-linear";
import { dequantizeMatrix, type QuantizedMatrix } from "./quantized-matrix";
import { quantizeRTN } from "./rtn";
import { TestRng } from "./test-rng";

/** y = x · W^T in f64 from an f32 weight. */
function matmulRef(x: Float32Array, w: Float32Array, m: number, n: number, k: number): Float64Array {
  const y = new Float64Array(m * n);
  for (let t = 0; t < m; t++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let i = 0; i < k; i++) s += x[t * k + i]! * w[j * k + i]!;
    y[t * n + j] = s;
  }
  return y;
}

/** max |a - b| / (rms(b) + tiny) */
function maxRelErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let rms = 0;
  for (let i = 0; i < b.length; i++) rms += b[i]! * b[i]!;
  rms = Math.sqrt(rms / Math.max(1, b.length));
  let e = 0;
  for (let i = 0; i < b.length; i++) e = Math.max(e, Math.abs(a[i]! - b[i]!));
  return e / (rms + 1e-30);
}

function withActOrder(qm: QuantizedMatrix, seed: number): QuantizedMatrix {
  // shuffle which columns belong to which group (each group keeps groupSize columns)
  const rng = new TestRng(seed);
  const g = new Int32Array(qm.cols);
  for (let c = 0; c < qm.cols; c++) g[c] = Math.floor(c / qm.groupSize);
  for (let i = qm.cols - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [g[i], g[j]] = [g[j]!, g[i]!];
  }
  return { ...qm, gIdx: g };
}

afterEach(() => setKernelBackend("wasm"));

describe("Int4Linear", () => {
  // [bits, rows, cols, groupSize, m, sym, actOrder]
  const cases: Array<[number, number, number, number, number, boolean, boolean]> = [
    [4, 64, 256, 32, 1, true, false],
    [4, 64, 256, 128, 3, false, false],
    [4, 37, 96, 32, 5, false, false], // ragged rows
    [4, 13, 172, 43, 2, false, false], // group not a multiple of 32 (padded)
    [4, 9, 100, -1, 1, true, false], // per channel, ragged K
    [4, 24, 128, 32, 4, false, true], // act-order
    [3, 17, 96, 32, 2, false, false],
    [2, 20, 128, 64, 1, false, false],
    [2, 11, 64, 32, 3, true, true],
    [8, 19, 80, 16, 2, true, false],
    [8, 8, 64, 64, 1, false, false],
    [5, 6, 48, 16, 3, false, false],
  ];

  it.each(cases)("%i-bit %ix%i g%i m=%i sym=%s act-order=%s: ref and wasm match x·dequant(W)^T", (bits, rows, cols, g, m, sym, act) => {
    const rng = new TestRng(bits * 7919 + rows * 31 + cols);
    const w = rng.normals(rows * cols);
    let qm = quantizeRTN(w, rows, cols, { bits, groupSize: g, sym });
    if (act) qm = withActOrder(qm, rows);
    const bias = rng.normals(rows);
    const lin = new Int4Linear(qm, { bias });
    const wq = dequantizeMatrix(qm);
    expect([...lin.dequantizedWeight()]).toEqual([...wq]);
    const x = rng.normals(m * cols);
    const want = matmulRef(x, wq, m, rows, cols).map((v, i) => v + bias[i % rows]!);
    const ref = lin.run(x, m, undefined, false, "ref");
    const fast = lin.run(x, m, undefined, false, "wasm");
    expect(maxRelErr(ref, want)).toBeLessThan(1e-6);
    expect(maxRelErr(fast, want)).toBeLessThan(2e-5);
    // int8 activations: fast equals its reference closely, and both stay near the f32 result
    const refI8 = lin.run(x, m, undefined, true, "ref");
    const fastI8 = lin.run(x, m, undefined, true, "wasm");
    expect(maxRelErr(fastI8, refI8)).toBeLessThan(2e-5);
    expect(maxRelErr(refI8, want)).toBeLessThan(0.05);
    lin.dispose();
  });

  it("wasm equals the reference on random shapes (property)", () => {
    fc.assert(
      fc.property(
        fc.record({
          seed: fc.integer({ min: 0, max: 1 << 30 }),
          bits: fc.constantFrom(2, 3, 4, 5, 8),
          rows: fc.integer({ min: 1, max: 21 }),
          group: fc.integer({ min: 1, max: 70 }),
          ng: fc.integer({ min: 1, max: 3 }),
          m: fc.integer({ min: 1, max: 4 }),
          sym: fc.boolean(),
          act: fc.boolean(),
        }),
        ({ seed, bits, rows, group, ng, m, sym, act }) => {
          const cols = group * ng;
          const rng = new TestRng(seed);
          let qm = quantizeRTN(rng.normals(rows * cols), rows, cols, { bits, groupSize: group, sym });
          if (act) qm = withActOrder(qm, seed);
          const lin = new Int4Linear(qm);
          const x = rng.normals(m * cols);
          const want = matmulRef(x, dequantizeMatrix(qm), m, rows, cols);
          expect(maxRelErr(lin.run(x, m, undefined, false, "wasm"), want)).toBeLessThan(2e-5);
          expect(maxRelErr(lin.run(x, m, undefined, true, "wasm"), lin.run(x, m, undefined, true, "ref"))).toBeLessThan(2e-5);
          lin.dispose();
        },
      ),
      { seed: 77, numRuns: 60 },
    );
  });

  it("forward follows setKernelBackend and int8 activations change the kind", () => {
    const rng = new TestRng(1);
    const qm = quantizeRTN(rng.normals(32 * 64), 32, 64, { bits: 4, groupSize: 32, sym: false });
    const lin = new Int4Linear(qm, { activations: "int8" });
    expect(lin.kind).toBe("int4-g32-a8");
    expect(new Int4Linear(qm).kind).toBe("int4-g32");
    const x = rng.normals(64);
    const a = lin.forward(x, 1);
    setKernelBackend("ref");
    const b = lin.forward(x, 1);
    expect(maxRelErr(a, b)).toBeLessThan(2e-5);
    expect(lin.storageBytes).toBe(32 * 32 + 32 * 2 * 4 + 32 * 2); // codes, f32 scales, u8 zeros
  });

  it("rejects bad inputs with LowbitErrors", () => {
    const qm = quantizeRTN(new TestRng(2).normals(8 * 32), 8, 32, { bits: 4, groupSize: 32, sym: true });
    const lin = new Int4Linear(qm);
    expect(() => lin.forward(new Float32Array(31), 1)).toThrow(LowbitError);
    expect(() => new Int4Linear(qm, { bias: new Float32Array(3) })).toThrow(/bias has 3 values/);
    const bad = { ...qm, scales: qm.scales.slice() };
    bad.scales[0] = Number.NaN;
    expect(() => new Int4Linear(bad)).toThrow(/not finite/);
    lin.dispose();
    expect(() => lin.forward(new Float32Array(32), 1)).toThrow(/after dispose/);
  });
});

describe("Int4Linear f32-activation GEMV keeps its summation order", () => {
  // [bits, rows, cols, group, sym, FNV-1a of the one-token output] recorded from the kernel that
  // interleaved a tile's four rows per group, before it became two passes (rows one at a time,
  // groups four side by side): the same f32 operations in the same order, so the same bits
  const cases: Array<[number, number, number, number, boolean, string]> = [
    [4, 37, 256, 32, false, "6789c50b"],
    [4, 64, 768, 128, false, "7d3ecae5"],
    [4, 20, 448, 64, true, "826ff0a8"],
    [2, 12, 512, 64, false, "b9bb9c1c"],
    [8, 21, 160, 16, false, "03525599"],
    [3, 9, 384, 128, false, "5f9c244a"],
  ];
  it.each(cases)("%i-bit %ix%i g%i sym=%s", (bits, rows, cols, g, sym, hash) => {
    const rng = new TestRng(bits * 1009 + rows * 17 + cols);
    const lin = new Int4Linear(quantizeRTN(rng.normals(rows * cols), rows, cols, { bits, groupSize: g, sym }), { bias: rng.normals(rows) });
    const x = rng.normals(cols);
    expect(fnv1a(lin.run(x, 1, undefined, false, "wasm"))).toBe(hash);
    lin.dispose();
  });
});
