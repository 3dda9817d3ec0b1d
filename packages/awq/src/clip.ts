import { LowbitError } from "@lowbit/tensor";
import { awqPseudoQuantize } from "./awq-quantizer";

export interface ClipOptions {
  bits: number;
  groupSize: number;
  zeroPoint?: boolean;
  /** Grid points over the shrink factor. Default 20. */
  nGrid?: number;
  /** Largest shrink: the clip goes down to (1 - maxShrink) of the max. Default 0.5. */
  maxShrink?: number;
  /** Tokens sampled (every tokens/n-th, from the first). Default 512. */
  nSampleTokens?: number;
}

/**
 * llm-awq `auto_clip_layer`: for each output row and group, the clipping threshold t = max|w| * (1 - i/nGrid),
 * i < maxShrink * nGrid, whose clamped-then-quantized group gives the least mean squared error of the
 * group's partial outputs sum_c x[t, c] w[r, c] over sampled tokens. Returns t [rows, nGroups].
 */
export function searchClip(
  w: Float32Array,
  rows: number,
  cols: number,
  x: Float32Array,
  options: ClipOptions,
): Float32Array {
  const g = options.groupSize;
  if (!(Number.isInteger(g) && g > 0 && cols % g === 0)) {
    throw new LowbitError("E_SHAPE_MISMATCH", `AWQ clip: group size ${g} must divide ${cols} columns`);
  }
  const nGrid = options.nGrid ?? 20;
  const maxShrink = options.maxShrink ?? 0.5;
  const nSample = options.nSampleTokens ?? 512;
  const ng = cols / g;
  const tokensAll = x.length / cols;
  // input_feat[:, 0::tokens // n_sample_token]
  const step = Math.max(1, Math.floor(tokensAll / nSample));
  const idx: number[] = [];
  for (let t = 0; t < tokensAll; t += step) idx.push(t);
  const T = idx.length;
  const xs = new Float32Array(T * cols);
  idx.forEach((t, j) => {
    xs.set(x.subarray(t * cols, (t + 1) * cols), j * cols);
  });

  const best = new Float32Array(rows * ng);
  const orgOut = new Float64Array(T);
  const wc = new Float32Array(g);
  const qd = new Float32Array(g);
  for (let r = 0; r < rows; r++) {
    for (let gi = 0; gi < ng; gi++) {
      const c0 = gi * g;
      const wo = r * cols + c0;
      let amax = 0;
      for (let c = 0; c < g; c++) amax = Math.max(amax, Math.abs(w[wo + c]!));
      for (let t = 0; t < T; t++) {
        let s = 0;
        for (let c = 0; c < g; c++) s += xs[t * cols + c0 + c]! * w[wo + c]!;
        orgOut[t] = s;
      }
      let minErr = 1e9;
      let bestMax = amax;
      for (let i = 0; i < Math.floor(maxShrink * nGrid); i++) {
        const mv = Math.fround(amax * (1 - i / nGrid));
        for (let c = 0; c < g; c++) wc[c] = Math.min(mv, Math.max(-mv, w[wo + c]!));
        awqPseudoQuantize(wc, 1, g, { bits: options.bits, groupSize: g, zeroPoint: options.zeroPoint ?? true }, qd);
        let err = 0;
        for (let t = 0; t < T; t++) {
          let s = 0;
          for (let c = 0; c < g; c++) s += xs[t * cols + c0 + c]! * qd[c]!;
          const d = s - orgOut[t]!;
          err += d * d;
        }
        err /= T;
        if (err < minErr) {
          minErr = err;
          bestMax = mv;
        }
      }
      best[r * ng + gi] = bestMax;
    }
  }
  return best;
}

/** Clamps each group of W [rows, cols] to [-t, t] with t from searchClip (in place). */
export function applyClip(w: Float32Array, rows: number, cols: number, groupSize: number, maxVal: Float32Array): Float32Array {
  const ng = cols / groupSize;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const t = maxVal[r * ng + Math.floor(c / groupSize)]!;
      const i = r * cols + c;
      w[i] = Math.min(t, Math.max(-t, w[i]!));
    }
  }
  return w;
}
