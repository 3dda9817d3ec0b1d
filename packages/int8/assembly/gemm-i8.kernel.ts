// int8 GEMM kernels. Pointers are byte offsets into the engine's shared memory.
//
// Layouts (row-major, rows padded with zeros to kp columns, kp a multiple of 16):
//   activations a: i16 [m, kp], holding int8 or uint8 values (so one kernel serves both);
//   weights     b: i8  [n, kp];
//   f32 inputs  x: f32 [m, kp] (weight-only kernels).
// Products use i32x4.dot_i16x8_s on sign-extended weights (v128.load8x8_s): exact i32 sums.
// Register tile: 2 activation rows x 4 weight rows; 4 dot accumulators reduce to one i32x4 of
// four outputs (hsum4), so epilogues work on four output columns at once.

@inline function hsum4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = i32x4.add(i32x4.shuffle(a, b, 0, 4, 1, 5), i32x4.shuffle(a, b, 2, 6, 3, 7));
  const cd = i32x4.add(i32x4.shuffle(c, d, 0, 4, 1, 5), i32x4.shuffle(c, d, 2, 6, 3, 7));
  return i32x4.add(i32x4.shuffle(ab, cd, 0, 1, 4, 5), i32x4.shuffle(ab, cd, 2, 3, 6, 7));
}

@inline function fsum4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = f32x4.add(i32x4.shuffle(a, b, 0, 4, 1, 5), i32x4.shuffle(a, b, 2, 6, 3, 7));
  const cd = f32x4.add(i32x4.shuffle(c, d, 0, 4, 1, 5), i32x4.shuffle(c, d, 2, 6, 3, 7));
  return f32x4.add(i32x4.shuffle(ab, cd, 0, 1, 4, 5), i32x4.shuffle(ab, cd, 2, 3, 6, 7));
}

@inline function fsum1(a: v128): f32 {
  const h = f32x4.add(a, i32x4.shuffle(a, a, 2, 3, 0, 1));
  return f32x4.extract_lane(h, 0) + f32x4.extract_lane(h, 1);
}

@inline function isum1(a: v128): i32 {
  const h = i32x4.add(a, i32x4.shuffle(a, a, 2, 3, 0, 1));
  return i32x4.extract_lane(h, 0) + i32x4.extract_lane(h, 1);
}

/**
 * Epilogue for four outputs c[i, j..j+3] from their i32 dot products v.
 * mode 0: store v (i32). mode 1: f32((v - az[i] * wsum[j..]) ) * (as[i] * ws[j..]) (+ bias[j..]).
 */
@inline function epilogue4(
  v: v128, c: usize, i: i32, j: i32, n: i32, mode: i32,
  aScale: usize, aZero: usize, wScale: usize, wSum: usize, bias: usize,
): void {
  const p = c + ((<usize>i * <usize>n + <usize>j) << 2);
  if (mode == 0) {
    v128.store(p, v);
    return;
  }
  const corr = i32x4.sub(v, i32x4.mul(i32x4.splat(load<i32>(aZero + (<usize>i << 2))), v128.load(wSum + (<usize>j << 2))));
  const s = f32x4.mul(f32x4.splat(load<f32>(aScale + (<usize>i << 2))), v128.load(wScale + (<usize>j << 2)));
  let y = f32x4.mul(f32x4.convert_i32x4_s(corr), s);
  if (bias != 0) y = f32x4.add(y, v128.load(bias + (<usize>j << 2)));
  v128.store(p, y);
}

@inline function epilogue1(
  v: i32, c: usize, i: i32, j: i32, n: i32, mode: i32,
  aScale: usize, aZero: usize, wScale: usize, wSum: usize, bias: usize,
): void {
  const p = c + ((<usize>i * <usize>n + <usize>j) << 2);
  if (mode == 0) {
    store<i32>(p, v);
    return;
  }
  const corr = v - load<i32>(aZero + (<usize>i << 2)) * load<i32>(wSum + (<usize>j << 2));
  const s = load<f32>(aScale + (<usize>i << 2)) * load<f32>(wScale + (<usize>j << 2));
  let y = <f32>corr * s;
  if (bias != 0) y = y + load<f32>(bias + (<usize>j << 2));
  store<f32>(p, y);
}

