import { getEngine } from "@lowbit/tensor";
import { describe, expect, it } from "vitest";
import { INT4_KERNEL_MODULE } from "./kernels/kernels";
import { TestRng } from "./test-rng";

type Gemv = (xa: number, ad: number, ks: number, wq: number, ws: number, y: number, nb: number, n4: number, bias: number, nib: number, tmp: number) => void;

// q4_0_gemv may write nb * 256 bytes of scratch (four tiles' block sums) and n4 * 16 bytes of
// output, nothing more: Q4_0TiledLinear gives each thread part exactly that. Guard bytes on both
// sides of the scratch and after the output must come back untouched.
const GUARD = 256;
const FILL = 0xa5;

describe("q4_0_gemv stays inside its scratch and output", () => {
  it.each([
    [1, 1],
    [3, 2],
    [4, 3],
    [5, 1],
    [7, 8],
    [9, 4],
    [13, 24],
  ])("n4 = %i tiles, nb = %i blocks", (n4, nb) => {
    const e = getEngine();
    const gemv = e.exports<{ q4_0_gemv: Gemv }>(INT4_KERNEL_MODULE).q4_0_gemv;
    const rng = new TestRng(n4 * 100 + nb);
    const sizes = [nb * 64, nb * 4, nb * 4, n4 * nb * 64, n4 * nb * 16, n4 * 16 + GUARD, nb * 256 + 2 * GUARD];
    const ptrs = sizes.map((s) => e.alloc(s));
    try {
      const [xa, ad, ks, wq, ws, y, tmp] = ptrs as [number, number, number, number, number, number, number];
      const u8 = () => new Uint8Array(e.memory.buffer);
      // any bytes do: only where the kernel writes is checked here (its values are tested elsewhere)
      for (const [p, s] of [
        [xa, nb * 64],
        [ks, nb * 4],
        [wq, n4 * nb * 64],
      ] as const) {
        const v = u8().subarray(p, p + s);
        for (let i = 0; i < v.length; i++) v[i] = rng.int(256);
      }
      e.f32(ad, nb).fill(0.01);
      e.f32(ws, n4 * nb * 4).fill(0.02);
      u8().fill(FILL, y, y + sizes[5]!);
      u8().fill(FILL, tmp, tmp + sizes[6]!);
      gemv(xa, ad, ks, wq, ws, y, nb, n4, 0, 15, tmp + GUARD);
      const untouched = (from: number, to: number) => u8().subarray(from, to).every((b) => b === FILL);
      expect(untouched(tmp, tmp + GUARD), "guard before the scratch").toBe(true);
      expect(untouched(tmp + GUARD + nb * 256, tmp + sizes[6]!), "guard after the scratch").toBe(true);
      expect(untouched(y + n4 * 16, y + sizes[5]!), "guard after the output").toBe(true);
      expect(untouched(y, y + n4 * 16), "the output was written").toBe(false);
    } finally {
      for (const p of ptrs) e.free(p);
    }
  });
});
