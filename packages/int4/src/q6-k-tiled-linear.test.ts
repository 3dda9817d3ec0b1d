import { getEngine, isLowbitError, kernelThreadsReady, setKernelThreads, shutdownKernelThreads } from "@lowbit/tensor";
import { bitsEqual } from "@lowbit/testing";
import { afterAll, describe, expect, it } from "vitest";
import { Q6_KLinear } from "./block-linear";
import { quantizeQ4_0Ref } from "./codec-gguf";
import { INT4_KERNEL_MODULE } from "./kernels/kernels";
import { Q4_0TiledLinear, X8_MIN_TOKENS } from "./q4-0-tiled-linear";
import { Q6_KTiledLinear } from "./q6-k-tiled-linear";
import { relRmse, TestRng } from "./test-rng";
import { packQ6K, randomQ6Blocks } from "./test-q6k";

function make(rows: number, cols: number, seed: number, bias = true): { lin: Q6_KTiledLinear; bytes: Uint8Array; bias?: Float32Array } {
  const rng = new TestRng(seed);
  const bytes = packQ6K(randomQ6Blocks((rows * cols) / 256, rng));
  const b = bias ? rng.normals(rows) : undefined;
  return { lin: new Q6_KTiledLinear(bytes, rows, cols, { bias: b, name: "output.weight" }), bytes, bias: b };
}

afterAll(async () => {
  await shutdownKernelThreads();
});

