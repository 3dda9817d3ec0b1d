import { getKernelThreads, kernelThreadsInfo, kernelThreadsReady, setKernelThreads, shutdownKernelThreads } from "@lowbit/tensor";
import { bitsEqual } from "@lowbit/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gemmScaledI8, gemmW8F32 } from "./gemm";
import { Int8Weights } from "./packed";
import { Q8_0Linear } from "./q8-0-linear";
import { gaussian, randomInt8 } from "./test-util";
import { splitColumns } from "./threads";
import { DynamicW8A8Linear } from "./w8a8-linear";
import { Int8WeightOnlyLinear } from "./weight-only-linear";

describe("splitColumns", () => {
  it.each([
    [4096, 2, [0, 2048, 4096]],
    [1031, 2, [0, 516, 1031]],
    [10, 3, [0, 4, 8, 10]],
    [5, 3, [0, 4, 4, 5]], // an empty part is skipped
  ])("%i columns into %i parts, inner bounds multiples of 4", (n, parts, want) => {
    expect(splitColumns(n, parts)).toEqual(want);
  });
});

// Each case does >= 2^18 multiply-adds per thread at 2 threads (so it is split); columns ragged.
interface Case {
  name: string;
  run: () => Float32Array | Int32Array;
}

function linearCases(): Case[] {
  const cases: Case[] = [];
  const shapes: Array<[number, number, number]> = [
    [1, 1031, 520], // GEMV
    [7, 301, 300], // 2-row and 1-row tiles of the integer GEMM, ragged columns
    [6, 259, 520], // 4-row and 1-row tiles of the weight-only GEMM
    [1, 1539, 512], // Q8_0 GEMV over tiles, ragged last tile (k a multiple of 32)
    [5, 263, 640], // Q8_0 GEMM: 2-token and 1-token passes, ragged last tile
  ];
  for (const [m, n, k] of shapes) {
    const seed = m * 1000 + n;
    const w = gaussian(n * k, seed, 0.05);
    const bias = gaussian(n, seed + 1);
    const x = gaussian(m * k, seed + 2);
    const lin = (make: () => { forward(x: Float32Array, m: number): Float32Array; dispose(): void }) => () => {
      const l = make();
      const y = l.forward(x, m);
      l.dispose();
      return y;
    };
    cases.push(
      { name: `Int8WeightOnlyLinear m=${m} ${n}x${k}`, run: lin(() => Int8WeightOnlyLinear.fromWeight(w, n, k, { bias })) },
      { name: `DynamicW8A8Linear per-tensor m=${m} ${n}x${k}`, run: lin(() => DynamicW8A8Linear.fromWeight(w, n, k, { bias })) },
      {
        name: `DynamicW8A8Linear per-token int8 m=${m} ${n}x${k}`,
        run: lin(() => DynamicW8A8Linear.fromWeight(w, n, k, { activation: "per-token", activationDType: "int8", activationScheme: "symmetric" })),
      },
    );
    if (k % 32 === 0) {
      cases.push(
        { name: `Q8_0Linear q8_0 m=${m} ${n}x${k}`, run: lin(() => Q8_0Linear.fromWeight(w, n, k, { bias })) },
        { name: `Q8_0Linear f32 m=${m} ${n}x${k}`, run: lin(() => Q8_0Linear.fromWeight(w, n, k, { activation: "f32" })) },
      );
    }
  }
  // exact integer GEMM/GEMV (int8 and uint8 activations) and the stand-alone scaled GEMMs
  for (const [m, n, k] of [
    [1, 1027, 600],
    [5, 263, 416],
  ] as const) {
    const seed = m + n + k;
    const wq = randomInt8(n * k, seed);
    const a8 = randomInt8(m * k, seed + 1);
    const au8 = new Uint8Array(randomInt8(m * k, seed + 2).buffer);
    const scale = gaussian(n, seed + 3).map(Math.abs);
    const aScale = gaussian(m, seed + 4).map(Math.abs);
    const aZero = Int32Array.from({ length: m }, (_, i) => (i * 37) % 256);
    const x = gaussian(m * k, seed + 5);
    const iw = (a: Int8Array | Uint8Array) => () => {
      const w = new Int8Weights(wq, n, k);
      const c = w.gemmI8(a, m);
      w.dispose();
      return c;
    };
    cases.push(
      { name: `Int8Weights.gemmI8 int8 m=${m} ${n}x${k}`, run: iw(a8) },
      { name: `Int8Weights.gemmI8 uint8 m=${m} ${n}x${k}`, run: iw(au8) },
      { name: `gemmScaledI8 m=${m} ${n}x${k}`, run: () => gemmScaledI8(au8, aScale, aZero, wq, scale, m, n, k) },
      { name: `gemmW8F32 m=${m} ${n}x${k}`, run: () => gemmW8F32(x, wq, scale, m, n, k) },
    );
  }
  return cases;
}

describe("int8 kernels on kernel threads", () => {
  const cases = linearCases();
  let single: Array<Float32Array | Int32Array>;

  beforeAll(() => {
    expect(getKernelThreads()).toBe(1);
    single = cases.map((c) => c.run());
  });
  afterAll(async () => {
    await shutdownKernelThreads();
  });

  it.each([2, 3])("%i threads give the one-thread result bit for bit", async (t) => {
    expect(setKernelThreads(t, { spinMicros: 50 })).toBe(t);
    expect(await kernelThreadsReady()).toBe(t);
    cases.forEach((c, i) => {
      const before = kernelThreadsInfo().dispatches;
      const y = c.run();
      expect(bitsEqual(y, single[i]!), c.name).toBe(true);
      expect(kernelThreadsInfo().dispatches - before, `${c.name}: one dispatch`).toBe(1);
    });
  });

  it("small layers stay on the calling thread", async () => {
    setKernelThreads(2);
    await kernelThreadsReady();
    const lin = DynamicW8A8Linear.fromWeight(gaussian(64 * 64, 1), 64, 64);
    const before = kernelThreadsInfo().dispatches;
    lin.forward(gaussian(64, 2), 1);
    expect(kernelThreadsInfo().dispatches).toBe(before);
    lin.dispose();
  });
});
