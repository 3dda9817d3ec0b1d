// f32 kernels (WebAssembly SIMD). Pointers are byte offsets into the engine's shared memory;
// matrices are row-major and dense (row stride = row length). Every kernel that writes a matrix
// takes the range of output rows/columns it owns, so work can be split across workers that share
// the memory. No static data, no strings (the module shares one memory with every other module).
//
// GEMM (both layouts) packs B in panels of 8 columns x KC steps of k so the micro-kernel reads B
// contiguously from L1, then runs a 4 x 8 outer-product micro-kernel: eight f32x4 accumulators, per
// step of k two loads of B and one broadcast of A per row. For each k-chunk the panels of a block
// of columns (at most PACK_FLOATS floats of packed B: 1024 columns at KC = 512, more when the
// chunk is shorter) are packed once into `pack`, then every MC-row block of A runs against all of
// them, so each panel of B is packed once per call (per thread part) while a block of A stays in
// L2. GEMV streams W by rows, eight rows at a time.

import { hsum, KC, MC, panel_rows, reduce4 } from "./gemm-tiles";

/** Floats of packed B per block of columns (2 MiB: lives in L3 while the panels pass L1). */
const PACK_FLOATS: i32 = 512 * 1024;

/** Panels (8 columns each) per block of columns for a k-chunk of kl steps. */
// @ts-ignore: decorator
@inline
function block_panels(kl: i32): i32 {
  return max(1, (PACK_FLOATS >> 3) / kl);
}

/**
 * Bytes of `pack` scratch that matmul_abt_f32 / matmul_ab_f32 on C [*, n] with inner size k need
 * (per concurrent caller; a caller given a subrange of the columns needs no more): the packed
 * panels of one block, plus a panel's worth of room past the last one for panel_rows' ragged tile.
 */
export function pack_bytes(n: i32, k: i32): i32 {
  // every k-chunk packs at most min(all panels, block_panels(kl)) panels of kl * 32 bytes, and
  // kl <= min(KC, k): at most this many bytes of panels
  const panels = min(<i64>((max(n, 1) + 7) >> 3) * min(KC, max(k, 1)) * 32, <i64>PACK_FLOATS * 4);
  return <i32>panels + KC * 32 + 128;
}

/** Dot product of two f32 vectors of length n. */
export function dot_f32(a: usize, b: usize, n: i32): f32 {
  let acc = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    acc = f32x4.add(acc, f32x4.mul(v128.load(a + (<usize>i << 2)), v128.load(b + (<usize>i << 2))));
  }
  let s = hsum(acc);
  for (; i < n; i++) s += load<f32>(a + (<usize>i << 2)) * load<f32>(b + (<usize>i << 2));
  return s;
}

/**
 * Sum of n f32 read as `streams` equal consecutive parts walked side by side (1..4; the bandwidth
 * probe: GEMV reads four weight rows at once, so one stream understates what it can get).
 */
export function sum_f32(p: usize, n: i32, streams: i32): f32 {
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let a2 = f32x4.splat(0);
  let a3 = f32x4.splat(0);
  if (streams >= 4) {
    const q = <usize>(n >> 4) << 4; // bytes per stream, a multiple of 64
    for (let i: usize = 0; i < q; i += 16) {
      a0 = f32x4.add(a0, v128.load(p + i));
      a1 = f32x4.add(a1, v128.load(p + q + i));
      a2 = f32x4.add(a2, v128.load(p + 2 * q + i));
      a3 = f32x4.add(a3, v128.load(p + 3 * q + i));
    }
  } else {
    const q = <usize>(n >> 4) << 6;
    for (let i: usize = 0; i < q; i += 64) {
      a0 = f32x4.add(a0, v128.load(p + i));
      a1 = f32x4.add(a1, v128.load(p + i, 16));
      a2 = f32x4.add(a2, v128.load(p + i, 32));
      a3 = f32x4.add(a3, v128.load(p + i, 48));
    }
  }
  let s = hsum(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)));
  for (let i = (n >> 4) << 4; i < n; i++) s += load<f32>(p + (<usize>i << 2));
  return s;
}