describe("Q6_KTiledLinear", () => {
  // one token: groups of four tiles and the n4 % 4 left; more tokens: the GEMM
  it.each([
    // [rows, cols, m]: n4 = 1..13 with every n4 % 4, with and without a group of four tiles
    [1, 256, 1],
    [7, 256, 1],
    [12, 256, 1],
    [13, 512, 1],
    [17, 256, 1],
    [20, 256, 1],
    [25, 256, 1],
    [28, 512, 1],
    [36, 768, 1],
    [44, 256, 1],
    [52, 256, 1],
    [5, 256, 2],
    [37, 512, 3],
    [64, 256, 7],
  ])("%i x %i, m = %i: wasm = reference bit for bit, with and without a bias", (rows, cols, m) => {
    for (const bias of [true, false]) {
      const { lin } = make(rows, cols, rows * 3 + cols + m, bias);
      const x = new TestRng(m + rows).normals(m * cols);
      expect(bitsEqual(lin.run(x, m, undefined, "wasm"), lin.run(x, m, undefined, "ref")), `bias ${bias}`).toBe(true);
      lin.dispose();
    }
  });

  it("shares Q4_0TiledLinear's quantized input (either may quantize it first) and really reads it", () => {
    const rows = 12;
    const cols = 256;
    const { lin } = make(rows, cols, 21);
    const q4 = new Q4_0TiledLinear(quantizeQ4_0Ref(new TestRng(22).normals(rows * cols, 0.05)), rows, cols);
    const m = X8_MIN_TOKENS; // Q4_0TiledLinear's int8-activation path, the memo entry both read
    const x = new TestRng(23).normals(m * cols);
    const alone = [lin.forward(x, m), q4.forward(x, m)];
    for (const q4First of [true, false]) {
      const shared = new Map<string, unknown>();
      const got = q4First ? [q4.forward(x, m, undefined, shared), lin.forward(x, m, undefined, shared)].reverse() : [lin.forward(x, m, undefined, shared), q4.forward(x, m, undefined, shared)];
      expect(shared.size, "one entry for both").toBe(1);
      expect(bitsEqual(got[0]!, alone[0]!) && bitsEqual(got[1]!, alone[1]!), `Q4_0 first: ${q4First}`).toBe(true);
    }
    // a memo entry for this x is used as it is: zeroed codes give zero outputs (plus no bias here)
    const poisoned = new Map<string, unknown>();
    lin.forward(x, m, undefined, poisoned);
    for (const e of poisoned.values()) (e as { codes: Uint8Array }).codes.fill(0);
    const { lin: plain } = make(rows, cols, 21, false);
    expect([...plain.forward(x, m, undefined, poisoned)].every((v) => v === 0)).toBe(true);
    plain.dispose();
    lin.dispose();
    q4.dispose();
  });

  it("pads the last tile with zero rows whatever kernel memory held before", () => {
    const e = getEngine();
    const junk = e.alloc(1 << 16);
    new Uint8Array(e.memory.buffer, junk, 1 << 16).fill(0xff); // NaN as f32, -1 as int8
    e.free(junk);
    const { lin } = make(5, 256, 31); // two tiles, three padding rows
    const inner = lin as unknown as { codes(): Int8Array; scales(): Float32Array };
    const nb = 8;
    const codes = inner.codes();
    const scales = inner.scales();
    for (let b = 0; b < nb; b++) {
      const tile = nb + b; // the second tile holds row 4 and the padding
      expect(codes.subarray(tile * 128 + 32, tile * 128 + 128).every((v) => v === 0)).toBe(true);
      for (const half of [0, 4]) expect([1, 2, 3].map((r) => scales[tile * 8 + half + r])).toEqual([0, 0, 0]);
    }
    lin.dispose();
  });

  it("keeps Q6_K's weights exactly (Q6_KLinear's, i.e. dequantize_row_q6_K) and multiplies them to within int8 activation error", () => {
    const [rows, cols, m] = [24, 512, 3];
    const { lin, bytes, bias } = make(rows, cols, 5);
    const ref = new Q6_KLinear(bytes, rows, cols, { bias });
    const w = lin.dequantizedWeight();
    expect(bitsEqual(w, ref.dequantizedWeight())).toBe(true);
    expect(lin.storageBytes).toBe(rows * cols * 1.25 + rows * 4);
    const x = new TestRng(9).normals(m * cols);
    // the f32-activation layer over the same weights: int8 activations per 32 values cost < 1%
    expect(relRmse(lin.forward(x, m), ref.forward(x, m))).toBeLessThan(0.01);
    lin.dispose();
    ref.dispose();
  });

  it("2 threads give one thread's bits (GEMV and GEMM)", async () => {
    const { lin } = make(203, 768, 11);
    const rng = new TestRng(12);
    const x1 = rng.normals(768);
    const x4 = rng.normals(4 * 768);
    const one = [lin.forward(x1, 1), lin.forward(x4, 4)];
    setKernelThreads(2);
    expect(await kernelThreadsReady()).toBe(2);
    const two = [lin.forward(x1, 1), lin.forward(x4, 4)];
    await shutdownKernelThreads();
    expect(bitsEqual(two[0]!, one[0]!)).toBe(true);
    expect(bitsEqual(two[1]!, one[1]!)).toBe(true);
    lin.dispose();
  });

  it("reuses a shared input's quantization (same bits) and names a non-finite input", () => {
    const { lin } = make(8, 256, 2);
    const x = new TestRng(3).normals(2 * 256);
    const shared = new Map<string, unknown>();
    const a = lin.forward(x, 2, undefined, shared);
    expect(shared.size).toBe(1);
    expect(bitsEqual(lin.forward(x, 2, undefined, shared), a)).toBe(true);
    x[300] = Number.NaN;
    for (const backend of ["wasm", "ref"] as const) {
      let err: unknown;
      try {
        lin.run(x, 2, undefined, backend);
      } catch (e) {
        err = e;
      }
      expect(isLowbitError(err) && err.code).toBe("E_NON_FINITE");
      expect(String(err)).toMatch(/Q6_KTiledLinear output\.weight: input value NaN at token 1, column 44/);
    }
    expect(() => new Q6_KTiledLinear(new Uint8Array(210), 1, 256, { bias: new Float32Array(2) })).toThrow(/bias has 2 values, expected 1/);
    expect(() => new Q6_KTiledLinear(new Uint8Array(200), 1, 256, { name: "w" })).toThrow(/q6_k w: 200 bytes, expected 210/);
    lin.dispose();
  });

  // q6_k_gemv writes nb * 512 bytes of scratch (four tiles' half sums), q6_k_gemm nb * 128
  it.each([
    [1, 8, 1],
    [5, 8, 1],
    [9, 24, 1],
    [3, 8, 4],
  ])("n4 = %i, nb = %i, m = %i: the kernel writes nothing outside its scratch and output", (n4, nb, m) => {
    const e = getEngine();
    const ex = e.exports<Record<string, (...a: number[]) => void>>(INT4_KERNEL_MODULE);
    const GUARD = 256;
    const sum = m === 1 ? nb * 512 : nb * 128;
    const sizes = [m * nb * 32, m * nb * 4, n4 * nb * 128, n4 * nb * 32, m * n4 * 16 + GUARD, sum + 2 * GUARD];
    const ptrs = sizes.map((s) => e.alloc(s));
    try {
      const [xq, ad, wq, ws, y, tmp] = ptrs as [number, number, number, number, number, number];
      const u8 = () => new Uint8Array(e.memory.buffer);
      const rng = new TestRng(n4 + nb + m);
      for (const [p, s] of [
        [xq, sizes[0]!],
        [wq, sizes[2]!],
      ] as const) {
        const v = u8().subarray(p, p + s);
        for (let i = 0; i < v.length; i++) v[i] = rng.int(256);
      }
      e.f32(ad, m * nb).fill(0.01);
      e.f32(ws, n4 * nb * 8).fill(0.02);
      u8().fill(0xa5, y, y + sizes[4]!);
      u8().fill(0xa5, tmp, tmp + sizes[5]!);
      if (m === 1) ex.q6_k_gemv!(xq, ad, wq, ws, y, nb, n4, 0, tmp + GUARD);
      else ex.q6_k_gemm!(xq, ad, wq, ws, y, m, nb, n4, n4 * 4, 0, tmp + GUARD);
      const untouched = (from: number, to: number) => u8().subarray(from, to).every((b) => b === 0xa5);
      expect(untouched(tmp, tmp + GUARD), "guard before the scratch").toBe(true);
      expect(untouched(tmp + GUARD + sum, tmp + sizes[5]!), "guard after the scratch").toBe(true);
      expect(untouched(y + m * n4 * 16, y + sizes[4]!), "guard after the output").toBe(true);
    } finally {
      for (const p of ptrs) e.free(p);
    }
  });
});