/**
 * C[m, n] = A[m, kp] . B[n, kp]^T with A i16 (int8/uint8 values) and B i8, exact i32 sums,
 * followed by the epilogue chosen by `mode` (see epilogue4). aScale f32 [m], aZero i32 [m],
 * wScale f32 [n], wSum i32 [n] (sum of each weight row), bias f32 [n] or 0. Only output columns
 * [j0, j1) are computed (a thread's share; with m > 1, j0 a multiple of 4 keeps every column's
 * path; with m == 1 every column gets the same arithmetic wherever it falls, see gemvFar).
 */
export function gemm_i16_i8(
  a: usize, b: usize, c: usize, m: i32, n: i32, kp: i32, mode: i32,
  aScale: usize, aZero: usize, wScale: usize, wSum: usize, bias: usize, j0: i32, j1: i32,
): void {
  if (m == 1) {
    gemvFar(a, b, c, n, kp, mode, aScale, aZero, wScale, wSum, bias, j0, j1);
    return;
  }
  const lda = <usize>kp << 1;
  const ldb = <usize>kp;
  let j = j0;
  for (; j + 4 <= j1; j += 4) {
    const b0 = b + <usize>j * ldb;
    const b1 = b0 + ldb;
    const b2 = b1 + ldb;
    const b3 = b2 + ldb;
    let i = 0;
    for (; i + 2 <= m; i += 2) {
      const a0 = a + <usize>i * lda;
      const a1 = a0 + lda;
      let c00 = i32x4.splat(0), c01 = i32x4.splat(0), c02 = i32x4.splat(0), c03 = i32x4.splat(0);
      let c10 = i32x4.splat(0), c11 = i32x4.splat(0), c12 = i32x4.splat(0), c13 = i32x4.splat(0);
      for (let k = 0; k < kp; k += 8) {
        const ko = <usize>k;
        const w0 = v128.load8x8_s(b0 + ko);
        const w1 = v128.load8x8_s(b1 + ko);
        const w2 = v128.load8x8_s(b2 + ko);
        const w3 = v128.load8x8_s(b3 + ko);
        const x0 = v128.load(a0 + (ko << 1));
        c00 = i32x4.add(c00, i32x4.dot_i16x8_s(x0, w0));
        c01 = i32x4.add(c01, i32x4.dot_i16x8_s(x0, w1));
        c02 = i32x4.add(c02, i32x4.dot_i16x8_s(x0, w2));
        c03 = i32x4.add(c03, i32x4.dot_i16x8_s(x0, w3));
        const x1 = v128.load(a1 + (ko << 1));
        c10 = i32x4.add(c10, i32x4.dot_i16x8_s(x1, w0));
        c11 = i32x4.add(c11, i32x4.dot_i16x8_s(x1, w1));
        c12 = i32x4.add(c12, i32x4.dot_i16x8_s(x1, w2));
        c13 = i32x4.add(c13, i32x4.dot_i16x8_s(x1, w3));
      }
      epilogue4(hsum4(c00, c01, c02, c03), c, i, j, n, mode, aScale, aZero, wScale, wSum, bias);
      epilogue4(hsum4(c10, c11, c12, c13), c, i + 1, j, n, mode, aScale, aZero, wScale, wSum, bias);
    }
    if (i < m) {
      // one activation row (GEMV when m == 1): 16 columns per step
      const a0 = a + <usize>i * lda;
      let c0 = i32x4.splat(0), c1 = i32x4.splat(0), c2 = i32x4.splat(0), c3 = i32x4.splat(0);
      for (let k = 0; k < kp; k += 16) {
        const ko = <usize>k;
        const xl = v128.load(a0 + (ko << 1));
        const xh = v128.load(a0 + (ko << 1), 16);
        const w0 = v128.load(b0 + ko);
        const w1 = v128.load(b1 + ko);
        const w2 = v128.load(b2 + ko);
        const w3 = v128.load(b3 + ko);
        c0 = i32x4.add(c0, i32x4.dot_i16x8_s(xl, i16x8.extend_low_i8x16_s(w0)));
        c1 = i32x4.add(c1, i32x4.dot_i16x8_s(xl, i16x8.extend_low_i8x16_s(w1)));
        c2 = i32x4.add(c2, i32x4.dot_i16x8_s(xl, i16x8.extend_low_i8x16_s(w2)));
        c3 = i32x4.add(c3, i32x4.dot_i16x8_s(xl, i16x8.extend_low_i8x16_s(w3)));
        c0 = i32x4.add(c0, i32x4.dot_i16x8_s(xh, i16x8.extend_high_i8x16_s(w0)));
        c1 = i32x4.add(c1, i32x4.dot_i16x8_s(xh, i16x8.extend_high_i8x16_s(w1)));
        c2 = i32x4.add(c2, i32x4.dot_i16x8_s(xh, i16x8.extend_high_i8x16_s(w2)));
        c3 = i32x4.add(c3, i32x4.dot_i16x8_s(xh, i16x8.extend_high_i8x16_s(w3)));
      }
      epilogue4(hsum4(c0, c1, c2, c3), c, i, j, n, mode, aScale, aZero, wScale, wSum, bias);
    }
  }
  // remaining weight rows, one at a time
  for (; j < j1; j++) {
    const b0 = b + <usize>j * ldb;
    for (let i = 0; i < m; i++) {
      const a0 = a + <usize>i * lda;
      let acc = i32x4.splat(0);
      for (let k = 0; k < kp; k += 8) {
        const ko = <usize>k;
        acc = i32x4.add(acc, i32x4.dot_i16x8_s(v128.load(a0 + (ko << 1)), v128.load8x8_s(b0 + ko)));
      }
      epilogue1(isum1(acc), c, i, j, n, mode, aScale, aZero, wScale, wSum, bias);
    }
  }
}

