import { getEngine, Rng } from "@lowbit/tensor";
import { describe, expect, it } from "vitest";
import { Q80_MODULE, type Q80Kernels } from "./kernels";

// q8_0_gemv_q8 may write nb * 256 bytes of scratch (four tiles' block sums) and n4 * 16 bytes of
// output, nothing more: the dispatcher gives each thread part exactly that. Guard bytes on both
// sides of the scratch and after the output must come back untouched.
const GUARD = 256;
const FILL = 0xa5;

describe("q8_0_gemv_q8 stays inside its scratch and output", () => {
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
    const k = e.exports<Q80Kernels>(Q80_MODULE);
    const rng = new Rng(n4 * 100 + nb);
    const sizes = [nb * 64, nb * 4, n4 * nb * 128, n4 * nb * 16, n4 * 16 + GUARD, nb * 256 + 2 * GUARD];
    const ptrs = sizes.map((s) => e.alloc(s));
    try {
      const [xw, ad, wq, ws, y, tmp] = ptrs as [number, number, number, number, number, number];
      const u8 = () => new Uint8Array(e.memory.buffer);
      // any bytes do: only where the kernel writes is checked here (its values are tested elsewhere)
      for (const [p, s] of [
        [xw, nb * 64],
        [wq, n4 * nb * 128],
      ] as const) {
        const v = u8().subarray(p, p + s);
        for (let i = 0; i < v.length; i++) v[i] = rng.int(256);
      }
      e.f32(ad, nb).set(Array.from({ length: nb }, () => 0.01 + rng.uniform() * 0.01));
      e.f32(ws, n4 * nb * 4).set(Array.from({ length: n4 * nb * 4 }, () => 0.01 + rng.uniform() * 0.01));
      u8().fill(FILL, y, y + sizes[4]!);
      u8().fill(FILL, tmp, tmp + sizes[5]!);
      k.q8_0_gemv_q8(xw, ad, wq, ws, y, nb, n4, 0, tmp + GUARD);
      const untouched = (from: number, to: number) => u8().subarray(from, to).every((b) => b === FILL);
      expect(untouched(tmp, tmp + GUARD), "guard before the scratch").toBe(true);
      expect(untouched(tmp + GUARD + nb * 256, tmp + sizes[5]!), "guard after the scratch").toBe(true);
      expect(untouched(y + n4 * 16, y + sizes[4]!), "guard after the output").toBe(true);
      expect(untouched(y, y + n4 * 16), "the output was written").toBe(false);
    } finally {
      for (const p of ptrs) e.free(p);
    }
  });
});
