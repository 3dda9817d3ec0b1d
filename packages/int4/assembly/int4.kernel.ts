// Low-bit group-quantized GEMV/GEMM kernels (WebAssembly SIMD). Pointers are byte offsets into the
// engine's shared memory. No static data: constants are immediates.
//
// Weight layout (see src/kernels/layout.ts): rows padded to a multiple of 4 (a "tile"); each row is
// K' = ng * gp codes (groups padded to gp codes, gp a multiple of the 16-byte block) stored in
// 16-byte blocks of B = 128 / bits codes. Block lane k (i16 lane, k = 0..7) holds codes
// k, k+8, ..., k+8(P-1) in fields of `bits` bits (P = 16 / bits), so field j of a block, shifted and
// masked, is the i16x8 of codes [8j, 8j+8) in natural order. Scales and zeros are f32 interleaved
// per tile: index ((row >> 2) * ng + g) * 4 + (row & 3).
//
// Int8-activation path: activations quantized per group (same groups as the weights): xq i16,
// dx = amax / 127 per (token, group), xs = sum of xq per (token, group). Then
// y[r] = sum_g s[r,g] * dx[g] * (sum_k q[r,k] xq[k] - z[r,g] * xs[g]).
// f32 path: y[r] = sum_g s[r,g] * (sum_k q[r,k] x[k] - z[r,g] * xsum[g]), xsum = sum of x per group.
//
// Zeros: f32 (the layout above), or, in the `_z8` kernels, u8 at the same index (integer zeros
// 0..255: RTN, GPTQ, AWQ, MatMulNBits). A u8 zero becomes exactly the same f32, so both give the
// same bits; the u8 form reads 3 bytes less per row and group (g32: 21 instead of 24 per 32 codes).

// ---------------------------------------------------------------- helpers

/** [sum(a), sum(b), sum(c), sum(d)] for four i32x4 or f32x4 (add chosen by `isFloat`). */
@inline
function hsum4i(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = i32x4.add(
    i8x16.shuffle(a, b, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23),
    i8x16.shuffle(a, b, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31),
  );
  const cd = i32x4.add(
    i8x16.shuffle(c, d, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23),
    i8x16.shuffle(c, d, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31),
  );
  return i32x4.add(
    i8x16.shuffle(ab, cd, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27),
    i8x16.shuffle(ab, cd, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31),
  );
}

@inline
function hsum4f(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = f32x4.add(
    i8x16.shuffle(a, b, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23),
    i8x16.shuffle(a, b, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31),
  );
  const cd = f32x4.add(
    i8x16.shuffle(c, d, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23),
    i8x16.shuffle(c, d, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31),
  );
  return f32x4.add(
    i8x16.shuffle(ab, cd, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27),
    i8x16.shuffle(ab, cd, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31),
  );
}

/** Field j (codes 8j..8j+7 of the block) of a 16-byte block as i16x8. */
@inline
function field(v: v128, bits: i32, j: i32): v128 {
  const mv: i32 = (1 << bits) - 1;
  const mask = i16x8.splat(<i16>mv);
  if (j == 16 / bits - 1) return i16x8.shr_u(v, <i32>(bits * j));
  if (j == 0) return v128.and(v, mask);
  return v128.and(i16x8.shr_u(v, <i32>(bits * j)), mask);
}

/**
 * a + codes(i16x8 c, values 0..255) * [xl, xh] as f32. Codes become floats by interleaving them with
 * the high half 0x4B00 (the f32 2^23 + c) and subtracting 2^23, exact for codes < 2^16.
 */
@inline
function macF(a: v128, c: v128, xl: v128, xh: v128): v128 {
  const magic = i16x8.splat(0x4b00);
  const two23 = f32x4.splat(8388608.0);
  const lo = f32x4.sub(i8x16.shuffle(c, magic, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23), two23);
  const hi = f32x4.sub(i8x16.shuffle(c, magic, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31), two23);
  return f32x4.add(a, f32x4.add(f32x4.mul(lo, xl), f32x4.mul(hi, xh)));
}

/** The zeros of the tile's four rows at f32 byte offset pz: f32x4, or u8 x4 at pz / 4 (`cz`). */
@inline
function loadZ4(zr: usize, pz: usize, cz: bool): v128 {
  if (cz) return f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(v128.load32_zero(zr + (pz >> 2)))));
  return v128.load(zr + pz);
}

/** One zero at f32 byte offset pz: f32, or u8 at pz / 4 (`cz`). */
@inline
function loadZ1(zr: usize, pz: usize, cz: bool): f32 {
  if (cz) return <f32>load<u8>(zr + (pz >> 2));
  return load<f32>(zr + pz);
}

// ---------------------------------------------------------------- activations

/**
 * Per (token, group) symmetric int8 quantization of x f32 [m, kp] (groups of gp, gp % 8 == 0):
 * dx = amax / 127, xq = nearest(x / dx) as i16, xs = sum of xq (as f32).
 */
export function quant_act(x: usize, xq: usize, dx: usize, xs: usize, m: i32, kp: i32, gp: i32): void {
  const ng = kp / gp;
  for (let t = 0; t < m; t++) {
    for (let g = 0; g < ng; g++) {
      const base = <usize>(t * kp + g * gp);
      const xp = x + (base << 2);
      let amax = f32x4.splat(0);
      for (let k = 0; k < gp; k += 4) amax = f32x4.max(amax, f32x4.abs(v128.load(xp + (<usize>k << 2))));
      const a = max(max(f32x4.extract_lane(amax, 0), f32x4.extract_lane(amax, 1)), max(f32x4.extract_lane(amax, 2), f32x4.extract_lane(amax, 3)));
      const d: f32 = a / 127.0;
      const id: f32 = d != 0 ? <f32>1.0 / d : 0;
      const idv = f32x4.splat(id);
      let sum = i32x4.splat(0);
      const qp = xq + (base << 1);
      for (let k = 0; k < gp; k += 8) {
        const q0 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xp + (<usize>k << 2)), idv)));
        const q1 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xp + (<usize>k << 2), 16), idv)));
        sum = i32x4.add(sum, i32x4.add(q0, q1));
        v128.store(qp + (<usize>k << 1), i16x8.narrow_i32x4_s(q0, q1));
      }
      const s = i32x4.extract_lane(sum, 0) + i32x4.extract_lane(sum, 1) + i32x4.extract_lane(sum, 2) + i32x4.extract_lane(sum, 3);
      const gi = <usize>(t * ng + g) << 2;
      store<f32>(dx + gi, d);
      store<f32>(xs + gi, <f32>s);
    }
  }
}

/** xsum[t, g] = sum of x f32 [m, kp] over each group of gp (gp % 4 == 0). */
export function group_sums(x: usize, xsum: usize, m: i32, kp: i32, gp: i32): void {
  const ng = kp / gp;
  for (let t = 0; t < m; t++) {
    for (let g = 0; g < ng; g++) {
      const xp = x + (<usize>(t * kp + g * gp) << 2);
      let s = f32x4.splat(0);
      for (let k = 0; k < gp; k += 4) s = f32x4.add(s, v128.load(xp + (<usize>k << 2)));
      store<f32>(xsum + (<usize>(t * ng + g) << 2), f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1) + f32x4.extract_lane(s, 2) + f32x4.extract_lane(s, 3));
    }
  }
}

// ---------------------------------------------------------------- int8 activations, one token

/** The four rows' integer dot products over one group (gemvI8's inner loop), summed per row. */
@inline
function groupI8(bits: i32, w0: usize, w1: usize, w2: usize, w3: usize, xq: usize, gp: i32, g: i32): v128 {
  const P = 16 / bits;
  const B = 8 * P;
  let blk = <usize>((g * gp) / B);
  let a0 = i32x4.splat(0);
  let a1 = i32x4.splat(0);
  let a2 = i32x4.splat(0);
  let a3 = i32x4.splat(0);
  const xg = xq + (<usize>(g * gp) << 1);
  for (let k = 0; k < gp; k += B) {
    const off = blk << 4;
    const v0 = v128.load(w0 + off);
    const v1 = v128.load(w1 + off);
    const v2 = v128.load(w2 + off);
    const v3 = v128.load(w3 + off);
    const xb = xg + (<usize>k << 1);
    let xj = v128.load(xb);
    a0 = i32x4.add(a0, i32x4.dot_i16x8_s(field(v0, bits, 0), xj));
    a1 = i32x4.add(a1, i32x4.dot_i16x8_s(field(v1, bits, 0), xj));
    a2 = i32x4.add(a2, i32x4.dot_i16x8_s(field(v2, bits, 0), xj));
    a3 = i32x4.add(a3, i32x4.dot_i16x8_s(field(v3, bits, 0), xj));
    xj = v128.load(xb, 16);
    a0 = i32x4.add(a0, i32x4.dot_i16x8_s(field(v0, bits, 1), xj));
    a1 = i32x4.add(a1, i32x4.dot_i16x8_s(field(v1, bits, 1), xj));
    a2 = i32x4.add(a2, i32x4.dot_i16x8_s(field(v2, bits, 1), xj));
    a3 = i32x4.add(a3, i32x4.dot_i16x8_s(field(v3, bits, 1), xj));
    if (P >= 4) {
      xj = v128.load(xb, 32);
      a0 = i32x4.add(a0, i32x4.dot_i16x8_s(field(v0, bits, 2), xj));
      a1 = i32x4.add(a1, i32x4.dot_i16x8_s(field(v1, bits, 2), xj));
      a2 = i32x4.add(a2, i32x4.dot_i16x8_s(field(v2, bits, 2), xj));
      a3 = i32x4.add(a3, i32x4.dot_i16x8_s(field(v3, bits, 2), xj));
      xj = v128.load(xb, 48);
      a0 = i32x4.add(a0, i32x4.dot_i16x8_s(field(v0, bits, 3), xj));
      a1 = i32x4.add(a1, i32x4.dot_i16x8_s(field(v1, bits, 3), xj));
      a2 = i32x4.add(a2, i32x4.dot_i16x8_s(field(v2, bits, 3), xj));
      a3 = i32x4.add(a3, i32x4.dot_i16x8_s(field(v3, bits, 3), xj));
    }
    if (P >= 8) {
      xj = v128.load(xb, 64);
      a0 = i32x4.add(a0, i32x4.dot_i16x8_s(field(v0, bits, 4), xj));
      a1 = i32x4.add(a1, i32x4.dot_i16x8_s(field(v1, bits, 4), xj));
      a2 = i32x4.add(a2, i32x4.dot_i16x8_s(field(v2, bits, 4), xj));
      a3 = i32x4.add(a3, i32x4.dot_i16x8_s(field(v3, bits, 4), xj));
      xj = v128.load(xb, 80);
      a0 = i32x4.add(a0, i32x4.dot_i16x8_s(field(v0, bits, 5), xj));
      a1 = i32x4.add(a1, i32x4.dot_i16x8_s(field(v1, bits, 5), xj));
      a2 = i32x4.add(a2, i32x4.dot_i16x8_s(field(v2, bits, 5), xj));
      a3 = i32x4.add(a3, i32x4.dot_i16x8_s(field(v3, bits, 5), xj));
      xj = v128.load(xb, 96);
      a0 = i32x4.add(a0, i32x4.dot_i16x8_s(field(v0, bits, 6), xj));
      a1 = i32x4.add(a1, i32x4.dot_i16x8_s(field(v1, bits, 6), xj));
      a2 = i32x4.add(a2, i32x4.dot_i16x8_s(field(v2, bits, 6), xj));
      a3 = i32x4.add(a3, i32x4.dot_i16x8_s(field(v3, bits, 6), xj));
      xj = v128.load(xb, 112);
      a0 = i32x4.add(a0, i32x4.dot_i16x8_s(field(v0, bits, 7), xj));
      a1 = i32x4.add(a1, i32x4.dot_i16x8_s(field(v1, bits, 7), xj));
      a2 = i32x4.add(a2, i32x4.dot_i16x8_s(field(v2, bits, 7), xj));
      a3 = i32x4.add(a3, i32x4.dot_i16x8_s(field(v3, bits, 7), xj));
    }
    blk++;
  }
  return hsum4i(a0, a1, a2, a3);
}

