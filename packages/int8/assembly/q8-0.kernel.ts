// GGUF Q8_0 kernels: blocks of 32 values {f16 d; i8 q[32]} (34 bytes), d = amax / 127,
// q = roundf(x * (1 / d)) (round half away from zero), exactly as llama.cpp's
// quantize_row_q8_0_ref. Pointers are byte offsets into the engine's shared memory.

/** f32 -> f16 bits, round to nearest even (subnormals, overflow to infinity, NaN kept). */
@inline function f32ToF16(x: f32): u32 {
  const b = reinterpret<u32>(x);
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp == 0xff) return mant == 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13);
  if (exp >= 143) return sign | 0x7c00;
  if (exp >= 113) {
    let h = ((exp - 112) << 10) | (mant >>> 13);
    const rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1) != 0)) h++;
    return sign | h;
  }
  if (exp < 102) return sign;
  const sig = mant | 0x800000;
  const shift = 126 - exp;
  let m = sig >>> shift;
  const rem = sig & ((1 << shift) - 1);
  const half: u32 = 1 << (shift - 1);
  if (rem > half || (rem == half && (m & 1) != 0)) m++;
  return sign | m;
}

/** f16 bits -> f32 (exact). */
@inline function f16ToF32(h: u32): f32 {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp == 0x1f) return reinterpret<f32>(sign | 0x7f800000 | (mant << 13));
  if (exp != 0) return reinterpret<f32>(sign | ((exp + 112) << 23) | (mant << 13));
  // zero or subnormal: mant * 2^-24, exact in f32
  const v = <f32>mant * reinterpret<f32>(<u32>0x33800000);
  return sign != 0 ? -v : v;
}

/** Rounds each lane half away from zero (C roundf), exactly. */
@inline function roundAway(v: v128): v128 {
  const t = f32x4.trunc(v);
  const frac = f32x4.abs(f32x4.sub(v, t));
  const step = v128.or(f32x4.splat(1.0), v128.and(v, i32x4.splat(0x80000000)));
  return f32x4.add(t, v128.and(f32x4.ge(frac, f32x4.splat(0.5)), step));
}

@inline function q4(p: usize, id: v128): v128 {
  return i32x4.trunc_sat_f32x4_s(roundAway(f32x4.mul(v128.load(p), id)));
}

/**
 * Quantizes one block of 32 f32 at x: writes 32 int8 at qs and returns d (f32, unrounded).
 * Returns NaN/Infinity for d when the block holds a non-finite value.
 */
@inline function quantizeBlock(x: usize, qs: usize): f32 {
  let m = f32x4.abs(v128.load(x));
  for (let i = 1; i < 8; i++) m = f32x4.max(m, f32x4.abs(v128.load(x + (<usize>i << 4))));
  const amax = max<f32>(max<f32>(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max<f32>(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
  const d: f32 = amax / 127.0;
  const idf: f32 = d != 0 ? <f32>1.0 / d : 0;
  if (!(idf - idf == 0)) return d; // non-finite block: caller reports it
  const id = f32x4.splat(idf);
  for (let h = 0; h < 2; h++) {
    const p = x + (<usize>h << 6);
    const a = i16x8.narrow_i32x4_s(q4(p, id), q4(p + 16, id));
    const b = i16x8.narrow_i32x4_s(q4(p + 32, id), q4(p + 48, id));
    v128.store(qs + (<usize>h << 4), i8x16.narrow_i16x8_s(a, b));
  }
  return d;
}

/**
 * x f32 [nb * 32] -> GGUF Q8_0 blocks at dst (nb * 34 bytes). Returns -1, or the index of the
 * first block with a non-finite value (its bytes are then unspecified).
 */
export function q8_0_quantize(x: usize, dst: usize, nb: i32): i32 {
  let bad = -1;
  for (let b = 0; b < nb; b++) {
    const out = dst + <usize>b * 34;
    const d = quantizeBlock(x + (<usize>b << 7), out + 2);
    if (!(d - d == 0) && bad < 0) bad = b;
    store<u16>(out, <u16>f32ToF16(d));
  }
  return bad;
}

/**
 * x f32 [nb * 32] -> qs i8 [nb * 32] and df f32 [nb] (d rounded through f16, as the dot
 * product sees it): the split layout the Q8_0 GEMM reads for activations. Returns as above.
 */
export function q8_0_quantize_split(x: usize, qs: usize, df: usize, nb: i32): i32 {
  let bad = -1;
  for (let b = 0; b < nb; b++) {
    const d = quantizeBlock(x + (<usize>b << 7), qs + (<usize>b << 5));
    if (!(d - d == 0) && bad < 0) bad = b;
    store<f32>(df + (<usize>b << 2), f16ToF32(f32ToF16(d)));
  }
  return bad;
}

/** GGUF Q8_0 blocks at src (nb * 34 bytes) -> y f32 [nb * 32]. */
export function q8_0_dequantize(src: usize, y: usize, nb: i32): void {
  for (let b = 0; b < nb; b++) {
    const p = src + <usize>b * 34;
    const d = f32x4.splat(f16ToF32(<u32>load<u16>(p)));
    const yp = y + (<usize>b << 7);
    for (let i = 0; i < 4; i++) {
      const w = v128.load8x8_s(p + 2 + (<usize>i << 3));
      v128.store(yp + (<usize>i << 5), f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(w)), d));
      v128.store(yp + (<usize>i << 5), f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(w)), d), 16);
    }
  }
}

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

