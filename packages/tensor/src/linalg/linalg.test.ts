import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getEngine, type KernelBackend, setKernelBackend } from "../engine/engine";
import { getKernelThreads, kernelThreadsInfo, kernelThreadsReady, setKernelThreads, shutdownKernelThreads } from "../engine/threads";
import { LowbitError } from "../errors";
import { Rng } from "../rng";
import { f64Kernels, subABtJs as subABt, wasmSubABt } from "./blas-f64";
import { cholesky, choleskySolve, solveLower, solveUpper } from "./cholesky";
import { choleskyInverse, inverseSPD, upperCholeskyOfInverse } from "./inverse";

/**
 * A random SPD matrix M M^T / r + eps I with M n x r, r = min(n, 48): like a GPTQ Hessian, rank
 * deficient before the damping eps (so the condition number grows as eps shrinks).
 */
function randomSPD(n: number, seed: number, eps = 1e-2): Float64Array {
  const rng = new Rng(seed);
  const r = Math.min(n, 48);
  const m = rng.fillNormal(new Float64Array(n * r));
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let t = 0; t < r; t++) s += m[i * r + t]! * m[j * r + t]!;
      a[i * n + j] = a[j * n + i] = s / r + (i === j ? eps : 0);
    }
  }
  return a;
}

/** y = M v (M n x n; transposed: M^T v). */
function matvec(mat: Float64Array, v: Float64Array, n: number, transposed = false): Float64Array {
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const vi = v[i]!;
    for (let j = 0; j < n; j++) {
      if (transposed) y[j]! += mat[i * n + j]! * vi;
      else y[i]! += mat[i * n + j]! * v[j]!;
    }
  }
  return y;
}

/** max over 3 random v of ||f(v) - g(v)|| / ||g(v)||: a relative residual in O(n^2). */
function probe(n: number, f: (v: Float64Array) => Float64Array, g: (v: Float64Array) => Float64Array): number {
  const rng = new Rng(n + 99);
  let worst = 0;
  for (let p = 0; p < 3; p++) {
    const v = rng.fillNormal(new Float64Array(n));
    const a = f(v);
    const b = g(v);
    let num = 0;
    let den = 0;
    for (let i = 0; i < n; i++) {
      num += (a[i]! - b[i]!) ** 2;
      den += b[i]! ** 2;
    }
    worst = Math.max(worst, Math.sqrt(num / den));
  }
  return worst;
}

/** C = A B (n x n), plain loops. */
function mul(a: Float64Array, b: Float64Array, n: number, transA = false, transB = false): Float64Array {
  const c = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let t = 0; t < n; t++) s += (transA ? a[t * n + i]! : a[i * n + t]!) * (transB ? b[j * n + t]! : b[t * n + j]!);
      c[i * n + j] = s;
    }
  }
  return c;
}

function frob(a: Float64Array): number {
  let s = 0;
  for (const v of a) s += v * v;
  return Math.sqrt(s);
}

function relDiff(a: Float64Array, b: Float64Array): number {
  const d = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) d[i] = a[i]! - b[i]!;
  return frob(d) / Math.max(frob(b), 1e-300);
}

function identity(n: number): Float64Array {
  const e = new Float64Array(n * n);
  for (let i = 0; i < n; i++) e[i * n + i] = 1;
  return e;
}

/** The textbook unblocked Cholesky (the reference twin). */
function choleskyRef(a: Float64Array, n: number): Float64Array {
  const l = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    let d = a[j * n + j]!;
    for (let k = 0; k < j; k++) d -= l[j * n + k]! ** 2;
    l[j * n + j] = Math.sqrt(d);
    for (let i = j + 1; i < n; i++) {
      let s = a[i * n + j]!;
      for (let k = 0; k < j; k++) s -= l[i * n + k]! * l[j * n + k]!;
      l[i * n + j] = s / l[j * n + j]!;
    }
  }
  return l;
}

function isLower(l: Float64Array, n: number): boolean {
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) if (l[i * n + j] !== 0) return false;
  return true;
}