/** The group's share of y for the tile's four rows: (isum - z * xs) * (s * dx). */
@inline
function epilogueI8(isum: v128, sc: usize, zr: usize, dx: usize, xs: usize, pz: usize, g: i32, cz: bool): v128 {
  const zv = loadZ4(zr, pz, cz);
  const sv = f32x4.mul(v128.load(sc + pz), v128.load32_splat(dx + (<usize>g << 2)));
  return f32x4.mul(f32x4.sub(f32x4.convert_i32x4_s(isum), f32x4.mul(zv, v128.load32_splat(xs + (<usize>g << 2)))), sv);
}

/**
 * One token, int8 activations. Two groups per step: their dot products are independent chains
 * side by side (11-15% less CPU time than one group at a time at 4096x4096 on Zen 1); the
 * accumulation into y stays group by group, so results are unchanged bit for bit.
 */
@inline
function gemvI8(bits: i32, cz: bool, w: usize, sc: usize, zr: usize, xq: usize, dx: usize, xs: usize, y: usize, n4: i32, ng: i32, gp: i32): void {
  const P = 16 / bits;
  const B = 8 * P; // codes per 16-byte block
  const kp = ng * gp;
  const rowBytes = <usize>((kp / B) << 4);
  for (let t = 0; t < n4; t++) {
    const w0 = w + <usize>(t * 4) * rowBytes;
    const w1 = w0 + rowBytes;
    const w2 = w1 + rowBytes;
    const w3 = w2 + rowBytes;
    let acc = f32x4.splat(0);
    for (let g = 0; g < ng; g += 2) {
      const pz = <usize>((t * ng + g) << 4);
      const i0 = groupI8(bits, w0, w1, w2, w3, xq, gp, g);
      if (g + 1 < ng) {
        const i1 = groupI8(bits, w0, w1, w2, w3, xq, gp, g + 1);
        acc = f32x4.add(acc, epilogueI8(i0, sc, zr, dx, xs, pz, g, cz));
        acc = f32x4.add(acc, epilogueI8(i1, sc, zr, dx, xs, pz + 16, g + 1, cz));
      } else {
        acc = f32x4.add(acc, epilogueI8(i0, sc, zr, dx, xs, pz, g, cz));
      }
    }
    v128.store(y + (<usize>t << 4), acc);
  }
}

export function gemv_i8_b4(w: usize, sc: usize, zr: usize, xq: usize, dx: usize, xs: usize, y: usize, n4: i32, ng: i32, gp: i32): void {
  gemvI8(4, false, w, sc, zr, xq, dx, xs, y, n4, ng, gp);
}
export function gemv_i8_b4_z8(w: usize, sc: usize, zr: usize, xq: usize, dx: usize, xs: usize, y: usize, n4: i32, ng: i32, gp: i32): void {
  gemvI8(4, true, w, sc, zr, xq, dx, xs, y, n4, ng, gp);
}
export function gemv_i8_b2(w: usize, sc: usize, zr: usize, xq: usize, dx: usize, xs: usize, y: usize, n4: i32, ng: i32, gp: i32): void {
  gemvI8(2, false, w, sc, zr, xq, dx, xs, y, n4, ng, gp);
}
export function gemv_i8_b2_z8(w: usize, sc: usize, zr: usize, xq: usize, dx: usize, xs: usize, y: usize, n4: i32, ng: i32, gp: i32): void {
  gemvI8(2, true, w, sc, zr, xq, dx, xs, y, n4, ng, gp);
}
export function gemv_i8_b8(w: usize, sc: usize, zr: usize, xq: usize, dx: usize, xs: usize, y: usize, n4: i32, ng: i32, gp: i32): void {
  gemvI8(8, false, w, sc, zr, xq, dx, xs, y, n4, ng, gp);
}
export function gemv_i8_b8_z8(w: usize, sc: usize, zr: usize, xq: usize, dx: usize, xs: usize, y: usize, n4: i32, ng: i32, gp: i32): void {
  gemvI8(8, true, w, sc, zr, xq, dx, xs, y, n4, ng, gp);
}

// ---------------------------------------------------------------- int8 activations, one token, 4-bit codes, pre-scaled

/**
 * xq i16 [n] (n % 32 == 0, quant_act's output) -> xa i16 [n] pre-scaled for gemv_i8p_b4: per 32
 * values, [256 x0..7, 16 x8..15, x16..23, 256 x24..31], so that the four 4-bit fields of a block's
 * i16 lanes, masked in place (v & 0xf, v & 0xf0, v & 0xf00, v >> 12), all meet 256 * x.
 */
export function prescale_act_b4(xq: usize, xa: usize, n: i32): void {
  for (let k = 0; k < n; k += 32) {
    const o = <usize>k << 1;
    v128.store(xa + o, i16x8.shl(v128.load(xq + o), 8));
    v128.store(xa + o, i16x8.shl(v128.load(xq + o, 16), 4), 16);
    v128.store(xa + o, v128.load(xq + o, 32), 32);
    v128.store(xa + o, i16x8.shl(v128.load(xq + o, 48), 8), 48);
  }
}

/**
 * gemv_i8_b4 with activations from prescale_act_b4 (gp <= 2048 keeps every i32 sum in range):
 * the group sums are exact multiples of 256 and shifted back, so the outputs are gemv_i8_b4's bit
 * for bit, with two fewer field operations per 32 codes.
 */
export function gemv_i8p_b4(w: usize, sc: usize, zr: usize, xa: usize, dx: usize, xs: usize, y: usize, n4: i32, ng: i32, gp: i32, nib: i32, tmp: usize): void {
  gemvI8p(false, w, sc, zr, xa, dx, xs, y, n4, ng, gp, nib, tmp);
}
export function gemv_i8p_b4_z8(w: usize, sc: usize, zr: usize, xa: usize, dx: usize, xs: usize, y: usize, n4: i32, ng: i32, gp: i32, nib: i32, tmp: usize): void {
  gemvI8p(true, w, sc, zr, xa, dx, xs, y, n4, ng, gp, nib, tmp);
}
/**
 * Two passes per tile of four rows, as gemv_i8p_b4_g32: each row on its own, its integer sum per
 * group (256 x, unreduced i32x4) into tmp (ng * 64 bytes of this call's own); then per group the
 * four rows' sums and the f32 epilogue, group after group. Integer sums are exact in any order and
 * the epilogue runs in the same order as before, so the outputs are the same bits.
 */
@inline
function gemvI8p(cz: bool, w: usize, sc: usize, zr: usize, xa: usize, dx: usize, xs: usize, y: usize, n4: i32, ng: i32, gp: i32, nib: i32, tmp: usize): void {
  // nibble masks from a run-time argument (nib = 15): see q4_0_gemv
  const m0 = i16x8.splat(<i16>nib);
  const m1 = i16x8.shl(m0, 4);
  const m2 = i16x8.shl(m0, 8);
  const kp = ng * gp;
  const rowBytes = <usize>((kp >> 5) << 4);
  const gb = <usize>((gp >> 5) << 4); // one group's code bytes in a row
  for (let t = 0; t < n4; t++) {
    const w0 = w + <usize>(t * 4) * rowBytes;
    for (let r = 0; r < 4; r++) {
      let pw = w0 + <usize>r * rowBytes;
      let px = xa;
      let pt = tmp + (<usize>r << 4);
      for (let g = 0; g < ng; g++) {
        const gend = pw + gb;
        let a = i32x4.splat(0);
        for (; pw < gend; pw += 16) {
          a = i32x4.add(a, dotQ4x(v128.load(pw), px, m0, m1, m2));
          px += 64;
        }
        v128.store(pt, a);
        pt += 64;
      }
    }
    let acc = f32x4.splat(0);
    let pt = tmp;
    for (let g = 0; g < ng; g++) {
      const isum = i32x4.shr_s(hsum4i(v128.load(pt), v128.load(pt, 16), v128.load(pt, 32), v128.load(pt, 48)), 8);
      acc = f32x4.add(acc, epilogueI8(isum, sc, zr, dx, xs, <usize>((t * ng + g) << 4), g, cz));
      pt += 64;
    }
    v128.store(y + (<usize>t << 4), acc);
  }
}

/**
 * gemv_i8p_b4 for groups of exactly 32 codes (one 16-byte block per row and group), in two passes
 * per tile of four rows: first each row on its own, its integer dot product with every group,
 * unreduced (i32x4), into tmp (ng * 64 bytes of this call's own), then per group the four rows'
 * sums and the f32 epilogue. Fused, the loop kept the masks, the activations, four rows and the
 * epilogue's operands live at once and V8 spilled a fifth of its instructions to the stack; split,
 * neither pass spills, and a row at a time reads the weights as one sequential stream instead of
 * four (4096 x 4096: 2.2-2.6 ms fused, 2.1 split, 1.85 row by row; 32000 x 768: 3.65 -> 2.65). Running pointers (V8 does not strength-reduce the index
 * arithmetic), the nibble masks 0x000f, 0x00f0, 0x0f00 read once from memory at mk; the same
 * arithmetic in the same order as gemv_i8_b4, bit for bit.
 */
