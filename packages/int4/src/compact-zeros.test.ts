import { bitsEqual } from "@lowbit/testing";
import { describe, expect, it } from "vitest";
import { ggufInt4ToQuantizedMatrix, quantizeGgufInt4 } from "./codec-gguf";
import { gemmRef, gemmWasm, integerZeros, makeResident, type ResidentLayout } from "./kernels/kernels";
import { packLayout } from "./kernels/layout";
import type { QuantizedMatrix } from "./quantized-matrix";
import { quantizeRTN } from "./rtn";
import { TestRng } from "./test-rng";

function release(r: ResidentLayout): void {
  r.weights.dispose();
  r.params.dispose();
}

// u8 zeros (the `_z8` kernels) against f32 zeros (the same layout otherwise), bit for bit, on every
// kernel: GEMV and GEMM, f32 and int8 activations, the pre-scaled 4-bit GEMVs (g32 and others).
// [bits, rows, cols, group (-1: per channel), sym]
const CASES: Array<[number, number, number, number, boolean]> = [
  [4, 7, 96, 32, false], // ragged tile
  [4, 64, 1024, 32, false],
  [4, 13, 256, 128, true],
  [4, 9, 172, 43, false], // groups padded to 64 codes
  [3, 10, 256, 64, false], // 3-bit codes in 4-bit containers
  [2, 12, 128, 32, false],
  [8, 6, 160, 32, false], // zeros up to 255
  [4, 5, 512, -1, false],
];

describe("compact (u8) zeros", () => {
  it.each(CASES)("int%i %i x %i g%i sym=%s: u8 zeros give the f32-zero kernels' bits", (bits, rows, cols, g, sym) => {
    const rng = new TestRng(bits * 1000 + rows * 31 + cols);
    const qm = quantizeRTN(rng.normals(rows * cols, 0.05), rows, cols, { bits, groupSize: g, sym });
    const l = packLayout(qm);
    expect(integerZeros(l.zeros)).toBe(true);
    const a = makeResident(l);
    const b = makeResident(l, false);
    expect([a.zeroBytes, b.zeroBytes]).toEqual([1, 4]);
    expect(b.params.bytes - a.params.bytes).toBe(3 * l.zeros.length);
    for (const m of [1, 2, 5]) {
      const x = rng.normals(m * cols, 0.7);
      for (const int8 of [false, true]) {
        for (const pre of [true, false]) {
          const ya = new Float32Array(m * rows);
          const yb = new Float32Array(m * rows);
          gemmWasm(a, x, m, ya, int8, pre);
          gemmWasm(b, x, m, yb, int8, pre);
          expect(bitsEqual(ya, yb), `m=${m} int8=${int8} prescaled=${pre}`).toBe(true);
        }
        // the reference twin reads the u8 zeros as the same values
        const ra = new Float32Array(m * rows);
        const rb = new Float32Array(m * rows);
        gemmRef(a, x, m, ra, int8);
        gemmRef(b, x, m, rb, int8);
        expect(bitsEqual(ra, rb)).toBe(true);
      }
    }
    release(a);
    release(b);
  });

  it.each([
    ["q4_0", true],
    ["q4_1", false],
  ] as const)("%s: integer zeros compact = %s", (fmt, compact) => {
    const [rows, cols] = [8, 64];
    const bytes = quantizeGgufInt4(fmt, new TestRng(3).normals(rows * cols, 0.05), rows, cols);
    const qm: QuantizedMatrix = ggufInt4ToQuantizedMatrix(fmt, bytes, rows, cols);
    const r = makeResident(packLayout(qm));
    expect(r.zeroBytes).toBe(compact ? 1 : 4);
    release(r);
  });

  it("non-integer or out-of-range zeros stay f32", () => {
    expect(integerZeros(Float32Array.of(0, 8, 255))).toBe(true);
    expect(integerZeros(Float32Array.of(0, 8.5))).toBe(false);
    expect(integerZeros(Float32Array.of(256))).toBe(false);
    expect(integerZeros(Float32Array.of(-1))).toBe(false);
  });
});
