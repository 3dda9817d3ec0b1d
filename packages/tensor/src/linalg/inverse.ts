import { LowbitError } from "../errors";
import { type SubABt, trsmLowerT } from "./blas-f64";
import { checkSquare, choleskyInPlace, copyLower, type InPlaceOption } from "./cholesky";
import { finish, type Workspace, workspace } from "./workspace";

/**
 * Inverses built on the Cholesky factor, all working inside one n x n Float64Array plus O(n)
 * scratch rows: at n = 11008 (~970 MB per matrix) the input, the result (none with `inPlace`) and,
 * with the "wasm" backend, the working copy in kernel memory (see workspace.ts).
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

/** Runs `body` on a workspace, releasing it if `body` throws. */
function run(
  n: number,
  tmpLength: number,
  input: Float64Array,
  inPlace: boolean | undefined,
  body: (ws: Workspace) => void,
): Float64Array {
  const ws = workspace(n, tmpLength, inPlace ? input : undefined);
  try {
    body(ws);
  } catch (e) {
    ws.dispose();
    throw e;
  }
  return finish(ws, inPlace ? input : undefined);
}

/** The inverse of the SPD matrix whose lower Cholesky factor is `l` (a = L L^T); symmetric, full. */
export function choleskyInverse(l: Float64Array, n: number, options: InPlaceOption = {}): Float64Array {
  checkSquare(l, n, "choleskyInverse");
  return run(n, NB * n + NB * NB, l, options.inPlace, ({ x, tmp, sub }) => {
    if (x !== l) copyLower(l, x, n);
    invertLowerToUpperTransposed(x, n, "choleskyInverse", tmp, sub);
    gramUpperToLower(x, n, tmp, sub);
    mirrorLowerToUpper(x, n);
  });
}

/** The inverse of a symmetric positive definite matrix (only its lower triangle is read). */
export function inverseSPD(a: Float64Array, n: number, options: InPlaceOption = {}): Float64Array {
  checkSquare(a, n, "inverseSPD");
  return run(n, NB * n + NB * NB, a, options.inPlace, ({ x, tmp, sub }) => {
    if (x !== a) copyLower(a, x, n);
    choleskyInPlace(x, n, "inverseSPD", (p) => p, sub);
    invertLowerToUpperTransposed(x, n, "inverseSPD", tmp, sub);
    gramUpperToLower(x, n, tmp, sub);
    mirrorLowerToUpper(x, n);
  });
}

/**
 * The upper triangular U (positive diagonal) with a^-1 = U^T U, for symmetric positive definite a
 * (only its lower triangle is read). This is GPTQ's `Hinv`:
 * torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True).
 */
export function upperCholeskyOfInverse(a: Float64Array, n: number, options: InPlaceOption = {}): Float64Array {
  checkSquare(a, n, "upperCholeskyOfInverse");
  return run(n, NB * NB, a, options.inPlace, ({ x, tmp, sub }) => {
    if (x === a) antiTransposeTriangle(x, n, true);
    else reversedLowerCopy(a, x, n);
    // x = lower triangle of J a J; its pivot p is row/column n-1-p of a
    choleskyInPlace(x, n, "upperCholeskyOfInverse", (p) => n - 1 - p, sub);
    invertLowerToUpperTransposed(x, n, "upperCholeskyOfInverse", tmp, sub);
    // upper holds Y = M^-T; U = J M^-1 J = J Y^T J: U[i][j] = Y[n-1-j][n-1-i], an upper -> upper map
    antiTransposeTriangle(x, n, false);
    for (let i = 1; i < n; i++) x.fill(0, i * n, i * n + i);
  });
}

/**
 * Given L in the lower triangle of x (diagonal included), writes Y = L^-T into the upper triangle
 * and diagonal; the strict lower triangle keeps L. Y[j][j] = 1/L[j][j] and, for i > j,
 * Y[j][i] = -(L[i][j:i] . Y[j][j:i]) / L[i][i] (each row of Y is a forward substitution).
 * Done in row blocks J of Y: the block's own triangle in JS, then the strip to its right as one
 * product with the block (through a zero-filled copy in `tmp`), and per column tile I the
 * coupling to earlier tiles (one product) and a triangular solve with L's diagonal block at I.
 */
function invertLowerToUpperTransposed(x: Float64Array, n: number, what: string, tmp: Float64Array, subABt: SubABt): void {
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
    const b = j1 - j0;
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
    if (j1 === n) break;
    // Yz = the block's Y with zeros below the diagonal (the storage there holds L)
    for (let r = 0; r < b; r++) {
      for (let c = 0; c < b; c++) tmp[r * b + c] = c >= r ? x[(j0 + r) * n + j0 + c]! : 0;
    }
    // strip x[J][j1:n] = -Yz . L[j1:n][J]^T   (t inside the block)
    for (let j = j0; j < j1; j++) x.fill(0, j * n + j1, j * n + n);
    subABt(x, j0 * n + j1, n, tmp, 0, b, x, j1 * n + j0, n, b, n - j1, b);
    for (let i0 = j1; i0 < n; i0 += NB) {
      const i1 = Math.min(n, i0 + NB);
      // t in [j1, i0): earlier tiles of this strip
      subABt(x, j0 * n + i0, n, x, j0 * n + j1, n, x, i0 * n + j1, n, b, i1 - i0, i0 - j1);
      // t in [i0, i): the triangle of L at I
      trsmLowerT(x, j0 * n + i0, n, b, i1 - i0, x, i0 * n + i0, n, d, i0, subABt);
    }
  }
}

/**
 * With Y upper (diagonal included) in x, writes G = Y Y^T into the lower triangle and diagonal:
 * G[i][j] = Y[i][i:n] . Y[j][i:n] for j <= i. Rows are done in blocks I through scratch (a block's
 * own rows of Y are needed until the block is done): tmp holds the |I| x i1 result, then the
 * block's Y with zeros below its diagonal.
 */
function gramUpperToLower(x: Float64Array, n: number, tmp: Float64Array, subABt: SubABt): void {
  const zOff = NB * n;
  for (let i0 = 0; i0 < n; i0 += NB) {
    const i1 = Math.min(n, i0 + NB);
    const b = i1 - i0;
    for (let r = 0; r < b; r++) {
      for (let c = 0; c < b; c++) tmp[zOff + r * b + c] = c >= r ? x[(i0 + r) * n + i0 + c]! : 0;
    }
    tmp.fill(0, 0, b * i1);
    // t in [i1, n), all j < i1
    subABt(tmp, 0, i1, x, i0 * n + i1, n, x, i1, n, b, i1, n - i1);
    // t in I: j < i0 (Y[j][t] is upper there), then j in I (both through the zero-filled block)
    subABt(tmp, 0, i1, tmp, zOff, b, x, i0, n, b, i0, b);
    subABt(tmp, i0, i1, tmp, zOff, b, tmp, zOff, b, b, b, b);
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
