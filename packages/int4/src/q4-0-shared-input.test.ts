import { bitsEqual, CountingMap } from "@lowbit/testing";
import { describe, expect, it } from "vitest";
import { quantizeQ4_0Ref } from "./codec-gguf";
import { Q4_0TiledLinear } from "./q4-0-tiled-linear";
import { TestRng } from "./test-rng";

/** Three linears reading one input of `cols` features (as attn_q/k/v do), ragged row counts. */
function readers(cols: number, seed: number): Q4_0TiledLinear[] {
  const rng = new TestRng(seed);
  return [13, 8, 5].map((rows, i) => {
    const bytes = quantizeQ4_0Ref(rng.normals(rows * cols, 0.05));
    return new Q4_0TiledLinear(bytes, rows, cols, { bias: i === 1 ? rng.normals(rows) : undefined, name: `w${i}` });
  });
}

const BACKENDS = ["wasm", "ref"] as const;
// [backend, cols, m]: one token (GEMV) and several (GEMM)
const CASES = BACKENDS.flatMap((b) =>
  [
    [64, 1],
    [96, 5],
    [256, 3],
    [160, 7], // the int8-tile GEMM's activations (their own memo key)
  ].map(([cols, m]) => [b, cols!, m!] as const),
);

describe("Q4_0TiledLinear with a shared input memo", () => {
  it.each(CASES)("%s, %i columns, m = %i: same bits as unshared, input quantized once", (backend, cols, m) => {
    const lins = readers(cols, cols + m);
    const x = new TestRng(m * 3 + cols).normals(m * cols);
    const alone = lins.map((l) => l.run(x, m, undefined, backend));
    const memo = new CountingMap<string, unknown>();
    const shared = lins.map((l) => l.run(x, m, undefined, backend, memo));
    shared.forEach((y, i) => {
      expect(bitsEqual(y, alone[i]!), `reader ${i}`).toBe(true);
    });
    expect(memo.writes).toBe(1);
    expect(memo.size).toBe(1);
    for (const l of lins) l.dispose();
  });

  it.each(BACKENDS)("%s: later readers use the memo's quantization, not x again", (backend) => {
    const [a, b] = readers(64, 5);
    const x = new TestRng(1).normals(2 * 64);
    const x0 = x.slice();
    const memo = new Map<string, unknown>();
    a!.run(x, 2, undefined, backend, memo);
    // breaking the caller's promise (x unchanged) shows where the second reader's activations come from
    x.fill(0.5);
    expect(bitsEqual(b!.run(x, 2, undefined, backend, memo), b!.run(x0, 2, undefined, backend))).toBe(true);
    expect(bitsEqual(b!.run(x, 2, undefined, backend), b!.run(x0, 2, undefined, backend))).toBe(false);
    a!.dispose();
    b!.dispose();
  });

  it.each(BACKENDS)("%s: a memo made for another array or row count is not reused", (backend) => {
    const [a, b] = readers(64, 9);
    const rng = new TestRng(2);
    const x1 = rng.normals(3 * 64);
    const x2 = rng.normals(3 * 64);
    const memo = new CountingMap<string, unknown>();
    a!.run(x1, 3, undefined, backend, memo);
    expect(bitsEqual(b!.run(x2, 3, undefined, backend, memo), b!.run(x2, 3, undefined, backend))).toBe(true);
    expect(bitsEqual(b!.run(x2, 2, undefined, backend, memo), b!.run(x2, 2, undefined, backend))).toBe(true);
    expect(memo.writes).toBe(3);
    a!.dispose();
    b!.dispose();
  });

  it.each(BACKENDS)("%s: a non-finite input throws for every reader and leaves the memo empty", (backend) => {
    const [a, b] = readers(64, 4);
    const x = new Float32Array(2 * 64);
    x[70] = Number.POSITIVE_INFINITY;
    const memo = new Map<string, unknown>();
    expect(() => a!.run(x, 2, undefined, backend, memo)).toThrow(/token 1, column 6 is not finite/);
    expect(() => b!.run(x, 2, undefined, backend, memo)).toThrow(/token 1, column 6 is not finite/);
    expect(memo.size).toBe(0);
    a!.dispose();
    b!.dispose();
  });
});