const sizes = [1, 2, 3, 5, 17, 64, 65, 130, 257];

describe("subABt", () => {
  it.each([
    [1, 1, 1],
    [4, 2, 8],
    [5, 3, 7],
    [9, 33, 300],
    [13, 70, 513],
  ])("m=%i n=%i k=%i matches plain loops on strided sub-matrices", (m, n, k) => {
    const rng = new Rng(m * 1000 + n);
    const lda = k + 3;
    const ldb = k + 5;
    const ldc = n + 2;
    const a = rng.fillNormal(new Float64Array(m * lda + 7));
    const b = rng.fillNormal(new Float64Array(n * ldb + 7));
    const c = rng.fillNormal(new Float64Array(m * ldc + 7));
    const want = Float64Array.from(c);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let t = 0; t < k; t++) s += a[2 + i * lda + t]! * b[1 + j * ldb + t]!;
        want[3 + i * ldc + j]! -= s;
      }
    }
    subABt(c, 3, ldc, a, 2, lda, b, 1, ldb, m, n, k);
    for (let i = 0; i < c.length; i++) expect(c[i]).toBeCloseTo(want[i]!, 10);
    // the WebAssembly kernel on the same data placed in kernel memory
    const engine = getEngine();
    const pack = f64Kernels().pack_bytes_f64();
    const buf = engine.buffer((a.length + b.length + c.length) * 8 + pack);
    const ka = engine.f64(buf.ptr, a.length);
    const kb = engine.f64(ka.byteOffset + ka.byteLength, b.length);
    const kc = engine.f64(kb.byteOffset + kb.byteLength, c.length);
    ka.set(a);
    kb.set(b);
    const c0 = rng.fillNormal(new Float64Array(c.length));
    kc.set(c0);
    const want2 = Float64Array.from(c0);
    subABt(want2, 3, ldc, a, 2, lda, b, 1, ldb, m, n, k);
    wasmSubABt(kc.byteOffset + kc.byteLength)(kc, 3, ldc, ka, 2, lda, kb, 1, ldb, m, n, k);
    for (let i = 0; i < c.length; i++) expect(kc[i]).toBeCloseTo(want2[i]!, 10);
    buf.dispose();
  });
});