/**
 * gemm_i16_i8 for one activation row: four weight rows a quarter of [j0, j1) apart side by side, so
 * the weights are read as four streams far apart. Four adjacent rows (kp bytes apart) read no faster
 * than one stream, and at kp = 768 much slower: 32000 x 768 took 5.5-5.8 ms that way and 2.3 ms this
 * way, 4096 x 4096 1.94-2.01 and 1.56-1.63, on the 2-core Zen 1 machine with the weights coming from
 * memory. Exact integer sums and the same epilogue arithmetic per output, so the same bits.
 */
@inline function gemvFar(
  a: usize, b: usize, c: usize, n: i32, kp: i32, mode: i32,
  aScale: usize, aZero: usize, wScale: usize, wSum: usize, bias: usize, j0: i32, j1: i32,
): void {
  const ldb = <usize>kp;
  const q = (j1 - j0) >> 2;
  const qb = <usize>q * ldb;
  const end = a + (<usize>kp << 1);
  for (let j = j0; j < j0 + q; j++) {
    let p = b + <usize>j * ldb;
    let c0 = i32x4.splat(0), c1 = i32x4.splat(0), c2 = i32x4.splat(0), c3 = i32x4.splat(0);
    for (let pa = a; pa < end; pa += 16) {
      const x = v128.load(pa);
      c0 = i32x4.add(c0, i32x4.dot_i16x8_s(x, v128.load8x8_s(p)));
      c1 = i32x4.add(c1, i32x4.dot_i16x8_s(x, v128.load8x8_s(p + qb)));
      c2 = i32x4.add(c2, i32x4.dot_i16x8_s(x, v128.load8x8_s(p + 2 * qb)));
      c3 = i32x4.add(c3, i32x4.dot_i16x8_s(x, v128.load8x8_s(p + 3 * qb)));
      p += 8;
    }
    epilogue1(isum1(c0), c, 0, j, n, mode, aScale, aZero, wScale, wSum, bias);
    epilogue1(isum1(c1), c, 0, j + q, n, mode, aScale, aZero, wScale, wSum, bias);
    epilogue1(isum1(c2), c, 0, j + 2 * q, n, mode, aScale, aZero, wScale, wSum, bias);
    epilogue1(isum1(c3), c, 0, j + 3 * q, n, mode, aScale, aZero, wScale, wSum, bias);
  }
  for (let j = j0 + 4 * q; j < j1; j++) {
    let p = b + <usize>j * ldb;
    let acc = i32x4.splat(0);
    for (let pa = a; pa < end; pa += 16) {
      acc = i32x4.add(acc, i32x4.dot_i16x8_s(v128.load(pa), v128.load8x8_s(p)));
      p += 8;
    }
    epilogue1(isum1(acc), c, 0, j, n, mode, aScale, aZero, wScale, wSum, bias);
  }
}

