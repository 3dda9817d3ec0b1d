import { getEngine, kernelThreadsInfo, kernelThreadsReady, Rng, setKernelThreads, shutdownKernelThreads } from "@lowbit/tensor";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { gemmScaledI8, gemmScaledI8Ref } from "./gemm";
import { integerGemmPath, runGemmI16I8, WINO_MIN_ROWS } from "./integer-gemm";
import { padK } from "./kernels";

// The Winograd kernel (gemm_wino) against the plain one (gemm_i16_i8) on the same kernel-memory
// operands: the integer sums are exact, so every output must agree bit for bit.

interface Operands {
  m: number;
  n: number;
  k: number;
  a: Int16Array; // [m, k] int8 or uint8 values
  b: Int8Array; // [n, k]
  aScale: Float32Array;
  aZero: Int32Array;
  wScale: Float32Array;
  bias?: Float32Array;
}

function randomOperands(m: number, n: number, k: number, seed: number, unsigned: boolean, withBias: boolean): Operands {
  const rng = new Rng(seed);
  const a = new Int16Array(m * k);
  for (let i = 0; i < a.length; i++) a[i] = unsigned ? rng.int(256) : rng.int(256) - 128;
  const b = new Int8Array(n * k);
  for (let i = 0; i < b.length; i++) b[i] = rng.int(256) - 128;
  const aScale = new Float32Array(m).map(() => 0.001 + rng.uniform() * 0.1);
  const aZero = new Int32Array(m).map(() => (unsigned ? rng.int(256) : 0));
  const wScale = new Float32Array(n).map(() => 0.001 + rng.uniform() * 0.05);
  const bias = withBias ? new Float32Array(n).map(() => rng.uniform() * 2 - 1) : undefined;
  return { m, n, k, a, b, aScale, aZero, wScale, bias };
}

/** Runs runGemmI16I8 with `path` on copies of the operands in kernel memory; the raw output bits. */
function run(o: Operands, mode: 0 | 1, path: "plain" | "winograd"): Uint32Array {
  const { m, n, k } = o;
  const kp = padK(k);
  const e = getEngine();
  const sizes = [m * kp * 2, n * kp, m * n * 4, m * 4, m * 4, n * 4, n * 4, n * 4];
  const ptrs = sizes.map((s) => e.alloc(Math.max(s, 16)));
  try {
    const [a16, b, c, as, az, ws, wsum, bias] = ptrs as [number, number, number, number, number, number, number, number];
    const av = new Int16Array(e.memory.buffer, a16, m * kp).fill(0);
    for (let i = 0; i < m; i++) av.set(o.a.subarray(i * k, (i + 1) * k), i * kp);
    const bv = new Int8Array(e.memory.buffer, b, n * kp).fill(0);
    const sums = e.i32(wsum, n);
    for (let j = 0; j < n; j++) {
      bv.set(o.b.subarray(j * k, (j + 1) * k), j * kp);
      let s = 0;
      for (let t = 0; t < k; t++) s += o.b[j * k + t]!;
      sums[j] = s;
    }
    e.f32(as, m).set(o.aScale);
    e.i32(az, m).set(o.aZero);
    e.f32(ws, n).set(o.wScale);
    if (o.bias) e.f32(bias, n).set(o.bias);
    new Uint32Array(e.memory.buffer, c, m * n).fill(0xdeadbeef);
    runGemmI16I8(a16, b, c, m, n, kp, mode, as, az, ws, wsum, o.bias ? bias : 0, path);
    return new Uint32Array(e.memory.buffer, c, m * n).slice();
  } finally {
    for (const p of ptrs) e.free(p);
  }
}

/** Exact C = A . B^T as int32 (wrapping like the kernels), for the extreme-value cases. */
function exactI32(o: Operands): Uint32Array {
  const out = new Uint32Array(o.m * o.n);
  for (let i = 0; i < o.m; i++) {
    for (let j = 0; j < o.n; j++) {
      let s = 0n;
      for (let t = 0; t < o.k; t++) s += BigInt(o.a[i * o.k + t]!) * BigInt(o.b[j * o.k + t]!);
      out[i * o.n + j] = Number(BigInt.asUintN(32, s));
    }
  }
  return out;
}

function firstDiff(a: Uint32Array, b: Uint32Array): string {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return `index ${i}: ${a[i]} vs ${b[i]}`;
  return "none";
}

