// f64 kernels for the dense linear algebra (Cholesky, triangular inverse, Gram products).
// Pointers are byte offsets into the engine's shared memory; strides are in elements.
// No static data, no strings (the module shares one memory with every other module).

/** Steps of k per packed panel of B (KC * 4 doubles = 8 KiB). */
const KC: i32 = 256;
/** Rows of A per block. */
const MC: i32 = 64;

/** Bytes of `pack` scratch sub_abt_f64 needs: the panel plus a 4x4 tile. */
export function pack_bytes_f64(): i32 {
  return KC * 32 + 128;
}

/** dst[t*4 + c] = B[j + c][kc + t] for t < kl, c < jn (zero for c >= jn). */
function pack_bt(b: usize, ldb: usize, j: i32, jn: i32, kc: i32, kl: i32, dst: usize): void {
  const src = b + ((<usize>j * ldb + <usize>kc) << 3);
  const rs = ldb << 3;
  let t = 0;
  if (jn == 4) {
    for (; t + 2 <= kl; t += 2) {
      const p = src + (<usize>t << 3);
      const r0 = v128.load(p);
      const r1 = v128.load(p + rs);
      const r2 = v128.load(p + 2 * rs);
      const r3 = v128.load(p + 3 * rs);
      const d = dst + (<usize>t << 5);
      v128.store(d, f64x2.shuffle(r0, r1, 0, 2));
      v128.store(d, f64x2.shuffle(r2, r3, 0, 2), 16);
      v128.store(d, f64x2.shuffle(r0, r1, 1, 3), 32);
      v128.store(d, f64x2.shuffle(r2, r3, 1, 3), 48);
    }
  }
  for (; t < kl; t++) {
    const d = dst + (<usize>t << 5);
    for (let c = 0; c < 4; c++) {
      store<f64>(d + (<usize>c << 3), c < jn ? load<f64>(src + <usize>c * rs + (<usize>t << 3)) : 0);
    }
  }
}

/** C[4 x 4] -= A[4 rows, kl] . P[kl x 4]; `a` at A[i][kc] (row stride as bytes), `c` row stride cs bytes. */
// @ts-ignore: decorator
@inline
function tile4x4(a: usize, as: usize, p: usize, kl: i32, c: usize, cs: usize): void {
  let c00 = f64x2.splat(0);
  let c01 = f64x2.splat(0);
  let c10 = f64x2.splat(0);
  let c11 = f64x2.splat(0);
  let c20 = f64x2.splat(0);
  let c21 = f64x2.splat(0);
  let c30 = f64x2.splat(0);
  let c31 = f64x2.splat(0);
  const a1 = a + as;
  const a2 = a1 + as;
  const a3 = a2 + as;
  const end = <usize>kl << 3;
  let q = p;
  for (let t: usize = 0; t < end; t += 8) {
    const y0 = v128.load(q);
    const y1 = v128.load(q, 16);
    q += 32;
    let x = v128.load64_splat(a + t);
    c00 = f64x2.add(c00, f64x2.mul(x, y0));
    c01 = f64x2.add(c01, f64x2.mul(x, y1));
    x = v128.load64_splat(a1 + t);
    c10 = f64x2.add(c10, f64x2.mul(x, y0));
    c11 = f64x2.add(c11, f64x2.mul(x, y1));
    x = v128.load64_splat(a2 + t);
    c20 = f64x2.add(c20, f64x2.mul(x, y0));
    c21 = f64x2.add(c21, f64x2.mul(x, y1));
    x = v128.load64_splat(a3 + t);
    c30 = f64x2.add(c30, f64x2.mul(x, y0));
    c31 = f64x2.add(c31, f64x2.mul(x, y1));
  }
  v128.store(c, f64x2.sub(v128.load(c), c00));
  v128.store(c, f64x2.sub(v128.load(c, 16), c01), 16);
  v128.store(c + cs, f64x2.sub(v128.load(c + cs), c10));
  v128.store(c + cs, f64x2.sub(v128.load(c + cs, 16), c11), 16);
  v128.store(c + 2 * cs, f64x2.sub(v128.load(c + 2 * cs), c20));
  v128.store(c + 2 * cs, f64x2.sub(v128.load(c + 2 * cs, 16), c21), 16);
  v128.store(c + 3 * cs, f64x2.sub(v128.load(c + 3 * cs), c30));
  v128.store(c + 3 * cs, f64x2.sub(v128.load(c + 3 * cs, 16), c31), 16);
}

/** One row of tile4x4. */
// @ts-ignore: decorator
@inline
function tile1x4(a: usize, p: usize, kl: i32, c: usize): void {
  let c0 = f64x2.splat(0);
  let c1 = f64x2.splat(0);
  const end = <usize>kl << 3;
  let q = p;
  for (let t: usize = 0; t < end; t += 8) {
    const x = v128.load64_splat(a + t);
    c0 = f64x2.add(c0, f64x2.mul(x, v128.load(q)));
    c1 = f64x2.add(c1, f64x2.mul(x, v128.load(q, 16)));
    q += 32;
  }
  v128.store(c, f64x2.sub(v128.load(c), c0));
  v128.store(c, f64x2.sub(v128.load(c, 16), c1), 16);
}

/**
 * C -= A . B^T on row-major sub-matrices (strides in elements):
 * C[i][j] -= sum_{t<k} A[i][t] * B[j][t] for i < m, j < n.
 * `pack` is pack_bytes_f64() of scratch owned by this caller.
 */
export function sub_abt_f64(
  c: usize, ldc: i32, a: usize, lda: i32, b: usize, ldb: i32, m: i32, n: i32, k: i32, pack: usize,
): void {
  const cs = <usize>ldc << 3;
  const as = <usize>lda << 3;
  const tmp = pack + (<usize>KC << 5);
  for (let kc = 0; kc < k; kc += KC) {
    const kl = min(KC, k - kc);
    const ak = a + (<usize>kc << 3);
    for (let ic = 0; ic < m; ic += MC) {
      const ie = min(m, ic + MC);
      for (let j = 0; j < n; j += 4) {
        const jn = min(4, n - j);
        pack_bt(b, <usize>ldb, j, jn, kc, kl, pack);
        const cj = c + (<usize>j << 3);
        if (jn == 4) {
          let i = ic;
          for (; i + 4 <= ie; i += 4) tile4x4(ak + <usize>i * as, as, pack, kl, cj + <usize>i * cs, cs);
          for (; i < ie; i++) tile1x4(ak + <usize>i * as, pack, kl, cj + <usize>i * cs);
        } else {
          for (let i = ic; i < ie; i++) {
            const row = cj + <usize>i * cs;
            for (let q = 0; q < 4; q++) store<f64>(tmp + (<usize>q << 3), q < jn ? load<f64>(row + (<usize>q << 3)) : 0);
            tile1x4(ak + <usize>i * as, pack, kl, tmp);
            for (let q = 0; q < jn; q++) store<f64>(row + (<usize>q << 3), load<f64>(tmp + (<usize>q << 3)));
          }
        }
      }
    }
  }
}