/**
 * y[r] = W[r, :] . x (+ bias[r]) for rows r in [r0, r1). W is [*, k]; bias = 0 means none.
 * Eight rows at a time share each load of x, so W is read as eight streams (measured on a 2-core
 * Zen VM: eight keep up with a 4-stream read of the same memory where four rows at a time fell
 * 3-5% short). The rows left over (fewer than 8) go one at a time with the same arithmetic (one
 * f32x4 accumulator over k in steps of 4, lanes summed as (0+2)+(1+3), then the scalar tail, then
 * the bias), so the result does not depend on r0 or on how rows are split across threads.
 */
export function gemv_f32(w: usize, x: usize, y: usize, bias: usize, k: i32, r0: i32, r1: i32): void {
  const rs = <usize>k << 2;
  const k4 = <usize>(k & ~3) << 2;
  let r = r0;
  for (; r + 8 <= r1; r += 8) {
    const p = w + <usize>r * rs;
    let a0 = f32x4.splat(0);
    let a1 = f32x4.splat(0);
    let a2 = f32x4.splat(0);
    let a3 = f32x4.splat(0);
    let a4 = f32x4.splat(0);
    let a5 = f32x4.splat(0);
    let a6 = f32x4.splat(0);
    let a7 = f32x4.splat(0);
    for (let t: usize = 0; t < k4; t += 16) {
      const xv = v128.load(x + t);
      const q = p + t;
      a0 = f32x4.add(a0, f32x4.mul(v128.load(q), xv));
      a1 = f32x4.add(a1, f32x4.mul(v128.load(q + rs), xv));
      a2 = f32x4.add(a2, f32x4.mul(v128.load(q + 2 * rs), xv));
      a3 = f32x4.add(a3, f32x4.mul(v128.load(q + 3 * rs), xv));
      a4 = f32x4.add(a4, f32x4.mul(v128.load(q + 4 * rs), xv));
      a5 = f32x4.add(a5, f32x4.mul(v128.load(q + 5 * rs), xv));
      a6 = f32x4.add(a6, f32x4.mul(v128.load(q + 6 * rs), xv));
      a7 = f32x4.add(a7, f32x4.mul(v128.load(q + 7 * rs), xv));
    }
    gemv_store4(reduce4(a0, a1, a2, a3), p, x, y, bias, rs, k4, r);
    gemv_store4(reduce4(a4, a5, a6, a7), p + 4 * rs, x, y, bias, rs, k4, r + 4);
  }
  for (; r < r1; r++) {
    const p = w + <usize>r * rs;
    let a = f32x4.splat(0);
    for (let t: usize = 0; t < k4; t += 16) a = f32x4.add(a, f32x4.mul(v128.load(p + t), v128.load(x + t)));
    let s = f32x4.extract_lane(reduce4(a, a, a, a), 0);
    if (k4 < rs) s += gemv_tail(p, x, k4, rs);
    if (bias) s += load<f32>(bias + (<usize>r << 2));
    store<f32>(y + (<usize>r << 2), s);
  }
}

/** Sum of W[row, t] * x[t] over the last k % 4 columns (byte offsets t in [k4, rs)), in order. */
// @ts-ignore: decorator
@inline
function gemv_tail(p: usize, x: usize, k4: usize, rs: usize): f32 {
  let s: f32 = 0;
  for (let t = k4; t < rs; t += 4) s += load<f32>(p + t) * load<f32>(x + t);
  return s;
}

/** Stores the four row sums v (rows r..r+3 starting at p) after adding each row's tail and bias. */
// @ts-ignore: decorator
@inline
function gemv_store4(v: v128, p: usize, x: usize, y: usize, bias: usize, rs: usize, k4: usize, r: i32): void {
  if (k4 < rs) {
    const t0 = gemv_tail(p, x, k4, rs);
    const t1 = gemv_tail(p + rs, x, k4, rs);
    const t2 = gemv_tail(p + 2 * rs, x, k4, rs);
    const t3 = gemv_tail(p + 3 * rs, x, k4, rs);
    v = f32x4.add(v, f32x4.replace_lane(f32x4.replace_lane(f32x4.replace_lane(f32x4.splat(t0), 1, t1), 2, t2), 3, t3));
  }
  if (bias) v = f32x4.add(v, v128.load(bias + (<usize>r << 2)));
  v128.store(y + (<usize>r << 2), v);
}