@inline function cvt8(p: usize): v128 {
  // 4 int8 at p -> f32x4
  return f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(i16x8.extend_low_i8x16_s(v128.load32_zero(p))));
}

/**
 * Weight-only int8: y[m, n] = (sum_k x[m, k] * b[n, k]) * wScale[n] (+ bias[n]), x f32 [m, kp],
 * b i8 [n, kp] dequantized on the fly into f32 products (per-channel scale applied once).
 * Only output columns [j0, j1) are computed.
 */
export function gemm_f32_i8(x: usize, b: usize, y: usize, m: i32, n: i32, kp: i32, wScale: usize, bias: usize, j0: i32, j1: i32): void {
  const ldx = <usize>kp << 2;
  const ldb = <usize>kp;
  let i = 0;
  // 4 x-rows by 2 weight rows
  for (; i + 4 <= m; i += 4) {
    const x0 = x + <usize>i * ldx;
    const x1 = x0 + ldx;
    const x2 = x1 + ldx;
    const x3 = x2 + ldx;
    let j = j0;
    for (; j + 2 <= j1; j += 2) {
      const b0 = b + <usize>j * ldb;
      const b1 = b0 + ldb;
      let s00 = f32x4.splat(0), s01 = f32x4.splat(0), s10 = f32x4.splat(0), s11 = f32x4.splat(0);
      let s20 = f32x4.splat(0), s21 = f32x4.splat(0), s30 = f32x4.splat(0), s31 = f32x4.splat(0);
      for (let k = 0; k < kp; k += 4) {
        const ko = <usize>k;
        const w0 = cvt8(b0 + ko);
        const w1 = cvt8(b1 + ko);
        let v = v128.load(x0 + (ko << 2));
        s00 = f32x4.add(s00, f32x4.mul(v, w0));
        s01 = f32x4.add(s01, f32x4.mul(v, w1));
        v = v128.load(x1 + (ko << 2));
        s10 = f32x4.add(s10, f32x4.mul(v, w0));
        s11 = f32x4.add(s11, f32x4.mul(v, w1));
        v = v128.load(x2 + (ko << 2));
        s20 = f32x4.add(s20, f32x4.mul(v, w0));
        s21 = f32x4.add(s21, f32x4.mul(v, w1));
        v = v128.load(x3 + (ko << 2));
        s30 = f32x4.add(s30, f32x4.mul(v, w0));
        s31 = f32x4.add(s31, f32x4.mul(v, w1));
      }
      // lanes: [row0 n0, row1 n0, row2 n0, row3 n0] and the same for n1
      const r0 = fsum4(s00, s10, s20, s30);
      const r1 = fsum4(s01, s11, s21, s31);
      const sc0 = load<f32>(wScale + (<usize>j << 2));
      const sc1 = load<f32>(wScale + (<usize>(j + 1) << 2));
      const bi0 = bias != 0 ? load<f32>(bias + (<usize>j << 2)) : 0;
      const bi1 = bias != 0 ? load<f32>(bias + (<usize>(j + 1) << 2)) : 0;
      const o0 = f32x4.mul(r0, f32x4.splat(sc0));
      const o1 = f32x4.mul(r1, f32x4.splat(sc1));
      storeOut(y, i, j, n, f32x4.extract_lane(o0, 0), bias, bi0);
      storeOut(y, i + 1, j, n, f32x4.extract_lane(o0, 1), bias, bi0);
      storeOut(y, i + 2, j, n, f32x4.extract_lane(o0, 2), bias, bi0);
      storeOut(y, i + 3, j, n, f32x4.extract_lane(o0, 3), bias, bi0);
      storeOut(y, i, j + 1, n, f32x4.extract_lane(o1, 0), bias, bi1);
      storeOut(y, i + 1, j + 1, n, f32x4.extract_lane(o1, 1), bias, bi1);
      storeOut(y, i + 2, j + 1, n, f32x4.extract_lane(o1, 2), bias, bi1);
      storeOut(y, i + 3, j + 1, n, f32x4.extract_lane(o1, 3), bias, bi1);
    }
    for (; j < j1; j++) {
      for (let r = 0; r < 4; r++) wo_row1(x + <usize>(i + r) * ldx, b + <usize>j * ldb, y, i + r, j, n, kp, wScale, bias);
    }
  }
  // remaining x-rows (GEMV when m == 1): 1 x-row by 4 weight rows
  for (; i < m; i++) {
    const x0 = x + <usize>i * ldx;
    let j = j0;
    for (; j + 4 <= j1; j += 4) {
      const b0 = b + <usize>j * ldb;
      const b1 = b0 + ldb;
      const b2 = b1 + ldb;
      const b3 = b2 + ldb;
      let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
      for (let k = 0; k < kp; k += 8) {
        const ko = <usize>k;
        const vl = v128.load(x0 + (ko << 2));
        const vh = v128.load(x0 + (ko << 2), 16);
        let w = v128.load8x8_s(b0 + ko);
        s0 = f32x4.add(s0, f32x4.mul(vl, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(w))));
        s0 = f32x4.add(s0, f32x4.mul(vh, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(w))));
        w = v128.load8x8_s(b1 + ko);
        s1 = f32x4.add(s1, f32x4.mul(vl, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(w))));
        s1 = f32x4.add(s1, f32x4.mul(vh, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(w))));
        w = v128.load8x8_s(b2 + ko);
        s2 = f32x4.add(s2, f32x4.mul(vl, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(w))));
        s2 = f32x4.add(s2, f32x4.mul(vh, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(w))));
        w = v128.load8x8_s(b3 + ko);
        s3 = f32x4.add(s3, f32x4.mul(vl, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(w))));
        s3 = f32x4.add(s3, f32x4.mul(vh, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(w))));
      }
      let o = f32x4.mul(fsum4(s0, s1, s2, s3), v128.load(wScale + (<usize>j << 2)));
      if (bias != 0) o = f32x4.add(o, v128.load(bias + (<usize>j << 2)));
      v128.store(y + ((<usize>i * <usize>n + <usize>j) << 2), o);
    }
    for (; j < j1; j++) wo_row1(x0, b + <usize>j * ldb, y, i, j, n, kp, wScale, bias);
  }
}

