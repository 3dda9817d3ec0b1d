/**
 * The three products training needs, on row-major f32 matrices:
 *   abt: A[m,k] · B[n,k]^T -> [m,n]   (forward of x W^T; gradient of x is dy · W = ab)
 *   ab:  A[m,k] · B[k,n]   -> [m,n]
 *   atb: A[r,m]^T · B[r,n] -> [m,n]   (gradient of W is dy^T · x)
 * Plain loops; accumulation in doubles per output element (abt) or f32 rows (ab).
 */

export function gemmABt(a: Float32Array, b: Float32Array, m: number, n: number, k: number, out?: Float32Array): Float32Array {
  const c = out ?? new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    const ai = i * k;
    const ci = i * n;
    for (let j = 0; j < n; j++) {
      const bj = j * k;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      let p = 0;
      for (; p + 3 < k; p += 4) {
        s0 += a[ai + p]! * b[bj + p]!;
        s1 += a[ai + p + 1]! * b[bj + p + 1]!;
        s2 += a[ai + p + 2]! * b[bj + p + 2]!;
        s3 += a[ai + p + 3]! * b[bj + p + 3]!;
      }
      for (; p < k; p++) s0 += a[ai + p]! * b[bj + p]!;
      c[ci + j] = s0 + s1 + (s2 + s3);
    }
  }
  return c;
}

export function gemmAB(a: Float32Array, b: Float32Array, m: number, n: number, k: number, out?: Float32Array): Float32Array {
  const c = out ?? new Float32Array(m * n);
  const row = new Float64Array(n);
  for (let i = 0; i < m; i++) {
    row.fill(0);
    const ai = i * k;
    for (let p = 0; p < k; p++) {
      const av = a[ai + p]!;
      if (av === 0) continue;
      const bp = p * n;
      for (let j = 0; j < n; j++) row[j]! += av * b[bp + j]!;
    }
    const ci = i * n;
    for (let j = 0; j < n; j++) c[ci + j] = row[j]!;
  }
  return c;
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
  const c = out ?? new Float32Array(m * n);
  const acc = new Float64Array(m * n);
  if (accumulate) for (let i = 0; i < m * n; i++) acc[i] = c[i]!;
  for (let t = 0; t < r; t++) {
    const at = t * m;
    const bt = t * n;
    for (let i = 0; i < m; i++) {
      const av = a[at + i]!;
      if (av === 0) continue;
      const ci = i * n;
      for (let j = 0; j < n; j++) acc[ci + j]! += av * b[bt + j]!;
    }
  }
  for (let i = 0; i < m * n; i++) c[i] = acc[i]!;
  return c;
}