export function gemv_i8p_b4_g32(w: usize, sc: usize, zr: usize, xa: usize, dx: usize, xs: usize, y: usize, n4: i32, ng: i32, mk: usize, tmp: usize): void {
  gemvI8pG32(false, w, sc, zr, xa, dx, xs, y, n4, ng, mk, tmp);
}
export function gemv_i8p_b4_g32_z8(w: usize, sc: usize, zr: usize, xa: usize, dx: usize, xs: usize, y: usize, n4: i32, ng: i32, mk: usize, tmp: usize): void {
  gemvI8pG32(true, w, sc, zr, xa, dx, xs, y, n4, ng, mk, tmp);
}

@inline
function gemvI8pG32(cz: bool, w: usize, sc: usize, zr: usize, xa: usize, dx: usize, xs: usize, y: usize, n4: i32, ng: i32, mk: usize, tmp: usize): void {
  const r1 = <usize>ng << 4;
  const zstep: usize = cz ? 4 : 16;
  let p = w;
  let ps = sc;
  let pz = zr;
  const m0 = v128.load(mk);
  const m1 = v128.load(mk, 16);
  const m2 = v128.load(mk, 32);
  for (let t = 0; t < n4; t++) {
    // pass 1: each row on its own (one sequential stream), its integer dot product per group,
    // unreduced (i32x4), into tmp
    const end = p + (r1 << 2);
    for (let pr = tmp; p < end; pr += 16) {
      const rend = p + r1;
      let px = xa;
      for (let pt = pr; p < rend; pt += 64) {
        v128.store(pt, dotQ4x(v128.load(p), px, m0, m1, m2));
        p += 16;
        px += 64;
      }
    }
    // pass 2: per group the four rows' sums and the same f32 epilogue
    let acc = f32x4.splat(0);
    let pd = dx;
    let pq = xs;
    let pt = tmp;
    const tend = tmp + (<usize>ng << 6);
    while (pt < tend) {
      const isum = i32x4.shr_s(hsum4i(v128.load(pt), v128.load(pt, 16), v128.load(pt, 32), v128.load(pt, 48)), 8);
      const zv = cz ? f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(v128.load32_zero(pz)))) : v128.load(pz);
      const sv = f32x4.mul(v128.load(ps), v128.load32_splat(pd));
      acc = f32x4.add(acc, f32x4.mul(f32x4.sub(f32x4.convert_i32x4_s(isum), f32x4.mul(zv, v128.load32_splat(pq))), sv));
      pt += 64;
      ps += 16;
      pz += zstep;
      pd += 4;
      pq += 4;
    }
    v128.store(y + (<usize>t << 4), acc);
  }
}

/** dotQ4m with the block's activation fields read from memory at xb (single-use loads). */
@inline function dotQ4x(v: v128, xb: usize, m0: v128, m1: v128, m2: v128): v128 {
  let r = i32x4.dot_i16x8_s(v128.and(v, m0), v128.load(xb));
  r = i32x4.add(r, i32x4.dot_i16x8_s(v128.and(v, m1), v128.load(xb, 16)));
  r = i32x4.add(r, i32x4.dot_i16x8_s(v128.and(v, m2), v128.load(xb, 32)));
  return i32x4.add(r, i32x4.dot_i16x8_s(i16x8.shr_u(v, 12), v128.load(xb, 48)));
}

// ---------------------------------------------------------------- f32 activations, one token

/** The group's share of y for the tile's four rows: (qsum - z * xsum) * s. */
@inline
function epilogueF32(qsum: v128, sc: usize, zr: usize, xsum: usize, pz: usize, g: i32, cz: bool): v128 {
  const corr = f32x4.mul(loadZ4(zr, pz, cz), v128.load32_splat(xsum + (<usize>g << 2)));
  return f32x4.mul(f32x4.sub(qsum, corr), v128.load(sc + pz));
}

/**
 * One row's f32 dot products with the codes of groups g..g+N-1 (N = 1, 2 or 4), each block by block
 * with the fields in order, per lane; the N groups side by side (independent add chains). Stored
 * 64 bytes apart from out.
 */
@inline
function rowGroupsF32(bits: i32, N: i32, wr: usize, x: usize, gp: i32, g: i32, out: usize): void {
  const P = 16 / bits;
  const B = 8 * P;
  const gb = <usize>(gp / B) << 4; // one group's code bytes in a row
  const gx = <usize>gp << 2; // one group's activation bytes
  let pw = wr + (<usize>((g * gp) / B) << 4);
  const pend = pw + gb;
  let xb = x + (<usize>(g * gp) << 2);
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let a2 = f32x4.splat(0);
  let a3 = f32x4.splat(0);
  for (; pw < pend; pw += 16) {
    const v0 = v128.load(pw);
    const v1 = N >= 2 ? v128.load(pw + gb) : v0;
    const v2 = N == 4 ? v128.load(pw + 2 * gb) : v0;
    const v3 = N == 4 ? v128.load(pw + 3 * gb) : v0;
    const x1 = xb + gx;
    const x2 = x1 + gx;
    const x3 = x2 + gx;
    a0 = macF(a0, field(v0, bits, 0), v128.load(xb), v128.load(xb, 16));
    if (N >= 2) a1 = macF(a1, field(v1, bits, 0), v128.load(x1), v128.load(x1, 16));
    if (N == 4) a2 = macF(a2, field(v2, bits, 0), v128.load(x2), v128.load(x2, 16));
    if (N == 4) a3 = macF(a3, field(v3, bits, 0), v128.load(x3), v128.load(x3, 16));
    a0 = macF(a0, field(v0, bits, 1), v128.load(xb, 32), v128.load(xb, 48));
    if (N >= 2) a1 = macF(a1, field(v1, bits, 1), v128.load(x1, 32), v128.load(x1, 48));
    if (N == 4) a2 = macF(a2, field(v2, bits, 1), v128.load(x2, 32), v128.load(x2, 48));
    if (N == 4) a3 = macF(a3, field(v3, bits, 1), v128.load(x3, 32), v128.load(x3, 48));
    if (P >= 4) {
      a0 = macF(a0, field(v0, bits, 2), v128.load(xb, 64), v128.load(xb, 80));
      if (N >= 2) a1 = macF(a1, field(v1, bits, 2), v128.load(x1, 64), v128.load(x1, 80));
      if (N == 4) a2 = macF(a2, field(v2, bits, 2), v128.load(x2, 64), v128.load(x2, 80));
      if (N == 4) a3 = macF(a3, field(v3, bits, 2), v128.load(x3, 64), v128.load(x3, 80));
      a0 = macF(a0, field(v0, bits, 3), v128.load(xb, 96), v128.load(xb, 112));
      if (N >= 2) a1 = macF(a1, field(v1, bits, 3), v128.load(x1, 96), v128.load(x1, 112));
      if (N == 4) a2 = macF(a2, field(v2, bits, 3), v128.load(x2, 96), v128.load(x2, 112));
      if (N == 4) a3 = macF(a3, field(v3, bits, 3), v128.load(x3, 96), v128.load(x3, 112));
    }
    if (P >= 8) {
      a0 = macF(a0, field(v0, bits, 4), v128.load(xb, 128), v128.load(xb, 144));
      if (N >= 2) a1 = macF(a1, field(v1, bits, 4), v128.load(x1, 128), v128.load(x1, 144));
      if (N == 4) a2 = macF(a2, field(v2, bits, 4), v128.load(x2, 128), v128.load(x2, 144));
      if (N == 4) a3 = macF(a3, field(v3, bits, 4), v128.load(x3, 128), v128.load(x3, 144));
      a0 = macF(a0, field(v0, bits, 5), v128.load(xb, 160), v128.load(xb, 176));
      if (N >= 2) a1 = macF(a1, field(v1, bits, 5), v128.load(x1, 160), v128.load(x1, 176));
      if (N == 4) a2 = macF(a2, field(v2, bits, 5), v128.load(x2, 160), v128.load(x2, 176));
      if (N == 4) a3 = macF(a3, field(v3, bits, 5), v128.load(x3, 160), v128.load(x3, 176));
      a0 = macF(a0, field(v0, bits, 6), v128.load(xb, 192), v128.load(xb, 208));
      if (N >= 2) a1 = macF(a1, field(v1, bits, 6), v128.load(x1, 192), v128.load(x1, 208));
      if (N == 4) a2 = macF(a2, field(v2, bits, 6), v128.load(x2, 192), v128.load(x2, 208));
      if (N == 4) a3 = macF(a3, field(v3, bits, 6), v128.load(x3, 192), v128.load(x3, 208));
      a0 = macF(a0, field(v0, bits, 7), v128.load(xb, 224), v128.load(xb, 240));
      if (N >= 2) a1 = macF(a1, field(v1, bits, 7), v128.load(x1, 224), v128.load(x1, 240));
      if (N == 4) a2 = macF(a2, field(v2, bits, 7), v128.load(x2, 224), v128.load(x2, 240));
      if (N == 4) a3 = macF(a3, field(v3, bits, 7), v128.load(x3, 224), v128.load(x3, 240));
    }
    xb += <usize>B << 2;
  }
  v128.store(out, a0);
  if (N >= 2) v128.store(out + 64, a1);
  if (N == 4) {
    v128.store(out + 128, a2);
    v128.store(out + 192, a3);
  }
}

/**
 * One token, f32 activations, in two passes per tile of four rows: each row on its own over all
 * groups (its per-group f32 sums, unreduced, into tmp: ng * 64 bytes of this call's own), then
 * per group the four rows' sums (hsum4f) and the epilogue, accumulated group after group. The same
 * arithmetic in the same order as the fused loop it replaced (the four rows interleaved per group),
 * bit for bit; fused, the rows' codes, the activations and the accumulators did not fit the
 * registers and V8 spilled about ten instructions per row and block to the stack.
 */