describe.each(["wasm", "ref"] as KernelBackend[])("backend %s", (backend) => {
beforeAll(() => setKernelBackend(backend));
afterAll(() => setKernelBackend("wasm"));

describe("cholesky", () => {
  it.each(sizes)("n=%i: lower, L L^T = a, equals the unblocked reference", (n) => {
    const a = randomSPD(n, n);
    const copy = Float64Array.from(a);
    const l = cholesky(a, n);
    expect(a).toEqual(copy); // input untouched
    expect(isLower(l, n)).toBe(true);
    if (n <= 65) expect(relDiff(mul(l, l, n, false, true), a)).toBeLessThan(1e-12);
    expect(probe(n, (v) => matvec(l, matvec(l, v, n, true), n), (v) => matvec(a, v, n))).toBeLessThan(1e-12);
    expect(relDiff(l, choleskyRef(a, n))).toBeLessThan(1e-9);
    expect(l.filter((_, i) => i % (n + 1) === 0).every((d) => d > 0)).toBe(true);
  });

  it("n=512: relative residual and in-place mode", () => {
    const n = 512;
    const a = randomSPD(n, 5, 1e-3);
    const copy = Float64Array.from(a);
    const l = cholesky(copy, n, { inPlace: true });
    expect(l).toBe(copy);
    expect(probe(n, (v) => matvec(l, matvec(l, v, n, true), n), (v) => matvec(a, v, n))).toBeLessThan(1e-5);
  });

  it("reads only the lower triangle", () => {
    const n = 70;
    const a = randomSPD(n, 3);
    const junk = Float64Array.from(a);
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) junk[i * n + j] = Number.NaN;
    expect(cholesky(junk, n)).toEqual(cholesky(a, n));
  });

  it.each([
    ["negative diagonal", 0, -1],
    ["late zero pivot", 150, 0],
    ["NaN entry", 200, Number.NaN],
  ])("throws E_NOT_POSITIVE_DEFINITE naming the pivot (%s)", (_name, p, v) => {
    const n = 260;
    const a = randomSPD(n, 8);
    if (Number.isNaN(v)) {
      a[p * n + 3] = v; // off-diagonal NaN surfaces at pivot p
    } else {
      // make the leading (p+1)x(p+1) minor singular/indefinite: row p = combination of earlier rows
      if (p === 0) a[0] = v;
      else {
        for (let j = 0; j < n; j++) a[p * n + j] = a[j * n + p] = a[(p - 1) * n + j]!;
        a[p * n + p] = a[(p - 1) * n + (p - 1)]!;
        a[p * n + p - 1] = a[(p - 1) * n + p] = a[(p - 1) * n + (p - 1)]!;
      }
    }
    try {
      cholesky(a, n);
      expect.unreachable("cholesky should throw");
    } catch (e) {
      expect(e).toBeInstanceOf(LowbitError);
      expect((e as LowbitError).code).toBe("E_NOT_POSITIVE_DEFINITE");
      expect((e as LowbitError).message).toMatch(new RegExp(`pivot ${p} `));
    }
  });

  it("rejects wrong sizes", () => {
    expect(() => cholesky(new Float64Array(5), 2)).toThrow(/expected 2x2/);
  });
});

describe("triangular solves", () => {
  it.each([1, 7, 64, 131])("n=%i: solveLower, solveUpper, choleskySolve (1 and 3 right-hand sides)", (n) => {
    const rng = new Rng(n + 1);
    const a = randomSPD(n, n + 2);
    const l = cholesky(a, n);
    const u = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) u[i * n + j] = l[j * n + i]!;
    for (const nrhs of [1, 3]) {
      const b = rng.fillNormal(new Float64Array(n * nrhs));
      const check = (mat: Float64Array, x: Float64Array) => {
        const r = new Float64Array(n * nrhs);
        for (let i = 0; i < n; i++)
          for (let c = 0; c < nrhs; c++) {
            let s = 0;
            for (let t = 0; t < n; t++) s += mat[i * n + t]! * x[t * nrhs + c]!;
            r[i * nrhs + c] = s;
          }
        expect(relDiff(r, b)).toBeLessThan(1e-9);
      };
      check(l, solveLower(l, b, n, nrhs));
      check(u, solveUpper(u, b, n, nrhs));
      check(a, choleskySolve(l, b, n, nrhs));
    }
  });

  it("rejects a singular triangle and a wrong right-hand side", () => {
    const l = new Float64Array([1, 0, 2, 0]);
    expect(() => solveLower(l, new Float64Array(2), 2)).toThrow(/diagonal 1 is 0/);
    expect(() => solveLower(new Float64Array([1, 0, 0, 1]), new Float64Array(3), 2)).toThrow(LowbitError);
  });
});

