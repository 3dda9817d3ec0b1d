import type { KernelPart } from "@lowbit/tensor";
import { afterAll, describe, expect, it, vi } from "vitest";

// The one-token kernels that keep per-group (or per-block) sums in scratch write ng * 64 bytes
// (q4_0_gemv: nb * 256, four tiles' block sums) at their last argument. When a call is split over threads, each part must get a slice of
// its own: two parts sharing one would race, and a thread test comparing outputs only sees that
// when the two happen to run the same tile at the same moment. This records every dispatch and
// checks the slices directly.
const dispatched = vi.hoisted(() => [] as KernelPart[][]);
vi.mock("@lowbit/tensor", async (importOriginal) => {
  const mod = await importOriginal<typeof import("@lowbit/tensor")>();
  return {
    ...mod,
    runKernelParts: (parts: readonly KernelPart[]) => {
      dispatched.push([...parts]);
      mod.runKernelParts(parts);
    },
  };
});

const { kernelThreadsReady, setKernelThreads, shutdownKernelThreads } = await import("@lowbit/tensor");
const { Int4Linear } = await import("./int4-linear");
const { Q4_0TiledLinear } = await import("./q4-0-tiled-linear");
const { quantizeQ4_0Ref } = await import("./codec-gguf");
const { quantizeRTN } = await import("./rtn");
const { TestRng } = await import("./test-rng");

/** Bytes each kernel writes at its scratch argument (the last one), from its other arguments. */
function scratchBytes(part: KernelPart): number | undefined {
  const a = part.args;
  if (part.fn.startsWith("gemv_f32_b")) return a[7]! * 64; // [w, sc, zr, x, xsum, y, n4, ng, gp, tmp]
  if (part.fn.startsWith("gemv_i8p_b4")) return a[8]! * 64; // [w, sc, zr, xa, dx, xs, y, n4, ng, ..., tmp]
  if (part.fn === "q4_0_gemv") return a[6]! * 256; // [xa, ad, ks, wq, ws, y, nb, n4, bias, nib, tmp]: four tiles' sums
  return undefined;
}

afterAll(async () => {
  await shutdownKernelThreads();
});

describe("per-part scratch of the one-token kernels", () => {
  it.each([2, 3])("%i threads: every part writes its own slice", async (t) => {
    setKernelThreads(t);
    expect(await kernelThreadsReady()).toBe(t);
    const rng = new TestRng(t);
    dispatched.length = 0;
    const [rows, cols] = [1030, 1024]; // ragged: the last part holds fewer tiles
    const ran = new Set<string>();
    for (const [g, int8] of [
      [32, false],
      [128, false],
      [32, true],
      [128, true],
    ] as const) {
      const lin = new Int4Linear(quantizeRTN(rng.normals(rows * cols, 0.05), rows, cols, { bits: 4, groupSize: g, sym: false }));
      lin.run(rng.normals(cols), 1, undefined, int8, "wasm");
      lin.dispose();
    }
    const q4 = new Q4_0TiledLinear(quantizeQ4_0Ref(rng.normals(rows * cols, 0.05)), rows, cols);
    q4.forward(rng.normals(cols), 1);
    q4.dispose();
    for (const parts of dispatched) {
      const slices = parts
        .map((p) => ({ fn: p.fn, start: p.args[p.args.length - 1]!, bytes: scratchBytes(p) }))
        .filter((s): s is { fn: string; start: number; bytes: number } => s.bytes !== undefined);
      if (slices.length === 0) continue;
      expect(slices).toHaveLength(parts.length);
      ran.add(slices[0]!.fn);
      slices.sort((x, y) => x.start - y.start);
      for (let i = 1; i < slices.length; i++) {
        expect(slices[i]!.start, `${slices[i]!.fn} part scratch`).toBeGreaterThanOrEqual(slices[i - 1]!.start + slices[i - 1]!.bytes);
      }
    }
    // the four kernels above each ran split
    expect([...ran].sort()).toEqual(["gemv_f32_b4_z8", "gemv_i8p_b4_g32_z8", "gemv_i8p_b4_z8", "q4_0_gemv"]);
    await shutdownKernelThreads();
  });
});
