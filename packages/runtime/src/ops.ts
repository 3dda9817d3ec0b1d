import type { RopeStyle } from "./config";
import { put, scratchRegions, useWasm, viewF32 } from "./kernels/modules";
import { runDecoderSplit, splitParts } from "./kernels/split";

/**
 * RMSNorm of `rows` rows of width `dim`: out = x / sqrt(mean(x^2) + eps) * weight.
 * `out` may alias `x`. WebAssembly SIMD (sum of squares in f64), or rmsNormRef under the "ref"
 * kernel backend.
 */
export function rmsNorm(
  x: Float32Array,
  weight: Float32Array,
  rows: number,
  dim: number,
  eps: number,
  out: Float32Array = new Float32Array(rows * dim),
): Float32Array {
  if (!useWasm() || rows * dim === 0) return rmsNormRef(x, weight, rows, dim, eps, out);
  const n = rows * dim;
  const [px, pw] = scratchRegions([n * 4, dim * 4]) as [number, number];
  put(px, x.subarray(0, n));
  put(pw, weight.subarray(0, dim));
  // rows split across kernel threads (each row's arithmetic is the same in any part)
  const rb = dim * 4;
  runDecoderSplit("rmsnorm_f32", rows, splitParts(n, rows), 1, (r0, r1) => [px + r0 * rb, pw, px + r0 * rb, r1 - r0, dim, eps]);
  out.set(viewF32(px, n));
  return out;
}

/** Reference twin of rmsNorm (plain loops, f64 arithmetic). */
export function rmsNormRef(
  x: Float32Array,
  weight: Float32Array,
  rows: number,
  dim: number,
  eps: number,
  out: Float32Array = new Float32Array(rows * dim),
): Float32Array {
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let ss = 0;
    for (let i = 0; i < dim; i++) {
      const v = x[o + i]!;
      ss += v * v;
    }
    const inv = 1 / Math.sqrt(ss / dim + eps);
    for (let i = 0; i < dim; i++) out[o + i] = x[o + i]! * inv * weight[i]!;
  }
  return out;
}

/** out[i] = silu(g[i]) * u[i] = g[i] / (1 + e^-g[i]) * u[i] (the SwiGLU gate); out may alias g or u. */
export function siluMul(g: Float32Array, u: Float32Array, out: Float32Array = new Float32Array(g.length)): Float32Array {
  const n = g.length;
  if (!useWasm() || n === 0) return siluMulRef(g, u, out);
  const [pg, pu] = scratchRegions([n * 4, n * 4]) as [number, number];
  put(pg, g);
  put(pu, u.subarray(0, n));
  runDecoderSplit("silu_mul_f32", n, splitParts(4 * n, Math.ceil(n / 4)), 4, (i0, i1) => [pg + 4 * i0, pu + 4 * i0, pg + 4 * i0, i1 - i0]);
  out.set(viewF32(pg, n));
  return out;
}

/** Reference twin of siluMul (f64 arithmetic, Math.exp). */
export function siluMulRef(g: Float32Array, u: Float32Array, out: Float32Array = new Float32Array(g.length)): Float32Array {
  for (let j = 0; j < g.length; j++) {
    const gv = g[j]!;
    out[j] = (gv / (1 + Math.exp(-gv))) * u[j]!;
  }
  return out;
}

/** out[i] = a[i] + b[i] (the residual connection); out may alias a or b. */
export function addVectors(a: Float32Array, b: Float32Array, out: Float32Array = new Float32Array(a.length)): Float32Array {
  const n = a.length;
  if (!useWasm() || n === 0) return addVectorsRef(a, b, out);
  const [pa, pb] = scratchRegions([n * 4, n * 4]) as [number, number];
  put(pa, a);
  put(pb, b.subarray(0, n));
  // a plain memory pass: split only when large (at 128 x 768 two threads gain nothing)
  runDecoderSplit("add_f32", n, splitParts(n, Math.ceil(n / 4), 1 << 18), 4, (i0, i1) => [pa + 4 * i0, pb + 4 * i0, pa + 4 * i0, i1 - i0]);
  out.set(viewF32(pa, n));
  return out;
}

/** Reference twin of addVectors. */
export function addVectorsRef(a: Float32Array, b: Float32Array, out: Float32Array = new Float32Array(a.length)): Float32Array {
  for (let j = 0; j < a.length; j++) out[j] = a[j]! + b[j]!;
  return out;
}

/** Numerically stable in-place softmax of x[offset, offset + n). */
export function softmaxInPlace(x: Float32Array | Float64Array, offset: number, n: number): void {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) if (x[offset + i]! > max) max = x[offset + i]!;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const e = Math.exp(x[offset + i]! - max);
    x[offset + i] = e;
    sum += e;
  }
  const inv = 1 / sum;
  for (let i = 0; i < n; i++) x[offset + i] = x[offset + i]! * inv;
}

/** log(sum(exp(x))) over x[offset, offset + n), in float64. */
export function logSumExp(x: Float32Array, offset: number, n: number): number {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) if (x[offset + i]! > max) max = x[offset + i]!;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(x[offset + i]! - max);
  return max + Math.log(sum);
}

/** Index of the largest value of x[offset, offset + n) (first one on ties). */
export function argmax(x: Float32Array, offset = 0, n = x.length - offset): number {
  let best = 0;
  let bv = x[offset]!;
  for (let i = 1; i < n; i++) {
    const v = x[offset + i]!;
    if (v > bv) {
      bv = v;
      best = i;
    }
  }
  return best;
}

