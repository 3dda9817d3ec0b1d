import { LowbitError } from "@lowbit/tensor";
import { gemmAB, gemmABt, gemmAtB } from "./gemm";
import { result, type Variable } from "./variable";

/** Layout of a batch of windows: rows = batch * seqLen tokens, window-major. */
export interface RopeOptions {
  /** Tokens per window; a row's position is posOffset + row % seqLen. */
  seqLen: number;
  /** Features per head (even). */
  headDim: number;
  /** RoPE base (theta). Default 10000. */
  base?: number;
  /** Position of the first token of each window. Default 0. */
  posOffset?: number;
  /**
   * "interleaved" pairs (x[2i], x[2i+1]) as llama2.c and GGUF (default); "half" pairs
   * (x[i], x[i + headDim/2]) as Hugging Face's rotate_half.
   */
  style?: "interleaved" | "half";
}

/**
 * Rotary position embedding, by default with interleaved pairs as llama2.c: in each head, the pair
 * (x[2i], x[2i+1]) at position p is rotated by p * base^(-2i/headDim) (with style "half", the
 * pair (x[i], x[i + headDim/2])). Backward rotates the gradient by the opposite angle.
 */
export function rope(x: Variable, options: RopeOptions): Variable {
  const { seqLen, headDim } = options;
  const base = options.base ?? 10000;
  const posOffset = options.posOffset ?? 0;
  const width = x.cols;
  if (!(headDim > 0 && headDim % 2 === 0 && width % headDim === 0)) {
    throw new LowbitError("E_SHAPE_MISMATCH", `rope: head dim ${headDim} must be even and divide the ${width} features`);
  }
  const rows = x.rows;
  if (!(seqLen > 0 && rows % seqLen === 0)) {
    throw new LowbitError("E_SHAPE_MISMATCH", `rope: ${rows} rows are not whole windows of ${seqLen} tokens`);
  }
  const half = headDim / 2;
  const cos = new Float64Array(seqLen * half);
  const sin = new Float64Array(seqLen * half);
  for (let t = 0; t < seqLen; t++) {
    const pos = posOffset + t;
    for (let i = 0; i < half; i++) {
      const freq = 1 / base ** ((2 * i) / headDim);
      const a = pos * freq;
      cos[t * half + i] = Math.cos(a);
      sin[t * half + i] = Math.sin(a);
    }
  }
  const xv = x.value;
  const out = new Float32Array(xv.length);
  const interleaved = (options.style ?? "interleaved") === "interleaved";
  rotate(xv, out, rows, width, headDim, seqLen, cos, sin, 1, false, interleaved);
  return result(out, x.shape, [x], (g) => {
    rotate(g, x.gradBuffer(), rows, width, headDim, seqLen, cos, sin, -1, true, interleaved);
  });
}

function rotate(
  src: Float32Array,
  dst: Float32Array,
  rows: number,
  width: number,
  headDim: number,
  seqLen: number,
  cos: Float64Array,
  sin: Float64Array,
  sign: number,
  accumulate: boolean,
  interleaved: boolean,
): void {
  const half = headDim / 2;
  for (let r = 0; r < rows; r++) {
    const t = r % seqLen;
    const o = r * width;
    for (let h = 0; h < width; h += headDim) {
      for (let i = 0; i < half; i++) {
        // the two elements of pair i in this head
        const a = o + h + (interleaved ? 2 * i : i);
        const b = a + (interleaved ? 1 : half);
        const cs = cos[t * half + i]!;
        const sn = sign * sin[t * half + i]!;
        const x0 = src[a]!;
        const x1 = src[b]!;
        const y0 = x0 * cs - x1 * sn;
        const y1 = x0 * sn + x1 * cs;
        if (accumulate) {
          dst[a]! += y0;
          dst[b]! += y1;
        } else {
          dst[a] = y0;
          dst[b] = y1;
        }
      }
    }
  }
}

export interface AttentionOptions {
  /** Tokens per window; rows are batch * seqLen, window-major. */
  seqLen: number;
  nHeads: number;
  /** Key/value heads; query head h reads kv head floor(h / (nHeads / nKvHeads)). */
  nKvHeads: number;
  headDim: number;
}

/**
 * Causal scaled-dot-product attention with grouped-query heads over a batch of windows:
 * q [B*T, nHeads*hd], k and v [B*T, nKvHeads*hd] -> [B*T, nHeads*hd]. Per window and head the
 * products run through the f32 GEMM (S = Q K^T, O = P V; backward dP = dO V^T, dQ = dS K,
 * dK = dS^T Q, dV = P^T dO with dS = P (dP - rowsum(P dP))); softmax probabilities are kept for the
 * backward pass (B * nHeads * T * T floats).
 */
