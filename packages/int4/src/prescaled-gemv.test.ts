import { bitsEqual } from "@lowbit/testing";
import { describe, expect, it } from "vitest";
import { gemmWasm, makeResident } from "./kernels/kernels";
import { packLayout } from "./kernels/layout";
import { quantizeRTN } from "./rtn";
import { TestRng } from "./test-rng";

// The pre-scaled 4-bit GEMVs (int8 activations, one token; groups of 32 run gemv_i8p_b4_g32, others
// gemv_i8p_b4) against gemv_i8_b4, bit for bit.
// [rows, cols, group (-1: per channel), sym]
const CASES: Array<[number, number, number, boolean]> = [
  [1, 32, 32, true],
  [7, 96, 32, false], // ragged tile
  [13, 256, 128, false],
  [9, 172, 43, false], // groups padded to 64 codes
  [6, 2048, -1, true], // per channel at the largest group the pre-scaled path takes
  [64, 768, 32, false],
  [130, 1024, 64, true],
  [33, 4096, 32, false], // g32, long rows
];

describe("pre-scaled int4 GEMV (int8 activations)", () => {
  it.each(CASES)("%i x %i g%i sym=%s equals gemv_i8_b4 bit for bit", (rows, cols, g, sym) => {
    const rng = new TestRng(rows * 101 + cols);
    const qm = quantizeRTN(rng.normals(rows * cols, 0.05), rows, cols, { bits: 4, groupSize: g, sym });
    const r = makeResident(packLayout(qm));
    for (const scale of [1, 1e-3, 300]) {
      const x = rng.normals(cols, scale);
      x[cols >> 1] = 40 * scale; // one large value per row: codes of +-127 in its group
      const a = new Float32Array(rows);
      const b = new Float32Array(rows);
      gemmWasm(r, x, 1, a, true);
      gemmWasm(r, x, 1, b, true, false);
      expect(bitsEqual(a, b)).toBe(true);
    }
    r.weights.dispose();
    r.params.dispose();
  });
});
