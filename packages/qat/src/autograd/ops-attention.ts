import { LowbitError } from "@lowbit/tensor";
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
 * q [B*T, nHeads*hd], k and v [B*T, nKvHeads*hd] -> [B*T, nHeads*hd]. Softmax probabilities are
 * kept for the backward pass (B * nHeads * T * T floats).
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
  const qv = q.value;
  const kv = k.value;
  const vv = v.value;
  const probs = new Float32Array(B * nHeads * T * T);
  const out = new Float32Array(rows * qw);
  const sc = new Float64Array(T);
  const acc = new Float64Array(hd);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < nHeads; h++) {
      const kh = Math.floor(h / group);
      const pBase = (b * nHeads + h) * T * T;
      for (let t = 0; t < T; t++) {
        const qo = (b * T + t) * qw + h * hd;
        let mx = Number.NEGATIVE_INFINITY;
        for (let u = 0; u <= t; u++) {
          const ko = (b * T + u) * kw + kh * hd;
          let s = 0;
          for (let d = 0; d < hd; d++) s += qv[qo + d]! * kv[ko + d]!;
          s *= scaleF;
          sc[u] = s;
          if (s > mx) mx = s;
        }
        let z = 0;
        for (let u = 0; u <= t; u++) {
          const e = Math.exp(sc[u]! - mx);
          sc[u] = e;
          z += e;
        }
        acc.fill(0);
        const pRow = pBase + t * T;
        for (let u = 0; u <= t; u++) {
          const p = sc[u]! / z;
          probs[pRow + u] = p;
          const vo = (b * T + u) * kw + kh * hd;
          for (let d = 0; d < hd; d++) acc[d]! += p * vv[vo + d]!;
        }
        for (let d = 0; d < hd; d++) out[qo + d] = acc[d]!;
      }
    }
  }
  return result(out, q.shape, [q, k, v], (g) => {
    const gq = q.requiresGrad ? q.gradBuffer() : null;
    const gk = k.requiresGrad ? k.gradBuffer() : null;
    const gv = v.requiresGrad ? v.gradBuffer() : null;
    const dp = new Float64Array(T);
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < nHeads; h++) {
        const kh = Math.floor(h / group);
        const pBase = (b * nHeads + h) * T * T;
        for (let t = 0; t < T; t++) {
          const qo = (b * T + t) * qw + h * hd;
          const pRow = pBase + t * T;
          // dP_u = dO_t . v_u ; dV_u += P_u dO_t
          let dot = 0;
          for (let u = 0; u <= t; u++) {
            const vo = (b * T + u) * kw + kh * hd;
            const p = probs[pRow + u]!;
            let s = 0;
            for (let d = 0; d < hd; d++) s += g[qo + d]! * vv[vo + d]!;
            dp[u] = s;
            dot += p * s;
            if (gv) for (let d = 0; d < hd; d++) gv[vo + d]! += p * g[qo + d]!;
          }
          // dS_u = P_u (dP_u - sum P dP); dQ_t += scale dS_u k_u; dK_u += scale dS_u q_t
          for (let u = 0; u <= t; u++) {
            const ds = probs[pRow + u]! * (dp[u]! - dot) * scaleF;
            if (ds === 0) continue;
            const ko = (b * T + u) * kw + kh * hd;
            if (gq) for (let d = 0; d < hd; d++) gq[qo + d]! += ds * kv[ko + d]!;
            if (gk) for (let d = 0; d < hd; d++) gk[ko + d]! += ds * qv[qo + d]!;
          }
        }
      }
    }
  });
}
