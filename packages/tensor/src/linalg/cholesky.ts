import { LowbitError } from "../errors";
import { dot, type SubABt, trsmLowerT } from "./blas-f64";
import { finish, workspace } from "./workspace";

/**
 * Cholesky factorisation and triangular solves on dense row-major Float64Array matrices.
 *
 * Blocked right-looking algorithm: factor a diagonal block, solve the panel below it, update the
 * trailing lower triangle with one C -= A·B^T call per row tile (see blas-f64.ts). Only the lower
 * triangle of the input is read; the result's upper triangle is zero.
 */

export interface InPlaceOption {
  /**
   * Write the result into the input instead of a new array (saves n^2 doubles: ~970 MB at
   * n = 11008). If the call throws, the input's contents are unspecified.
   */
  readonly inPlace?: boolean;
}

/** Block size of the right-looking factorisation (a multiple of 4). */
const NB = 256;
/** Row tile of the trailing update. */
const TILE = 64;

export function checkSquare(a: Float64Array, n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new LowbitError("E_INVALID_ARGUMENT", `${what}: n must be a non-negative integer, got ${n}`);
  }
  if (a.length !== n * n) {
    throw new LowbitError("E_SHAPE_MISMATCH", `${what}: expected ${n}x${n} = ${n * n} values, got ${a.length}`);
  }
}

/**
 * Lower Cholesky factor L of the symmetric positive definite `a` (n x n): a = L L^T.
 * Throws LowbitError E_NOT_POSITIVE_DEFINITE naming the failing pivot (never returns NaN).
 */
export function cholesky(a: Float64Array, n: number, options: InPlaceOption = {}): Float64Array {
  checkSquare(a, n, "cholesky");
  const ws = workspace(n, 0, options.inPlace ? a : undefined);
  try {
    if (ws.x !== a) copyLower(a, ws.x, n);
    choleskyInPlace(ws.x, n, "cholesky", (p) => p, ws.sub);
  } catch (e) {
    ws.dispose();
    throw e;
  }
  return finish(ws, options.inPlace ? a : undefined);
}

/** Copies the lower triangle (with diagonal) of a into x; x's upper triangle is left as it is. */
export function copyLower(a: Float64Array, x: Float64Array, n: number): void {
  for (let i = 0; i < n; i++) x.set(a.subarray(i * n, i * n + i + 1), i * n);
}

/**
 * Factors the lower triangle of `l` in place and zeroes its upper triangle (which it never reads,
 * so it may hold garbage on entry). `pivotName` maps an
 * internal pivot index to the index the caller knows (upperCholeskyOfInverse factors a permuted copy).
 * @internal
 */
export function choleskyInPlace(
  l: Float64Array,
  n: number,
  what: string,
  pivotName: (p: number) => number,
  subABt: SubABt,
): void {
  const diag = new Float64Array(NB);
  for (let k0 = 0; k0 < n; k0 += NB) {
    const k1 = Math.min(n, k0 + NB);
    factorDiagonalBlock(l, n, k0, k1, what, pivotName);
    solvePanel(l, n, k0, k1, diag, subABt);
    // trailing update of the lower triangle: A[i][j] -= L[i][k0:k1] . L[j][k0:k1], k1 <= j <= i
    // (each diagonal tile is updated as a full square; its upper half is never read and is zeroed below)
    for (let i0 = k1; i0 < n; i0 += TILE) {
      const i1 = Math.min(n, i0 + TILE);
      subABt(l, i0 * n + k1, n, l, i0 * n + k0, n, l, k1 * n + k0, n, i1 - i0, i1 - k1, k1 - k0);
    }
  }
  for (let i = 0; i < n; i++) l.fill(0, i * n + i + 1, (i + 1) * n);
}

function factorDiagonalBlock(
  l: Float64Array,
  n: number,
  k0: number,
  k1: number,
  what: string,
  pivotName: (p: number) => number,
): void {
  for (let i = k0; i < k1; i++) {
    const ri = i * n;
    for (let j = k0; j < i; j++) {
      const rj = j * n;
      l[ri + j] = (l[ri + j]! - dot(l, ri + k0, l, rj + k0, j - k0)) / l[rj + j]!;
    }
    const d = l[ri + i]! - dot(l, ri + k0, l, ri + k0, i - k0);
    if (!(d > 0) || d === Number.POSITIVE_INFINITY) {
      const p = pivotName(i);
      throw new LowbitError(
        "E_NOT_POSITIVE_DEFINITE",
        `${what}: the ${n}x${n} matrix is not positive definite: pivot ${p} is ${d} ` +
          `(add damping to the diagonal, or check the matrix for NaN/Inf)`,
      );
    }
    l[ri + i] = Math.sqrt(d);
  }
}

