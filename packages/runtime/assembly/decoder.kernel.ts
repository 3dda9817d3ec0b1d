// Decoder-layer kernels (WebAssembly SIMD, f32): RMSNorm, RoPE, SiLU(gate) * up and causal
// grouped-query attention. Pointers are byte offsets into the engine's shared memory; rows are
// dense (row stride = row length unless a stride is passed). No static data, no strings: the
// module shares one memory with every other kernel module.
//
// Attention transposes the keys and values of one key/value head at a time into [headDim, n]
// panels (n padded to a multiple of 8 with zeros), so the scores of 4 consecutive keys and the
// weighted sums over keys are plain vector loops for any head width (no lane tail over headDim).

// @ts-ignore: decorator
@inline
function hsum(a: v128): f32 {
  return f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 1) + f32x4.extract_lane(a, 2) + f32x4.extract_lane(a, 3);
}

// @ts-ignore: decorator
@inline
function hmax(a: v128): f32 {
  // pmax/pmin are single instructions on x64 (max/min carry NaN and -0 rules that cost a sequence)
  const m = f32x4.pmax(a, f32x4.shuffle(a, a, 2, 3, 0, 1));
  return f32x4.extract_lane(f32x4.pmax(m, f32x4.shuffle(m, m, 1, 0, 3, 2)), 0);
}

/**
 * e^x per lane (Cephes expf: x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial, about 1 ulp).
 * Lanes below -87.3 (including -inf) give exactly 0; lanes are clamped at 88 above. n is rounded
 * by adding 1.5 * 2^23, which leaves it in the low mantissa bits (no float-int conversion).
 */