describe("integer GEMM paths", () => {
  afterAll(() => {
    shutdownKernelThreads();
  });

  it("chooses the Winograd kernel from WINO_MIN_ROWS rows", () => {
    expect(integerGemmPath(1)).toBe("plain");
    expect(integerGemmPath(WINO_MIN_ROWS - 1)).toBe("plain");
    expect(integerGemmPath(WINO_MIN_ROWS)).toBe("winograd");
    expect(integerGemmPath(512)).toBe("winograd");
  });

  it("Winograd = plain bit for bit (raw sums and the scaled epilogue, int8 and uint8 activations)", () => {
    fc.assert(
      fc.property(
        fc.record({
          m: fc.integer({ min: 1, max: 21 }),
          n: fc.integer({ min: 1, max: 19 }),
          k: fc.integer({ min: 1, max: 90 }),
          seed: fc.integer({ min: 0, max: 1e9 }),
          unsigned: fc.boolean(),
          withBias: fc.boolean(),
          mode: fc.constantFrom(0 as const, 1 as const),
        }),
        ({ m, n, k, seed, unsigned, withBias, mode }) => {
          const o = randomOperands(m, n, k, seed, unsigned, withBias);
          const plain = run(o, mode, "plain");
          const wino = run(o, mode, "winograd");
          expect(firstDiff(wino, plain), `m=${m} n=${n} k=${k} mode=${mode}`).toBe("none");
        },
      ),
      { numRuns: 60, seed: 20261126 },
    );
  });

  // one activation row: the plain kernel reads four weight rows a quarter of the columns apart, then
  // the n % 4 rows left one by one
  it.each([1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 38])("one activation row, %i weight rows: plain = Winograd bit for bit", (n) => {
    for (const mode of [0, 1] as const) {
      const o = randomOperands(1, n, 72, n * 11 + mode, mode === 1, mode === 1);
      expect(firstDiff(run(o, mode, "plain"), run(o, mode, "winograd")), `mode ${mode}`).toBe("none");
      if (mode === 0) expect(firstDiff(run(o, 0, "plain"), exactI32(o)), "exact sums").toBe("none");
    }
  });

  it.each([
    ["uint8 255 x int8 -128", 255, -128],
    ["int8 -128 x int8 -128", -128, -128],
    ["uint8 255 x int8 127", 255, 127],
  ])("extreme operands (%s, k=4100) give the exact int32 sums", (_name, av, bv) => {
    const [m, n, k] = [5, 6, 4100];
    const o = randomOperands(m, n, k, 7, av > 127, false);
    o.a.fill(av);
    o.b.fill(bv);
    // one row and one column of mixed values, so the pair sums are not all equal
    for (let t = 0; t < k; t++) {
      o.a[t] = t % 3 === 0 ? av : -128;
      o.b[t] = t % 5 === 0 ? bv : 127;
    }
    const want = exactI32(o);
    expect(firstDiff(run(o, 0, "winograd"), want)).toBe("none");
    expect(firstDiff(run(o, 0, "plain"), want)).toBe("none");
  });

  it("sums wrap like int32 when they overflow", () => {
    // 255 * 127 * 70000 > 2^31: the kernels wrap, exactly as the reference's | 0 does
    const [m, n, k] = [2, 2, 70000];
    const o = randomOperands(m, n, k, 3, true, false);
    o.a.fill(255);
    o.b.fill(127);
    const want = exactI32(o);
    expect(want[0]).toBe(Number(BigInt.asUintN(32, 255n * 127n * 70000n)));
    expect(firstDiff(run(o, 0, "winograd"), want)).toBe("none");
  });

  it("2 kernel threads give the one-thread Winograd result bit for bit, one dispatch", async () => {
    const o = randomOperands(33, 263, 160, 11, true, true);
    const single = run(o, 1, "winograd");
    expect(setKernelThreads(2)).toBe(2);
    expect(await kernelThreadsReady()).toBe(2);
    try {
      const before = kernelThreadsInfo().dispatches;
      const two = run(o, 1, "winograd");
      // the call really was split (per-part scratch, two column ranges)
      expect(kernelThreadsInfo().dispatches - before).toBe(1);
      expect(firstDiff(two, single)).toBe("none");
      expect(firstDiff(run(o, 1, "plain"), single)).toBe("none");
    } finally {
      setKernelThreads(1);
    }
  });

  it("gemmScaledI8 on the Winograd path equals its reference twin", () => {
    const [m, n, k] = [37, 23, 70];
    const rng = new Rng(5);
    const aq = new Uint8Array(m * k).map(() => rng.int(256));
    const wq = new Int8Array(n * k).map(() => rng.int(256) - 128);
    const aScale = new Float32Array(m).map(() => 0.01 + rng.uniform() * 0.1);
    const aZero = new Int32Array(m).map(() => rng.int(256));
    const wScale = new Float32Array(n).map(() => 0.01 + rng.uniform() * 0.1);
    const bias = new Float32Array(n).map(() => rng.uniform());
    expect(integerGemmPath(m)).toBe("winograd");
    const fast = gemmScaledI8(aq, aScale, aZero, wq, wScale, m, n, k, { bias });
    const ref = gemmScaledI8Ref(aq, aScale, aZero, wq, wScale, m, n, k, { bias });
    expect(firstDiff(new Uint32Array(fast.buffer), new Uint32Array(ref.buffer))).toBe("none");
  });
});