@inline function storeOut(y: usize, i: i32, j: i32, n: i32, v: f32, bias: usize, bi: f32): void {
  store<f32>(y + ((<usize>i * <usize>n + <usize>j) << 2), bias != 0 ? v + bi : v);
}

function wo_row1(x0: usize, b0: usize, y: usize, i: i32, j: i32, n: i32, kp: i32, wScale: usize, bias: usize): void {
  let s = f32x4.splat(0);
  for (let k = 0; k < kp; k += 4) {
    const ko = <usize>k;
    s = f32x4.add(s, f32x4.mul(v128.load(x0 + (ko << 2)), cvt8(b0 + ko)));
  }
  let v = fsum1(s) * load<f32>(wScale + (<usize>j << 2));
  if (bias != 0) v += load<f32>(bias + (<usize>j << 2));
  store<f32>(y + ((<usize>i * <usize>n + <usize>j) << 2), v);
}

/** Widens int8 (unsigned == 0) or uint8 [rows, k] into i16 [rows, kp] (zero padded), for the integer GEMM. */
export function widen_i8_i16(src: usize, dst: usize, rows: i32, k: i32, kp: i32, unsigned: i32): void {
  for (let r = 0; r < rows; r++) {
    const s = src + <usize>r * <usize>k;
    const d = dst + ((<usize>r * <usize>kp) << 1);
    let c = 0;
    if (unsigned != 0) {
      for (; c + 8 <= k; c += 8) v128.store(d + (<usize>c << 1), v128.load8x8_u(s + <usize>c));
      for (; c < k; c++) store<i16>(d + (<usize>c << 1), <i16>load<u8>(s + <usize>c));
    } else {
      for (; c + 8 <= k; c += 8) v128.store(d + (<usize>c << 1), v128.load8x8_s(s + <usize>c));
      for (; c < k; c++) store<i16>(d + (<usize>c << 1), <i16>load<i8>(s + <usize>c));
    }
    for (; c < kp; c++) store<i16>(d + (<usize>c << 1), 0);
  }
}

/**
 * A reference point for this module's GEMMs (a benchmark probe, not a kernel; the W8A8 GEMM runs
 * faster than it, so it is no ceiling): `iters`
 * steps of twice the W8A8 inner loop's arithmetic (sixteen i32x4.dot_i16x8_s, each added to an
 * accumulator: 128 multiply-adds) with operands in registers, no loads. All sixteen products
 * differ (four activation operands times four weights), so none can be merged with another, and
 * the activations change every step, so nothing is loop-invariant. Thirteen live vectors (four
 * accumulators, each taking four adds a step), so nothing spills to the stack on x64's sixteen
 * SIMD registers. Returns a lane sum so nothing is dead.
 */