// @ts-ignore: decorator
@inline
function exp4(x: v128): v128 {
  const lo = f32x4.splat(-87.33654);
  const magic = f32x4.splat(12582912.0);
  const under = f32x4.lt(x, lo);
  const xc = f32x4.pmin(f32x4.pmax(x, lo), f32x4.splat(88.0));
  const t = f32x4.add(f32x4.mul(xc, f32x4.splat(1.44269504088896341)), magic);
  const fx = f32x4.sub(t, magic);
  let r = f32x4.sub(xc, f32x4.mul(fx, f32x4.splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(fx, f32x4.splat(-2.12194440e-4)));
  let y = f32x4.splat(1.9875691500e-4);
  y = f32x4.add(f32x4.mul(y, r), f32x4.splat(1.3981999507e-3));
  y = f32x4.add(f32x4.mul(y, r), f32x4.splat(8.3334519073e-3));
  y = f32x4.add(f32x4.mul(y, r), f32x4.splat(4.1665795894e-2));
  y = f32x4.add(f32x4.mul(y, r), f32x4.splat(1.6666665459e-1));
  y = f32x4.add(f32x4.mul(y, r), f32x4.splat(5.0000001201e-1));
  y = f32x4.add(f32x4.add(f32x4.mul(y, f32x4.mul(r, r)), r), f32x4.splat(1.0));
  // bits(t) = bits(magic) + n, and bits(magic) has nine zero low bits: (bits(t) + 127) << 23 = 2^n
  const pow2n = i32x4.shl(i32x4.add(t, i32x4.splat(127)), 23);
  return v128.andnot(f32x4.mul(y, pow2n), under);
}

/** Scalar e^x through the vector routine (tails). */
// @ts-ignore: decorator
@inline
function exp1(x: f32): f32 {
  return f32x4.extract_lane(exp4(f32x4.splat(x)), 0);
}

/**
 * out[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * w for rows r < rows (sum of squares in f64).
 * out may equal x.
 */
export function rmsnorm_f32(x: usize, w: usize, out: usize, rows: i32, dim: i32, eps: f64): void {
  const rb = <usize>dim << 2;
  const d4 = <usize>(dim & ~3) << 2;
  for (let r = 0; r < rows; r++) {
    const xr = x + <usize>r * rb;
    const orow = out + <usize>r * rb;
    let a0 = f64x2.splat(0);
    let a1 = f64x2.splat(0);
    for (let i: usize = 0; i < d4; i += 16) {
      const v = v128.load(xr + i);
      const sq = f32x4.mul(v, v);
      a0 = f64x2.add(a0, f64x2.promote_low_f32x4(sq));
      a1 = f64x2.add(a1, f64x2.promote_low_f32x4(f32x4.shuffle(sq, sq, 2, 3, 0, 1)));
    }
    const a = f64x2.add(a0, a1);
    let ss = f64x2.extract_lane(a, 0) + f64x2.extract_lane(a, 1);
    for (let i = d4; i < rb; i += 4) {
      const v = <f64>load<f32>(xr + i);
      ss += v * v;
    }
    const inv = <f32>(1 / Math.sqrt(ss / <f64>dim + eps));
    const vi = f32x4.splat(inv);
    for (let i: usize = 0; i < d4; i += 16) {
      v128.store(orow + i, f32x4.mul(f32x4.mul(v128.load(xr + i), vi), v128.load(w + i)));
    }
    for (let i = d4; i < rb; i += 4) store<f32>(orow + i, load<f32>(xr + i) * inv * load<f32>(w + i));
  }
}

/**
 * Rotary embedding in place on rows r0 <= r < r1 of x (row stride `stride` floats) holding `heads` heads
 * of width hd at the row start. Row r uses table row p = r % period of `cf`/`ss` ([*, hd] each):
 * cf[p, d] = cos of d's pair frequency, ss[p, d] = -sin for the first element of a pair and +sin
 * for the second, so x'[d] = x[d] * cf[p, d] + x[partner(d)] * ss[p, d]. style 0: interleaved
 * pairs (2i, 2i+1); style 1: half-split pairs (i, i + hd/2).
 */
export function rope_f32(x: usize, r0: i32, r1: i32, stride: i32, heads: i32, hd: i32, cf: usize, ss: usize, period: i32, style: i32): void {
  const half = hd >> 1;
  for (let r = r0; r < r1; r++) {
    const tb = <usize>((r % period) * hd) << 2;
    const c = cf + tb;
    const s = ss + tb;
    for (let h = 0; h < heads; h++) {
      const o = x + (<usize>(r * stride + h * hd) << 2);
      if (style == 0) {
        let d = 0;
        for (; d + 4 <= hd; d += 4) {
          const b = <usize>d << 2;
          const v = v128.load(o + b);
          const sw = f32x4.shuffle(v, v, 1, 0, 3, 2);
          v128.store(o + b, f32x4.add(f32x4.mul(v, v128.load(c + b)), f32x4.mul(sw, v128.load(s + b))));
        }
        for (; d + 2 <= hd; d += 2) {
          const b = <usize>d << 2;
          const a0 = load<f32>(o + b);
          const a1 = load<f32>(o + b, 4);
          store<f32>(o + b, a0 * load<f32>(c + b) + a1 * load<f32>(s + b));
          store<f32>(o + b, a1 * load<f32>(c + b, 4) + a0 * load<f32>(s + b, 4), 4);
        }
      } else {
        const hb = <usize>half << 2;
        let d = 0;
        for (; d + 4 <= half; d += 4) {
          const b = <usize>d << 2;
          const lo = v128.load(o + b);
          const hi = v128.load(o + hb + b);
          v128.store(o + b, f32x4.add(f32x4.mul(lo, v128.load(c + b)), f32x4.mul(hi, v128.load(s + b))));
          v128.store(o + hb + b, f32x4.add(f32x4.mul(hi, v128.load(c + hb + b)), f32x4.mul(lo, v128.load(s + hb + b))));
        }
        for (; d < half; d++) {
          const b = <usize>d << 2;
          const lo = load<f32>(o + b);
          const hi = load<f32>(o + hb + b);
          store<f32>(o + b, lo * load<f32>(c + b) + hi * load<f32>(s + b));
          store<f32>(o + hb + b, hi * load<f32>(c + hb + b) + lo * load<f32>(s + hb + b));
        }
      }
    }
  }
}

/** out[i] = a[i] + b[i] for i < n (the residual connection). out may equal a or b. */
export function add_f32(a: usize, b: usize, out: usize, n: i32): void {
  const n4 = <usize>(n & ~3) << 2;
  for (let i: usize = 0; i < n4; i += 16) v128.store(out + i, f32x4.add(v128.load(a + i), v128.load(b + i)));
  for (let i = n4; i < (<usize>n << 2); i += 4) store<f32>(out + i, load<f32>(a + i) + load<f32>(b + i));
}

/** out[i] = g[i] / (1 + e^-g[i]) * u[i] for i < n. out may equal g or u. */
export function silu_mul_f32(g: usize, u: usize, out: usize, n: i32): void {
  const n4 = <usize>(n & ~3) << 2;
  const one = f32x4.splat(1);
  for (let i: usize = 0; i < n4; i += 16) {
    const gv = v128.load(g + i);
    const e = exp4(f32x4.neg(gv));
    v128.store(out + i, f32x4.mul(f32x4.div(gv, f32x4.add(one, e)), v128.load(u + i)));
  }
  for (let i = n4; i < (<usize>n << 2); i += 4) {
    const gv = load<f32>(g + i);
    store<f32>(out + i, (gv / (<f32>1 + exp1(-gv))) * load<f32>(u + i));
  }
}

// @ts-ignore: decorator
@inline
function round8(n: i32): i32 {
  return (n + 7) & ~7;
}

/** Stores the first `count` lanes of a (all four when count >= 4, none when count <= 0). */
// @ts-ignore: decorator
@inline
function storeLanes(p: usize, a: v128, count: i32): void {
  if (count >= 4) {
    v128.store(p, a);
  } else if (count > 0) {
    store<f32>(p, f32x4.extract_lane(a, 0));
    if (count > 1) store<f32>(p, f32x4.extract_lane(a, 1), 4);
    if (count > 2) store<f32>(p, f32x4.extract_lane(a, 2), 8);
  }
}

/** Bytes of work space attention_f32 needs for n key positions and head width hd. */
export function attention_work_bytes(n: i32, hd: i32): i32 {
  const np = round8(n);
  const hdp = (hd + 3) & ~3;
  // key panel [hd, np], padded key and value rows [n, hdp], 4 score rows [np], 4 splatted queries
  return (hd * np + 2 * n * hdp + 4 * np) * 4 + 4 * hd * 16 + hdp * 4 + 64;
}

/** dst[j, :] = src row j (row stride rs bytes) widened to hdp floats with zeros, for j < n. */
function padRows(src: usize, rs: usize, n: i32, hd: i32, hdp: i32, dst: usize): void {
  for (let j = 0; j < n; j++) {
    const a = src + <usize>j * rs;
    const b = dst + (<usize>(j * hdp) << 2);
    for (let d = 0; d < hd; d++) store<f32>(b + (<usize>d << 2), load<f32>(a + (<usize>d << 2)));
    for (let d = hd; d < hdp; d++) store<f32>(b + (<usize>d << 2), 0);
  }
}

/** dst[d, j] = src[j, d] for j < n, zero for n <= j < np (src row stride rs bytes). */
function transpose(src: usize, rs: usize, n: i32, hd: i32, np: i32, dst: usize): void {
  const pb = <usize>np << 2;
  for (let j = 0; j < n; j++) {
    const a = src + <usize>j * rs;
    const b = dst + (<usize>j << 2);
    for (let d = 0; d < hd; d++) store<f32>(b + <usize>d * pb, load<f32>(a + (<usize>d << 2)));
  }
  for (let d = 0; d < hd; d++) for (let j = n; j < np; j++) store<f32>(dst + <usize>d * pb + (<usize>j << 2), 0);
}

/**
 * In place over the score row s[ja, ne): -inf outside [j0, n), then softmax numerators e^(s - max).
 * Returns 1 / sum.
 */
function softmaxRow(s: usize, ja: i32, ne: i32, j0: i32, n: i32): f32 {
  for (let j = ja; j < j0; j++) store<f32>(s + (<usize>j << 2), <f32>-Infinity);
  for (let j = n; j < ne; j++) store<f32>(s + (<usize>j << 2), <f32>-Infinity);
  let mv = f32x4.splat(<f32>-Infinity);
  for (let j = ja; j < ne; j += 4) mv = f32x4.pmax(mv, v128.load(s + (<usize>j << 2)));
  const mx = f32x4.splat(hmax(mv));
  let sv = f32x4.splat(0);
  for (let j = ja; j < ne; j += 4) {
    const e = exp4(f32x4.sub(v128.load(s + (<usize>j << 2)), mx));
    v128.store(s + (<usize>j << 2), e);
    sv = f32x4.add(sv, e);
  }
  return <f32>1 / hsum(sv);
}

/**
 * Causal grouped-query attention of t query rows at absolute positions startPos .. startPos+t-1.
 * q, out: [t, nHeads*hd]; k, v: [startPos + t, nKv*hd] (position 0 first). Query head h reads
 * key/value head h / (nHeads / nKv). A query at position p attends to positions
 * max(0, p + 1 - window) .. p. Scores are scaled by `scale`; softmax in f32.
 *
 * Four or more query rows (prefill): the keys of a head are transposed into a [hd, np] panel and
 * queries go four at a time (scores 4 queries x 8 keys per step, weighted values 4 queries x 8
 * dimensions per step). Fewer rows (decoding): one query at a time against the key rows in place.
 * Rows whose width is not a multiple of 4 are first copied into zero-padded rows.
 *
 * Only query heads h0 <= h < h1 are computed (their columns of out written, nothing else): each
 * head's result does not depend on the range, so threads given disjoint ranges (each with its own
 * work space) produce exactly the single-call output.
 */
export function attention_f32(
  q: usize,
  k: usize,
  v: usize,
  out: usize,
  t: i32,
  startPos: i32,
  nHeads: i32,
  nKv: i32,
  hd: i32,
  window: i32,
  scale: f32,
  work: usize,
  h0: i32,
  h1: i32,
): void {
  const n = startPos + t;
  const np = round8(n);
  const hdp = (hd + 3) & ~3;
  const kvDim = nKv * hd;
  const group = nHeads / nKv;
  const rs = <usize>kvDim << 2;
  const kt = (work + 15) & ~(<usize>15);
  const kr = kt + (<usize>(hd * np) << 2);
  const vr = kr + (<usize>(n * hdp) << 2);
  const s = vr + (<usize>(n * hdp) << 2);
  const qs = s + (<usize>(4 * np) << 2);
  const aligned = (hd & 3) == 0;
  if (h0 < 0) h0 = 0;
  if (h1 > nHeads) h1 = nHeads;
  if (h0 >= h1) return;
  const khEnd = (h1 - 1) / group + 1;
  for (let kh = h0 / group; kh < khEnd; kh++) {
    // this key/value head's query heads within [h0, h1)
    const ha = max(kh * group, h0);
    const hb = min(kh * group + group, h1);
    const kBase = k + (<usize>(kh * hd) << 2);
    const vBase = v + (<usize>(kh * hd) << 2);
    let vb = vBase;
    let vs = rs;
    if (!aligned) {
      padRows(vBase, rs, n, hd, hdp, vr);
      vb = vr;
      vs = <usize>hdp << 2;
    }
    if (t >= 4) {
      transpose(kBase, rs, n, hd, np, kt);
      for (let h = ha; h < hb; h++) {
        for (let t0 = 0; t0 < t; t0 += 4) block4(q, out, nHeads * hd, h, hd, hdp, t0, t, startPos, window, scale, kt, np, vb, vs, s, qs);
      }
    } else {
      let kb = kBase;
      let ks = rs;
      if (!aligned) {
        padRows(kBase, rs, n, hd, hdp, kr);
        kb = kr;
        ks = <usize>hdp << 2;
      }
      for (let h = ha; h < hb; h++) {
        for (let tt = 0; tt < t; tt++) single(q, out, nHeads * hd, h, hd, hdp, tt, startPos, window, scale, kb, ks, vb, vs, s, qs);
      }
    }
  }
}

/**
 * Query rows t0 .. t0+3 of head h (rows past t - 1 repeat row t - 1: same result, same place)
 * against the transposed key panel kt [hd, np] and value rows vb (stride vs bytes, hdp wide).
 */
function block4(
  q: usize,
  out: usize,
  qDim: i32,
  h: i32,
  hd: i32,
  hdp: i32,
  t0: i32,
  t: i32,
  startPos: i32,
  window: i32,
  scale: f32,
  kt: usize,
  np: i32,
  vb: usize,
  vs: usize,
  s: usize,
  qs: usize,
): void {
  const pb = <usize>np << 2;
  const r0 = t0;
  const r1 = min(t0 + 1, t - 1);
  const r2 = min(t0 + 2, t - 1);
  const r3 = min(t0 + 3, t - 1);
  const qb = <usize>hd << 4; // bytes of one splatted query
  for (let i = 0; i < 4; i++) {
    const r = min(t0 + i, t - 1);
    const qrow = q + (<usize>(r * qDim + h * hd) << 2);
    const dst = qs + <usize>i * qb;
    for (let d = 0; d < hd; d++) v128.store(dst + (<usize>d << 4), f32x4.splat(load<f32>(qrow + (<usize>d << 2)) * scale));
  }
  const nFirst = startPos + r0 + 1;
  const nLast = startPos + r3 + 1;
  const j0First = nFirst > window ? nFirst - window : 0;
  const ja = j0First & ~7;
  const ne = round8(nLast);
  // scores: 4 queries x 8 keys per step
  const s1 = s + pb;
  const s2 = s1 + pb;
  const s3 = s2 + pb;
  for (let jc = ja; jc < ne; jc += 8) {
    let a0 = f32x4.splat(0);
    let b0 = f32x4.splat(0);
    let a1 = f32x4.splat(0);
    let b1 = f32x4.splat(0);
    let a2 = f32x4.splat(0);
    let b2 = f32x4.splat(0);
    let a3 = f32x4.splat(0);
    let b3 = f32x4.splat(0);
    let kp = kt + (<usize>jc << 2);
    let qp = qs;
    for (let d = 0; d < hd; d++) {
      const k0 = v128.load(kp);
      const k1 = v128.load(kp, 16);
      const q0 = v128.load(qp);
      a0 = f32x4.add(a0, f32x4.mul(q0, k0));
      b0 = f32x4.add(b0, f32x4.mul(q0, k1));
      const q1 = v128.load(qp + qb);
      a1 = f32x4.add(a1, f32x4.mul(q1, k0));
      b1 = f32x4.add(b1, f32x4.mul(q1, k1));
      const q2 = v128.load(qp + 2 * qb);
      a2 = f32x4.add(a2, f32x4.mul(q2, k0));
      b2 = f32x4.add(b2, f32x4.mul(q2, k1));
      const q3 = v128.load(qp + 3 * qb);
      a3 = f32x4.add(a3, f32x4.mul(q3, k0));
      b3 = f32x4.add(b3, f32x4.mul(q3, k1));
      kp += pb;
      qp += 16;
    }
    const o = <usize>jc << 2;
    v128.store(s + o, a0);
    v128.store(s + o, b0, 16);
    v128.store(s1 + o, a1);
    v128.store(s1 + o, b1, 16);
    v128.store(s2 + o, a2);
    v128.store(s2 + o, b2, 16);
    v128.store(s3 + o, a3);
    v128.store(s3 + o, b3, 16);
  }
  const n1 = startPos + r1 + 1;
  const n2 = startPos + r2 + 1;
  const inv0 = f32x4.splat(softmaxRow(s, ja, ne, j0First, nFirst));
  const inv1 = f32x4.splat(softmaxRow(s1, ja, ne, n1 > window ? n1 - window : 0, n1));
  const inv2 = f32x4.splat(softmaxRow(s2, ja, ne, n2 > window ? n2 - window : 0, n2));
  const inv3 = f32x4.splat(softmaxRow(s3, ja, ne, nLast > window ? nLast - window : 0, nLast));
  // weighted values over keys ja .. nLast (later scores are 0; value rows end at n)
  const o0 = out + (<usize>(r0 * qDim + h * hd) << 2);
  const o1 = out + (<usize>(r1 * qDim + h * hd) << 2);
  const o2 = out + (<usize>(r2 * qDim + h * hd) << 2);
  const o3 = out + (<usize>(r3 * qDim + h * hd) << 2);
  let dc = 0;
  for (; dc + 8 <= hdp; dc += 8) {
    let a0 = f32x4.splat(0);
    let b0 = f32x4.splat(0);
    let a1 = f32x4.splat(0);
    let b1 = f32x4.splat(0);
    let a2 = f32x4.splat(0);
    let b2 = f32x4.splat(0);
    let a3 = f32x4.splat(0);
    let b3 = f32x4.splat(0);
    let vp = vb + <usize>ja * vs + (<usize>dc << 2);
    for (let j = ja; j < nLast; j++) {
      const v0 = v128.load(vp);
      const v1 = v128.load(vp, 16);
      const jo = <usize>j << 2;
      const p0 = v128.load32_splat(s + jo);
      a0 = f32x4.add(a0, f32x4.mul(p0, v0));
      b0 = f32x4.add(b0, f32x4.mul(p0, v1));
      const p1 = v128.load32_splat(s1 + jo);
      a1 = f32x4.add(a1, f32x4.mul(p1, v0));
      b1 = f32x4.add(b1, f32x4.mul(p1, v1));
      const p2 = v128.load32_splat(s2 + jo);
      a2 = f32x4.add(a2, f32x4.mul(p2, v0));
      b2 = f32x4.add(b2, f32x4.mul(p2, v1));
      const p3 = v128.load32_splat(s3 + jo);
      a3 = f32x4.add(a3, f32x4.mul(p3, v0));
      b3 = f32x4.add(b3, f32x4.mul(p3, v1));
      vp += vs;
    }
    const db = <usize>dc << 2;
    const c = hd - dc;
    storeLanes(o3 + db, f32x4.mul(a3, inv3), c);
    storeLanes(o3 + db + 16, f32x4.mul(b3, inv3), c - 4);
    storeLanes(o2 + db, f32x4.mul(a2, inv2), c);
    storeLanes(o2 + db + 16, f32x4.mul(b2, inv2), c - 4);
    storeLanes(o1 + db, f32x4.mul(a1, inv1), c);
    storeLanes(o1 + db + 16, f32x4.mul(b1, inv1), c - 4);
    storeLanes(o0 + db, f32x4.mul(a0, inv0), c);
    storeLanes(o0 + db + 16, f32x4.mul(b0, inv0), c - 4);
  }
  if (dc < hdp) {
    let a0 = f32x4.splat(0);
    let a1 = f32x4.splat(0);
    let a2 = f32x4.splat(0);
    let a3 = f32x4.splat(0);
    let vp = vb + <usize>ja * vs + (<usize>dc << 2);
    for (let j = ja; j < nLast; j++) {
      const v0 = v128.load(vp);
      const jo = <usize>j << 2;
      a0 = f32x4.add(a0, f32x4.mul(v128.load32_splat(s + jo), v0));
      a1 = f32x4.add(a1, f32x4.mul(v128.load32_splat(s1 + jo), v0));
      a2 = f32x4.add(a2, f32x4.mul(v128.load32_splat(s2 + jo), v0));
      a3 = f32x4.add(a3, f32x4.mul(v128.load32_splat(s3 + jo), v0));
      vp += vs;
    }
    const db = <usize>dc << 2;
    const c = hd - dc;
    storeLanes(o3 + db, f32x4.mul(a3, inv3), c);
    storeLanes(o2 + db, f32x4.mul(a2, inv2), c);
    storeLanes(o1 + db, f32x4.mul(a1, inv1), c);
    storeLanes(o0 + db, f32x4.mul(a0, inv0), c);
  }
}

/** One query row tt of head h against key rows kb and value rows vb (strides ks, vs bytes, hdp wide). */
function single(
  q: usize,
  out: usize,
  qDim: i32,
  h: i32,
  hd: i32,
  hdp: i32,
  tt: i32,
  startPos: i32,
  window: i32,
  scale: f32,
  kb: usize,
  ks: usize,
  vb: usize,
  vs: usize,
  s: usize,
  qs: usize,
): void {
  const qrow = q + (<usize>(tt * qDim + h * hd) << 2);
  for (let d = 0; d < hd; d++) store<f32>(qs + (<usize>d << 2), load<f32>(qrow + (<usize>d << 2)) * scale);
  for (let d = hd; d < hdp; d++) store<f32>(qs + (<usize>d << 2), 0);
  const n = startPos + tt + 1;
  const j0 = n > window ? n - window : 0;
  const hb = <usize>hdp << 2;
  for (let j = j0; j < n; j++) {
    const kp = kb + <usize>j * ks;
    let a = f32x4.splat(0);
    for (let i: usize = 0; i < hb; i += 16) a = f32x4.add(a, f32x4.mul(v128.load(qs + i), v128.load(kp + i)));
    store<f32>(s + (<usize>j << 2), hsum(a));
  }
  const inv = f32x4.splat(softmaxRow(s, j0 & ~3, (n + 3) & ~3, j0, n));
  const orow = out + (<usize>(h * hd) << 2) + (<usize>(tt * qDim) << 2);
  let dc = 0;
  for (; dc + 16 <= hdp; dc += 16) {
    let a0 = f32x4.splat(0);
    let a1 = f32x4.splat(0);
    let a2 = f32x4.splat(0);
    let a3 = f32x4.splat(0);
    let vp = vb + <usize>j0 * vs + (<usize>dc << 2);
    for (let j = j0; j < n; j++) {
      const p = v128.load32_splat(s + (<usize>j << 2));
      a0 = f32x4.add(a0, f32x4.mul(p, v128.load(vp)));
      a1 = f32x4.add(a1, f32x4.mul(p, v128.load(vp, 16)));
      a2 = f32x4.add(a2, f32x4.mul(p, v128.load(vp, 32)));
      a3 = f32x4.add(a3, f32x4.mul(p, v128.load(vp, 48)));
      vp += vs;
    }
    const db = <usize>dc << 2;
    const c = hd - dc;
    storeLanes(orow + db, f32x4.mul(a0, inv), c);
    storeLanes(orow + db + 16, f32x4.mul(a1, inv), c - 4);
    storeLanes(orow + db + 32, f32x4.mul(a2, inv), c - 8);
    storeLanes(orow + db + 48, f32x4.mul(a3, inv), c - 12);
  }
  for (; dc < hdp; dc += 4) {
    let a0 = f32x4.splat(0);
    let vp = vb + <usize>j0 * vs + (<usize>dc << 2);
    for (let j = j0; j < n; j++) {
      a0 = f32x4.add(a0, f32x4.mul(v128.load32_splat(s + (<usize>j << 2)), v128.load(vp)));
      vp += vs;
    }
    storeLanes(orow + (<usize>dc << 2), f32x4.mul(a0, inv), hd - dc);
  }
}
