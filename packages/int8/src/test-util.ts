// Test helpers (not exported from the package).
import { Rng, setKernelBackend } from "@lowbit/tensor";

export function gaussian(n: number, seed: number, std = 1): Float32Array {
  const x = new Float32Array(n);
  new Rng(seed).fillNormal(x, 0, std);
  return x;
}

export function randomInt8(n: number, seed: number, lo = -128, hi = 127): Int8Array {
  const rng = new Rng(seed);
  const q = new Int8Array(n);
  for (let i = 0; i < n; i++) q[i] = lo + rng.int(hi - lo + 1);
  return q;
}

/** sqrt(mean((a - b)^2)). */
export function rmse(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let e = 0;
  for (let i = 0; i < a.length; i++) e += (a[i]! - b[i]!) ** 2;
  return Math.sqrt(e / a.length);
}

export function rms(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! ** 2;
  return Math.sqrt(s / a.length);
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

/** Max |a - b| relative to max |b| (for f32 paths that only differ in summation order). */
export function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d / Math.max(maxAbs(b), 1e-30);
}

/** x [m, k] . w [n, k]^T in f64. */
export function matmulRef(x: ArrayLike<number>, w: ArrayLike<number>, m: number, n: number, k: number): Float64Array {
  const y = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += x[i * k + t]! * w[j * k + t]!;
      y[i * n + j] = s;
    }
  }
  return y;
}

/** Runs fn with the reference kernels selected, restoring the wasm backend after. */
export function withRef<T>(fn: () => T): T {
  setKernelBackend("ref");
  try {
    return fn();
  } finally {
    setKernelBackend("wasm");
  }
}

/** Ragged and regular shapes [m, n, k] for fast-vs-reference checks. */
export const SHAPES: ReadonlyArray<readonly [number, number, number]> = [
  [1, 1, 1],
  [1, 7, 5],
  [1, 64, 33],
  [1, 13, 100],
  [2, 4, 16],
  [3, 5, 17],
  [5, 9, 31],
  [4, 8, 64],
  [7, 3, 129],
  [16, 33, 47],
  [9, 12, 256],
];