export function dot_i16_peak(iters: i32): i32 {
  let x0 = i16x8.splat(1);
  let x1 = i16x8.splat(2);
  let x2 = i16x8.splat(4);
  let x3 = i16x8.splat(-1);
  const one = i16x8.splat(1);
  const w0 = i16x8.splat(3);
  const w1 = i16x8.splat(5);
  const w2 = i16x8.splat(7);
  const w3 = i16x8.splat(11);
  let c0 = i32x4.splat(0), c1 = i32x4.splat(0), c2 = i32x4.splat(0), c3 = i32x4.splat(0);
  for (let i = 0; i < iters; i++) {
    c0 = i32x4.add(c0, i32x4.dot_i16x8_s(x0, w0));
    c1 = i32x4.add(c1, i32x4.dot_i16x8_s(x0, w1));
    c2 = i32x4.add(c2, i32x4.dot_i16x8_s(x0, w2));
    c3 = i32x4.add(c3, i32x4.dot_i16x8_s(x0, w3));
    c0 = i32x4.add(c0, i32x4.dot_i16x8_s(x1, w1));
    c1 = i32x4.add(c1, i32x4.dot_i16x8_s(x1, w2));
    c2 = i32x4.add(c2, i32x4.dot_i16x8_s(x1, w3));
    c3 = i32x4.add(c3, i32x4.dot_i16x8_s(x1, w0));
    c0 = i32x4.add(c0, i32x4.dot_i16x8_s(x2, w2));
    c1 = i32x4.add(c1, i32x4.dot_i16x8_s(x2, w3));
    c2 = i32x4.add(c2, i32x4.dot_i16x8_s(x2, w0));
    c3 = i32x4.add(c3, i32x4.dot_i16x8_s(x2, w1));
    c0 = i32x4.add(c0, i32x4.dot_i16x8_s(x3, w3));
    c1 = i32x4.add(c1, i32x4.dot_i16x8_s(x3, w0));
    c2 = i32x4.add(c2, i32x4.dot_i16x8_s(x3, w1));
    c3 = i32x4.add(c3, i32x4.dot_i16x8_s(x3, w2));
    x0 = i16x8.add(x0, one);
    x1 = i16x8.sub(x1, one);
    x2 = i16x8.add(x2, one);
    x3 = i16x8.sub(x3, one);
  }
  const s = i32x4.add(i32x4.add(c0, c1), i32x4.add(c2, c3));
  return i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1) + i32x4.extract_lane(s, 2) + i32x4.extract_lane(s, 3);
}

// ---- W8A8 GEMM by Winograd's inner product ---------------------------------------------------------
//
// For vectors whose indices are split into pairs (p, p'), sum_k a_k b_k =
// sum_pairs (a_p + b_p')(a_p' + b_p) - sum_pairs a_p a_p' - sum_pairs b_p b_p' (Winograd 1968).
// Here p runs over the first eight columns of each 16-column block and p' = p + 8, so both halves
// load straight from the plain layouts. One i32x4.dot_i16x8_s then covers sixteen multiply-adds
// instead of eight; the two correction sums depend on one row of A or one column of B only, so
// they cost O(mk + nk). Every term is exact in i32 (int8/uint8 sums fit i16, and i32 wraps the same
// way as the direct sum), so the outputs equal gemm_i16_i8's bit for bit. The plain kernel is
// bound by the one x64 vector pipe that multiplies integers on the CPUs measured; this one trades
// half of those multiplies for i16 adds, which more pipes run.
//
// Packed activations (wino_pack_a): row pairs; pair p at p * kp * 4 bytes; per 16 columns 64 bytes,
// [row 2p (16 x i16)][row 2p+1 (16 x i16)] (a missing last row is zeros).

/** Row pairs of the packed activations that one column pair runs over before the next column pair. */
const WINO_PAIR_BLOCK = 32;

/**
 * Packs a (i16 [m, kp]) for gemm_wino into d (ceil(m/2) * kp * 4 bytes) and writes each row's
 * correction (the sum over 16-column blocks of a_l a_l+8, l < 8) to rowc (i32 [2 * ceil(m/2)],
 * 0 for a missing last row).
 */
