import { getEngine } from "../engine/engine";
import { type KernelPart, runKernelParts } from "../engine/threads";
import { splitRange, threadParts } from "../kernels/f32";
import { wasmBase64 } from "../wasm/f64.generated";

/**
 * The one heavy primitive of the f64 linear algebra: C -= A · B^T on row-major sub-matrices,
 * where every entry is a dot product of two contiguous row segments:
 *
 *   c[ci + i*ldc + j] -= sum_{t<k} a[ai + i*lda + t] * b[bi + j*ldb + t]   (i < m, j < n)
 *
 * Cholesky's trailing update, the triangular inverse and the Gram product Y·Y^T are all written
 * in terms of it, so the algorithms take it as a parameter: `subABtJs` on any Float64Arrays, or
 * `wasmSubABt(pack)` (WebAssembly SIMD, f64x2) when every matrix is a view of kernel memory.
 * The JS version is cache-blocked (k in chunks of KC, B rows in tiles of NC) and register-blocked
 * (4 rows of A x 2 rows of B: 8 independent accumulators, 6 loads per 8 multiply-adds).
 */
export type SubABt = (
  c: Float64Array,
  ci: number,
  ldc: number,
  a: Float64Array,
  ai: number,
  lda: number,
  b: Float64Array,
  bi: number,
  ldb: number,
  m: number,
  n: number,
  k: number,
) => void;

interface F64Kernels {
  pack_bytes_f64(): number;
  sub_abt_f64(
    c: number,
    ldc: number,
    a: number,
    lda: number,
    b: number,
    ldb: number,
    m: number,
    n: number,
    k: number,
    pack: number,
  ): void;
}

export const f64Module = { name: "tensor/f64", base64: wasmBase64 } as const;

export function f64Kernels(): F64Kernels {
  return getEngine().exports<F64Kernels>(f64Module);
}

/**
 * subABt in WebAssembly. Every array passed must be a (live) view of kernel memory; `pack` is
 * `pack_bytes_f64()` bytes of kernel memory reserved for this caller.
 */
export function wasmSubABt(pack: number): SubABt {
  const kx = f64Kernels();
  return (c, ci, ldc, a, ai, lda, b, bi, ldb, m, n, k) => {
    if (m <= 0 || n <= 0 || k <= 0) return;
    kx.sub_abt_f64(c.byteOffset + ci * 8, ldc, a.byteOffset + ai * 8, lda, b.byteOffset + bi * 8, ldb, m, n, k, pack);
  };
}

/**
 * wasmSubABt split across the kernel threads by columns of C (B's rows), in multiples of 4 so
 * every element of C takes the same path through the kernel as on one thread (the kernel's row
 * blocking is untouched): bit-identical results. `packs` holds one pack_bytes_f64() scratch per
 * thread (part i uses packs[i]); calls too small to be worth a dispatch run on this thread.
 */
export function wasmSubABtThreaded(packs: readonly number[]): SubABt {
  const kx = f64Kernels();
  return (c, ci, ldc, a, ai, lda, b, bi, ldb, m, n, k) => {
    if (m <= 0 || n <= 0 || k <= 0) return;
    const pc = c.byteOffset + ci * 8;
    const pa = a.byteOffset + ai * 8;
    const pb = b.byteOffset + bi * 8;
    const parts = Math.min(packs.length, threadParts(m * n * k, Math.ceil(n / 4)));
    if (parts <= 1) {
      kx.sub_abt_f64(pc, ldc, pa, lda, pb, ldb, m, n, k, packs[0]!);
      return;
    }
    const bounds = splitRange(n, parts, 4);
    const list: KernelPart[] = [];
    for (let i = 0; i < parts; i++) {
      const [j0, j1] = [bounds[i]!, bounds[i + 1]!];
      if (j0 < j1) list.push({ module: f64Module, fn: "sub_abt_f64", args: [pc + j0 * 8, ldc, pa, lda, pb + j0 * ldb * 8, ldb, m, j1 - j0, k, packs[i]!] });
    }
    runKernelParts(list);
  };
}

const KC = 256;
const NC = 32;

export const subABtJs: SubABt = function subABt(
  c: Float64Array,
  ci: number,
  ldc: number,
  a: Float64Array,
  ai: number,
  lda: number,
  b: Float64Array,
  bi: number,
  ldb: number,
  m: number,
  n: number,
  k: number,
): void {
  if (m <= 0 || n <= 0 || k <= 0) return;
  for (let k0 = 0; k0 < k; k0 += KC) {
    const kl = Math.min(KC, k - k0);
    for (let j0 = 0; j0 < n; j0 += NC) {
      const j1 = Math.min(n, j0 + NC);
      let i = 0;
      for (; i + 4 <= m; i += 4) {
        const ar = ai + i * lda + k0;
        const cr = ci + i * ldc;
        let j = j0;
        for (; j + 2 <= j1; j += 2) kernel4x2(c, cr + j, ldc, a, ar, lda, b, bi + j * ldb + k0, ldb, kl);
        if (j < j1) kernel4x1(c, cr + j, ldc, a, ar, lda, b, bi + j * ldb + k0, kl);
      }
      for (; i < m; i++) {
        const ar = ai + i * lda + k0;
        const cr = ci + i * ldc;
        let j = j0;
        for (; j + 2 <= j1; j += 2) kernel1x2(c, cr + j, a, ar, b, bi + j * ldb + k0, ldb, kl);
        if (j < j1) c[cr + j]! -= dot(a, ar, b, bi + j * ldb + k0, kl);
      }
    }
  }
};

