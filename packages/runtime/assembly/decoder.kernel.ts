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
  return max(max(f32x4.extract_lane(a, 0), f32x4.extract_lane(a, 1)), max(f32x4.extract_lane(a, 2), f32x4.extract_lane(a, 3)));
}

/**
 * e^x per lane (Cephes expf: x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial, about 1 ulp).
 * Lanes below -87.3 (including -inf) give exactly 0; lanes are clamped at 88 above.
 */
// @ts-ignore: decorator
@inline
function exp4(x: v128): v128 {
  const lo = f32x4.splat(-87.33654);
  const under = f32x4.lt(x, lo);
  const xc = f32x4.min(f32x4.max(x, lo), f32x4.splat(88.0));
  const fx = f32x4.nearest(f32x4.mul(xc, f32x4.splat(1.44269504088896341)));
  let r = f32x4.sub(xc, f32x4.mul(fx, f32x4.splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(fx, f32x4.splat(-2.12194440e-4)));
  let y = f32x4.splat(1.9875691500e-4);
  y = f32x4.add(f32x4.mul(y, r), f32x4.splat(1.3981999507e-3));
  y = f32x4.add(f32x4.mul(y, r), f32x4.splat(8.3334519073e-3));
  y = f32x4.add(f32x4.mul(y, r), f32x4.splat(4.1665795894e-2));
  y = f32x4.add(f32x4.mul(y, r), f32x4.splat(1.6666665459e-1));
  y = f32x4.add(f32x4.mul(y, r), f32x4.splat(5.0000001201e-1));
  y = f32x4.add(f32x4.add(f32x4.mul(y, f32x4.mul(r, r)), r), f32x4.splat(1.0));
  const pow2n = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(fx), i32x4.splat(127)), 23);
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
 * Rotary embedding in place on `rows` rows of x (row stride `stride` floats) holding `heads` heads
 * of width hd at the row start. Row r uses table row p = r % period of `cf`/`ss` ([*, hd] each):
 * cf[p, d] = cos of d's pair frequency, ss[p, d] = -sin for the first element of a pair and +sin
 * for the second, so x'[d] = x[d] * cf[p, d] + x[partner(d)] * ss[p, d]. style 0: interleaved
 * pairs (2i, 2i+1); style 1: half-split pairs (i, i + hd/2).
 */