@inline
function gemvF32(bits: i32, cz: bool, w: usize, sc: usize, zr: usize, x: usize, xsum: usize, y: usize, n4: i32, ng: i32, gp: i32, tmp: usize): void {
  const P = 16 / bits;
  const B = 8 * P;
  const kp = ng * gp;
  const rowBytes = <usize>((kp / B) << 4);
  for (let t = 0; t < n4; t++) {
    const w0 = w + <usize>(t * 4) * rowBytes;
    for (let r = 0; r < 4; r++) {
      const wr = w0 + <usize>r * rowBytes;
      let g = 0;
      // four groups at a time: four independent accumulator chains (one alone waits on f32 add latency)
      for (; g + 4 <= ng; g += 4) rowGroupsF32(bits, 4, wr, x, gp, g, tmp + (<usize>g << 6) + (<usize>r << 4));
      if (g + 2 <= ng) {
        rowGroupsF32(bits, 2, wr, x, gp, g, tmp + (<usize>g << 6) + (<usize>r << 4));
        g += 2;
      }
      if (g < ng) rowGroupsF32(bits, 1, wr, x, gp, g, tmp + (<usize>g << 6) + (<usize>r << 4));
    }
    let acc = f32x4.splat(0);
    let pt = tmp;
    for (let g = 0; g < ng; g++) {
      const pz = <usize>((t * ng + g) << 4);
      const q = hsum4f(v128.load(pt), v128.load(pt, 16), v128.load(pt, 32), v128.load(pt, 48));
      acc = f32x4.add(acc, epilogueF32(q, sc, zr, xsum, pz, g, cz));
      pt += 64;
    }
    v128.store(y + (<usize>t << 4), acc);
  }
}

export function gemv_f32_b4(w: usize, sc: usize, zr: usize, x: usize, xsum: usize, y: usize, n4: i32, ng: i32, gp: i32, tmp: usize): void {
  gemvF32(4, false, w, sc, zr, x, xsum, y, n4, ng, gp, tmp);
}
export function gemv_f32_b4_z8(w: usize, sc: usize, zr: usize, x: usize, xsum: usize, y: usize, n4: i32, ng: i32, gp: i32, tmp: usize): void {
  gemvF32(4, true, w, sc, zr, x, xsum, y, n4, ng, gp, tmp);
}
export function gemv_f32_b2(w: usize, sc: usize, zr: usize, x: usize, xsum: usize, y: usize, n4: i32, ng: i32, gp: i32, tmp: usize): void {
  gemvF32(2, false, w, sc, zr, x, xsum, y, n4, ng, gp, tmp);
}
export function gemv_f32_b2_z8(w: usize, sc: usize, zr: usize, x: usize, xsum: usize, y: usize, n4: i32, ng: i32, gp: i32, tmp: usize): void {
  gemvF32(2, true, w, sc, zr, x, xsum, y, n4, ng, gp, tmp);
}
export function gemv_f32_b8(w: usize, sc: usize, zr: usize, x: usize, xsum: usize, y: usize, n4: i32, ng: i32, gp: i32, tmp: usize): void {
  gemvF32(8, false, w, sc, zr, x, xsum, y, n4, ng, gp, tmp);
}
export function gemv_f32_b8_z8(w: usize, sc: usize, zr: usize, x: usize, xsum: usize, y: usize, n4: i32, ng: i32, gp: i32, tmp: usize): void {
  gemvF32(8, true, w, sc, zr, x, xsum, y, n4, ng, gp, tmp);
}

// ---------------------------------------------------------------- many tokens: decode a tile, then reuse it

/** Decodes the 4 rows of tile t into i16 codes d [4][kp] (natural order). */
@inline
function decodeTile(bits: i32, w: usize, d: usize, kp: i32, t: i32): void {
  const P = 16 / bits;
  const B = 8 * P;
  const nblk = kp / B;
  const rowBytes = <usize>(nblk << 4);
  const src = w + <usize>(t * 4) * rowBytes;
  const n = nblk * 4;
  for (let b = 0; b < n; b++) {
    const v = v128.load(src + (<usize>b << 4));
    const dst = d + (<usize>(b * B) << 1);
    v128.store(dst, field(v, bits, 0));
    v128.store(dst, field(v, bits, 1), 16);
    if (P >= 4) {
      v128.store(dst, field(v, bits, 2), 32);
      v128.store(dst, field(v, bits, 3), 48);
    }
    if (P >= 8) {
      v128.store(dst, field(v, bits, 4), 64);
      v128.store(dst, field(v, bits, 5), 80);
      v128.store(dst, field(v, bits, 6), 96);
      v128.store(dst, field(v, bits, 7), 112);
    }
  }
}

/** y[m, 4t..4t+3] for all tokens from a decoded tile (int8 activations). */
@inline
function tileI8(cz: bool, d: usize, sc: usize, zr: usize, xq: usize, dx: usize, xs: usize, y: usize, m: i32, ng: i32, gp: i32, ldy: i32, t: i32): void {
  const kp = ng * gp;
  const rowB = <usize>kp << 1;
  let tok = 0;
  for (; tok + 2 <= m; tok += 2) {
    const x0 = xq + <usize>(tok * kp) * 2;
    const x1 = x0 + rowB;
    let acc0 = f32x4.splat(0);
    let acc1 = f32x4.splat(0);
    for (let g = 0; g < ng; g++) {
      const k0 = <usize>(g * gp) << 1;
      const k1 = k0 + (<usize>gp << 1);
      // the group's first 8 columns start its sums (no zeroed accumulators to add to)
      const u0 = v128.load(x0 + k0);
      const v0 = v128.load(x1 + k0);
      const e0 = v128.load(d + k0);
      const e1 = v128.load(d + rowB + k0);
      const e2 = v128.load(d + 2 * rowB + k0);
      const e3 = v128.load(d + 3 * rowB + k0);
      let a0 = i32x4.dot_i16x8_s(e0, u0);
      let a1 = i32x4.dot_i16x8_s(e1, u0);
      let a2 = i32x4.dot_i16x8_s(e2, u0);
      let a3 = i32x4.dot_i16x8_s(e3, u0);
      let b0 = i32x4.dot_i16x8_s(e0, v0);
      let b1 = i32x4.dot_i16x8_s(e1, v0);
      let b2 = i32x4.dot_i16x8_s(e2, v0);
      let b3 = i32x4.dot_i16x8_s(e3, v0);
      for (let k = k0 + 16; k < k1; k += 16) {
        const u = v128.load(x0 + k);
        const v = v128.load(x1 + k);
        const c0 = v128.load(d + k);
        const c1 = v128.load(d + rowB + k);
        const c2 = v128.load(d + 2 * rowB + k);
        const c3 = v128.load(d + 3 * rowB + k);
        a0 = i32x4.add(a0, i32x4.dot_i16x8_s(c0, u));
        a1 = i32x4.add(a1, i32x4.dot_i16x8_s(c1, u));
        a2 = i32x4.add(a2, i32x4.dot_i16x8_s(c2, u));
        a3 = i32x4.add(a3, i32x4.dot_i16x8_s(c3, u));
        b0 = i32x4.add(b0, i32x4.dot_i16x8_s(c0, v));
        b1 = i32x4.add(b1, i32x4.dot_i16x8_s(c1, v));
        b2 = i32x4.add(b2, i32x4.dot_i16x8_s(c2, v));
        b3 = i32x4.add(b3, i32x4.dot_i16x8_s(c3, v));
      }
      const pz = <usize>((t * ng + g) << 4);
      const zv = loadZ4(zr, pz, cz);
      const s = v128.load(sc + pz);
      const gi0 = <usize>(tok * ng + g) << 2;
      const gi1 = gi0 + (<usize>ng << 2);
      const ia = f32x4.convert_i32x4_s(hsum4i(a0, a1, a2, a3));
      const ib = f32x4.convert_i32x4_s(hsum4i(b0, b1, b2, b3));
      acc0 = f32x4.add(acc0, f32x4.mul(f32x4.sub(ia, f32x4.mul(zv, v128.load32_splat(xs + gi0))), f32x4.mul(s, v128.load32_splat(dx + gi0))));
      acc1 = f32x4.add(acc1, f32x4.mul(f32x4.sub(ib, f32x4.mul(zv, v128.load32_splat(xs + gi1))), f32x4.mul(s, v128.load32_splat(dx + gi1))));
    }
    v128.store(y + (<usize>(tok * ldy + t * 4) << 2), acc0);
    v128.store(y + (<usize>((tok + 1) * ldy + t * 4) << 2), acc1);
  }
  for (; tok < m; tok++) {
    const x0 = xq + <usize>(tok * kp) * 2;
    let acc0 = f32x4.splat(0);
    for (let g = 0; g < ng; g++) {
      const k0 = <usize>(g * gp) << 1;
      const k1 = k0 + (<usize>gp << 1);
      const u0 = v128.load(x0 + k0);
      let a0 = i32x4.dot_i16x8_s(v128.load(d + k0), u0);
      let a1 = i32x4.dot_i16x8_s(v128.load(d + rowB + k0), u0);
      let a2 = i32x4.dot_i16x8_s(v128.load(d + 2 * rowB + k0), u0);
      let a3 = i32x4.dot_i16x8_s(v128.load(d + 3 * rowB + k0), u0);
      for (let k = k0 + 16; k < k1; k += 16) {
        const u = v128.load(x0 + k);
        a0 = i32x4.add(a0, i32x4.dot_i16x8_s(v128.load(d + k), u));
        a1 = i32x4.add(a1, i32x4.dot_i16x8_s(v128.load(d + rowB + k), u));
        a2 = i32x4.add(a2, i32x4.dot_i16x8_s(v128.load(d + 2 * rowB + k), u));
        a3 = i32x4.add(a3, i32x4.dot_i16x8_s(v128.load(d + 3 * rowB + k), u));
      }
      const pz = <usize>((t * ng + g) << 4);
      const gi0 = <usize>(tok * ng + g) << 2;
      const ia = f32x4.convert_i32x4_s(hsum4i(a0, a1, a2, a3));
      acc0 = f32x4.add(acc0, f32x4.mul(f32x4.sub(ia, f32x4.mul(loadZ4(zr, pz, cz), v128.load32_splat(xs + gi0))), f32x4.mul(v128.load(sc + pz), v128.load32_splat(dx + gi0))));
    }
    v128.store(y + (<usize>(tok * ldy + t * 4) << 2), acc0);
  }
}

@inline
function gemmI8(bits: i32, cz: bool, w: usize, sc: usize, zr: usize, xq: usize, dx: usize, xs: usize, y: usize, m: i32, n4: i32, ng: i32, gp: i32, scratch: usize, ldy: i32): void {
  const kp = ng * gp;
  for (let t = 0; t < n4; t++) {
    decodeTile(bits, w, scratch, kp, t);
    tileI8(cz, scratch, sc, zr, xq, dx, xs, y, m, ng, gp, ldy, t);
  }
}

