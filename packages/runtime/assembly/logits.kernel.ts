// Evaluation statistics over the vocabulary (WebAssembly SIMD, f64 accumulation): per row of
// f32 logits the max, the sum of e^(x - max), the target logit and the argmax, and against a
// reference row the KL numerator. The logarithms are left to the caller (one per row).
// Pointers are byte offsets into the engine's shared memory. No static data, no strings.

/** f64 values written per row by logit_stats (see there). */
export function stats_stride(): i32 {
  return 10;
}

/**
 * e^x per f64 lane for x <= 0 (x = n ln2 + r, |r| <= ln2/2, degree-11 Taylor polynomial: error
 * below 1e-14 relative). Lanes below -708 (including -inf) give exactly 0. n is rounded by adding
 * 1.5 * 2^52, which leaves it in the low mantissa bits (no float-int conversion).
 */
// @ts-ignore: decorator
@inline
function exp2d(x: v128): v128 {
  const lo = f64x2.splat(-708.0);
  const magic = f64x2.splat(6755399441055744.0);
  const under = f64x2.lt(x, lo);
  const xc = f64x2.pmax(x, lo);
  const t = f64x2.add(f64x2.mul(xc, f64x2.splat(1.4426950408889634)), magic);
  const fx = f64x2.sub(t, magic);
  let r = f64x2.sub(xc, f64x2.mul(fx, f64x2.splat(6.93147180369123816490e-01)));
  r = f64x2.sub(r, f64x2.mul(fx, f64x2.splat(1.90821492927058770002e-10)));
  let y = f64x2.splat(1.0 / 39916800.0);
  y = f64x2.add(f64x2.mul(y, r), f64x2.splat(1.0 / 3628800.0));
  y = f64x2.add(f64x2.mul(y, r), f64x2.splat(1.0 / 362880.0));
  y = f64x2.add(f64x2.mul(y, r), f64x2.splat(1.0 / 40320.0));
  y = f64x2.add(f64x2.mul(y, r), f64x2.splat(1.0 / 5040.0));
  y = f64x2.add(f64x2.mul(y, r), f64x2.splat(1.0 / 720.0));
  y = f64x2.add(f64x2.mul(y, r), f64x2.splat(1.0 / 120.0));
  y = f64x2.add(f64x2.mul(y, r), f64x2.splat(1.0 / 24.0));
  y = f64x2.add(f64x2.mul(y, r), f64x2.splat(1.0 / 6.0));
  y = f64x2.add(f64x2.mul(y, r), f64x2.splat(0.5));
  y = f64x2.add(f64x2.mul(y, r), f64x2.splat(1.0));
  y = f64x2.add(f64x2.mul(y, r), f64x2.splat(1.0));
  // bits(t) = bits(magic) + n and bits(magic) has twelve zero low bits: (bits(t) + 1023) << 52 = 2^n
  const pow2n = i64x2.shl(i64x2.add(t, i64x2.splat(1023)), 52);
  return v128.andnot(f64x2.mul(y, pow2n), under);
}

/** Largest of n f32 values at p (n >= 1). */
function maxf(p: usize, n: i32): f32 {
  const n4 = <usize>(n & ~3) << 2;
  let m: f32 = load<f32>(p);
  if (n4 > 0) {
    let mv = v128.load(p);
    for (let i: usize = 16; i < n4; i += 16) mv = f32x4.pmax(mv, v128.load(p + i));
    m = max(max(f32x4.extract_lane(mv, 0), f32x4.extract_lane(mv, 1)), max(f32x4.extract_lane(mv, 2), f32x4.extract_lane(mv, 3)));
  }
  for (let i = n4; i < (<usize>n << 2); i += 4) m = max(m, load<f32>(p + i));
  return m;
}

/** Index of the first of n f32 values at p equal to m (n if none). */
function firstIndex(p: usize, n: i32, m: f32): i32 {
  const mv = f32x4.splat(m);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    if (v128.any_true(f32x4.eq(v128.load(p + (<usize>i << 2)), mv))) break;
  }
  for (; i < n; i++) if (load<f32>(p + (<usize>i << 2)) == m) return i;
  return n;
}