export function wino_pack_a(a: usize, d: usize, m: i32, kp: i32, rowc: usize): void {
  const pairs = (m + 1) >> 1;
  for (let i = 0; i < pairs * 2; i++) {
    const o = d + ((<usize>(i >> 1) * <usize>kp) << 2) + (<usize>(i & 1) << 5);
    if (i >= m) {
      for (let k = 0; k < kp; k += 16) {
        v128.store(o + (<usize>k << 2), i32x4.splat(0));
        v128.store(o + (<usize>k << 2), i32x4.splat(0), 16);
      }
      store<i32>(rowc + (<usize>i << 2), 0);
      continue;
    }
    const s = a + ((<usize>i * <usize>kp) << 1);
    let acc = i32x4.splat(0);
    for (let k = 0; k < kp; k += 16) {
      const lo = v128.load(s + (<usize>k << 1));
      const hi = v128.load(s + (<usize>k << 1), 16);
      v128.store(o + (<usize>k << 2), lo);
      v128.store(o + (<usize>k << 2), hi, 16);
      acc = i32x4.add(acc, i32x4.dot_i16x8_s(lo, hi));
    }
    store<i32>(rowc + (<usize>i << 2), isum1(acc));
  }
}

/** A weight row's correction: the sum over 16-column blocks of b_l b_l+8 (l < 8). */
@inline function winoColCorr(s: usize, kp: i32): i32 {
  let acc = i32x4.splat(0);
  for (let k = 0; k < kp; k += 16) acc = i32x4.add(acc, i32x4.dot_i16x8_s(v128.load8x8_s(s + <usize>k), v128.load8x8_s(s + <usize>k, 8)));
  return isum1(acc);
}

@inline function wdot(acc: v128, a0: v128, a1: v128, b0: v128, b1: v128): v128 {
  return i32x4.add(acc, i32x4.dot_i16x8_s(i16x8.add(a0, b1), i16x8.add(a1, b0)));
}

/**
 * A ceiling probe for gemm_wino (a benchmark probe, not a kernel): `reps` passes of gemm_wino's
 * inner loop, the same instructions (per 16-column step four packed activation loads, four
 * sign-extending weight loads, eight i16 adds, four dot_i16x8_s and four accumulator adds: 64
 * multiply-adds), over 64 steps a pass (4096 multiply-adds) on operands that stay in L1: 4 KiB of
 * packed activations at a and two 1 KiB weight rows at b. The GEMM with no cache misses, no
 * per-tile work and no epilogue. Stores the accumulators' sum at out (16 bytes) so nothing is dead.
 */
export function wino_loop_peak(a: usize, b: usize, reps: i32, out: usize): void {
  const ldb: usize = 1024;
  let c00 = i32x4.splat(0), c01 = i32x4.splat(0), c10 = i32x4.splat(0), c11 = i32x4.splat(0);
  for (let r = 0; r < reps; r++) {
    let pa = a;
    for (let pb = b; pb < b + ldb; pb += 16) {
      const a00 = v128.load(pa), a01 = v128.load(pa, 16), a10 = v128.load(pa, 32), a11 = v128.load(pa, 48);
      const w00 = v128.load8x8_s(pb), w01 = v128.load8x8_s(pb, 8);
      const w10 = v128.load8x8_s(pb + ldb), w11 = v128.load8x8_s(pb + ldb, 8);
      c00 = wdot(c00, a00, a01, w00, w01);
      c01 = wdot(c01, a00, a01, w10, w11);
      c10 = wdot(c10, a10, a11, w00, w01);
      c11 = wdot(c11, a10, a11, w10, w11);
      pa += 64;
    }
  }
  v128.store(out, i32x4.add(i32x4.add(c00, c01), i32x4.add(c10, c11)));
}

/**
 * gemm_i16_i8 (same outputs, modes and epilogue arguments) on activations packed by wino_pack_a
 * (ap, with their corrections rowc) and weights b (i8 [n, kp]), read in place. Only output columns
 * [j0, j1) are computed. `scratch`: 4 bytes of this call's own.
 */