/**
 * W[r, j] -= x[r] * y[j] for rows r in [r0, r1) and j < n: a rank-1 update of a row-major block
 * with row stride ldw floats. Each product is rounded to f32, then the difference (what
 * `w[j] - Math.fround(x * y[j])` stored into a Float32Array gives), so it is exact to the element.
 */
export function sub_outer_f32(w: usize, ldw: i32, x: usize, y: usize, n: i32, r0: i32, r1: i32): void {
  const rs = <usize>ldw << 2;
  const n4 = <usize>(n & ~3) << 2;
  const nb = <usize>n << 2;
  for (let r = r0; r < r1; r++) {
    const p = w + <usize>r * rs;
    const xr = load<f32>(x + (<usize>r << 2));
    const xv = f32x4.splat(xr);
    let t: usize = 0;
    for (; t < n4; t += 16) v128.store(p + t, f32x4.sub(v128.load(p + t), f32x4.mul(xv, v128.load(y + t))));
    for (; t < nb; t += 4) store<f32>(p + t, load<f32>(p + t) - xr * load<f32>(y + t));
  }
}

/**
 * Packs B^T for matmul_abt: dst[t*8 + c] = B[j + c][kc + t] for t < kl, c < jn (zero for c >= jn).
 * B is [*, k] with row stride rs bytes. Full panels transpose 4x4 blocks with shuffles.
 */
function pack_bt(b: usize, rs: usize, j: i32, jn: i32, kc: i32, kl: i32, dst: usize): void {
  const src = b + <usize>j * rs + (<usize>kc << 2);
  let t = 0;
  if (jn == 8) {
    for (; t + 4 <= kl; t += 4) {
      const o = src + (<usize>t << 2);
      const d = dst + (<usize>t << 5);
      for (let h = 0; h < 2; h++) {
        const p = o + <usize>(h * 4) * rs;
        const r0 = v128.load(p);
        const r1 = v128.load(p + rs);
        const r2 = v128.load(p + 2 * rs);
        const r3 = v128.load(p + 3 * rs);
        const t0 = f32x4.shuffle(r0, r1, 0, 4, 1, 5);
        const t1 = f32x4.shuffle(r0, r1, 2, 6, 3, 7);
        const t2 = f32x4.shuffle(r2, r3, 0, 4, 1, 5);
        const t3 = f32x4.shuffle(r2, r3, 2, 6, 3, 7);
        const q = d + (<usize>h << 4);
        v128.store(q, f32x4.shuffle(t0, t2, 0, 1, 4, 5));
        v128.store(q, f32x4.shuffle(t0, t2, 2, 3, 6, 7), 32);
        v128.store(q, f32x4.shuffle(t1, t3, 0, 1, 4, 5), 64);
        v128.store(q, f32x4.shuffle(t1, t3, 2, 3, 6, 7), 96);
      }
    }
  }
  for (; t < kl; t++) {
    const d = dst + (<usize>t << 5);
    for (let c = 0; c < 8; c++) {
      store<f32>(d + (<usize>c << 2), c < jn ? load<f32>(src + <usize>c * rs + (<usize>t << 2)) : 0);
    }
  }
}