// ---------------------------------------------------------------- tiled weight layout
//
// Q8_0Linear keeps its weights in tiles of 4 rows (rows padded with zeros to a multiple of 4):
// quants wq i8 [n4][nb][4][32] (a tile's block is 128 contiguous bytes, row r at r * 32) and
// scales ws f32 [n4][nb][4]. A tile's weights and scales are each one sequential stream. A
// thread's share of the tiles is the same call with wq, ws, y and bias advanced to its first tile.

/** Q8_0 activations qs i8 [nb * 32] -> xw i16 [nb * 32] (sign-extended, same order) for q8_0_gemv_q8. */
export function q8_0_widen_act(qs: usize, xw: usize, nb: i32): void {
  const n = nb << 2;
  for (let c = 0; c < n; c++) v128.store(xw + (<usize>c << 4), v128.load8x8_s(qs + (<usize>c << 3)));
}

/**
 * One block of one tile (4 rows x 32 weights at p) times the widened activations x0..x3: each row's
 * sums, unreduced (i32x4), to pt, pt + 16, pt + 32, pt + 48. The stores keep V8 from mixing the rows.
 */
@inline function tileBlockQ8(p: usize, x0: v128, x1: v128, x2: v128, x3: v128, pt: usize): void {
  let r = i32x4.dot_i16x8_s(v128.load8x8_s(p), x0);
  r = i32x4.add(r, i32x4.dot_i16x8_s(v128.load8x8_s(p, 8), x1));
  r = i32x4.add(r, i32x4.dot_i16x8_s(v128.load8x8_s(p, 16), x2));
  v128.store(pt, i32x4.add(r, i32x4.dot_i16x8_s(v128.load8x8_s(p, 24), x3)));
  r = i32x4.dot_i16x8_s(v128.load8x8_s(p, 32), x0);
  r = i32x4.add(r, i32x4.dot_i16x8_s(v128.load8x8_s(p, 40), x1));
  r = i32x4.add(r, i32x4.dot_i16x8_s(v128.load8x8_s(p, 48), x2));
  v128.store(pt, i32x4.add(r, i32x4.dot_i16x8_s(v128.load8x8_s(p, 56), x3)), 16);
  r = i32x4.dot_i16x8_s(v128.load8x8_s(p, 64), x0);
  r = i32x4.add(r, i32x4.dot_i16x8_s(v128.load8x8_s(p, 72), x1));
  r = i32x4.add(r, i32x4.dot_i16x8_s(v128.load8x8_s(p, 80), x2));
  v128.store(pt, i32x4.add(r, i32x4.dot_i16x8_s(v128.load8x8_s(p, 88), x3)), 32);
  r = i32x4.dot_i16x8_s(v128.load8x8_s(p, 96), x0);
  r = i32x4.add(r, i32x4.dot_i16x8_s(v128.load8x8_s(p, 104), x1));
  r = i32x4.add(r, i32x4.dot_i16x8_s(v128.load8x8_s(p, 112), x2));
  v128.store(pt, i32x4.add(r, i32x4.dot_i16x8_s(v128.load8x8_s(p, 120), x3)), 48);
}