/**
 * Rotary position embedding tables: cos/sin of pos * theta^(-2i/headDim) for i < headDim/2, grown
 * on demand. Shared by both pairing conventions; only the pairing of dimensions differs.
 * `apply` is the reference (one head row at a time); `rotateRows` runs many rows through the
 * WebAssembly kernel, which reads the tables expanded to the head width (`expanded`).
 */
export class RopeTable {
  private cos = new Float32Array(0);
  private sin = new Float32Array(0);
  private cf = new Float32Array(0);
  private ss = new Float32Array(0);
  private positions = 0;
  private expandedPositions = 0;
  private readonly half: number;
  private readonly invFreq: Float64Array;

  constructor(
    readonly headDim: number,
    readonly theta: number,
    readonly style: RopeStyle,
  ) {
    this.half = headDim / 2;
    this.invFreq = new Float64Array(this.half);
    for (let i = 0; i < this.half; i++) this.invFreq[i] = 1 / theta ** ((2 * i) / headDim);
  }

  private ensure(positions: number): void {
    if (positions <= this.positions) return;
    const n = Math.max(positions, this.positions * 2, 64);
    const cos = new Float32Array(n * this.half);
    const sin = new Float32Array(n * this.half);
    for (let p = 0; p < n; p++) {
      for (let i = 0; i < this.half; i++) {
        const a = p * this.invFreq[i]!;
        cos[p * this.half + i] = Math.cos(a);
        sin[p * this.half + i] = Math.sin(a);
      }
    }
    this.cos = cos;
    this.sin = sin;
    this.positions = n;
  }

  /**
   * The tables of positions [pos0, pos0 + count) expanded to the head width, as the kernel reads
   * them: cf[p, d] = cos of d's pair, ss[p, d] = -sin for the first member of the pair and +sin
   * for the second (x'[d] = x[d] cf[p, d] + x[partner(d)] ss[p, d]). Same f32 values as `apply`.
   */
  expanded(pos0: number, count: number): { cf: Float32Array; ss: Float32Array } {
    const need = pos0 + count;
    if (need > this.expandedPositions) {
      this.ensure(need);
      const n = this.positions;
      const hd = this.headDim;
      const half = this.half;
      const cf = new Float32Array(n * hd);
      const ss = new Float32Array(n * hd);
      for (let p = 0; p < n; p++) {
        for (let i = 0; i < half; i++) {
          const c = this.cos[p * half + i]!;
          const sn = this.sin[p * half + i]!;
          const [a, b] = this.style === "interleaved" ? [2 * i, 2 * i + 1] : [i, i + half];
          cf[p * hd + a] = c;
          cf[p * hd + b] = c;
          ss[p * hd + a] = -sn;
          ss[p * hd + b] = sn;
        }
      }
      this.cf = cf;
      this.ss = ss;
      this.expandedPositions = n;
    }
    const hd = this.headDim;
    return { cf: this.cf.subarray(pos0 * hd, need * hd), ss: this.ss.subarray(pos0 * hd, need * hd) };
  }

  /**
   * Rotates `nHeads` heads stored contiguously at x[offset ...] for absolute position `pos`.
   */
  apply(x: Float32Array, offset: number, nHeads: number, pos: number): void {
    this.ensure(pos + 1);
    const half = this.half;
    const hd = this.headDim;
    const cos = this.cos;
    const sin = this.sin;
    const base = pos * half;
    if (this.style === "interleaved") {
      for (let h = 0; h < nHeads; h++) {
        const o = offset + h * hd;
        for (let i = 0; i < half; i++) {
          const c = cos[base + i]!;
          const s = sin[base + i]!;
          const a = x[o + 2 * i]!;
          const b = x[o + 2 * i + 1]!;
          x[o + 2 * i] = a * c - b * s;
          x[o + 2 * i + 1] = a * s + b * c;
        }
      }
    } else {
      for (let h = 0; h < nHeads; h++) {
        const o = offset + h * hd;
        for (let i = 0; i < half; i++) {
          const c = cos[base + i]!;
          const s = sin[base + i]!;
          const a = x[o + i]!;
          const b = x[o + i + half]!;
          x[o + i] = a * c - b * s;
          x[o + i + half] = a * s + b * c;
        }
      }
    }
  }

  /**
   * Rotates `rows` rows of x in place (row r at r * stride, `nHeads` heads at its start): row r is
   * at position pos0 + r, or r % period when `period` is given (windows restarting at 0).
   */
  rotateRows(x: Float32Array, rows: number, stride: number, nHeads: number, pos0: number, period?: number): void {
    if (!useWasm() || rows === 0) {
      for (let r = 0; r < rows; r++) this.apply(x, r * stride, nHeads, period ? r % period : pos0 + r);
      return;
    }
    const n = rows * stride;
    const count = period ?? rows;
    const { cf, ss } = this.expanded(period ? 0 : pos0, count);
    const [px, pc, ps] = scratchRegions([n * 4, cf.length * 4, ss.length * 4]) as [number, number, number];
    put(px, x.subarray(0, n));
    put(pc, cf);
    put(ps, ss);
    this.rotateInKernel(px, rows, stride, nHeads, pc, ps, count);
    x.set(viewF32(px, n));
  }

  /**
   * The kernel call on rows already in kernel memory at px, with the expanded() tables copied to
   * pc/ps; row r uses table row r % period.
   * @internal
   */
  rotateInKernel(px: number, rows: number, stride: number, nHeads: number, pc: number, ps: number, period: number): void {
    const style = this.style === "interleaved" ? 0 : 1;
    const hd = this.headDim;
    runDecoderSplit("rope_f32", rows, splitParts(2 * rows * nHeads * hd, rows), 1, (r0, r1) => [px, r0, r1, stride, nHeads, hd, pc, ps, period, style]);
  }
}