export function causalAttention(q: Variable, k: Variable, v: Variable, options: AttentionOptions): Variable {
  const { seqLen: T, nHeads, nKvHeads, headDim: hd } = options;
  if (!(nKvHeads > 0 && nHeads % nKvHeads === 0)) {
    throw new LowbitError("E_SHAPE_MISMATCH", `causalAttention: ${nHeads} query heads are not a multiple of ${nKvHeads} kv heads`);
  }
  const qw = nHeads * hd;
  const kw = nKvHeads * hd;
  if (q.cols !== qw || k.cols !== kw || v.cols !== kw) {
    throw new LowbitError(
      "E_SHAPE_MISMATCH",
      `causalAttention: expected q/k/v widths ${qw}/${kw}/${kw}, got ${q.cols}/${k.cols}/${v.cols}`,
    );
  }
  const rows = q.rows;
  if (!(T > 0 && rows % T === 0 && k.rows === rows && v.rows === rows)) {
    throw new LowbitError(
      "E_SHAPE_MISMATCH",
      `causalAttention: q/k/v rows ${rows}/${k.rows}/${v.rows} must be equal whole windows of ${T} tokens`,
    );
  }
  const B = rows / T;
  const group = nHeads / nKvHeads;
  const scaleF = 1 / Math.sqrt(hd);
  const TT = T * T;
  const probs = new Float32Array(B * nHeads * TT);
  const out = new Float32Array(rows * qw);
  const qh = new Float32Array(T * hd);
  const kh = new Float32Array(T * hd);
  const vh = new Float32Array(T * hd);
  for (let b = 0; b < B; b++) {
    for (let g = 0; g < nKvHeads; g++) {
      gather(k.value, kh, b * T, T, kw, g * hd, hd);
      gather(v.value, vh, b * T, T, kw, g * hd, hd);
      for (let h = g * group; h < (g + 1) * group; h++) {
        gather(q.value, qh, b * T, T, qw, h * hd, hd);
        const p = probs.subarray((b * nHeads + h) * TT, (b * nHeads + h + 1) * TT);
        gemmABt(qh, kh, T, T, hd, p);
        softmaxCausalRows(p, T, scaleF);
        scatter(gemmAB(p, vh, T, hd, T), out, b * T, T, qw, h * hd, hd, false);
      }
    }
  }
  return result(out, q.shape, [q, k, v], (grad) => {
    const gq = q.requiresGrad ? q.gradBuffer() : null;
    const gk = k.requiresGrad ? k.gradBuffer() : null;
    const gv = v.requiresGrad ? v.gradBuffer() : null;
    const dO = new Float32Array(T * hd);
    for (let b = 0; b < B; b++) {
      for (let g = 0; g < nKvHeads; g++) {
        gather(k.value, kh, b * T, T, kw, g * hd, hd);
        gather(v.value, vh, b * T, T, kw, g * hd, hd);
        for (let h = g * group; h < (g + 1) * group; h++) {
          const p = probs.subarray((b * nHeads + h) * TT, (b * nHeads + h + 1) * TT);
          gather(grad, dO, b * T, T, qw, h * hd, hd);
          if (gv) scatter(gemmAtB(p, dO, T, T, hd), gv, b * T, T, kw, g * hd, hd, true);
          if (!gq && !gk) continue;
          // dS = P (dP - rowsum(P dP)) * scale, dP = dO V^T (only u <= t matters: P is 0 above)
          const ds = gemmABt(dO, vh, T, T, hd);
          for (let t = 0; t < T; t++) {
            const o = t * T;
            let dot = 0;
            for (let u = 0; u <= t; u++) dot += p[o + u]! * ds[o + u]!;
            for (let u = 0; u <= t; u++) ds[o + u] = p[o + u]! * (ds[o + u]! - dot) * scaleF;
            for (let u = t + 1; u < T; u++) ds[o + u] = 0;
          }
          if (gq) scatter(gemmAB(ds, kh, T, hd, T), gq, b * T, T, qw, h * hd, hd, true);
          if (gk) {
            gather(q.value, qh, b * T, T, qw, h * hd, hd);
            scatter(gemmAtB(ds, qh, T, T, hd), gk, b * T, T, kw, g * hd, hd, true);
          }
        }
      }
    }
  });
}

/** In place: row t of s [T, T] becomes softmax(scale * s[t, 0..t]) and zeros after t. */
function softmaxCausalRows(s: Float32Array, T: number, scale: number): void {
  for (let t = 0; t < T; t++) {
    const o = t * T;
    let mx = Number.NEGATIVE_INFINITY;
    for (let u = 0; u <= t; u++) {
      const x = s[o + u]! * scale;
      if (x > mx) mx = x;
    }
    let z = 0;
    for (let u = 0; u <= t; u++) {
      const e = Math.exp(s[o + u]! * scale - mx);
      s[o + u] = e;
      z += e;
    }
    const inv = 1 / z;
    for (let u = 0; u <= t; u++) s[o + u] = s[o + u]! * inv;
    for (let u = t + 1; u < T; u++) s[o + u] = 0;
  }
}

/** dst [T, w] <- columns [c0, c0 + w) of rows r0.. r0+T of src (row width `width`). */
function gather(src: Float32Array, dst: Float32Array, r0: number, T: number, width: number, c0: number, w: number): void {
  for (let t = 0; t < T; t++) {
    const o = (r0 + t) * width + c0;
    for (let d = 0; d < w; d++) dst[t * w + d] = src[o + d]!;
  }
}

/** The reverse of gather, writing or adding into dst. */
function scatter(
  src: Float32Array,
  dst: Float32Array,
  r0: number,
  T: number,
  width: number,
  c0: number,
  w: number,
  accumulate: boolean,
): void {
  for (let t = 0; t < T; t++) {
    const o = (r0 + t) * width + c0;
    if (accumulate) for (let d = 0; d < w; d++) dst[o + d]! += src[t * w + d]!;
    else for (let d = 0; d < w; d++) dst[o + d] = src[t * w + d]!;
  }
}
