import { LowbitError } from "../errors";
import { subABt } from "./blas-f64";
import { type InPlaceOption, checkSquare, choleskyInPlace } from "./cholesky";

/**
 * Inverses built on the Cholesky factor, all working inside one n x n Float64Array (the result),
 * so n = 11008 needs the input plus one ~970 MB result (or only the input with `inPlace`).
 *
 * - Y = L^-T (upper) is computed in the upper triangle while L stays in the strict lower one.
 * - choleskyInverse: a^-1 = L^-T L^-1 = Y Y^T, written into the lower triangle, then mirrored.
 * - upperCholeskyOfInverse: the upper U with a^-1 = U^T U. With J the reversal permutation,
 *   J a J = M M^T (M lower) gives a = R R^T for the upper R = J M J, so U = R^-1 = J M^-1 J.
 *   That is one Cholesky and one triangular inverse (n^3/3 multiply-adds) instead of GPTQ's
 *   cholesky -> cholesky_inverse -> cholesky (2n^3/3); the factor is unique, so the result is the same.
 */

/** Rows of Y per block, and columns per tile (multiples of 4). */
const NB = 64;

/** The inverse of the SPD matrix whose lower Cholesky factor is `l` (a = L L^T); symmetric, full. */
export function choleskyInverse(l: Float64Array, n: number, options: InPlaceOption = {}): Float64Array {
  checkSquare(l, n, "choleskyInverse");
  const x = options.inPlace ? l : Float64Array.from(l);
  invertLowerToUpperTransposed(x, n, "choleskyInverse");
  gramUpperToLower(x, n);
  mirrorLowerToUpper(x, n);
  return x;
}

/** The inverse of a symmetric positive definite matrix (only its lower triangle is read). */
export function inverseSPD(a: Float64Array, n: number, options: InPlaceOption = {}): Float64Array {
  checkSquare(a, n, "inverseSPD");
  const x = options.inPlace ? a : Float64Array.from(a);
  choleskyInPlace(x, n, "inverseSPD", (p) => p);
  invertLowerToUpperTransposed(x, n, "inverseSPD");
  gramUpperToLower(x, n);
  mirrorLowerToUpper(x, n);
  return x;
}

/**
 * The upper triangular U (positive diagonal) with a^-1 = U^T U, for symmetric positive definite a
 * (only its lower triangle is read). This is GPTQ's `Hinv`:
 * torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True).
 */
export function upperCholeskyOfInverse(a: Float64Array, n: number, options: InPlaceOption = {}): Float64Array {
  checkSquare(a, n, "upperCholeskyOfInverse");
  let x: Float64Array;
  if (options.inPlace) {
    x = a;
    antiTransposeTriangle(x, n, true);
  } else {
    x = new Float64Array(n * n);
    reversedLowerCopy(a, x, n);
  }
  // x = lower triangle of J a J; its pivot p is row/column n-1-p of a
  choleskyInPlace(x, n, "upperCholeskyOfInverse", (p) => n - 1 - p);
  invertLowerToUpperTransposed(x, n, "upperCholeskyOfInverse");
  // upper holds Y = M^-T; U = J M^-1 J = J Y^T J: U[i][j] = Y[n-1-j][n-1-i], an upper -> upper map
  antiTransposeTriangle(x, n, false);
  for (let i = 1; i < n; i++) x.fill(0, i * n, i * n + i);
  return x;
}

/**
 * Given L in the lower triangle of x (diagonal included), writes Y = L^-T into the upper triangle
 * and diagonal; the strict lower triangle keeps L. Y[j][j] = 1/L[j][j] and, for i > j,
 * Y[j][i] = -(L[i][j:i] . Y[j][j:i]) / L[i][i] (each row of Y is a forward substitution).
 */