/** Tile t's epilogue from its block sums at sums: y[t's 4 rows] = sum_b f32(isum) * (ws * ad[b]) (+ bias). */
@inline function tileEpilogueQ8(sums: usize, ws: usize, ad: usize, y: usize, nb: i32, t: i32, bias: usize): void {
  const end = sums + (<usize>nb << 6);
  let st = ws + ((<usize>t * <usize>nb) << 4);
  let pd = ad;
  let acc = f32x4.splat(0);
  for (let pt = sums; pt < end; pt += 64) {
    const isum = hsum4(v128.load(pt), v128.load(pt, 16), v128.load(pt, 32), v128.load(pt, 48));
    const s = f32x4.mul(v128.load(st), v128.load32_splat(pd));
    acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(isum), s));
    st += 16;
    pd += 4;
  }
  if (bias != 0) acc = f32x4.add(acc, v128.load(bias + (<usize>t << 4)));
  v128.store(y + (<usize>t << 4), acc);
}

/**
 * One token, Q8_0 x Q8_0 over the tiled layout (llama.cpp's vec_dot_q8_0_q8_0 order):
 * y[j] = sum_b f32(sum_t a[b,t] * w[j,b,t]) * (ws[j,b] * ad[b]), block by block in f32 (+ bias[j]).
 * xw: the activations as q8_0_widen_act writes them; ad f32 [nb]; y f32 [n4 * 4]; tmp: nb * 256
 * bytes of this call's own.
 *
 * Four tiles a quarter of the call apart run side by side, so the weights are read as four
 * sequential streams: one stream reads at about 11 GB/s on the 2-core Zen 1 machine, four at about
 * 18 (the int8 GEMV is too light for its compute to hide a single stream's latency). Per group of
 * tiles two passes: each row's integer block sums, unreduced, into tmp (one nb * 64 byte slice per
 * tile), then each tile's f32 epilogue; fused, V8 spilled to the stack. The remaining n4 % 4 tiles run
 * one at a time.
 */
export function q8_0_gemv_q8(xw: usize, ad: usize, wq: usize, ws: usize, y: usize, nb: i32, n4: i32, bias: usize, tmp: usize): void {
  const tileBytes = <usize>nb << 7;
  const slice = <usize>nb << 6;
  const q = n4 >> 2;
  const qBytes = <usize>q * tileBytes;
  for (let t = 0; t < q; t++) {
    let p = wq + <usize>t * tileBytes;
    let xb = xw;
    for (let pt = tmp; pt < tmp + slice; pt += 64) {
      const x0 = v128.load(xb), x1 = v128.load(xb, 16), x2 = v128.load(xb, 32), x3 = v128.load(xb, 48);
      tileBlockQ8(p, x0, x1, x2, x3, pt);
      tileBlockQ8(p + qBytes, x0, x1, x2, x3, pt + slice);
      tileBlockQ8(p + 2 * qBytes, x0, x1, x2, x3, pt + 2 * slice);
      tileBlockQ8(p + 3 * qBytes, x0, x1, x2, x3, pt + 3 * slice);
      p += 128;
      xb += 64;
    }
    tileEpilogueQ8(tmp, ws, ad, y, nb, t, bias);
    tileEpilogueQ8(tmp + slice, ws, ad, y, nb, t + q, bias);
    tileEpilogueQ8(tmp + 2 * slice, ws, ad, y, nb, t + 2 * q, bias);
    tileEpilogueQ8(tmp + 3 * slice, ws, ad, y, nb, t + 3 * q, bias);
  }
  for (let t = q << 2; t < n4; t++) {
    let p = wq + <usize>t * tileBytes;
    let xb = xw;
    for (let pt = tmp; pt < tmp + slice; pt += 64) {
      tileBlockQ8(p, v128.load(xb), v128.load(xb, 16), v128.load(xb, 32), v128.load(xb, 48), pt);
      p += 128;
      xb += 64;
    }
    tileEpilogueQ8(tmp, ws, ad, y, nb, t, bias);
  }
}

