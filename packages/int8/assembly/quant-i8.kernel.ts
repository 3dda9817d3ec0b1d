// int8 quantize / dequantize kernels. Pointers are byte offsets into the engine's shared memory.
//
// Quantization: q = clamp(nearest(x * invScale) + zeroPoint, qmin, qmax), nearest = round half
// to even (f32x4.nearest, like torch's std::nearbyint); dequantization: (q - zeroPoint) * scale.
// Parameters are laid out in "runs": a tensor of `outer * c * inner` values where every
// contiguous run of `inner` values shares the parameters of its channel c (per tensor: c = 1;
// per channel on axis a: c = shape[a], inner = product of the later dims; per group: inner =
// group size; per token: inner = features). When inner == 1 (per channel on the last axis) the
// "cols" kernels vectorise across channels instead.

@inline function q4(v: v128, inv: v128, zp: v128, lo: v128, hi: v128): v128 {
  const r = f32x4.add(f32x4.nearest(f32x4.mul(v, inv)), zp);
  return i32x4.trunc_sat_f32x4_s(f32x4.min(f32x4.max(r, lo), hi));
}

@inline function q1(v: f32, inv: f32, zp: f32, lo: f32, hi: f32): i32 {
  return <i32>min<f32>(max<f32>(nearest<f32>(v * inv) + zp, lo), hi);
}

@inline function q16(p: usize, inv: v128, zp: v128, lo: v128, hi: v128, unsigned: i32): v128 {
  const a = i16x8.narrow_i32x4_s(q4(v128.load(p), inv, zp, lo, hi), q4(v128.load(p, 16), inv, zp, lo, hi));
  const b = i16x8.narrow_i32x4_s(q4(v128.load(p, 32), inv, zp, lo, hi), q4(v128.load(p, 48), inv, zp, lo, hi));
  return unsigned != 0 ? i8x16.narrow_i16x8_u(a, b) : i8x16.narrow_i16x8_s(a, b);
}

/** Per-row min and max of x f32 [rows, k] into out f32 [rows, 2]; NaN propagates. */
export function minmax_rows(x: usize, rows: i32, k: i32, out: usize): void {
  for (let r = 0; r < rows; r++) {
    const p = x + ((<usize>r * <usize>k) << 2);
    let lo = load<f32>(p);
    let hi = lo;
    let c = 0;
    if (k >= 4) {
      let vlo = v128.load(p);
      let vhi = vlo;
      for (c = 4; c + 4 <= k; c += 4) {
        const v = v128.load(p + (<usize>c << 2));
        vlo = f32x4.min(vlo, v);
        vhi = f32x4.max(vhi, v);
      }
      lo = min<f32>(min<f32>(f32x4.extract_lane(vlo, 0), f32x4.extract_lane(vlo, 1)), min<f32>(f32x4.extract_lane(vlo, 2), f32x4.extract_lane(vlo, 3)));
      hi = max<f32>(max<f32>(f32x4.extract_lane(vhi, 0), f32x4.extract_lane(vhi, 1)), max<f32>(f32x4.extract_lane(vhi, 2), f32x4.extract_lane(vhi, 3)));
    }
    for (; c < k; c++) {
      const v = load<f32>(p + (<usize>c << 2));
      lo = min<f32>(lo, v);
      hi = max<f32>(hi, v);
    }
    store<f32>(out + (<usize>r << 3), lo);
    store<f32>(out + (<usize>r << 3), hi, 4);
  }
}

/**
 * Quantizes x f32 [rows, k] with per-row parameters (inv f32 [rows], zp f32 [rows]) into
 * i16 [rows, kp] (zero padded to kp): the activation operand of the integer GEMM.
 */
export function quantize_rows_i16(x: usize, q: usize, rows: i32, k: i32, kp: i32, inv: usize, zp: usize, qmin: f32, qmax: f32): void {
  const lo = f32x4.splat(qmin);
  const hi = f32x4.splat(qmax);
  for (let r = 0; r < rows; r++) {
    const s = x + ((<usize>r * <usize>k) << 2);
    const d = q + ((<usize>r * <usize>kp) << 1);
    const fi = load<f32>(inv + (<usize>r << 2));
    const fz = load<f32>(zp + (<usize>r << 2));
    const vi = f32x4.splat(fi);
    const vz = f32x4.splat(fz);
    let c = 0;
    for (; c + 8 <= k; c += 8) {
      const p = s + (<usize>c << 2);
      v128.store(d + (<usize>c << 1), i16x8.narrow_i32x4_s(q4(v128.load(p), vi, vz, lo, hi), q4(v128.load(p, 16), vi, vz, lo, hi)));
    }
    for (; c < k; c++) store<i16>(d + (<usize>c << 1), <i16>q1(load<f32>(s + (<usize>c << 2)), fi, fz, qmin, qmax));
    for (; c < kp; c++) store<i16>(d + (<usize>c << 1), 0);
  }
}

