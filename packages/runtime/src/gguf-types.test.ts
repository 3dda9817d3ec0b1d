/**
 * GGUF block linears with quantized activations (as llama.cpp's CPU backend: Q8_0 x Q8_0 blocks,
 * Q4_x x int8 blocks) or f32 activations: against the exact product with the dequantized weights,
 * "f32" agrees to f32 rounding and "quantized" differs by the activations' 8-bit rounding (small,
 * and not zero). Unset, Q8_0 is quantized and Q4_0/Q4_1 f32.
 */
import { quantizeGgufInt4 } from "@lowbit/int4";
import { quantizeQ8_0 } from "@lowbit/int8";
import { Rng } from "@lowbit/tensor";
import { describe, expect, it } from "vitest";
import { type GgufActivations, ggufTensorType } from "./gguf-types";

const ROWS = 24;
const COLS = 96;
const M = 3;

function relErr(a: Float32Array, b: Float64Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

describe("GGUF block linears: quantized or f32 activations", () => {
  const rng = new Rng(21);
  const w = rng.fillNormal(new Float32Array(ROWS * COLS), 0, 0.1);
  const x = rng.fillNormal(new Float32Array(M * COLS));
  const bytes: Record<number, Uint8Array> = {
    8: quantizeQ8_0(w),
    2: quantizeGgufInt4("q4_0", w, ROWS, COLS),
    3: quantizeGgufInt4("q4_1", w, ROWS, COLS),
  };

  it.each([
    [8, "quantized", "q8_0"],
    [8, "f32", "q8_0"],
    [2, "quantized", "q4_0-a8"],
    [2, "f32", "q4_0"],
    [3, "quantized", "q4_1-a8"],
    [3, "f32", "q4_1"],
  ] as const)("ggml type %i with %s activations (kind %s)", (id, act: GgufActivations, kind) => {
    const type = ggufTensorType(id, "test");
    const lin = type.linear!(bytes[id]!, ROWS, COLS, undefined, "blk.0.attn_q.weight", act);
    expect(lin.kind).toBe(kind);
    const wd = type.toF32(bytes[id]!, ROWS * COLS);
    const exact = new Float64Array(M * ROWS);
    for (let m = 0; m < M; m++) {
      for (let r = 0; r < ROWS; r++) {
        let s = 0;
        for (let c = 0; c < COLS; c++) s += x[m * COLS + c]! * wd[r * COLS + c]!;
        exact[m * ROWS + r] = s;
      }
    }
    const err = relErr(lin.forward(x, M), exact);
    if (act === "f32") expect(err).toBeLessThan(1e-5);
    else {
      expect(err).toBeGreaterThan(1e-5);
      expect(err).toBeLessThan(0.02);
    }
    // unset: Q8_0 quantized, Q4_x f32
    const byDefault = type.linear!(bytes[id]!, ROWS, COLS, undefined, "w");
    const defaultAct = id === 8 ? "quantized" : "f32";
    if (act === defaultAct) expect(Array.from(byDefault.forward(x, M))).toEqual(Array.from(lin.forward(x, M)));
    else expect(Array.from(byDefault.forward(x, M))).not.toEqual(Array.from(lin.forward(x, M)));
    lin.dispose?.();
    byDefault.dispose?.();
  });
});