export function rope_f32(x: usize, rows: i32, stride: i32, heads: i32, hd: i32, cf: usize, ss: usize, period: i32, style: i32): void {
  const half = hd >> 1;
  for (let r = 0; r < rows; r++) {
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
function padded(n: i32): i32 {
  return (n + 7) & ~7;
}

/** Bytes of work space attention_f32 needs for n key positions and head width hd. */
export function attention_work_bytes(n: i32, hd: i32): i32 {
  const np = padded(n);
  return (2 * hd * np + np) * 4 + hd * 16 + 64;
}

/**
 * Causal grouped-query attention of t query rows at absolute positions startPos .. startPos+t-1.
 * q, out: [t, nHeads*hd]; k, v: [startPos + t, nKv*hd] (position 0 first). Query head h reads
 * key/value head h / (nHeads / nKv). A query at position p attends to positions
 * max(0, p + 1 - window) .. p. Scores are scaled by `scale`; softmax in f32.
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
): void {
  const n = startPos + t;
  const np = padded(n);
  const qDim = nHeads * hd;
  const kvDim = nKv * hd;
  const group = nHeads / nKv;
  const pb = <usize>np << 2; // bytes per panel row
  const kt = (work + 15) & ~(<usize>15);
  const vt = kt + <usize>hd * pb;
  const s = vt + <usize>hd * pb;
  const qs = s + pb;
  const ninf = f32x4.splat(<f32>-Infinity);
  for (let kh = 0; kh < nKv; kh++) {
    // transpose this head's keys and values into [hd, np] panels, zero padded
    for (let j = 0; j < n; j++) {
      const src = <usize>(j * kvDim + kh * hd) << 2;
      const dj = <usize>j << 2;
      for (let d = 0; d < hd; d++) {
        const db = <usize>d * pb + dj;
        store<f32>(kt + db, load<f32>(k + src + (<usize>d << 2)));
        store<f32>(vt + db, load<f32>(v + src + (<usize>d << 2)));
      }
    }
    for (let d = 0; d < hd; d++) {
      for (let j = n; j < np; j++) {
        const db = <usize>d * pb + (<usize>j << 2);
        store<f32>(kt + db, 0);
        store<f32>(vt + db, 0);
      }
    }
    for (let hh = 0; hh < group; hh++) {
      const h = kh * group + hh;
      for (let tt = 0; tt < t; tt++) {
        const qrow = q + (<usize>(tt * qDim + h * hd) << 2);
        for (let d = 0; d < hd; d++) v128.store(qs + (<usize>d << 4), f32x4.splat(load<f32>(qrow + (<usize>d << 2)) * scale));
        const nn = startPos + tt + 1;
        const j0 = nn > window ? nn - window : 0;
        const ja = j0 & ~3;
        const ne = (nn + 3) & ~3;
        // scores of keys ja .. ne (two vectors of keys per pass when possible)
        let jc = ja;
        for (; jc + 8 <= ne; jc += 8) {
          let a0 = f32x4.splat(0);
          let a1 = f32x4.splat(0);
          let kp = kt + (<usize>jc << 2);
          for (let d = 0; d < hd; d++) {
            const qv = v128.load(qs + (<usize>d << 4));
            a0 = f32x4.add(a0, f32x4.mul(qv, v128.load(kp)));
            a1 = f32x4.add(a1, f32x4.mul(qv, v128.load(kp, 16)));
            kp += pb;
          }
          v128.store(s + (<usize>jc << 2), a0);
          v128.store(s + (<usize>jc << 2), a1, 16);
        }
        if (jc < ne) {
          let a0 = f32x4.splat(0);
          let kp = kt + (<usize>jc << 2);
          for (let d = 0; d < hd; d++) {
            a0 = f32x4.add(a0, f32x4.mul(v128.load(qs + (<usize>d << 4)), v128.load(kp)));
            kp += pb;
          }
          v128.store(s + (<usize>jc << 2), a0);
        }
        for (let j = ja; j < j0; j++) store<f32>(s + (<usize>j << 2), <f32>-Infinity);
        for (let j = nn; j < ne; j++) store<f32>(s + (<usize>j << 2), <f32>-Infinity);
        // softmax over ja .. ne (masked lanes are -inf and become exactly 0)
        let mv = ninf;
        for (let j = ja; j < ne; j += 4) mv = f32x4.max(mv, v128.load(s + (<usize>j << 2)));
        const mx = f32x4.splat(hmax(mv));
        let sv = f32x4.splat(0);
        for (let j = ja; j < ne; j += 4) {
          const e = exp4(f32x4.sub(v128.load(s + (<usize>j << 2)), mx));
          v128.store(s + (<usize>j << 2), e);
          sv = f32x4.add(sv, e);
        }
        const inv: f32 = <f32>1 / hsum(sv);
        // weighted values: out[d] = sum_j p_j v[j, d], two head dimensions per pass
        const orow = out + (<usize>(tt * qDim + h * hd) << 2);
        const sb = s + (<usize>ja << 2);
        const len = <usize>(ne - ja) << 2;
        let d = 0;
        for (; d + 2 <= hd; d += 2) {
          const v0 = vt + <usize>d * pb + (<usize>ja << 2);
          const v1 = v0 + pb;
          let a0 = f32x4.splat(0);
          let a1 = f32x4.splat(0);
          for (let i: usize = 0; i < len; i += 16) {
            const p = v128.load(sb + i);
            a0 = f32x4.add(a0, f32x4.mul(p, v128.load(v0 + i)));
            a1 = f32x4.add(a1, f32x4.mul(p, v128.load(v1 + i)));
          }
          store<f32>(orow + (<usize>d << 2), hsum(a0) * inv);
          store<f32>(orow + (<usize>d << 2), hsum(a1) * inv, 4);
        }
        if (d < hd) {
          const v0 = vt + <usize>d * pb + (<usize>ja << 2);
          let a0 = f32x4.splat(0);
          for (let i: usize = 0; i < len; i += 16) a0 = f32x4.add(a0, f32x4.mul(v128.load(sb + i), v128.load(v0 + i)));
          store<f32>(orow + (<usize>d << 2), hsum(a0) * inv);
        }
      }
    }
  }
}
