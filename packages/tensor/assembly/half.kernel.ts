// Half-precision weight kernels (WebAssembly SIMD): weights stored as 16-bit f16 or bf16 bits,
// converted to f32 exactly on the fly, products and sums in f32. Pointers are byte offsets into
// the engine's shared memory; matrices are row-major and dense. No static data, no strings (the
// module shares one memory with every other module).
//
// Conversion (exact, bit for bit what @lowbit/tensor's decodeF16/decodeBf16 return):
//  - bf16: the 16 bits become the high half of the f32 (a shift).
//  - f16: the sign-extended 16 bits shifted left by 13 put the sign at bit 31 (and copies of it at
//    28..30, masked off) and exponent + mantissa at bits 13..27, i.e. an f32 whose exponent is the
//    f16's biased exponent; multiplying by 2^112 rebiases it (15 -> 127). Subnormal f16 become
//    subnormal f32 and the product is exact (WebAssembly keeps subnormals), zero keeps its sign.
//    Exponent 31 (inf/NaN) comes out as a finite |v| >= 2^16 (every finite f16 is <= 65504), so
//    OR-ing in the all-ones exponent where |v| >= 2^16 gives inf or the NaN with its payload.
//    FMT_F16_FINITE skips that fix, for weights known to hold no inf/NaN (checked at load).
//
// GEMV streams W by rows, eight rows at a time sharing each load of x. GEMM packs 8 rows of W for
// KC steps of k, converted to f32 (so the conversion is paid once per panel, not per row of A),
// and runs the same 4 x 8 register-blocked micro-kernel as the f32 GEMM.

import { KC, MC, panel_rows, reduce4 } from "./gemm-tiles";
/** f16 with the inf/NaN fix (exact for every input). */
const FMT_F16: i32 = 0;
/** f16 without the inf/NaN fix (exact when no value has exponent 31). */
const FMT_F16_FINITE: i32 = 1;
/** bf16. */
const FMT_BF16: i32 = 2;
/**
 * f16 without inf/NaN, GEMV only, with x given pre-multiplied by 2^112 (prescale_x): the weight
 * skips its multiply by 2^112 and the product (w 2^-112)(x 2^112) is the same real number as w x,
 * rounded once, so the result is the same bit for bit.
 */
const FMT_F16_PRESCALED: i32 = 3;

// The format is also a type parameter F of the inner functions (F16 = i32, F16_FINITE = i16,
// BF16 = i8, F16_PRESCALED = i64: only their sizes matter), so every format gets its own loops,
// with no branch on it inside them.
// @ts-ignore: decorator
@inline
function fmtOf<F>(): i32 {
  return sizeof<F>() == 1 ? FMT_BF16 : sizeof<F>() == 2 ? FMT_F16_FINITE : sizeof<F>() == 4 ? FMT_F16 : FMT_F16_PRESCALED;
}


// @ts-ignore: decorator
@inline
function magic(): v128 {
  return i32x4.splat(0x77800000); // 2^112 as f32
}

/** Four halves at p (8 bytes) as four f32. */
// @ts-ignore: decorator
@inline
function cvt4<F>(p: usize): v128 {
  const fmt = fmtOf<F>();
  if (fmt == FMT_BF16) return i32x4.shl(v128.load16x4_u(p), 16);
  const bits = v128.and(i32x4.shl(v128.load16x4_s(p), 13), i32x4.splat(<i32>0x8fffe000));
  if (fmt == FMT_F16_PRESCALED) return bits;
  let r = f32x4.mul(bits, magic());
  if (fmt == FMT_F16) {
    const special = f32x4.ge(f32x4.abs(r), f32x4.splat(65536));
    r = v128.or(r, v128.and(special, i32x4.splat(0x7f800000)));
  }
  return r;
}

/** One half at p as f32 (the scalar twin of cvt4). */
// @ts-ignore: decorator
@inline
function cvt1<F>(p: usize): f32 {
  const fmt = fmtOf<F>();
  if (fmt == FMT_BF16) return reinterpret<f32>(<i32>load<u16>(p) << 16);
  const bits = (<i32>load<i16>(p) << 13) & <i32>0x8fffe000;
  if (fmt == FMT_F16_PRESCALED) return reinterpret<f32>(bits);
  const r = reinterpret<f32>(bits) * reinterpret<f32>(0x77800000);
  if (fmt == FMT_F16 && abs<f32>(r) >= 65536) return reinterpret<f32>(reinterpret<i32>(r) | 0x7f800000);
  return r;
}

