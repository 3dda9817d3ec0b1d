import { matmulAB, matmulABt } from "@lowbit/tensor";

/**
 * The three products training needs, on row-major f32 matrices, through @lowbit/tensor's f32
 * GEMM (WebAssembly SIMD, or its reference twin under setKernelBackend("ref")):
 *   abt: A[m,k] · B[n,k]^T -> [m,n]   (forward of x W^T)
 *   ab:  A[m,k] · B[k,n]   -> [m,n]   (gradient of x: dy · W)
 *   atb: A[r,m]^T · B[r,n] -> [m,n]   (gradient of W: dy^T · x), as A^T (transposed copy) · B
 */

export function gemmABt(a: Float32Array, b: Float32Array, m: number, n: number, k: number, out?: Float32Array): Float32Array {
  return matmulABt(a, b, m, n, k, out ?? new Float32Array(m * n));
}

export function gemmAB(a: Float32Array, b: Float32Array, m: number, n: number, k: number, out?: Float32Array): Float32Array {
  return matmulAB(a, b, m, n, k, out ?? new Float32Array(m * n));
}

/** A[r,m]^T · B[r,n] -> [m,n]; with `accumulate`, adds into `out`. */
export function gemmAtB(
  a: Float32Array,
  b: Float32Array,
  r: number,
  m: number,
  n: number,
  out?: Float32Array,
  accumulate = false,
): Float32Array {
  const at = transpose(a, r, m);
  const prod = matmulAB(at, b, m, n, r);
  if (!out) return prod;
  if (accumulate) for (let i = 0; i < prod.length; i++) out[i]! += prod[i]!;
  else out.set(prod);
  return out;
}

/** [rows, cols] -> [cols, rows], in blocks for cache locality. */
export function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(rows * cols);
  const B = 32;
  for (let i0 = 0; i0 < rows; i0 += B) {
    const i1 = Math.min(rows, i0 + B);
    for (let j0 = 0; j0 < cols; j0 += B) {
      const j1 = Math.min(cols, j0 + B);
      for (let i = i0; i < i1; i++) for (let j = j0; j < j1; j++) t[j * rows + i] = a[i * cols + j]!;
    }
  }
  return t;
}