describe("inverses", () => {
  it.each(sizes)("n=%i: choleskyInverse and inverseSPD give a^-1 (symmetric)", (n) => {
    const a = randomSPD(n, 100 + n);
    const inv = inverseSPD(a, n);
    if (n <= 65) expect(relDiff(mul(a, inv, n), identity(n))).toBeLessThan(1e-5);
    expect(probe(n, (v) => matvec(a, matvec(inv, v, n), n), (v) => v)).toBeLessThan(1e-5);
    let asymmetric = 0;
    for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) if (inv[i * n + j] !== inv[j * n + i]) asymmetric++;
    expect(asymmetric).toBe(0);
    const l = cholesky(a, n);
    const inv2 = choleskyInverse(l, n);
    expect(relDiff(inv2, inv)).toBeLessThan(1e-12);
  });

  it.each(sizes)("n=%i: upperCholeskyOfInverse is upper with U^T U = a^-1 and equals GPTQ's recipe", (n) => {
    const a = randomSPD(n, 200 + n);
    const u = upperCholeskyOfInverse(a, n);
    let bad = 0;
    for (let i = 0; i < n; i++) {
      if (!(u[i * n + i]! > 0)) bad++;
      for (let j = 0; j < i; j++) if (u[i * n + j] !== 0) bad++;
    }
    expect(bad).toBe(0);
    // (U^T U) a = I
    if (n <= 65) expect(relDiff(mul(mul(u, u, n, true, false), a, n), identity(n))).toBeLessThan(1e-5);
    expect(probe(n, (v) => matvec(u, matvec(u, matvec(a, v, n), n), n, true), (v) => v)).toBeLessThan(1e-5);
    // GPTQ: cholesky(cholesky_inverse(cholesky(H)), upper=True), computed with the reference twin
    const ainv = choleskyInverse(choleskyRef(a, n), n);
    const lt = choleskyRef(ainv, n);
    const want = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) want[i * n + j] = lt[j * n + i]!;
    expect(relDiff(u, want)).toBeLessThan(1e-8);
  });

  it("n=512: relative residuals, in-place modes", () => {
    const n = 512;
    const a = randomSPD(n, 77, 1e-3);
    const inv = inverseSPD(Float64Array.from(a), n, { inPlace: true });
    expect(probe(n, (v) => matvec(a, matvec(inv, v, n), n), (v) => v)).toBeLessThan(1e-5);
    const u = upperCholeskyOfInverse(Float64Array.from(a), n, { inPlace: true });
    expect(probe(n, (v) => matvec(u, matvec(u, matvec(a, v, n), n), n, true), (v) => v)).toBeLessThan(1e-5);
    expect(relDiff(u, upperCholeskyOfInverse(a, n))).toBe(0);
  });

  it("upperCholeskyOfInverse names the pivot in a's own indexing", () => {
    const n = 40;
    const a = randomSPD(n, 9);
    a[0] = -1; // a[0][0] < 0: in the reversed factorisation this is the last pivot
    expect(() => upperCholeskyOfInverse(a, n)).toThrow(/pivot 0 /);
    const b = randomSPD(n, 9);
    b[(n - 1) * n + n - 1] = -1;
    expect(() => upperCholeskyOfInverse(b, n)).toThrow(/pivot 39 /);
  });
});
});

describe("on 2 and 3 kernel threads: bit-identical to one thread", () => {
  afterAll(async () => {
    await shutdownKernelThreads();
  });
  // ragged sizes on purpose: splits fall on multiples of 4 columns, partial tiles at the end
  const sizes = [300, 517];
  const mats = sizes.map((n, i) => randomSPD(n, 40 + i, 1e-3));
  const runAll = () =>
    sizes.flatMap((n, i) => {
      const a = mats[i]!;
      return [cholesky(a, n), inverseSPD(a, n), upperCholeskyOfInverse(a, n), choleskyInverse(cholesky(a, n), n)];
    });
  const same = (x: Float64Array, y: Float64Array) => x.length === y.length && x.every((v, i) => Object.is(v, y[i]));

  it.each([2, 3])("%i threads: cholesky, inverseSPD, upperCholeskyOfInverse, choleskyInverse", async (t) => {
    setKernelBackend("wasm");
    expect(getKernelThreads()).toBe(1);
    const single = runAll();
    expect(setKernelThreads(t, { spinMicros: 50 })).toBe(t);
    expect(await kernelThreadsReady()).toBe(t);
    const before = kernelThreadsInfo().dispatches;
    const got = runAll();
    for (const [i, y] of got.entries()) expect(same(y, single[i]!), `result ${i}`).toBe(true);
    // the heavy steps really were split (a dispatch counts only calls split across threads)
    expect(kernelThreadsInfo().dispatches - before).toBeGreaterThan(20);
    // and a problem too small to split is not dispatched at all
    const small = kernelThreadsInfo().dispatches;
    const a64 = randomSPD(64, 5, 1e-2);
    cholesky(a64, 64);
    expect(kernelThreadsInfo().dispatches).toBe(small);
    await shutdownKernelThreads();
  });
});