/** sum_{t<k} x[xi+t] * y[yi+t] */
export function dot(x: Float64Array, xi: number, y: Float64Array, yi: number, k: number): number {
  let s0 = 0;
  let s1 = 0;
  let t = 0;
  for (; t + 2 <= k; t += 2) {
    s0 += x[xi + t]! * y[yi + t]!;
    s1 += x[xi + t + 1]! * y[yi + t + 1]!;
  }
  if (t < k) s0 += x[xi + t]! * y[yi + t]!;
  return s0 + s1;
}

function kernel4x2(
  c: Float64Array,
  cc: number,
  ldc: number,
  a: Float64Array,
  a0: number,
  lda: number,
  b: Float64Array,
  b0: number,
  ldb: number,
  k: number,
): void {
  const a1 = a0 + lda;
  const a2 = a1 + lda;
  const a3 = a2 + lda;
  const b1 = b0 + ldb;
  let s00 = 0;
  let s01 = 0;
  let s10 = 0;
  let s11 = 0;
  let s20 = 0;
  let s21 = 0;
  let s30 = 0;
  let s31 = 0;
  for (let t = 0; t < k; t++) {
    const y0 = b[b0 + t]!;
    const y1 = b[b1 + t]!;
    const x0 = a[a0 + t]!;
    const x1 = a[a1 + t]!;
    const x2 = a[a2 + t]!;
    const x3 = a[a3 + t]!;
    s00 += x0 * y0;
    s01 += x0 * y1;
    s10 += x1 * y0;
    s11 += x1 * y1;
    s20 += x2 * y0;
    s21 += x2 * y1;
    s30 += x3 * y0;
    s31 += x3 * y1;
  }
  c[cc]! -= s00;
  c[cc + 1]! -= s01;
  c[cc + ldc]! -= s10;
  c[cc + ldc + 1]! -= s11;
  c[cc + 2 * ldc]! -= s20;
  c[cc + 2 * ldc + 1]! -= s21;
  c[cc + 3 * ldc]! -= s30;
  c[cc + 3 * ldc + 1]! -= s31;
}

function kernel4x1(
  c: Float64Array,
  cc: number,
  ldc: number,
  a: Float64Array,
  a0: number,
  lda: number,
  b: Float64Array,
  b0: number,
  k: number,
): void {
  const a1 = a0 + lda;
  const a2 = a1 + lda;
  const a3 = a2 + lda;
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  for (let t = 0; t < k; t++) {
    const y = b[b0 + t]!;
    s0 += a[a0 + t]! * y;
    s1 += a[a1 + t]! * y;
    s2 += a[a2 + t]! * y;
    s3 += a[a3 + t]! * y;
  }
  c[cc]! -= s0;
  c[cc + ldc]! -= s1;
  c[cc + 2 * ldc]! -= s2;
  c[cc + 3 * ldc]! -= s3;
}

function kernel1x2(
  c: Float64Array,
  cc: number,
  a: Float64Array,
  a0: number,
  b: Float64Array,
  b0: number,
  ldb: number,
  k: number,
): void {
  const b1 = b0 + ldb;
  let s0 = 0;
  let s1 = 0;
  for (let t = 0; t < k; t++) {
    const x = a[a0 + t]!;
    s0 += x * b[b0 + t]!;
    s1 += x * b[b1 + t]!;
  }
  c[cc]! -= s0;
  c[cc + 1]! -= s1;
}

/** Columns per step of trsmLowerT: the part in JS is rows x cols x SB/2 multiply-adds. */
const SB = 8;

/**
 * In place X <- X · L^-T: solves X' L^T = X for X' where X is rows x cols at x[xi] (stride ldx)
 * and L is the cols x cols lower triangle at l[li] (stride ldl; only its strict lower part is
 * read) with diagonal `diag[0..cols)`. Column blocks of SB: the coupling to earlier blocks is one
 * subABt call, the SB-wide triangle is solved in JS.
 */
export function trsmLowerT(
  x: Float64Array,
  xi: number,
  ldx: number,
  rows: number,
  cols: number,
  l: Float64Array,
  li: number,
  ldl: number,
  diag: Float64Array,
  diagOffset: number,
  subABt: SubABt,
): void {
  for (let s0 = 0; s0 < cols; s0 += SB) {
    const s1 = Math.min(cols, s0 + SB);
    if (s0 > 0) subABt(x, xi + s0, ldx, x, xi, ldx, l, li + s0 * ldl, ldl, rows, s1 - s0, s0);
    for (let r = 0; r < rows; r++) {
      const xr = xi + r * ldx;
      for (let j = s0; j < s1; j++) {
        const lj = li + j * ldl;
        let s = x[xr + j]!;
        for (let t = s0; t < j; t++) s -= x[xr + t]! * l[lj + t]!;
        x[xr + j] = s / diag[diagOffset + j]!;
      }
    }
  }
}
