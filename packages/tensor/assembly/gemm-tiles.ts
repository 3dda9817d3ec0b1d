// The f32 GEMM building blocks shared by the f32 and half kernels (this file is not a kernel
// module of its own: each *.kernel.ts that imports it compiles its own copy). B (or W) is packed 8
// columns at a time for KC steps of k into `pack`; a 4 x 8 outer-product micro-kernel (eight f32x4
// accumulators) runs over the rows of A against each packed panel. No static data, no strings.

/** Steps of k per packed panel (the panel is KC * 32 bytes = 16 KiB: fits L1). */
export const KC: i32 = 512;
/** Rows of A per block (MC * KC * 4 = 256 KiB of A stays in L2 while the panels of B pass). */
export const MC: i32 = 128;

// @ts-ignore: decorator
@inline
export function reduce4(a0: v128, a1: v128, a2: v128, a3: v128): v128 {
  // [sum a0, sum a1, sum a2, sum a3]
  const s01 = f32x4.add(f32x4.shuffle(a0, a1, 0, 4, 1, 5), f32x4.shuffle(a0, a1, 2, 6, 3, 7));
  const s23 = f32x4.add(f32x4.shuffle(a2, a3, 0, 4, 1, 5), f32x4.shuffle(a2, a3, 2, 6, 3, 7));
  return f32x4.add(f32x4.shuffle(s01, s23, 0, 1, 4, 5), f32x4.shuffle(s01, s23, 2, 3, 6, 7));
}

// @ts-ignore: decorator
@inline
export function hsum(a: v128): f32 {
  return f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 1) + f32x4.extract_lane(a, 2) + f32x4.extract_lane(a, 3);
}

/**
 * C[4 x 8] (+)= A[4 rows, kl] . P[kl x 8]. `a` points at A[i][kc] (row stride as bytes), `c` at
 * the tile (row stride cs bytes); `init` 0 starts from zero, 1 from C, 2 from the 8 floats at `bias`.
 */
// @ts-ignore: decorator
@inline
export function tile4x8(a: usize, as: usize, p: usize, kl: i32, c: usize, cs: usize, init: i32, bias: usize): void {
  let c00 = f32x4.splat(0);
  let c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0);
  let c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0);
  let c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0);
  let c31 = f32x4.splat(0);
  if (init == 1) {
    c00 = v128.load(c);
    c01 = v128.load(c, 16);
    c10 = v128.load(c + cs);
    c11 = v128.load(c + cs, 16);
    c20 = v128.load(c + 2 * cs);
    c21 = v128.load(c + 2 * cs, 16);
    c30 = v128.load(c + 3 * cs);
    c31 = v128.load(c + 3 * cs, 16);
  } else if (init == 2) {
    c00 = c10 = c20 = c30 = v128.load(bias);
    c01 = c11 = c21 = c31 = v128.load(bias, 16);
  }
  let p0 = a;
  const d1 = as;
  const d2 = as << 1;
  const d3 = d1 + d2;
  let q = p;
  const qend = p + (<usize>kl << 5);
  while (q < qend) {
    const y0 = v128.load(q);
    const y1 = v128.load(q, 16);
    let x = v128.load32_splat(p0);
    c00 = f32x4.add(c00, f32x4.mul(x, y0));
    c01 = f32x4.add(c01, f32x4.mul(x, y1));
    x = v128.load32_splat(p0 + d1);
    c10 = f32x4.add(c10, f32x4.mul(x, y0));
    c11 = f32x4.add(c11, f32x4.mul(x, y1));
    x = v128.load32_splat(p0 + d2);
    c20 = f32x4.add(c20, f32x4.mul(x, y0));
    c21 = f32x4.add(c21, f32x4.mul(x, y1));
    x = v128.load32_splat(p0 + d3);
    c30 = f32x4.add(c30, f32x4.mul(x, y0));
    c31 = f32x4.add(c31, f32x4.mul(x, y1));
    q += 32;
    p0 += 4;
  }
  v128.store(c, c00);
  v128.store(c, c01, 16);
  v128.store(c + cs, c10);
  v128.store(c + cs, c11, 16);
  v128.store(c + 2 * cs, c20);
  v128.store(c + 2 * cs, c21, 16);
  v128.store(c + 3 * cs, c30);
  v128.store(c + 3 * cs, c31, 16);
}

/** One row of tile4x8. */
// @ts-ignore: decorator
@inline
export function tile1x8(a: usize, p: usize, kl: i32, c: usize, init: i32, bias: usize): void {
  let c0 = f32x4.splat(0);
  let c1 = f32x4.splat(0);
  if (init == 1) {
    c0 = v128.load(c);
    c1 = v128.load(c, 16);
  } else if (init == 2) {
    c0 = v128.load(bias);
    c1 = v128.load(bias, 16);
  }
  const end = <usize>kl << 2;
  let q = p;
  for (let t: usize = 0; t < end; t += 4) {
    const x = v128.load32_splat(a + t);
    c0 = f32x4.add(c0, f32x4.mul(x, v128.load(q)));
    c1 = f32x4.add(c1, f32x4.mul(x, v128.load(q, 16)));
    q += 32;
  }
  v128.store(c, c0);
  v128.store(c, c1, 16);
}

/**
 * Runs the micro-kernels over rows [i0, i1) against one packed panel (columns j..j+jn, k-chunk kc).
 * Full panels write C directly; a ragged panel (jn < 8) goes through the 4x8 tile after the panel.
 */
export function panel_rows(
  a: usize, as: usize, c: usize, cs: usize, bias: usize, j: i32, jn: i32, kc: i32, kl: i32, i0: i32, i1: i32, pack: usize,
): void {
  const first = kc == 0;
  const init = first ? (bias ? 2 : 0) : 1;
  const ak = a + (<usize>kc << 2);
  const cj = c + (<usize>j << 2);
  const bj = bias + (<usize>j << 2);
  if (jn == 8) {
    let i = i0;
    for (; i + 4 <= i1; i += 4) tile4x8(ak + <usize>i * as, as, pack, kl, cj + <usize>i * cs, cs, init, bj);
    for (; i < i1; i++) tile1x8(ak + <usize>i * as, pack, kl, cj + <usize>i * cs, init, bj);
    return;
  }
  const tmp = pack + (<usize>KC << 5);
  for (let i = i0; i < i1; i++) {
    const row = cj + <usize>i * cs;
    for (let cc = 0; cc < 8; cc++) {
      let v: f32 = 0;
      if (cc < jn) v = first ? (bias ? load<f32>(bj + (<usize>cc << 2)) : 0) : load<f32>(row + (<usize>cc << 2));
      store<f32>(tmp + (<usize>cc << 2), v);
    }
    tile1x8(ak + <usize>i * as, pack, kl, tmp, 1, 0);
    for (let cc = 0; cc < jn; cc++) store<f32>(row + (<usize>cc << 2), load<f32>(tmp + (<usize>cc << 2)));
  }
}