/**
 * y f32 [m, ldy] (columns 0..4*n4-1 written); scratch: 8 * kp bytes. A thread's share of the tiles
 * is the same call with w, sc, zr and y advanced to its first tile and n4 its tile count.
 */
export function gemm_i8_b4(w: usize, sc: usize, zr: usize, xq: usize, dx: usize, xs: usize, y: usize, m: i32, n4: i32, ng: i32, gp: i32, scratch: usize, ldy: i32): void {
  gemmI8(4, false, w, sc, zr, xq, dx, xs, y, m, n4, ng, gp, scratch, ldy);
}
export function gemm_i8_b4_z8(w: usize, sc: usize, zr: usize, xq: usize, dx: usize, xs: usize, y: usize, m: i32, n4: i32, ng: i32, gp: i32, scratch: usize, ldy: i32): void {
  gemmI8(4, true, w, sc, zr, xq, dx, xs, y, m, n4, ng, gp, scratch, ldy);
}
export function gemm_i8_b2(w: usize, sc: usize, zr: usize, xq: usize, dx: usize, xs: usize, y: usize, m: i32, n4: i32, ng: i32, gp: i32, scratch: usize, ldy: i32): void {
  gemmI8(2, false, w, sc, zr, xq, dx, xs, y, m, n4, ng, gp, scratch, ldy);
}
export function gemm_i8_b2_z8(w: usize, sc: usize, zr: usize, xq: usize, dx: usize, xs: usize, y: usize, m: i32, n4: i32, ng: i32, gp: i32, scratch: usize, ldy: i32): void {
  gemmI8(2, true, w, sc, zr, xq, dx, xs, y, m, n4, ng, gp, scratch, ldy);
}
export function gemm_i8_b8(w: usize, sc: usize, zr: usize, xq: usize, dx: usize, xs: usize, y: usize, m: i32, n4: i32, ng: i32, gp: i32, scratch: usize, ldy: i32): void {
  gemmI8(8, false, w, sc, zr, xq, dx, xs, y, m, n4, ng, gp, scratch, ldy);
}
export function gemm_i8_b8_z8(w: usize, sc: usize, zr: usize, xq: usize, dx: usize, xs: usize, y: usize, m: i32, n4: i32, ng: i32, gp: i32, scratch: usize, ldy: i32): void {
  gemmI8(8, true, w, sc, zr, xq, dx, xs, y, m, n4, ng, gp, scratch, ldy);
}

/** Stores s * (c - z) for the 8 i16 codes c as two f32x4 at p. */
@inline
function dq2(p: usize, c: v128, z: v128, s: v128): void {
  v128.store(p, f32x4.mul(f32x4.sub(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(c)), z), s));
  v128.store(p, f32x4.mul(f32x4.sub(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(c)), z), s), 16);
}

/** Dequantizes tile t into f32 weights f [4][kp]: s * (q - z). */
@inline
function dequantTile(bits: i32, cz: bool, w: usize, sc: usize, zr: usize, f: usize, ng: i32, gp: i32, t: i32): void {
  const P = 16 / bits;
  const B = 8 * P;
  const kp = ng * gp;
  const nblk = kp / B;
  const rowBytes = <usize>(nblk << 4);
  for (let r = 0; r < 4; r++) {
    const src = w + <usize>(t * 4 + r) * rowBytes;
    const dst = f + (<usize>(r * kp) << 2);
    let b = 0;
    for (let g = 0; g < ng; g++) {
      const pz = <usize>(((t * ng + g) << 2) + r) << 2;
      const s = f32x4.splat(load<f32>(sc + pz));
      const z = f32x4.splat(loadZ1(zr, pz, cz));
      for (let k = 0; k < gp; k += B) {
        const v = v128.load(src + (<usize>b << 4));
        const o = dst + (<usize>(g * gp + k) << 2);
        dq2(o + 0, field(v, bits, 0), z, s);
        dq2(o + 32, field(v, bits, 1), z, s);
        if (P >= 4) {
          dq2(o + 64, field(v, bits, 2), z, s);
          dq2(o + 96, field(v, bits, 3), z, s);
        }
        if (P >= 8) {
          dq2(o + 128, field(v, bits, 4), z, s);
          dq2(o + 160, field(v, bits, 5), z, s);
          dq2(o + 192, field(v, bits, 6), z, s);
          dq2(o + 224, field(v, bits, 7), z, s);
        }
        b++;
      }
    }
  }
}

/** y[m, 4t..4t+3] for all tokens from a dequantized f32 tile. */
@inline
function tileF32(f: usize, x: usize, y: usize, m: i32, kp: i32, ldy: i32, t: i32): void {
  const rowB = <usize>kp << 2;
  let tok = 0;
  for (; tok + 2 <= m; tok += 2) {
    const x0 = x + <usize>(tok * kp) * 4;
    const x1 = x0 + rowB;
    let a0 = f32x4.splat(0);
    let a1 = f32x4.splat(0);
    let a2 = f32x4.splat(0);
    let a3 = f32x4.splat(0);
    let b0 = f32x4.splat(0);
    let b1 = f32x4.splat(0);
    let b2 = f32x4.splat(0);
    let b3 = f32x4.splat(0);
    for (let k: usize = 0; k < rowB; k += 16) {
      const u = v128.load(x0 + k);
      const v = v128.load(x1 + k);
      const c0 = v128.load(f + k);
      const c1 = v128.load(f + rowB + k);
      const c2 = v128.load(f + 2 * rowB + k);
      const c3 = v128.load(f + 3 * rowB + k);
      a0 = f32x4.add(a0, f32x4.mul(c0, u));
      a1 = f32x4.add(a1, f32x4.mul(c1, u));
      a2 = f32x4.add(a2, f32x4.mul(c2, u));
      a3 = f32x4.add(a3, f32x4.mul(c3, u));
      b0 = f32x4.add(b0, f32x4.mul(c0, v));
      b1 = f32x4.add(b1, f32x4.mul(c1, v));
      b2 = f32x4.add(b2, f32x4.mul(c2, v));
      b3 = f32x4.add(b3, f32x4.mul(c3, v));
    }
    v128.store(y + (<usize>(tok * ldy + t * 4) << 2), hsum4f(a0, a1, a2, a3));
    v128.store(y + (<usize>((tok + 1) * ldy + t * 4) << 2), hsum4f(b0, b1, b2, b3));
  }
  for (; tok < m; tok++) {
    const x0 = x + <usize>(tok * kp) * 4;
    let a0 = f32x4.splat(0);
    let a1 = f32x4.splat(0);
    let a2 = f32x4.splat(0);
    let a3 = f32x4.splat(0);
    for (let k: usize = 0; k < rowB; k += 16) {
      const u = v128.load(x0 + k);
      a0 = f32x4.add(a0, f32x4.mul(v128.load(f + k), u));
      a1 = f32x4.add(a1, f32x4.mul(v128.load(f + rowB + k), u));
      a2 = f32x4.add(a2, f32x4.mul(v128.load(f + 2 * rowB + k), u));
      a3 = f32x4.add(a3, f32x4.mul(v128.load(f + 3 * rowB + k), u));
    }
    v128.store(y + (<usize>(tok * ldy + t * 4) << 2), hsum4f(a0, a1, a2, a3));
  }
}

@inline
function gemmF32(bits: i32, cz: bool, w: usize, sc: usize, zr: usize, x: usize, y: usize, m: i32, n4: i32, ng: i32, gp: i32, scratch: usize, ldy: i32): void {
  const kp = ng * gp;
  for (let t = 0; t < n4; t++) {
    dequantTile(bits, cz, w, sc, zr, scratch, ng, gp, t);
    tileF32(scratch, x, y, m, kp, ldy, t);
  }
}

/** y f32 [m, ldy] (columns 0..4*n4-1 written); scratch: 16 * kp bytes. Tile ranges as gemm_i8_b4. */
export function gemm_f32_b4(w: usize, sc: usize, zr: usize, x: usize, y: usize, m: i32, n4: i32, ng: i32, gp: i32, scratch: usize, ldy: i32): void {
  gemmF32(4, false, w, sc, zr, x, y, m, n4, ng, gp, scratch, ldy);
}
export function gemm_f32_b4_z8(w: usize, sc: usize, zr: usize, x: usize, y: usize, m: i32, n4: i32, ng: i32, gp: i32, scratch: usize, ldy: i32): void {
  gemmF32(4, true, w, sc, zr, x, y, m, n4, ng, gp, scratch, ldy);
}
export function gemm_f32_b2(w: usize, sc: usize, zr: usize, x: usize, y: usize, m: i32, n4: i32, ng: i32, gp: i32, scratch: usize, ldy: i32): void {
  gemmF32(2, false, w, sc, zr, x, y, m, n4, ng, gp, scratch, ldy);
}
export function gemm_f32_b2_z8(w: usize, sc: usize, zr: usize, x: usize, y: usize, m: i32, n4: i32, ng: i32, gp: i32, scratch: usize, ldy: i32): void {
  gemmF32(2, true, w, sc, zr, x, y, m, n4, ng, gp, scratch, ldy);
}
export function gemm_f32_b8(w: usize, sc: usize, zr: usize, x: usize, y: usize, m: i32, n4: i32, ng: i32, gp: i32, scratch: usize, ldy: i32): void {
  gemmF32(8, false, w, sc, zr, x, y, m, n4, ng, gp, scratch, ldy);
}
export function gemm_f32_b8_z8(w: usize, sc: usize, zr: usize, x: usize, y: usize, m: i32, n4: i32, ng: i32, gp: i32, scratch: usize, ldy: i32): void {
  gemmF32(8, true, w, sc, zr, x, y, m, n4, ng, gp, scratch, ldy);
}

// ---------------------------------------------------------------- GGUF Q4_0 in 4-row tiles, Q8_0 activations
//
// Q4_0TiledLinear keeps GGUF Q4_0 weights in tiles of 4 rows (zero rows pad the last tile): codes
// u8 [n4][nb][4][16] (each row's 16 bytes as in the file: byte j holds element j in its low nibble
// and element j + 16 in its high nibble) and scales f32 [n4][nb][4]. Activations are quantized per
// token and 32-value block as llama.cpp's quantize_row_q8_0 (d = amax / 127 rounded through f16,
// q = roundf(x / d)), then stored as four i16x8 per block, pre-scaled so that the four nibble
// fields of an i16 weight lane, masked in place, all meet 256 * q:
//   lane l of a weight block = e[2l] | e[2l+16] << 4 | e[2l+1] << 8 | e[2l+17] << 12
//   A0[l] = 256 q[2l], A1[l] = 16 q[2l+16], A2[l] = q[2l+1], A3[l] = 256 q[2l+17]
// so dot(v & 0xf, A0) + dot(v & 0xf0, A1) + dot(v & 0xf00, A2) + dot(v >> 12, A3) = 256 sum e q.
// The fixed zero 8 is folded with ks = 2048 * sum q per block: sum (e - 8) q = (S - ks) >> 8, exact.

