import { getKernelThreads, kernelThreadsInfo, kernelThreadsReady, setKernelThreads, shutdownKernelThreads } from "@lowbit/tensor";
import { bitsEqual } from "@lowbit/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Q4_0Linear, Q4_1Linear } from "./block-linear";
import { quantizeGgufInt4 } from "./codec-gguf";
import { Int4Linear } from "./int4-linear";
import type { QuantizedMatrix } from "./quantized-matrix";
import { quantizeRTN } from "./rtn";
import { TestRng } from "./test-rng";

function actOrder(qm: QuantizedMatrix, seed: number): QuantizedMatrix {
  const rng = new TestRng(seed);
  const g = new Int32Array(qm.cols);
  for (let c = 0; c < qm.cols; c++) g[c] = Math.floor(c / qm.groupSize);
  for (let i = qm.cols - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [g[i], g[j]] = [g[j]!, g[i]!];
  }
  return { ...qm, gIdx: g };
}

interface Case {
  name: string;
  make: () => Int4Linear;
  rows: number;
  cols: number;
  m: number;
}

// Every case has >= 2^18 multiply-adds per thread at 2 threads, so each call is split; rows ragged.
// [bits, rows, cols, group, m, act-order]
const grouped: Array<[number, number, number, number, number, boolean]> = [
  [4, 1031, 544, 32, 1, false],
  [4, 2050, 300, 100, 1, false], // groups padded to 112 codes
  [3, 777, 1024, 128, 1, true],
  [2, 1030, 512, 64, 1, false],
  [8, 515, 1056, 32, 1, false],
  [4, 517, 256, 32, 5, false],
  [4, 130, 640, 128, 33, true],
  [8, 262, 200, 40, 9, false],
];

const cases: Case[] = [];
for (const [bits, rows, cols, g, m, act] of grouped) {
  cases.push({
    name: `int${bits} ${rows}x${cols} g${g} m=${m}${act ? " act-order" : ""}`,
    rows,
    cols,
    m,
    make: () => {
      const rng = new TestRng(rows * 131 + cols);
      let qm = quantizeRTN(rng.normals(rows * cols, 0.05), rows, cols, { bits, groupSize: g, sym: false });
      if (act) qm = actOrder(qm, rows);
      return new Int4Linear(qm, { bias: rng.normals(rows) });
    },
  });
}
for (const [fmt, Cls] of [
  ["q4_0", Q4_0Linear],
  ["q4_1", Q4_1Linear],
] as const) {
  for (const [rows, cols, m] of [
    [1029, 1024, 1],
    [263, 512, 9],
  ] as const) {
    cases.push({
      name: `${fmt} ${rows}x${cols} m=${m}`,
      rows,
      cols,
      m,
      make: () => new Cls(quantizeGgufInt4(fmt, new TestRng(rows + cols).normals(rows * cols, 0.05), rows, cols), rows, cols),
    });
  }
}

type Outputs = Float32Array[];

function runAll(): Outputs {
  const out: Outputs = [];
  for (const c of cases) {
    const lin = c.make();
    const x = new TestRng(c.m * 7 + c.cols).normals(c.m * c.cols);
    out.push(lin.run(x, c.m, undefined, false, "wasm"), lin.run(x, c.m, undefined, true, "wasm"));
    lin.dispose();
  }
  return out;
}

describe("Int4Linear and the Q4 block linears on kernel threads", () => {
  let single: Outputs;

  beforeAll(() => {
    expect(getKernelThreads()).toBe(1);
    single = runAll();
  });
  afterAll(async () => {
    await shutdownKernelThreads();
  });

  it.each([2, 3])("%i threads give the one-thread result bit for bit (f32 and int8 activations)", async (t) => {
    expect(setKernelThreads(t, { spinMicros: 50 })).toBe(t);
    expect(await kernelThreadsReady()).toBe(t);
    const got = runAll();
    expect(got.length).toBe(single.length);
    got.forEach((y, i) => {
      const c = cases[i >> 1]!;
      expect(bitsEqual(y, single[i]!), `${c.name} ${i & 1 ? "int8" : "f32"} activations`).toBe(true);
    });
    // every call was split over the threads: one dispatch each
    expect(kernelThreadsInfo().dispatches).toBe(2 * cases.length);
  });

  it("small layers stay on the calling thread", async () => {
    setKernelThreads(2);
    await kernelThreadsReady();
    const rng = new TestRng(5);
    const lin = new Int4Linear(quantizeRTN(rng.normals(64 * 128), 64, 128, { bits: 4, groupSize: 32, sym: true }));
    const before = kernelThreadsInfo().dispatches;
    lin.forward(rng.normals(128), 1);
    expect(kernelThreadsInfo().dispatches).toBe(before);
    lin.dispose();
  });
});