export function gemm_wino(
  ap: usize, rowc: usize, b: usize, c: usize, m: i32, n: i32, kp: i32, mode: i32,
  aScale: usize, aZero: usize, wScale: usize, wSum: usize, bias: usize, j0: i32, j1: i32, scratch: usize,
): void {
  const pairs = (m + 1) >> 1;
  const pairStride = <usize>kp << 2;
  const ldb = <usize>kp;
  // the next column pair's weight rows (2 * kp contiguous bytes) are read a few cache lines per
  // pair of activation rows, so that the next column pair finds them in cache
  const lines = (kp * 2 + 63) >> 6;
  let touch = 0;
  for (let q0 = 0; q0 < pairs; q0 += WINO_PAIR_BLOCK) {
    const q1 = min(pairs, q0 + WINO_PAIR_BLOCK);
    const step = (lines + (q1 - q0) - 1) / (q1 - q0);
    let j = j0;
    for (; j + 2 <= j1; j += 2) {
      const b0 = b + <usize>j * ldb;
      const bend = b0 + ldb;
      const cc0 = winoColCorr(b0, kp);
      const cc1 = winoColCorr(bend, kp);
      const next = j + 4 <= j1 ? b0 + (ldb << 1) : 0;
      let line = 0;
      for (let q = q0; q < q1; q++) {
        if (next != 0) {
          const end = min(lines, line + step);
          for (; line < end; line++) touch += load<u8>(next + (<usize>line << 6));
        }
        let pa = ap + <usize>q * pairStride;
        let c00 = i32x4.splat(0), c01 = i32x4.splat(0), c10 = i32x4.splat(0), c11 = i32x4.splat(0);
        for (let pb = b0; pb < bend; pb += 16) {
          const a00 = v128.load(pa), a01 = v128.load(pa, 16), a10 = v128.load(pa, 32), a11 = v128.load(pa, 48);
          const w00 = v128.load8x8_s(pb), w01 = v128.load8x8_s(pb, 8);
          const w10 = v128.load8x8_s(pb + ldb), w11 = v128.load8x8_s(pb + ldb, 8);
          c00 = wdot(c00, a00, a01, w00, w01);
          c01 = wdot(c01, a00, a01, w10, w11);
          c10 = wdot(c10, a10, a11, w00, w01);
          c11 = wdot(c11, a10, a11, w10, w11);
          pa += 64;
        }
        const i = q << 1;
        const r0 = load<i32>(rowc + (<usize>i << 2));
        epilogue1(isum1(c00) - r0 - cc0, c, i, j, n, mode, aScale, aZero, wScale, wSum, bias);
        epilogue1(isum1(c01) - r0 - cc1, c, i, j + 1, n, mode, aScale, aZero, wScale, wSum, bias);
        if (i + 1 < m) {
          const r1 = load<i32>(rowc + (<usize>(i + 1) << 2));
          epilogue1(isum1(c10) - r1 - cc0, c, i + 1, j, n, mode, aScale, aZero, wScale, wSum, bias);
          epilogue1(isum1(c11) - r1 - cc1, c, i + 1, j + 1, n, mode, aScale, aZero, wScale, wSum, bias);
        }
      }
    }
    if (j < j1) {
      // a last odd column
      const b0 = b + <usize>j * ldb;
      const bend = b0 + ldb;
      const cc0 = winoColCorr(b0, kp);
      for (let q = q0; q < q1; q++) {
        let pa = ap + <usize>q * pairStride;
        let c00 = i32x4.splat(0), c10 = i32x4.splat(0);
        for (let pb = b0; pb < bend; pb += 16) {
          const w00 = v128.load8x8_s(pb), w01 = v128.load8x8_s(pb, 8);
          c00 = wdot(c00, v128.load(pa), v128.load(pa, 16), w00, w01);
          c10 = wdot(c10, v128.load(pa, 32), v128.load(pa, 48), w00, w01);
          pa += 64;
        }
        const i = q << 1;
        epilogue1(isum1(c00) - load<i32>(rowc + (<usize>i << 2)) - cc0, c, i, j, n, mode, aScale, aZero, wScale, wSum, bias);
        if (i + 1 < m) {
          epilogue1(isum1(c10) - load<i32>(rowc + (<usize>(i + 1) << 2)) - cc0, c, i + 1, j, n, mode, aScale, aZero, wScale, wSum, bias);
        }
      }
    }
  }
  store<i32>(scratch, touch); // keeps the reads above
}