/** Packs B for matmul_ab: dst[t*8 + c] = B[kc + t][j + c] (zero for c >= jn). B row stride bs bytes. */
function pack_b(b: usize, bs: usize, j: i32, jn: i32, kc: i32, kl: i32, dst: usize): void {
  const src = b + <usize>kc * bs + (<usize>j << 2);
  if (jn == 8) {
    for (let t = 0; t < kl; t++) {
      const p = src + <usize>t * bs;
      const d = dst + (<usize>t << 5);
      v128.store(d, v128.load(p));
      v128.store(d, v128.load(p, 16), 16);
    }
  } else {
    for (let t = 0; t < kl; t++) {
      const p = src + <usize>t * bs;
      const d = dst + (<usize>t << 5);
      for (let c = 0; c < 8; c++) store<f32>(d + (<usize>c << 2), c < jn ? load<f32>(p + (<usize>c << 2)) : 0);
    }
  }
}

/**
 * The blocked GEMM both layouts share, over rows [i0, i1) x columns [j0, j1) of C (k > 0): for
 * each k-chunk and each block of columns, the first MC-row block of A packs each panel of B (pack_bt
 * when `bt`, B [*, k] with row stride bs; else pack_b, B [k, *]) just before running against it,
 * and later row blocks reuse the packed panels. With a single row block nothing is reused, so every
 * panel is packed into the same slot (it stays in L1). Any blocking gives each element of C the
 * same arithmetic (start, then one product of each step of k added in order).
 */
function gemm_blocks(
  a: usize, b: usize, c: usize, bias: usize, as: usize, bs: usize, cs: usize, k: i32,
  i0: i32, i1: i32, j0: i32, j1: i32, pack: usize, bt: bool,
): void {
  const reuse = i1 - i0 > MC;
  for (let kc = 0; kc < k; kc += KC) {
    const kl = min(KC, k - kc);
    const step = block_panels(kl) << 3;
    const ps: usize = reuse ? <usize>kl << 5 : 0;
    for (let jb = j0; jb < j1; jb += step) {
      const je = min(j1, jb + step);
      for (let ic = i0; ic < i1; ic += MC) {
        const ie = min(i1, ic + MC);
        let q = pack;
        for (let j = jb; j < je; j += 8) {
          const jn = min(8, je - j);
          if (ic == i0) {
            if (bt) pack_bt(b, bs, j, jn, kc, kl, q);
            else pack_b(b, bs, j, jn, kc, kl, q);
          }
          panel_rows(a, as, c, cs, bias, j, jn, kc, kl, ic, ie, q);
          q += ps;
        }
      }
    }
  }
}

/**
 * C = A . B^T (+ bias over columns) on rows [i0, i1) x columns [j0, j1) of C:
 * A [m, k], B [n, k] (nn.Linear weight layout), C [m, n]; bias = 0 means none.
 * `pack` is pack_bytes(n, k) of scratch owned by this caller.
 */
export function matmul_abt_f32(
  a: usize, b: usize, c: usize, bias: usize, n: i32, k: i32, i0: i32, i1: i32, j0: i32, j1: i32, pack: usize,
): void {
  const rs = <usize>k << 2;
  const cs = <usize>n << 2;
  if (k == 0) {
    for (let i = i0; i < i1; i++) {
      for (let j = j0; j < j1; j++) store<f32>(c + <usize>i * cs + (<usize>j << 2), bias ? load<f32>(bias + (<usize>j << 2)) : 0);
    }
    return;
  }
  gemm_blocks(a, b, c, bias, rs, rs, cs, k, i0, i1, j0, j1, pack, true);
}

/**
 * C = A . B on rows [i0, i1) x columns [j0, j1) of C: A [m, k], B [k, n], C [m, n].
 * `pack` is pack_bytes(n, k) of scratch owned by this caller.
 */
export function matmul_ab_f32(
  a: usize, b: usize, c: usize, n: i32, k: i32, i0: i32, i1: i32, j0: i32, j1: i32, pack: usize,
): void {
  const as = <usize>k << 2;
  const cs = <usize>n << 2;
  if (k == 0) {
    for (let i = i0; i < i1; i++) for (let j = j0; j < j1; j++) store<f32>(c + <usize>i * cs + (<usize>j << 2), 0);
    return;
  }
  gemm_blocks(a, b, c, 0, as, cs, cs, k, i0, i1, j0, j1, pack, false);
}
