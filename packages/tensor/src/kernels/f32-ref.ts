/**
 * Reference twins of the f32 kernels: obvious loops, accumulating in f64. The ground truth the
 * WebAssembly fast paths are tested against, and the "ref" kernel backend.
 */

/** C[m,n] = A[m,k] . B[n,k]^T (B in the nn.Linear [out, in] layout). */
export function matmulABtRef(
  a: Float32Array,
  b: Float32Array,
  m: number,
  n: number,
  k: number,
  out: Float32Array = new Float32Array(m * n),
): Float32Array {
  for (let i = 0; i < m; i++) {
    const ai = i * k;
    for (let j = 0; j < n; j++) {
      const bj = j * k;
      let s = 0;
      for (let t = 0; t < k; t++) s += a[ai + t]! * b[bj + t]!;
      out[i * n + j] = s;
    }
  }
  return out;
}

/** C[m,n] = A[m,k] . B[k,n]. */
export function matmulABRef(
  a: Float32Array,
  b: Float32Array,
  m: number,
  n: number,
  k: number,
  out: Float32Array = new Float32Array(m * n),
): Float32Array {
  const acc = new Float64Array(n);
  for (let i = 0; i < m; i++) {
    acc.fill(0);
    for (let t = 0; t < k; t++) {
      const x = a[i * k + t]!;
      const bt = t * n;
      for (let j = 0; j < n; j++) acc[j]! += x * b[bt + j]!;
    }
    for (let j = 0; j < n; j++) out[i * n + j] = acc[j]!;
  }
  return out;
}

/** y[n] = W[n,k] . x[k]. */
export function gemvRef(
  w: Float32Array,
  x: Float32Array,
  n: number,
  k: number,
  out: Float32Array = new Float32Array(n),
): Float32Array {
  return matmulABtRef(x, w, 1, n, k, out);
}