/**
 * Q8_0 x Q8_0 for m tokens over the tiled layout, same arithmetic per output as q8_0_gemv_q8:
 * y[i, j] (row stride ldy) for the n4 tiles from wq/ws. a i8 [m, nb * 32] with ad f32 [m, nb].
 */
export function q8_0_gemm_q8(a: usize, ad: usize, wq: usize, ws: usize, y: usize, m: i32, nb: i32, n4: i32, ldy: i32, bias: usize): void {
  const ldk = <usize>nb << 5;
  const tileBytes = <usize>nb << 7;
  for (let t = 0; t < n4; t++) {
    const wt = wq + <usize>t * tileBytes;
    const st = ws + ((<usize>t * <usize>nb) << 4);
    const yo = y + (<usize>t << 4);
    let i = 0;
    for (; i + 2 <= m; i += 2) {
      const a0 = a + <usize>i * ldk;
      const a1 = a0 + ldk;
      let f0 = f32x4.splat(0), f1 = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        const kb = <usize>b << 5;
        const p = wt + (<usize>b << 7);
        // the block's first 8 columns start its sums (no zeroed accumulators to add to)
        const v0 = v128.load8x8_s(p);
        const v1 = v128.load8x8_s(p + 32);
        const v2 = v128.load8x8_s(p + 64);
        const v3 = v128.load8x8_s(p + 96);
        const y0 = v128.load8x8_s(a0 + kb);
        let c00 = i32x4.dot_i16x8_s(y0, v0), c01 = i32x4.dot_i16x8_s(y0, v1), c02 = i32x4.dot_i16x8_s(y0, v2), c03 = i32x4.dot_i16x8_s(y0, v3);
        const y1 = v128.load8x8_s(a1 + kb);
        let c10 = i32x4.dot_i16x8_s(y1, v0), c11 = i32x4.dot_i16x8_s(y1, v1), c12 = i32x4.dot_i16x8_s(y1, v2), c13 = i32x4.dot_i16x8_s(y1, v3);
        for (let u = 8; u < 32; u += 8) {
          const ko = kb + <usize>u;
          const w0 = v128.load8x8_s(p + <usize>u);
          const w1 = v128.load8x8_s(p + 32 + <usize>u);
          const w2 = v128.load8x8_s(p + 64 + <usize>u);
          const w3 = v128.load8x8_s(p + 96 + <usize>u);
          const x0 = v128.load8x8_s(a0 + ko);
          c00 = i32x4.add(c00, i32x4.dot_i16x8_s(x0, w0));
          c01 = i32x4.add(c01, i32x4.dot_i16x8_s(x0, w1));
          c02 = i32x4.add(c02, i32x4.dot_i16x8_s(x0, w2));
          c03 = i32x4.add(c03, i32x4.dot_i16x8_s(x0, w3));
          const x1 = v128.load8x8_s(a1 + ko);
          c10 = i32x4.add(c10, i32x4.dot_i16x8_s(x1, w0));
          c11 = i32x4.add(c11, i32x4.dot_i16x8_s(x1, w1));
          c12 = i32x4.add(c12, i32x4.dot_i16x8_s(x1, w2));
          c13 = i32x4.add(c13, i32x4.dot_i16x8_s(x1, w3));
        }
        const dw = v128.load(st + (<usize>b << 4));
        const s0 = f32x4.mul(dw, v128.load32_splat(ad + ((<usize>i * <usize>nb + <usize>b) << 2)));
        const s1 = f32x4.mul(dw, v128.load32_splat(ad + ((<usize>(i + 1) * <usize>nb + <usize>b) << 2)));
        f0 = f32x4.add(f0, f32x4.mul(f32x4.convert_i32x4_s(hsum4(c00, c01, c02, c03)), s0));
        f1 = f32x4.add(f1, f32x4.mul(f32x4.convert_i32x4_s(hsum4(c10, c11, c12, c13)), s1));
      }
      if (bias != 0) {
        const bv = v128.load(bias + (<usize>t << 4));
        f0 = f32x4.add(f0, bv);
        f1 = f32x4.add(f1, bv);
      }
      v128.store(yo + ((<usize>i * <usize>ldy) << 2), f0);
      v128.store(yo + ((<usize>(i + 1) * <usize>ldy) << 2), f1);
    }
    for (; i < m; i++) {
      const a0 = a + <usize>i * ldk;
      let f0 = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        const kb = <usize>b << 5;
        const p = wt + (<usize>b << 7);
        const y0 = v128.load8x8_s(a0 + kb);
        let c0 = i32x4.dot_i16x8_s(y0, v128.load8x8_s(p)), c1 = i32x4.dot_i16x8_s(y0, v128.load8x8_s(p + 32));
        let c2 = i32x4.dot_i16x8_s(y0, v128.load8x8_s(p + 64)), c3 = i32x4.dot_i16x8_s(y0, v128.load8x8_s(p + 96));
        for (let u = 8; u < 32; u += 8) {
          const x0 = v128.load8x8_s(a0 + kb + <usize>u);
          c0 = i32x4.add(c0, i32x4.dot_i16x8_s(x0, v128.load8x8_s(p + <usize>u)));
          c1 = i32x4.add(c1, i32x4.dot_i16x8_s(x0, v128.load8x8_s(p + 32 + <usize>u)));
          c2 = i32x4.add(c2, i32x4.dot_i16x8_s(x0, v128.load8x8_s(p + 64 + <usize>u)));
          c3 = i32x4.add(c3, i32x4.dot_i16x8_s(x0, v128.load8x8_s(p + 96 + <usize>u)));
        }
        const s0 = f32x4.mul(v128.load(st + (<usize>b << 4)), v128.load32_splat(ad + ((<usize>i * <usize>nb + <usize>b) << 2)));
        f0 = f32x4.add(f0, f32x4.mul(f32x4.convert_i32x4_s(hsum4(c0, c1, c2, c3)), s0));
      }
      if (bias != 0) f0 = f32x4.add(f0, v128.load(bias + (<usize>t << 4)));
      v128.store(yo + ((<usize>i * <usize>ldy) << 2), f0);
    }
  }
}

