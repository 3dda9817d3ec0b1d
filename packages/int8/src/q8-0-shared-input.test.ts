import { bitsEqual, CountingMap } from "@lowbit/testing";
import { describe, expect, it } from "vitest";
import { Q8_0Linear } from "./q8-0-linear";
import { gaussian, withRef } from "./test-util";

/** Three linears reading one input of `cols` features (as attn_q/k/v do), ragged row counts. */
function readers(cols: number, seed: number, activation: "q8_0" | "f32" = "q8_0"): Q8_0Linear[] {
  return [13, 8, 5].map((rows, i) =>
    Q8_0Linear.fromWeight(gaussian(rows * cols, seed + i, 0.05), rows, cols, {
      bias: i === 1 ? gaussian(rows, seed + 10) : undefined,
      name: `w${i}`,
      activation,
    }),
  );
}

type Backend = "wasm" | "ref";
const on = <T>(backend: Backend, f: () => T): T => (backend === "ref" ? withRef(f) : f());
const BACKENDS: Backend[] = ["wasm", "ref"];
// [backend, cols, m]: one token (GEMV) and several (GEMM)
const CASES = BACKENDS.flatMap((b) =>
  [
    [64, 1],
    [96, 5],
    [256, 3],
  ].map(([cols, m]) => [b, cols!, m!] as const),
);

describe("Q8_0Linear with a shared input memo", () => {
  it.each(CASES)("%s, %i columns, m = %i: same bits as unshared, input quantized once", (backend, cols, m) => {
    const lins = readers(cols, cols + m);
    const x = gaussian(m * cols, m * 3 + cols);
    const memo = new CountingMap<string, unknown>();
    const [alone, shared] = on(backend, () => [lins.map((l) => l.forward(x, m)), lins.map((l) => l.forward(x, m, undefined, memo))]);
    shared!.forEach((y, i) => {
      expect(bitsEqual(y, alone![i]!), `reader ${i}`).toBe(true);
    });
    expect(memo.writes).toBe(1);
    expect(memo.size).toBe(1);
    for (const l of lins) l.dispose();
  });

  it.each(BACKENDS)("%s: later readers use the memo's quantization, not x again", (backend) => {
    const [a, b] = readers(64, 5);
    const x = gaussian(2 * 64, 1);
    const x0 = x.slice();
    const memo = new Map<string, unknown>();
    on(backend, () => a!.forward(x, 2, undefined, memo));
    // breaking the caller's promise (x unchanged) shows where the second reader's activations come from
    x.fill(0.5);
    on(backend, () => {
      expect(bitsEqual(b!.forward(x, 2, undefined, memo), b!.forward(x0, 2))).toBe(true);
      expect(bitsEqual(b!.forward(x, 2), b!.forward(x0, 2))).toBe(false);
    });
    a!.dispose();
    b!.dispose();
  });

  it.each(BACKENDS)("%s: a memo made for another array or row count is not reused", (backend) => {
    const [a, b] = readers(64, 9);
    const x1 = gaussian(3 * 64, 2);
    const x2 = gaussian(3 * 64, 3);
    const memo = new CountingMap<string, unknown>();
    on(backend, () => {
      a!.forward(x1, 3, undefined, memo);
      expect(bitsEqual(b!.forward(x2, 3, undefined, memo), b!.forward(x2, 3))).toBe(true);
      expect(bitsEqual(b!.forward(x2, 2, undefined, memo), b!.forward(x2, 2))).toBe(true);
    });
    expect(memo.writes).toBe(3);
    a!.dispose();
    b!.dispose();
  });

  it.each(BACKENDS)("%s: a non-finite input throws for every reader and leaves the memo empty", (backend) => {
    const [a, b] = readers(64, 4);
    const x = new Float32Array(2 * 64);
    x[70] = Number.POSITIVE_INFINITY;
    const memo = new Map<string, unknown>();
    on(backend, () => {
      expect(() => a!.forward(x, 2, undefined, memo)).toThrow(/index 70/);
      expect(() => b!.forward(x, 2, undefined, memo)).toThrow(/index 70/);
    });
    expect(memo.size).toBe(0);
    a!.dispose();
    b!.dispose();
  });

  it.each(BACKENDS)("%s: f32 activations ignore the memo", (backend) => {
    const lins = readers(96, 6, "f32");
    const x = gaussian(4 * 96, 8);
    const memo = new Map<string, unknown>();
    on(backend, () => {
      for (const l of lins) expect(bitsEqual(l.forward(x, 4, undefined, memo), l.forward(x, 4))).toBe(true);
    });
    expect(memo.size).toBe(0);
    for (const l of lins) l.dispose();
  });
});