/** f32 -> f16 bits, round to nearest even (as q8-0.kernel.ts). */
@inline function f32ToF16q(x: f32): u32 {
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
@inline function f16ToF32q(h: u32): f32 {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp == 0x1f) return reinterpret<f32>(sign | 0x7f800000 | (mant << 13));
  if (exp != 0) return reinterpret<f32>(sign | ((exp + 112) << 23) | (mant << 13));
  const v = <f32>mant * reinterpret<f32>(<u32>0x33800000);
  return sign != 0 ? -v : v;
}

/** Rounds each lane half away from zero (C roundf), exactly. */
@inline function roundAwayq(v: v128): v128 {
  const t = f32x4.trunc(v);
  const frac = f32x4.abs(f32x4.sub(v, t));
  const step = v128.or(f32x4.splat(1.0), v128.and(v, i32x4.splat(0x80000000)));
  return f32x4.add(t, v128.and(f32x4.ge(frac, f32x4.splat(0.5)), step));
}

@inline function q8x4(p: usize, id: v128): v128 {
  return i32x4.trunc_sat_f32x4_s(roundAwayq(f32x4.mul(v128.load(p), id)));
}

/**
 * x f32 [nb * 32] (nb blocks over all tokens) -> xa i16 [nb * 32] (the pre-scaled fields above),
 * ad f32 [nb] (d through f16) and ks i32 [nb] (2048 * sum q). Returns -1, or the first block
 * holding a non-finite value.
 */
export function q4_0_quant_act(x: usize, xa: usize, ad: usize, ks: usize, nb: i32): i32 {
  return quantActQ4(x, xa, ad, ks, nb, false);
}

/**
 * q4_0_quant_act's quantization with plain outputs, for q4_0_gemm_x8: xq i8 [nb * 32] (the same
 * integer values, in order) and ad f32 [nb] (d through f16). Returns -1, or the first block holding
 * a non-finite value (its values and scale are written as zeros).
 */
export function q4_0_quant_act8(x: usize, xq: usize, ad: usize, nb: i32): i32 {
  return quantActQ4(x, xq, ad, 0, nb, true);
}

@inline function quantActQ4(x: usize, xa: usize, ad: usize, ks: usize, nb: i32, plain: bool): i32 {
  let bad = -1;
  for (let b = 0; b < nb; b++) {
    const xp = x + (<usize>b << 7);
    let mx = f32x4.abs(v128.load(xp));
    for (let i = 1; i < 8; i++) mx = f32x4.max(mx, f32x4.abs(v128.load(xp + (<usize>i << 4))));
    const amax = max<f32>(max<f32>(f32x4.extract_lane(mx, 0), f32x4.extract_lane(mx, 1)), max<f32>(f32x4.extract_lane(mx, 2), f32x4.extract_lane(mx, 3)));
    const d: f32 = amax / 127.0;
    const idf: f32 = d != 0 ? <f32>1.0 / d : 0;
    const o = xa + (<usize>b << (plain ? 5 : 6));
    if (!(idf - idf == 0) || !(d - d == 0)) {
      if (bad < 0) bad = b;
      v128.store(o, i32x4.splat(0));
      v128.store(o, i32x4.splat(0), 16);
      store<f32>(ad + (<usize>b << 2), 0);
      if (!plain) {
        v128.store(o, i32x4.splat(0), 32);
        v128.store(o, i32x4.splat(0), 48);
        store<i32>(ks + (<usize>b << 2), 0);
      }
      continue;
    }
    const id = f32x4.splat(idf);
    // q[0..15] and q[16..31] as i16x8 pairs
    const lo0 = i16x8.narrow_i32x4_s(q8x4(xp, id), q8x4(xp + 16, id)); // q0..7
    const lo1 = i16x8.narrow_i32x4_s(q8x4(xp + 32, id), q8x4(xp + 48, id)); // q8..15
    const hi0 = i16x8.narrow_i32x4_s(q8x4(xp + 64, id), q8x4(xp + 80, id)); // q16..23
    const hi1 = i16x8.narrow_i32x4_s(q8x4(xp + 96, id), q8x4(xp + 112, id)); // q24..31
    if (plain) {
      v128.store(o, i8x16.narrow_i16x8_s(lo0, lo1));
      v128.store(o, i8x16.narrow_i16x8_s(hi0, hi1), 16);
      store<f32>(ad + (<usize>b << 2), f16ToF32q(f32ToF16q(d)));
      continue;
    }
    // even / odd positions of 0..15 and 16..31
    const ev = i8x16.shuffle(lo0, lo1, 0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29);
    const od = i8x16.shuffle(lo0, lo1, 2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31);
    const ev2 = i8x16.shuffle(hi0, hi1, 0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29);
    const od2 = i8x16.shuffle(hi0, hi1, 2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31);
    v128.store(o, i16x8.shl(ev, 8));
    v128.store(o, i16x8.shl(ev2, 4), 16);
    v128.store(o, od, 32);
    v128.store(o, i16x8.shl(od2, 8), 48);
    const s = i32x4.add(
      i32x4.add(i32x4.extadd_pairwise_i16x8_s(lo0), i32x4.extadd_pairwise_i16x8_s(lo1)),
      i32x4.add(i32x4.extadd_pairwise_i16x8_s(hi0), i32x4.extadd_pairwise_i16x8_s(hi1)),
    );
    const sum = i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1) + i32x4.extract_lane(s, 2) + i32x4.extract_lane(s, 3);
    store<f32>(ad + (<usize>b << 2), f16ToF32q(f32ToF16q(d)));
    store<i32>(ks + (<usize>b << 2), sum << 11);
  }
  return bad;
}

/** Nibble field f (0..3) of an i16 weight lane, masked in place (f = 3 shifted down). */
@inline function fieldQ4(v: v128, f: i32): v128 {
  if (f == 3) return i16x8.shr_u(v, 12);
  if (f == 2) return v128.and(v, i16x8.splat(0x0f00));
  if (f == 1) return v128.and(v, i16x8.splat(0x00f0));
  return v128.and(v, i16x8.splat(0x000f));
}

/** 256 * sum e q over one row's block v (16 bytes of codes) with the block's activation fields. */
@inline function dotQ4(v: v128, a0: v128, a1: v128, a2: v128, a3: v128): v128 {
  const lo = i32x4.add(
    i32x4.dot_i16x8_s(v128.and(v, i16x8.splat(0x000f)), a0),
    i32x4.dot_i16x8_s(v128.and(v, i16x8.splat(0x00f0)), a1),
  );
  const hi = i32x4.add(
    i32x4.dot_i16x8_s(v128.and(v, i16x8.splat(0x0f00)), a2),
    i32x4.dot_i16x8_s(i16x8.shr_u(v, 12), a3),
  );
  return i32x4.add(lo, hi);
}

/** Tile t's epilogue of q4_0_gemv from its block sums at sums. */
@inline function q4_0TileEpilogue(sums: usize, ks: usize, ad: usize, ws: usize, y: usize, nb: i32, t: i32, bias: usize): void {
  const end = sums + (<usize>nb << 6);
  let st = ws + ((<usize>t * <usize>nb) << 4);
  let pk = ks;
  let pd = ad;
  let acc = f32x4.splat(0);
  for (let pt = sums; pt < end; pt += 64) {
    const isum = i32x4.shr_s(i32x4.sub(hsum4i(v128.load(pt), v128.load(pt, 16), v128.load(pt, 32), v128.load(pt, 48)), v128.load32_splat(pk)), 8);
    const s = f32x4.mul(v128.load(st), v128.load32_splat(pd));
    acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(isum), s));
    st += 16;
    pk += 4;
    pd += 4;
  }
  if (bias != 0) acc = f32x4.add(acc, v128.load(bias + (<usize>t << 4)));
  v128.store(y + (<usize>t << 4), acc);
}

/** One block of one tile (4 rows x 16 bytes at p): each row's sums, unreduced, to pt .. pt + 48. */
@inline function q4_0TileBlock(p: usize, a0: v128, a1: v128, a2: v128, a3: v128, m0: v128, m1: v128, m2: v128, pt: usize): void {
  v128.store(pt, dotQ4m(v128.load(p), a0, a1, a2, a3, m0, m1, m2));
  v128.store(pt, dotQ4m(v128.load(p, 16), a0, a1, a2, a3, m0, m1, m2), 16);
  v128.store(pt, dotQ4m(v128.load(p, 32), a0, a1, a2, a3, m0, m1, m2), 32);
  v128.store(pt, dotQ4m(v128.load(p, 48), a0, a1, a2, a3, m0, m1, m2), 48);
}

/**
 * One token: y[j] = sum_b f32((S - ks) >> 8) * (ws[j,b] * ad[b]) block by block in f32 (+ bias[j]),
 * for the n4 tiles at wq/ws (a thread's share: pointers advanced to its first tile). y f32 [n4 * 4];
 * tmp: nb * 256 bytes of this call's own.
 *
 * Four tiles a quarter of the call apart run side by side, so the weights are read as four
 * sequential streams (one stream reads at about 11 GB/s on the 2-core Zen 1 machine, four at about
 * 18). Per group of tiles two passes, as gemv_i8p_b4_g32: each row's integer block sums, unreduced,
 * into tmp (one nb * 64 byte slice per tile), then each tile's epilogue; fused, V8 spilled the loop to
 * the stack. The remaining n4 % 4 tiles run one at a time.
 */