/** dst[i] = the f32 value of the half src[i], i < n. fmt: 0 f16, 1 f16 without inf/NaN, 2 bf16. */
export function half_to_f32(src: usize, dst: usize, n: i32, fmt: i32): void {
  if (fmt == FMT_BF16) convert<i8>(src, dst, n);
  else if (fmt == FMT_F16_FINITE) convert<i16>(src, dst, n);
  else convert<i32>(src, dst, n);
}

function convert<F>(src: usize, dst: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(dst + (<usize>i << 2), cvt4<F>(src + (<usize>i << 1)));
  for (; i < n; i++) store<f32>(dst + (<usize>i << 2), cvt1<F>(src + (<usize>i << 1)));
}

/** Bytes of `pack` scratch that matmul_abt_half needs (per concurrent caller). */
export function pack_bytes(): i32 {
  return KC * 32 + 128;
}

/**
 * xs[i] = x[i] * 2^112 for i < n (exact), for gemv_half's format 3. Returns 0, and the scaled
 * values are not to be used, when a finite |x[i]| >= 2^16 (its scaled value would overflow).
 */
export function prescale_x(x: usize, xs: usize, n: i32): i32 {
  let bad = i32x4.splat(0);
  const lim = f32x4.splat(65536);
  const inf = f32x4.splat(Infinity);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const v = v128.load(x + (<usize>i << 2));
    const a = f32x4.abs(v);
    bad = v128.or(bad, v128.and(f32x4.ge(a, lim), f32x4.lt(a, inf)));
    v128.store(xs + (<usize>i << 2), f32x4.mul(v, magic()));
  }
  let ok = !v128.any_true(bad);
  for (; i < n; i++) {
    const v = load<f32>(x + (<usize>i << 2));
    const a = abs<f32>(v);
    if (a >= 65536 && a < Infinity) ok = false;
    store<f32>(xs + (<usize>i << 2), v * reinterpret<f32>(0x77800000));
  }
  return ok ? 1 : 0;
}

/**
 * y[r] = W[r, :] . x (+ bias[r]) for rows r in [r0, r1): W [*, k] halves, x and y f32, bias = 0
 * means none. fmt: 0 f16, 1 f16 without inf/NaN, 2 bf16, 3 f16 without inf/NaN with x from
 * prescale_x.
 */
export function gemv_half(w: usize, x: usize, y: usize, bias: usize, k: i32, r0: i32, r1: i32, fmt: i32): void {
  if (fmt == FMT_BF16) gemv_rows<i8>(w, x, y, bias, k, r0, r1);
  else if (fmt == FMT_F16_PRESCALED) gemv_rows<i64>(w, x, y, bias, k, r0, r1);
  else if (fmt == FMT_F16_FINITE) gemv_rows<i16>(w, x, y, bias, k, r0, r1);
  else gemv_rows<i32>(w, x, y, bias, k, r0, r1);
}

function gemv_rows<F>(w: usize, x: usize, y: usize, bias: usize, k: i32, r0: i32, r1: i32): void {
  // The per-row arithmetic of f32.kernel.ts gemv_f32 (one f32x4 accumulator over k in steps of 4,
  // lanes summed as (0+2)+(1+3), then the scalar tail, then the bias), so a row's result equals
  // F32Linear's on the decoded weights bit for bit, in the 8-row loop or the 1-row one.
  const rs = <usize>k << 1; // bytes per weight row
  const k4 = <usize>(k & ~3);
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
    for (let t: usize = 0; t < k4; t += 4) {
      const xv = v128.load(x + (t << 2));
      const q = p + (t << 1);
      a0 = f32x4.add(a0, f32x4.mul(cvt4<F>(q), xv));
      a1 = f32x4.add(a1, f32x4.mul(cvt4<F>(q + rs), xv));
      a2 = f32x4.add(a2, f32x4.mul(cvt4<F>(q + 2 * rs), xv));
      a3 = f32x4.add(a3, f32x4.mul(cvt4<F>(q + 3 * rs), xv));
      a4 = f32x4.add(a4, f32x4.mul(cvt4<F>(q + 4 * rs), xv));
      a5 = f32x4.add(a5, f32x4.mul(cvt4<F>(q + 5 * rs), xv));
      a6 = f32x4.add(a6, f32x4.mul(cvt4<F>(q + 6 * rs), xv));
      a7 = f32x4.add(a7, f32x4.mul(cvt4<F>(q + 7 * rs), xv));
    }
    store4<F>(reduce4(a0, a1, a2, a3), p, x, y, bias, rs, k4, k, r);
    store4<F>(reduce4(a4, a5, a6, a7), p + 4 * rs, x, y, bias, rs, k4, k, r + 4);
  }
  for (; r < r1; r++) {
    const p = w + <usize>r * rs;
    let a = f32x4.splat(0);
    for (let t: usize = 0; t < k4; t += 4) a = f32x4.add(a, f32x4.mul(cvt4<F>(p + (t << 1)), v128.load(x + (t << 2))));
    let s = f32x4.extract_lane(reduce4(a, a, a, a), 0);
    if (k4 < <usize>k) s += tail<F>(p, x, k4, k);
    if (bias) s += load<f32>(bias + (<usize>r << 2));
    store<f32>(y + (<usize>r << 2), s);
  }
}