/** Quantizes runs (see the header) into int8 (unsigned == 0) or uint8 bytes. */
export function quantize_runs(
  x: usize, q: usize, outer: i32, c: i32, inner: i32, inv: usize, zp: usize, qmin: f32, qmax: f32, unsigned: i32,
): void {
  const lo = f32x4.splat(qmin);
  const hi = f32x4.splat(qmax);
  let off: usize = 0;
  for (let o = 0; o < outer; o++) {
    for (let ch = 0; ch < c; ch++) {
      const fi = load<f32>(inv + (<usize>ch << 2));
      const fz = load<f32>(zp + (<usize>ch << 2));
      const vi = f32x4.splat(fi);
      const vz = f32x4.splat(fz);
      let i = 0;
      for (; i + 16 <= inner; i += 16) {
        v128.store(q + off + <usize>i, q16(x + ((off + <usize>i) << 2), vi, vz, lo, hi, unsigned));
      }
      for (; i < inner; i++) {
        store<u8>(q + off + <usize>i, <u8>q1(load<f32>(x + ((off + <usize>i) << 2)), fi, fz, qmin, qmax));
      }
      off += <usize>inner;
    }
  }
}

/** Quantizes x [rows, cols] with per-column parameters (per channel on the last axis). */
export function quantize_cols(x: usize, q: usize, rows: i32, cols: i32, inv: usize, zp: usize, qmin: f32, qmax: f32, unsigned: i32): void {
  const lo = f32x4.splat(qmin);
  const hi = f32x4.splat(qmax);
  for (let r = 0; r < rows; r++) {
    const base = <usize>r * <usize>cols;
    let c = 0;
    for (; c + 16 <= cols; c += 16) {
      const p = x + ((base + <usize>c) << 2);
      const ip = inv + (<usize>c << 2);
      const zq = zp + (<usize>c << 2);
      const a = i16x8.narrow_i32x4_s(
        q4(v128.load(p), v128.load(ip), v128.load(zq), lo, hi),
        q4(v128.load(p, 16), v128.load(ip, 16), v128.load(zq, 16), lo, hi),
      );
      const b = i16x8.narrow_i32x4_s(
        q4(v128.load(p, 32), v128.load(ip, 32), v128.load(zq, 32), lo, hi),
        q4(v128.load(p, 48), v128.load(ip, 48), v128.load(zq, 48), lo, hi),
      );
      v128.store(q + base + <usize>c, unsigned != 0 ? i8x16.narrow_i16x8_u(a, b) : i8x16.narrow_i16x8_s(a, b));
    }
    for (; c < cols; c++) {
      const v = load<f32>(x + ((base + <usize>c) << 2));
      store<u8>(q + base + <usize>c, <u8>q1(v, load<f32>(inv + (<usize>c << 2)), load<f32>(zp + (<usize>c << 2)), qmin, qmax));
    }
  }
}

@inline function widen16(v: v128, unsigned: i32): v128 {
  return unsigned != 0 ? i16x8.extend_low_i8x16_u(v) : i16x8.extend_low_i8x16_s(v);
}

@inline function dq8(p: usize, y: usize, s: v128, z: v128, unsigned: i32): void {
  // 8 bytes at p -> 8 f32 at y
  const w = widen16(v128.load64_zero(p), unsigned);
  v128.store(y, f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(i32x4.extend_low_i16x8_s(w), z)), s));
  v128.store(y, f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(i32x4.extend_high_i16x8_s(w), z)), s), 16);
}

@inline function dq1(v: i32, s: f32, z: i32): f32 {
  return <f32>(v - z) * s;
}

/** Dequantizes runs: y = (q - zp) * scale, scale f32 [c], zp i32 [c]. */
export function dequantize_runs(q: usize, y: usize, outer: i32, c: i32, inner: i32, scale: usize, zp: usize, unsigned: i32): void {
  let off: usize = 0;
  for (let o = 0; o < outer; o++) {
    for (let ch = 0; ch < c; ch++) {
      const fs = load<f32>(scale + (<usize>ch << 2));
      const iz = load<i32>(zp + (<usize>ch << 2));
      const vs = f32x4.splat(fs);
      const vz = i32x4.splat(iz);
      let i = 0;
      for (; i + 8 <= inner; i += 8) dq8(q + off + <usize>i, y + ((off + <usize>i) << 2), vs, vz, unsigned);
      for (; i < inner; i++) {
        const b = unsigned != 0 ? <i32>load<u8>(q + off + <usize>i) : <i32>load<i8>(q + off + <usize>i);
        store<f32>(y + ((off + <usize>i) << 2), dq1(b, fs, iz));
      }
      off += <usize>inner;
    }
  }
}

/** Dequantizes q [rows, cols] with per-column scale f32 [cols] and zero point i32 [cols]. */
export function dequantize_cols(q: usize, y: usize, rows: i32, cols: i32, scale: usize, zp: usize, unsigned: i32): void {
  for (let r = 0; r < rows; r++) {
    const base = <usize>r * <usize>cols;
    let c = 0;
    for (; c + 8 <= cols; c += 8) {
      const w = widen16(v128.load64_zero(q + base + <usize>c), unsigned);
      const sp = scale + (<usize>c << 2);
      const zq = zp + (<usize>c << 2);
      const yp = y + ((base + <usize>c) << 2);
      v128.store(yp, f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(i32x4.extend_low_i16x8_s(w), v128.load(zq))), v128.load(sp)));
      v128.store(yp, f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(i32x4.extend_high_i16x8_s(w), v128.load(zq, 16))), v128.load(sp, 16)), 16);
    }
    for (; c < cols; c++) {
      const b = unsigned != 0 ? <i32>load<u8>(q + base + <usize>c) : <i32>load<i8>(q + base + <usize>c);
      store<f32>(y + ((base + <usize>c) << 2), dq1(b, load<f32>(scale + (<usize>c << 2)), load<i32>(zp + (<usize>c << 2))));
    }
  }
}