export function q4_0_gemv(xa: usize, ad: usize, ks: usize, wq: usize, ws: usize, y: usize, nb: i32, n4: i32, bias: usize, nib: i32, tmp: usize): void {
  // the nibble masks from a run-time argument (nib = 15): loop invariants the compiler keeps in
  // registers, where v128 constants would be rematerialized inside the loop
  const m0 = i16x8.splat(<i16>nib);
  const m1 = i16x8.shl(m0, 4);
  const m2 = i16x8.shl(m0, 8);
  const tileBytes = <usize>nb << 6;
  const slice = <usize>nb << 6;
  const q = n4 >> 2;
  const qBytes = <usize>q * tileBytes;
  for (let t = 0; t < q; t++) {
    let p = wq + <usize>t * tileBytes;
    let xb = xa;
    for (let pt = tmp; pt < tmp + slice; pt += 64) {
      const a0 = v128.load(xb);
      const a1 = v128.load(xb, 16);
      const a2 = v128.load(xb, 32);
      const a3 = v128.load(xb, 48);
      q4_0TileBlock(p, a0, a1, a2, a3, m0, m1, m2, pt);
      q4_0TileBlock(p + qBytes, a0, a1, a2, a3, m0, m1, m2, pt + slice);
      q4_0TileBlock(p + 2 * qBytes, a0, a1, a2, a3, m0, m1, m2, pt + 2 * slice);
      q4_0TileBlock(p + 3 * qBytes, a0, a1, a2, a3, m0, m1, m2, pt + 3 * slice);
      p += 64;
      xb += 64;
    }
    q4_0TileEpilogue(tmp, ks, ad, ws, y, nb, t, bias);
    q4_0TileEpilogue(tmp + slice, ks, ad, ws, y, nb, t + q, bias);
    q4_0TileEpilogue(tmp + 2 * slice, ks, ad, ws, y, nb, t + 2 * q, bias);
    q4_0TileEpilogue(tmp + 3 * slice, ks, ad, ws, y, nb, t + 3 * q, bias);
  }
  for (let t = q << 2; t < n4; t++) {
    let p = wq + <usize>t * tileBytes;
    let xb = xa;
    for (let pt = tmp; pt < tmp + slice; pt += 64) {
      q4_0TileBlock(p, v128.load(xb), v128.load(xb, 16), v128.load(xb, 32), v128.load(xb, 48), m0, m1, m2, pt);
      p += 64;
      xb += 64;
    }
    q4_0TileEpilogue(tmp, ks, ad, ws, y, nb, t, bias);
  }
}

/** dotQ4 with the masks passed in, summed as one chain. */
@inline function dotQ4m(v: v128, a0: v128, a1: v128, a2: v128, a3: v128, m0: v128, m1: v128, m2: v128): v128 {
  let r = i32x4.dot_i16x8_s(v128.and(v, m0), a0);
  r = i32x4.add(r, i32x4.dot_i16x8_s(v128.and(v, m1), a1));
  r = i32x4.add(r, i32x4.dot_i16x8_s(v128.and(v, m2), a2));
  return i32x4.add(r, i32x4.dot_i16x8_s(i16x8.shr_u(v, 12), a3));
}

/**
 * m tokens (xa/ad/ks for token i at i * nb blocks), same arithmetic per output as q4_0_gemv;
 * y row stride ldy (floats), the tiles' columns written.
 */
export function q4_0_gemm(xa: usize, ad: usize, ks: usize, wq: usize, ws: usize, y: usize, m: i32, nb: i32, n4: i32, ldy: i32, bias: usize): void {
  const tileBytes = <usize>nb << 6;
  const tokA = <usize>nb << 6;
  const tokS = <usize>nb << 2;
  for (let t = 0; t < n4; t++) {
    const wt = wq + <usize>t * tileBytes;
    const st = ws + ((<usize>t * <usize>nb) << 4);
    const yo = y + (<usize>t << 4);
    let i = 0;
    for (; i + 2 <= m; i += 2) {
      const xa0 = xa + <usize>i * tokA;
      const xa1 = xa0 + tokA;
      const ad0 = ad + <usize>i * tokS;
      const ks0 = ks + <usize>i * tokS;
      let f0 = f32x4.splat(0), f1 = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        const p = wt + (<usize>b << 6);
        const xb = xa0 + (<usize>b << 6);
        const xc = xa1 + (<usize>b << 6);
        let u0 = i32x4.splat(0), u1 = i32x4.splat(0), u2 = i32x4.splat(0), u3 = i32x4.splat(0);
        let w0 = i32x4.splat(0), w1 = i32x4.splat(0), w2 = i32x4.splat(0), w3 = i32x4.splat(0);
        // field by field: the i16 fields of the tile's 4 rows times both tokens
        const v0 = v128.load(p);
        const v1 = v128.load(p, 16);
        const v2 = v128.load(p, 32);
        const v3 = v128.load(p, 48);
        {
          const ax = v128.load(xb, 0);
          const ay = v128.load(xc, 0);
          const c0 = fieldQ4(v0, 0);
          const c1 = fieldQ4(v1, 0);
          const c2 = fieldQ4(v2, 0);
          const c3 = fieldQ4(v3, 0);
          u0 = i32x4.add(u0, i32x4.dot_i16x8_s(c0, ax));
          u1 = i32x4.add(u1, i32x4.dot_i16x8_s(c1, ax));
          u2 = i32x4.add(u2, i32x4.dot_i16x8_s(c2, ax));
          u3 = i32x4.add(u3, i32x4.dot_i16x8_s(c3, ax));
          w0 = i32x4.add(w0, i32x4.dot_i16x8_s(c0, ay));
          w1 = i32x4.add(w1, i32x4.dot_i16x8_s(c1, ay));
          w2 = i32x4.add(w2, i32x4.dot_i16x8_s(c2, ay));
          w3 = i32x4.add(w3, i32x4.dot_i16x8_s(c3, ay));
        }
        {
          const ax = v128.load(xb, 16);
          const ay = v128.load(xc, 16);
          const c0 = fieldQ4(v0, 1);
          const c1 = fieldQ4(v1, 1);
          const c2 = fieldQ4(v2, 1);
          const c3 = fieldQ4(v3, 1);
          u0 = i32x4.add(u0, i32x4.dot_i16x8_s(c0, ax));
          u1 = i32x4.add(u1, i32x4.dot_i16x8_s(c1, ax));
          u2 = i32x4.add(u2, i32x4.dot_i16x8_s(c2, ax));
          u3 = i32x4.add(u3, i32x4.dot_i16x8_s(c3, ax));
          w0 = i32x4.add(w0, i32x4.dot_i16x8_s(c0, ay));
          w1 = i32x4.add(w1, i32x4.dot_i16x8_s(c1, ay));
          w2 = i32x4.add(w2, i32x4.dot_i16x8_s(c2, ay));
          w3 = i32x4.add(w3, i32x4.dot_i16x8_s(c3, ay));
        }
        {
          const ax = v128.load(xb, 32);
          const ay = v128.load(xc, 32);
          const c0 = fieldQ4(v0, 2);
          const c1 = fieldQ4(v1, 2);
          const c2 = fieldQ4(v2, 2);
          const c3 = fieldQ4(v3, 2);
          u0 = i32x4.add(u0, i32x4.dot_i16x8_s(c0, ax));
          u1 = i32x4.add(u1, i32x4.dot_i16x8_s(c1, ax));
          u2 = i32x4.add(u2, i32x4.dot_i16x8_s(c2, ax));
          u3 = i32x4.add(u3, i32x4.dot_i16x8_s(c3, ax));
          w0 = i32x4.add(w0, i32x4.dot_i16x8_s(c0, ay));
          w1 = i32x4.add(w1, i32x4.dot_i16x8_s(c1, ay));
          w2 = i32x4.add(w2, i32x4.dot_i16x8_s(c2, ay));
          w3 = i32x4.add(w3, i32x4.dot_i16x8_s(c3, ay));
        }
        {
          const ax = v128.load(xb, 48);
          const ay = v128.load(xc, 48);
          const c0 = fieldQ4(v0, 3);
          const c1 = fieldQ4(v1, 3);
          const c2 = fieldQ4(v2, 3);
          const c3 = fieldQ4(v3, 3);
          u0 = i32x4.add(u0, i32x4.dot_i16x8_s(c0, ax));
          u1 = i32x4.add(u1, i32x4.dot_i16x8_s(c1, ax));
          u2 = i32x4.add(u2, i32x4.dot_i16x8_s(c2, ax));
          u3 = i32x4.add(u3, i32x4.dot_i16x8_s(c3, ax));
          w0 = i32x4.add(w0, i32x4.dot_i16x8_s(c0, ay));
          w1 = i32x4.add(w1, i32x4.dot_i16x8_s(c1, ay));
          w2 = i32x4.add(w2, i32x4.dot_i16x8_s(c2, ay));
          w3 = i32x4.add(w3, i32x4.dot_i16x8_s(c3, ay));
        }
        const ws4 = v128.load(st + (<usize>b << 4));
        const bo = <usize>b << 2;
        const i0 = i32x4.shr_s(i32x4.sub(hsum4i(u0, u1, u2, u3), v128.load32_splat(ks0 + bo)), 8);
        const i1 = i32x4.shr_s(i32x4.sub(hsum4i(w0, w1, w2, w3), v128.load32_splat(ks0 + tokS + bo)), 8);
        f0 = f32x4.add(f0, f32x4.mul(f32x4.convert_i32x4_s(i0), f32x4.mul(ws4, v128.load32_splat(ad0 + bo))));
        f1 = f32x4.add(f1, f32x4.mul(f32x4.convert_i32x4_s(i1), f32x4.mul(ws4, v128.load32_splat(ad0 + tokS + bo))));
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
      const xa0 = xa + <usize>i * tokA;
      const ad0 = ad + <usize>i * tokS;
      const ks0 = ks + <usize>i * tokS;
      let f0 = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        const p = wt + (<usize>b << 6);
        const xb = xa0 + (<usize>b << 6);
        const a0 = v128.load(xb);
        const a1 = v128.load(xb, 16);
        const a2 = v128.load(xb, 32);
        const a3 = v128.load(xb, 48);
        const r0 = dotQ4(v128.load(p), a0, a1, a2, a3);
        const r1 = dotQ4(v128.load(p, 16), a0, a1, a2, a3);
        const r2 = dotQ4(v128.load(p, 32), a0, a1, a2, a3);
        const r3 = dotQ4(v128.load(p, 48), a0, a1, a2, a3);
        const bo = <usize>b << 2;
        const isum = i32x4.shr_s(i32x4.sub(hsum4i(r0, r1, r2, r3), v128.load32_splat(ks0 + bo)), 8);
        f0 = f32x4.add(f0, f32x4.mul(f32x4.convert_i32x4_s(isum), f32x4.mul(v128.load(st + (<usize>b << 4)), v128.load32_splat(ad0 + bo))));
      }
      if (bias != 0) f0 = f32x4.add(f0, v128.load(bias + (<usize>t << 4)));
      v128.store(yo + ((<usize>i * <usize>ldy) << 2), f0);
    }
  }
}

// ---------------------------------------------------------------- Q4_0 x Q8 activations, many tokens, via int8 tiles

