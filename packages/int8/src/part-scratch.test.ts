import type { KernelPart } from "@lowbit/tensor";
import { afterAll, describe, expect, it, vi } from "vitest";

// q8_0_gemv_q8 keeps the block sums of the four tiles it runs side by side in nb * 256 bytes of
// scratch at its last argument. Split over threads, each part needs a slice of its own (a shared one
// would race, which comparing outputs only shows by chance); this records every dispatch and checks
// the slices directly.
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

const { kernelThreadsReady, Rng, setKernelThreads, shutdownKernelThreads } = await import("@lowbit/tensor");
const { Q8_0Linear } = await import("./q8-0-linear");

afterAll(async () => {
  await shutdownKernelThreads();
});

describe("per-part scratch of the Q8_0 one-token kernel", () => {
  it.each([2, 3])("%i threads: every part writes its own slice", async (t) => {
    setKernelThreads(t);
    expect(await kernelThreadsReady()).toBe(t);
    const rng = new Rng(t);
    dispatched.length = 0;
    const [n, k] = [1030, 1024]; // ragged: the last part holds fewer tiles
    const lin = Q8_0Linear.fromWeight(rng.fillNormal(new Float32Array(n * k), 0, 0.05), n, k);
    lin.forward(rng.fillNormal(new Float32Array(k)), 1);
    lin.dispose();
    const calls = dispatched.filter((parts) => parts[0]!.fn === "q8_0_gemv_q8");
    expect(calls).toHaveLength(1);
    const slices = calls[0]!.map((p) => ({ start: p.args[8]!, bytes: p.args[5]! * 256 })).sort((x, y) => x.start - y.start);
    expect(slices).toHaveLength(t);
    for (let i = 1; i < slices.length; i++) expect(slices[i]!.start).toBeGreaterThanOrEqual(slices[i - 1]!.start + slices[i - 1]!.bytes);
    await shutdownKernelThreads();
  });
});