@inline function deq8lo(w: v128, d: v128): v128 {
  return f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(w)), d);
}

@inline function deq8hi(w: v128, d: v128): v128 {
  return f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(w)), d);
}

/**
 * Q8_0 weights with f32 activations over the tiled layout: y[i, j] = sum_k x[i, k] * (w[j, k] *
 * d[j, k/32]) (+ bias), weights dequantized on the fly. x f32 [m, nb * 32]; y row stride ldy.
 */
export function q8_0_gemm_f32(x: usize, wq: usize, ws: usize, y: usize, m: i32, nb: i32, n4: i32, ldy: i32, bias: usize): void {
  const ldx = <usize>nb << 7;
  const tileBytes = <usize>nb << 7;
  for (let t = 0; t < n4; t++) {
    const wt = wq + <usize>t * tileBytes;
    const st = ws + ((<usize>t * <usize>nb) << 4);
    const yo = y + (<usize>t << 4);
    let i = 0;
    // 2 x-rows by the tile's 4 weight rows
    for (; i + 2 <= m; i += 2) {
      const x0 = x + <usize>i * ldx;
      const x1 = x0 + ldx;
      let s00 = f32x4.splat(0), s01 = f32x4.splat(0), s02 = f32x4.splat(0), s03 = f32x4.splat(0);
      let s10 = f32x4.splat(0), s11 = f32x4.splat(0), s12 = f32x4.splat(0), s13 = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        const dp = st + (<usize>b << 4);
        const d0 = v128.load32_splat(dp);
        const d1 = v128.load32_splat(dp + 4);
        const d2 = v128.load32_splat(dp + 8);
        const d3 = v128.load32_splat(dp + 12);
        const p = wt + (<usize>b << 7);
        for (let u = 0; u < 32; u += 8) {
          const ko = (<usize>b << 5) + <usize>u;
          const xl0 = v128.load(x0 + (ko << 2));
          const xh0 = v128.load(x0 + (ko << 2), 16);
          const xl1 = v128.load(x1 + (ko << 2));
          const xh1 = v128.load(x1 + (ko << 2), 16);
          let wv = v128.load8x8_s(p + <usize>u);
          let wl = deq8lo(wv, d0);
          let wh = deq8hi(wv, d0);
          s00 = f32x4.add(s00, f32x4.add(f32x4.mul(xl0, wl), f32x4.mul(xh0, wh)));
          s10 = f32x4.add(s10, f32x4.add(f32x4.mul(xl1, wl), f32x4.mul(xh1, wh)));
          wv = v128.load8x8_s(p + 32 + <usize>u);
          wl = deq8lo(wv, d1);
          wh = deq8hi(wv, d1);
          s01 = f32x4.add(s01, f32x4.add(f32x4.mul(xl0, wl), f32x4.mul(xh0, wh)));
          s11 = f32x4.add(s11, f32x4.add(f32x4.mul(xl1, wl), f32x4.mul(xh1, wh)));
          wv = v128.load8x8_s(p + 64 + <usize>u);
          wl = deq8lo(wv, d2);
          wh = deq8hi(wv, d2);
          s02 = f32x4.add(s02, f32x4.add(f32x4.mul(xl0, wl), f32x4.mul(xh0, wh)));
          s12 = f32x4.add(s12, f32x4.add(f32x4.mul(xl1, wl), f32x4.mul(xh1, wh)));
          wv = v128.load8x8_s(p + 96 + <usize>u);
          wl = deq8lo(wv, d3);
          wh = deq8hi(wv, d3);
          s03 = f32x4.add(s03, f32x4.add(f32x4.mul(xl0, wl), f32x4.mul(xh0, wh)));
          s13 = f32x4.add(s13, f32x4.add(f32x4.mul(xl1, wl), f32x4.mul(xh1, wh)));
        }
      }
      let o0 = fsum4(s00, s01, s02, s03);
      let o1 = fsum4(s10, s11, s12, s13);
      if (bias != 0) {
        const bv = v128.load(bias + (<usize>t << 4));
        o0 = f32x4.add(o0, bv);
        o1 = f32x4.add(o1, bv);
      }
      v128.store(yo + ((<usize>i * <usize>ldy) << 2), o0);
      v128.store(yo + ((<usize>(i + 1) * <usize>ldy) << 2), o1);
    }
    for (; i < m; i++) {
      const x0 = x + <usize>i * ldx;
      let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        const dp = st + (<usize>b << 4);
        const d0 = v128.load32_splat(dp);
        const d1 = v128.load32_splat(dp + 4);
        const d2 = v128.load32_splat(dp + 8);
        const d3 = v128.load32_splat(dp + 12);
        const p = wt + (<usize>b << 7);
        for (let u = 0; u < 32; u += 8) {
          const ko = (<usize>b << 5) + <usize>u;
          const xl = v128.load(x0 + (ko << 2));
          const xh = v128.load(x0 + (ko << 2), 16);
          let wv = v128.load8x8_s(p + <usize>u);
          s0 = f32x4.add(s0, f32x4.add(f32x4.mul(xl, deq8lo(wv, d0)), f32x4.mul(xh, deq8hi(wv, d0))));
          wv = v128.load8x8_s(p + 32 + <usize>u);
          s1 = f32x4.add(s1, f32x4.add(f32x4.mul(xl, deq8lo(wv, d1)), f32x4.mul(xh, deq8hi(wv, d1))));
          wv = v128.load8x8_s(p + 64 + <usize>u);
          s2 = f32x4.add(s2, f32x4.add(f32x4.mul(xl, deq8lo(wv, d2)), f32x4.mul(xh, deq8hi(wv, d2))));
          wv = v128.load8x8_s(p + 96 + <usize>u);
          s3 = f32x4.add(s3, f32x4.add(f32x4.mul(xl, deq8lo(wv, d3)), f32x4.mul(xh, deq8hi(wv, d3))));
        }
      }
      let o = fsum4(s0, s1, s2, s3);
      if (bias != 0) o = f32x4.add(o, v128.load(bias + (<usize>t << 4)));
      v128.store(yo + ((<usize>i * <usize>ldy) << 2), o);
    }
  }
}
