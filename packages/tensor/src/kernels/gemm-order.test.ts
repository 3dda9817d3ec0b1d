import { bitsEqual, fnv1a } from "@lowbit/testing";
import { afterAll, describe, expect, it } from "vitest";
import { kernelThreadsReady, setKernelThreads, shutdownKernelThreads } from "../engine/threads";
import { Rng } from "../rng";
import { matmulAB, matmulABt } from "./f32";
import { F32Linear } from "./f32-linear";

// Pins the f32 GEMM's per-output arithmetic: C[i][j] starts at bias[j] (or 0) and adds the f32
// products A[i][t] * B[j][t] one at a time in order of t, each sum rounded to f32. No blocking of
// rows, columns or k may change that, so the fast path must equal this model bit for bit on ragged
// shapes (m, n, k not multiples of the 4 x 8 tile, m > 128 so several row blocks of A run, n wider
// than one block of packed panels, k over several k-chunks), on 1 and 2 threads, and must also give
// the FNV-1a hashes recorded from the kernel before B's panels were packed once per call.

/** The kernel's arithmetic for C = A . B^T (+ bias), B [n, k]. */
function modelABt(a: Float32Array, b: Float32Array, m: number, n: number, k: number, bias?: Float32Array): Float32Array {
  const out = new Float32Array(m * n);
  const f = Math.fround;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = bias ? bias[j]! : 0;
      for (let t = 0; t < k; t++) s = f(s + f(a[i * k + t]! * b[j * k + t]!));
      out[i * n + j] = s;
    }
  }
  return out;
}

function transpose(b: Float32Array, n: number, k: number): Float32Array {
  const t = new Float32Array(n * k);
  for (let j = 0; j < n; j++) for (let s = 0; s < k; s++) t[s * n + j] = b[j * k + s]!;
  return t;
}

// [m, n, k, hash of A . B^T, hash of A . B^T + bias] from the kernel as it was before the change
const cases: Array<[number, number, number, string, string]> = [
  [133, 1037, 517, "639a039c", "b156a300"],
  [300, 77, 1030, "2e85b85a", "651dc14f"],
  [263, 203, 45, "cc92a78f", "298cf5cb"],
  [301, 5, 700, "3807349c", "6372af37"],
];

const inputs = cases.map(([m, n, k], c) => {
  const rng = new Rng(9100 + c);
  const a = rng.fillNormal(new Float32Array(m * k));
  const b = rng.fillNormal(new Float32Array(n * k));
  const bias = rng.fillNormal(new Float32Array(n));
  return { m, n, k, a, b, bt: transpose(b, n, k), bias };
});

function runAll(c: (typeof inputs)[number]) {
  const lin = new F32Linear(c.b, c.n, c.k, c.bias);
  const out = {
    abt: matmulABt(c.a, c.b, c.m, c.n, c.k),
    ab: matmulAB(c.a, c.bt, c.m, c.n, c.k),
    lin: lin.forward(c.a, c.m),
  };
  lin.dispose();
  return out;
}

describe("f32 GEMM: per-output summation order is pinned", () => {
  afterAll(async () => {
    await shutdownKernelThreads();
  });

  const single = inputs.map(runAll);

  it.each(cases.map((c, i) => [...c.slice(0, 3), i] as [number, number, number, number]))(
    "m=%i n=%i k=%i: matmulABt, matmulAB and F32Linear equal the sequential-f32 model and the recorded hashes",
    (_m, _n, _k, i) => {
      const c = inputs[i]!;
      const got = single[i]!;
      expect(bitsEqual(got.abt, modelABt(c.a, c.b, c.m, c.n, c.k))).toBe(true);
      expect(bitsEqual(got.ab, got.abt)).toBe(true);
      expect(bitsEqual(got.lin, modelABt(c.a, c.b, c.m, c.n, c.k, c.bias))).toBe(true);
      expect(fnv1a(got.abt)).toBe(cases[i]![3]);
      expect(fnv1a(got.lin)).toBe(cases[i]![4]);
    },
  );

  it("2 threads give the same bits (split by columns, and by rows for n = 5)", async () => {
    setKernelThreads(2, { spinMicros: 50 });
    expect(await kernelThreadsReady()).toBe(2);
    inputs.forEach((c, i) => {
      const got = runAll(c);
      for (const key of ["abt", "ab", "lin"] as const) {
        expect(bitsEqual(got[key], single[i]![key]), `case ${i} ${key}`).toBe(true);
      }
    });
  });
});