/** Sum over the n values at p of e^(x - m), in f64. */
function sumExp(p: usize, n: i32, m: f64): f64 {
  const n4 = <usize>(n & ~3) << 2;
  const mv = f64x2.splat(m);
  let a0 = f64x2.splat(0);
  let a1 = f64x2.splat(0);
  for (let i: usize = 0; i < n4; i += 16) {
    const x = v128.load(p + i);
    a0 = f64x2.add(a0, exp2d(f64x2.sub(f64x2.promote_low_f32x4(x), mv)));
    a1 = f64x2.add(a1, exp2d(f64x2.sub(f64x2.promote_low_f32x4(f32x4.shuffle(x, x, 2, 3, 0, 1)), mv)));
  }
  let s = f64x2.extract_lane(a0, 0) + f64x2.extract_lane(a1, 0) + f64x2.extract_lane(a0, 1) + f64x2.extract_lane(a1, 1);
  for (let i = n4; i < (<usize>n << 2); i += 4) {
    s += f64x2.extract_lane(exp2d(f64x2.splat(<f64>load<f32>(p + i) - m)), 0);
  }
  return s;
}

/**
 * For the n reference values r at pr (max rm) and model values m at pm, in f64: returns
 * sum_j e^(r_j - rm) and stores sum_j e^(r_j - rm) * (r_j - m_j) (the KL numerator) at w.
 */
function refSums(pr: usize, pm: usize, n: i32, rm: f64, w: usize): f64 {
  const n4 = <usize>(n & ~3) << 2;
  const mv = f64x2.splat(rm);
  let s0 = f64x2.splat(0);
  let s1 = f64x2.splat(0);
  let a0 = f64x2.splat(0);
  let a1 = f64x2.splat(0);
  for (let i: usize = 0; i < n4; i += 16) {
    const r = v128.load(pr + i);
    const m = v128.load(pm + i);
    const r0 = f64x2.promote_low_f32x4(r);
    const r1 = f64x2.promote_low_f32x4(f32x4.shuffle(r, r, 2, 3, 0, 1));
    const e0 = exp2d(f64x2.sub(r0, mv));
    const e1 = exp2d(f64x2.sub(r1, mv));
    s0 = f64x2.add(s0, e0);
    s1 = f64x2.add(s1, e1);
    a0 = f64x2.add(a0, f64x2.mul(e0, f64x2.sub(r0, f64x2.promote_low_f32x4(m))));
    a1 = f64x2.add(a1, f64x2.mul(e1, f64x2.sub(r1, f64x2.promote_low_f32x4(f32x4.shuffle(m, m, 2, 3, 0, 1)))));
  }
  let s = f64x2.extract_lane(s0, 0) + f64x2.extract_lane(s1, 0) + f64x2.extract_lane(s0, 1) + f64x2.extract_lane(s1, 1);
  let a = f64x2.extract_lane(a0, 0) + f64x2.extract_lane(a1, 0) + f64x2.extract_lane(a0, 1) + f64x2.extract_lane(a1, 1);
  for (let i = n4; i < (<usize>n << 2); i += 4) {
    const r = <f64>load<f32>(pr + i);
    const e = f64x2.extract_lane(exp2d(f64x2.splat(r - rm)), 0);
    s += e;
    a += e * (r - <f64>load<f32>(pm + i));
  }
  store<f64>(w, a);
  return s;
}

/**
 * For rows r < rows of logits [rows, v] (and, when ref != 0, reference logits of the same shape),
 * with targets (i32 per row), writes 10 f64 per row at out + r*80:
 * [max, sum e^(x - max), x[target], argmax, and with a reference: rmax, sum e^(ref - rmax),
 * ref[target], sum e^(ref - rmax) * (ref - x), ref argmax, 0]. Argmax is the first index of the
 * largest value.
 */
export function logit_stats(logits: usize, ref: usize, targets: usize, rows: i32, v: i32, out: usize): void {
  const rb = <usize>v << 2;
  for (let r = 0; r < rows; r++) {
    const p = logits + <usize>r * rb;
    const o = out + <usize>r * 80;
    const tgt = <usize>load<i32>(targets + (<usize>r << 2)) << 2;
    const m = maxf(p, v);
    store<f64>(o, <f64>m);
    store<f64>(o, sumExp(p, v, <f64>m), 8);
    store<f64>(o, <f64>load<f32>(p + tgt), 16);
    store<f64>(o, <f64>firstIndex(p, v, m), 24);
    if (ref) {
      const pr = ref + <usize>r * rb;
      const rm = maxf(pr, v);
      store<f64>(o, <f64>rm, 32);
      store<f64>(o, refSums(pr, p, v, <f64>rm, o + 56), 40);
      store<f64>(o, <f64>load<f32>(pr + tgt), 48);
      store<f64>(o, <f64>firstIndex(pr, v, rm), 64);
    } else {
      for (let i: usize = 32; i < 72; i += 8) store<f64>(o + i, 0);
    }
    store<f64>(o, 0, 72);
  }
}