/**
 * Q4_0 x Q8_0-quantized activations for m tokens (q4_0_quant_act8's xq i8 [m, nb * 32] and ad
 * f32 [m, nb]) over the tiled layout: each tile of four weight rows is first expanded into `tile`
 * (nb * 128 bytes of scratch of this call's own) as int8 codes - 8, [nb][4 rows][32], and then
 * every token pair runs a plain int8 dot-product loop over it. The expansion is paid once per tile
 * and call, the loop needs no nibble field arithmetic and keeps fewer values live, which is faster
 * from a few tokens on. Block sums are the same exact integers as q4_0_gemm's and the f32
 * epilogue is the same (sum += f32(isum) * (dw * da) per block, bias last), so the outputs are
 * q4_0_gemm's bit for bit.
 */
export function q4_0_gemm_x8(xq: usize, ad: usize, wq: usize, ws: usize, y: usize, m: i32, nb: i32, n4: i32, ldy: i32, bias: usize, tile: usize): void {
  const tileBytes = <usize>nb << 6;
  const ldk = <usize>nb << 5;
  const lds = <usize>nb << 2;
  const low = i8x16.splat(0x0f);
  const eight = i8x16.splat(8);
  for (let t = 0; t < n4; t++) {
    const wt = wq + <usize>t * tileBytes;
    const st = ws + ((<usize>t * <usize>nb) << 4);
    const yo = y + (<usize>t << 4);
    // codes c (low nibble: column j, high nibble: column j + 16) -> int8 c - 8
    for (let b = 0; b < nb; b++) {
      const src = wt + (<usize>b << 6);
      const dst = tile + (<usize>b << 7);
      for (let r = 0; r < 4; r++) {
        const v = v128.load(src + (<usize>r << 4));
        v128.store(dst + (<usize>r << 5), i8x16.sub(v128.and(v, low), eight));
        v128.store(dst + (<usize>r << 5), i8x16.sub(i8x16.shr_u(v, 4), eight), 16);
      }
    }
    let i = 0;
    for (; i + 2 <= m; i += 2) {
      const a0 = xq + <usize>i * ldk;
      const a1 = a0 + ldk;
      const d0 = ad + <usize>i * lds;
      let f0 = f32x4.splat(0), f1 = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        const kb = <usize>b << 5;
        const p = tile + (<usize>b << 7);
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
        const ws4 = v128.load(st + (<usize>b << 4));
        const bo = <usize>b << 2;
        f0 = f32x4.add(f0, f32x4.mul(f32x4.convert_i32x4_s(hsum4i(c00, c01, c02, c03)), f32x4.mul(ws4, v128.load32_splat(d0 + bo))));
        f1 = f32x4.add(f1, f32x4.mul(f32x4.convert_i32x4_s(hsum4i(c10, c11, c12, c13)), f32x4.mul(ws4, v128.load32_splat(d0 + lds + bo))));
      }
      if (bias != 0) {
        const bv = v128.load(bias + (<usize>t << 4));
        f0 = f32x4.add(f0, bv);
        f1 = f32x4.add(f1, bv);
      }
      v128.store(yo + ((<usize>i * <usize>ldy) << 2), f0);
      v128.store(yo + ((<usize>(i + 1) * <usize>ldy) << 2), f1);
    }
    if (i < m) {
      const a0 = xq + <usize>i * ldk;
      const d0 = ad + <usize>i * lds;
      let f0 = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        const kb = <usize>b << 5;
        const p = tile + (<usize>b << 7);
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
        const bo = <usize>b << 2;
        f0 = f32x4.add(f0, f32x4.mul(f32x4.convert_i32x4_s(hsum4i(c0, c1, c2, c3)), f32x4.mul(v128.load(st + (<usize>b << 4)), v128.load32_splat(d0 + bo))));
      }
      if (bias != 0) f0 = f32x4.add(f0, v128.load(bias + (<usize>t << 4)));
      v128.store(yo + ((<usize>i * <usize>ldy) << 2), f0);
    }
  }
}

// ---------------------------------------------------------------- GGUF Q6_K, int8 activations
//
// Q6_KTiledLinear keeps Q6_K weights as int8 codes q - 32 in tiles of 4 rows, wq i8 [n4][nb][4][32]
// (a tile's 32-value block is 128 contiguous bytes, row r at r * 32), and per block two f32 scales
// per row (the block's two 16-value sub-blocks), ws f32 [n4][nb][8]: the four rows' first-half
// scales, then their second-half scales. Activations come from q4_0_quant_act8 (int8 per 32-value
// block, ad f32 [nb]). Per row and block: t = f32(lo) * s_lo + f32(hi) * s_hi with lo, hi the
// integer sums over the two halves, then y += t * ad[b], block by block in f32 (+ bias).

/** One block of one tile: each row's half sums, unreduced, lo to pt + 16r and hi to pt + 64 + 16r. */
@inline function q6TileBlock(p: usize, x0: v128, x1: v128, x2: v128, x3: v128, pt: usize): void {
  for (let r = 0; r < 4; r++) {
    const o = p + (<usize>r << 5);
    v128.store(pt + (<usize>r << 4), i32x4.add(i32x4.dot_i16x8_s(v128.load8x8_s(o), x0), i32x4.dot_i16x8_s(v128.load8x8_s(o, 8), x1)));
    v128.store(pt + (<usize>r << 4), i32x4.add(i32x4.dot_i16x8_s(v128.load8x8_s(o, 16), x2), i32x4.dot_i16x8_s(v128.load8x8_s(o, 24), x3)), 64);
  }
}

/** Tile t's epilogue from its block half sums at sums (nb * 128 bytes). */
@inline function q6TileEpilogue(sums: usize, ad: usize, ws: usize, y: usize, nb: i32, t: i32, bias: usize): void {
  let st = ws + ((<usize>t * <usize>nb) << 5);
  let pd = ad;
  let acc = f32x4.splat(0);
  const end = sums + (<usize>nb << 7);
  for (let pt = sums; pt < end; pt += 128) {
    const lo = f32x4.convert_i32x4_s(hsum4i(v128.load(pt), v128.load(pt, 16), v128.load(pt, 32), v128.load(pt, 48)));
    const hi = f32x4.convert_i32x4_s(hsum4i(v128.load(pt, 64), v128.load(pt, 80), v128.load(pt, 96), v128.load(pt, 112)));
    const tb = f32x4.add(f32x4.mul(lo, v128.load(st)), f32x4.mul(hi, v128.load(st, 16)));
    acc = f32x4.add(acc, f32x4.mul(tb, v128.load32_splat(pd)));
    st += 32;
    pd += 4;
  }
  if (bias != 0) acc = f32x4.add(acc, v128.load(bias + (<usize>t << 4)));
  v128.store(y + (<usize>t << 4), acc);
}

/**
 * One token over the n4 tiles at wq/ws (a thread's share: pointers advanced to its first tile);
 * y f32 [n4 * 4]; tmp: nb * 512 bytes of this call's own. As q8_0_gemv_q8 in @lowbit/int8, four tiles
 * a quarter of the call apart run side by side (four weight streams), in two passes per group: the
 * rows' half sums into tmp, then each tile's epilogue; the n4 % 4 tiles left run one at a time.
 */
export function q6_k_gemv(xq: usize, ad: usize, wq: usize, ws: usize, y: usize, nb: i32, n4: i32, bias: usize, tmp: usize): void {
  // a tile's codes and one tile's half sums in tmp take the same nb * 128 bytes
  const tileBytes = <usize>nb << 7;
  const slice = tileBytes;
  const q = n4 >> 2;
  const qBytes = <usize>q * tileBytes;
  for (let t = 0; t < q; t++) {
    let p = wq + <usize>t * tileBytes;
    let xb = xq;
    for (let pt = tmp; pt < tmp + slice; pt += 128) {
      const x0 = v128.load8x8_s(xb), x1 = v128.load8x8_s(xb, 8), x2 = v128.load8x8_s(xb, 16), x3 = v128.load8x8_s(xb, 24);
      q6TileBlock(p, x0, x1, x2, x3, pt);
      q6TileBlock(p + qBytes, x0, x1, x2, x3, pt + slice);
      q6TileBlock(p + 2 * qBytes, x0, x1, x2, x3, pt + 2 * slice);
      q6TileBlock(p + 3 * qBytes, x0, x1, x2, x3, pt + 3 * slice);
      p += 128;
      xb += 32;
    }
    q6TileEpilogue(tmp, ad, ws, y, nb, t, bias);
    q6TileEpilogue(tmp + slice, ad, ws, y, nb, t + q, bias);
    q6TileEpilogue(tmp + 2 * slice, ad, ws, y, nb, t + 2 * q, bias);
    q6TileEpilogue(tmp + 3 * slice, ad, ws, y, nb, t + 3 * q, bias);
  }
  for (let t = q << 2; t < n4; t++) {
    let p = wq + <usize>t * tileBytes;
    let xb = xq;
    for (let pt = tmp; pt < tmp + slice; pt += 128) {
      q6TileBlock(p, v128.load8x8_s(xb), v128.load8x8_s(xb, 8), v128.load8x8_s(xb, 16), v128.load8x8_s(xb, 24), pt);
      p += 128;
      xb += 32;
    }
    q6TileEpilogue(tmp, ad, ws, y, nb, t, bias);
  }
}

/**
 * m tokens (xq/ad for token i at i * nb blocks), the same arithmetic per output as q6_k_gemv: per
 * tile, every token runs over the tile's weights (still in cache after the first). y row stride
 * ldy (floats); tmp: nb * 128 bytes of this call's own.
 */
export function q6_k_gemm(xq: usize, ad: usize, wq: usize, ws: usize, y: usize, m: i32, nb: i32, n4: i32, ldy: i32, bias: usize, tmp: usize): void {
  const tileBytes = <usize>nb << 7;
  const slice = tileBytes;
  for (let t = 0; t < n4; t++) {
    const wt = wq + <usize>t * tileBytes;
    for (let i = 0; i < m; i++) {
      let p = wt;
      let xb = xq + ((<usize>i * <usize>nb) << 5);
      for (let pt = tmp; pt < tmp + slice; pt += 128) {
        q6TileBlock(p, v128.load8x8_s(xb), v128.load8x8_s(xb, 8), v128.load8x8_s(xb, 16), v128.load8x8_s(xb, 24), pt);
        p += 128;
        xb += 32;
      }
      q6TileEpilogue(tmp, ad + ((<usize>i * <usize>nb) << 2), ws, y + ((<usize>i * <usize>ldy) << 2), nb, t, bias);
    }
  }
}