/** L[i][k0:k1] = A[i][k0:k1] · L11^-T for rows i >= k1 (L11 the factored diagonal block). */
function solvePanel(l: Float64Array, n: number, k0: number, k1: number, diag: Float64Array, subABt: SubABt): void {
  for (let j = k0; j < k1; j++) diag[j - k0] = l[j * n + j]!;
  trsmLowerT(l, k1 * n + k0, n, n - k1, k1 - k0, l, k0 * n + k0, n, diag, 0, subABt);
}

function checkRhs(b: Float64Array, n: number, nrhs: number, what: string): void {
  if (!Number.isSafeInteger(nrhs) || nrhs < 1 || b.length !== n * nrhs) {
    throw new LowbitError(
      "E_SHAPE_MISMATCH",
      `${what}: right-hand side must hold ${n}x${nrhs} values (row-major), got ${b.length}`,
    );
  }
}

function checkDiagonal(t: Float64Array, n: number, what: string): void {
  for (let i = 0; i < n; i++) {
    const d = t[i * n + i]!;
    if (d === 0 || !Number.isFinite(d)) {
      throw new LowbitError("E_INVALID_ARGUMENT", `${what}: triangular matrix is singular: diagonal ${i} is ${d}`);
    }
  }
}

/**
 * Solves L x = b by forward substitution (L lower, n x n; only its lower triangle is read).
 * b is [n] or [n, nrhs] row-major; returns a new array.
 */
export function solveLower(l: Float64Array, b: Float64Array, n: number, nrhs = 1): Float64Array {
  checkSquare(l, n, "solveLower");
  checkRhs(b, n, nrhs, "solveLower");
  checkDiagonal(l, n, "solveLower");
  const x = Float64Array.from(b);
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    const xi = i * nrhs;
    for (let k = 0; k < i; k++) {
      const f = l[ri + k]!;
      if (f === 0) continue;
      const xk = k * nrhs;
      for (let r = 0; r < nrhs; r++) x[xi + r]! -= f * x[xk + r]!;
    }
    const inv = 1 / l[ri + i]!;
    for (let r = 0; r < nrhs; r++) x[xi + r]! *= inv;
  }
  return x;
}

/**
 * Solves U x = b by back substitution (U upper, n x n; only its upper triangle is read).
 * b is [n] or [n, nrhs] row-major; returns a new array.
 */
export function solveUpper(u: Float64Array, b: Float64Array, n: number, nrhs = 1): Float64Array {
  checkSquare(u, n, "solveUpper");
  checkRhs(b, n, nrhs, "solveUpper");
  checkDiagonal(u, n, "solveUpper");
  const x = Float64Array.from(b);
  for (let i = n - 1; i >= 0; i--) {
    const ri = i * n;
    const xi = i * nrhs;
    for (let k = i + 1; k < n; k++) {
      const f = u[ri + k]!;
      if (f === 0) continue;
      const xk = k * nrhs;
      for (let r = 0; r < nrhs; r++) x[xi + r]! -= f * x[xk + r]!;
    }
    const inv = 1 / u[ri + i]!;
    for (let r = 0; r < nrhs; r++) x[xi + r]! *= inv;
  }
  return x;
}

/** Solves a x = b given the Cholesky factor L of a (a = L L^T). b is [n] or [n, nrhs]. */
export function choleskySolve(l: Float64Array, b: Float64Array, n: number, nrhs = 1): Float64Array {
  const y = solveLower(l, b, n, nrhs);
  // back substitution with L^T: x[i] = (y[i] - sum_{k>i} L[k][i] x[k]) / L[i][i], done column-wise
  for (let i = n - 1; i >= 0; i--) {
    const xi = i * nrhs;
    const inv = 1 / l[i * n + i]!;
    for (let r = 0; r < nrhs; r++) y[xi + r]! *= inv;
    for (let k = 0; k < i; k++) {
      const f = l[i * n + k]!;
      if (f === 0) continue;
      const xk = k * nrhs;
      for (let r = 0; r < nrhs; r++) y[xk + r]! -= f * y[xi + r]!;
    }
  }
  return y;
}