function invertLowerToUpperTransposed(x: Float64Array, n: number, what: string): void {
  const d = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const v = x[i * n + i]!;
    if (!(v !== 0 && Number.isFinite(v))) {
      throw new LowbitError("E_INVALID_ARGUMENT", `${what}: Cholesky factor is singular: diagonal ${i} is ${v}`);
    }
    d[i] = v;
  }
  for (let j0 = 0; j0 < n; j0 += NB) {
    const j1 = Math.min(n, j0 + NB);
    // diagonal block: rows and columns j0..j1
    for (let j = j0; j < j1; j++) {
      const rj = j * n;
      x[rj + j] = 1 / d[j]!;
      for (let i = j + 1; i < j1; i++) {
        let s = 0;
        for (let t = j; t < i; t++) s += x[i * n + t]! * x[rj + t]!;
        x[rj + i] = -s / d[i]!;
      }
    }
    // tiles of columns i0..i1 to the right of the block
    for (let i0 = j1; i0 < n; i0 += NB) {
      const i1 = Math.min(n, i0 + NB);
      for (let j = j0; j < j1; j++) {
        x.fill(0, j * n + i0, j * n + i1);
        // t in [j, j1): inside the block's triangle
        subABt(x, j * n + i0, n, x, j * n + j, n, x, i0 * n + j, n, 1, i1 - i0, j1 - j);
      }
      // t in [j1, i0): the bulk, a plain product
      subABt(x, j0 * n + i0, n, x, j0 * n + j1, n, x, i0 * n + j1, n, j1 - j0, i1 - i0, i0 - j1);
      // t in [i0, i): column by column inside the tile
      for (let i = i0; i < i1; i++) {
        subABt(x, j0 * n + i, n, x, j0 * n + i0, n, x, i * n + i0, n, j1 - j0, 1, i - i0);
        const inv = 1 / d[i]!;
        for (let j = j0; j < j1; j++) x[j * n + i]! *= inv;
      }
    }
  }
}

/**
 * With Y upper (diagonal included) in x, writes G = Y Y^T into the lower triangle and diagonal:
 * G[i][j] = Y[i][i:n] . Y[j][i:n] for j <= i. Rows are done in blocks through a scratch tile,
 * because a block's own rows of Y are still needed until the block is done.
 */
function gramUpperToLower(x: Float64Array, n: number): void {
  const tmp = new Float64Array(NB * n);
  for (let i0 = 0; i0 < n; i0 += NB) {
    const i1 = Math.min(n, i0 + NB);
    const m = i1 - i0;
    tmp.fill(0, 0, m * i1);
    // t in [i1, n) for all j < i1
    subABt(tmp, 0, i1, x, i0 * n + i1, n, x, i1, n, m, i1, n - i1);
    // t in [i, i1) for row i and j <= i
    for (let i = i0; i < i1; i++) subABt(tmp, (i - i0) * i1, i1, x, i * n + i, n, x, i, n, 1, i + 1, i1 - i);
    for (let i = i0; i < i1; i++) {
      const r = (i - i0) * i1;
      for (let j = 0; j <= i; j++) x[i * n + j] = -tmp[r + j]!;
    }
  }
}

/** Copies the strict lower triangle onto the upper one (tiled for the cache). */
function mirrorLowerToUpper(x: Float64Array, n: number): void {
  const T = 64;
  for (let i0 = 0; i0 < n; i0 += T) {
    const i1 = Math.min(n, i0 + T);
    for (let j0 = 0; j0 <= i0; j0 += T) {
      const j1 = Math.min(n, j0 + T);
      for (let i = i0; i < i1; i++) {
        const je = Math.min(j1, i);
        for (let j = j0; j < je; j++) x[j * n + i] = x[i * n + j]!;
      }
    }
  }
}

/** out[i][j] = a[n-1-j][n-1-i] for j <= i (the lower triangle of J a J for symmetric a, read from a's lower). */
function reversedLowerCopy(a: Float64Array, out: Float64Array, n: number): void {
  const T = 64;
  for (let i0 = 0; i0 < n; i0 += T) {
    const i1 = Math.min(n, i0 + T);
    for (let j0 = 0; j0 <= i0; j0 += T) {
      const j1 = Math.min(n, j0 + T);
      for (let j = j0; j < j1; j++) {
        const src = (n - 1 - j) * n + (n - 1);
        for (let i = Math.max(i0, j); i < i1; i++) out[i * n + j] = a[src - i]!;
      }
    }
  }
}

/**
 * In place, within one triangle: x[i][j] <-> x[n-1-j][n-1-i] (transpose about the anti-diagonal).
 * Maps the lower triangle to itself (lower = true) or the upper one to itself.
 */
function antiTransposeTriangle(x: Float64Array, n: number, lower: boolean): void {
  const T = 64;
  for (let i0 = 0; i0 < n; i0 += T) {
    const i1 = Math.min(n, i0 + T);
    for (let j0 = 0; j0 < n; j0 += T) {
      const j1 = Math.min(n, j0 + T);
      if (lower ? j0 > i1 : j1 < i0) continue;
      for (let i = i0; i < i1; i++) {
        const jlo = lower ? j0 : Math.max(j0, i);
        const jhi = lower ? Math.min(j1, i + 1) : j1;
        // swap once per pair: the partner (n-1-j, n-1-i) lies in a later row when i + j < n - 1
        const jmax = Math.min(jhi, n - 1 - i);
        for (let j = jlo; j < jmax; j++) {
          const p = (n - 1 - j) * n + (n - 1 - i);
          const q = i * n + j;
          const t = x[q]!;
          x[q] = x[p]!;
          x[p] = t;
        }
      }
    }
  }
}