/** Sum of W[row, t] * x[t] over the last k % 4 columns t in [k4, k), in order. */
// @ts-ignore: decorator
@inline
function tail<F>(p: usize, x: usize, k4: usize, k: i32): f32 {
  let s: f32 = 0;
  for (let t = k4; t < <usize>k; t++) s += cvt1<F>(p + (t << 1)) * load<f32>(x + (t << 2));
  return s;
}

/** Stores the four row sums v (rows r..r+3 starting at p) after adding each row's tail and bias. */
// @ts-ignore: decorator
@inline
function store4<F>(v: v128, p: usize, x: usize, y: usize, bias: usize, rs: usize, k4: usize, k: i32, r: i32): void {
  if (k4 < <usize>k) {
    const t0 = tail<F>(p, x, k4, k);
    const t1 = tail<F>(p + rs, x, k4, k);
    const t2 = tail<F>(p + 2 * rs, x, k4, k);
    const t3 = tail<F>(p + 3 * rs, x, k4, k);
    v = f32x4.add(v, f32x4.replace_lane(f32x4.replace_lane(f32x4.replace_lane(f32x4.splat(t0), 1, t1), 2, t2), 3, t3));
  }
  if (bias) v = f32x4.add(v, v128.load(bias + (<usize>r << 2)));
  v128.store(y + (<usize>r << 2), v);
}

/**
 * Packs W^T for the GEMM, converted to f32: dst[t*8 + c] = W[j + c][kc + t] for t < kl, c < jn
 * (zero for c >= jn). W is [*, k] halves with row stride rs bytes. Full panels convert four
 * halves of four rows at a time and transpose the 4x4 blocks with shuffles.
 */
function pack_wt<F>(w: usize, rs: usize, j: i32, jn: i32, kc: i32, kl: i32, dst: usize): void {
  const src = w + <usize>j * rs + (<usize>kc << 1);
  let t = 0;
  if (jn == 8) {
    for (; t + 4 <= kl; t += 4) {
      const o = src + (<usize>t << 1);
      const d = dst + (<usize>t << 5);
      for (let h = 0; h < 2; h++) {
        const p = o + <usize>(h * 4) * rs;
        const r0 = cvt4<F>(p);
        const r1 = cvt4<F>(p + rs);
        const r2 = cvt4<F>(p + 2 * rs);
        const r3 = cvt4<F>(p + 3 * rs);
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
      store<f32>(d + (<usize>c << 2), c < jn ? cvt1<F>(src + <usize>c * rs + (<usize>t << 1)) : 0);
    }
  }
}


/**
 * C = A . W^T (+ bias over columns) on rows [i0, i1) x columns [j0, j1) of C: A [m, k] f32,
 * W [n, k] halves (nn.Linear layout), C [m, n] f32; bias = 0 means none. `pack` is pack_bytes()
 * of scratch owned by this caller. fmt: 0 f16, 1 f16 without inf/NaN, 2 bf16.
 */
export function matmul_abt_half(
  a: usize, w: usize, c: usize, bias: usize, n: i32, k: i32, i0: i32, i1: i32, j0: i32, j1: i32, pack: usize, fmt: i32,
): void {
  const as = <usize>k << 2;
  const rs = <usize>k << 1;
  const cs = <usize>n << 2;
  if (k == 0) {
    for (let i = i0; i < i1; i++) {
      for (let j = j0; j < j1; j++) store<f32>(c + <usize>i * cs + (<usize>j << 2), bias ? load<f32>(bias + (<usize>j << 2)) : 0);
    }
    return;
  }
  for (let kc = 0; kc < k; kc += KC) {
    const kl = min(KC, k - kc);
    for (let ic = i0; ic < i1; ic += MC) {
      const ie = min(i1, ic + MC);
      for (let j = j0; j < j1; j += 8) {
        const jn = min(8, j1 - j);
        if (fmt == FMT_BF16) pack_wt<i8>(w, rs, j, jn, kc, kl, pack);
        else if (fmt == FMT_F16_FINITE) pack_wt<i16>(w, rs, j, jn, kc, kl, pack);
        else pack_wt<i32>(w, rs, j, jn, kc, kl, pack);
        panel_rows(a, as, c, cs, bias, j, jn, kc, kl, ic, ie, pack);
      }
    }
  }
}
