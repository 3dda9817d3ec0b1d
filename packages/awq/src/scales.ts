import { LowbitError } from "@lowbit/tensor";

/** Per input channel mean |x| of activations x [tokens, cols] (llm-awq `get_act_scale`), f32. */
export function activationMean(x: Float32Array, cols: number): Float32Array {
  if (x.length % cols !== 0) {
    throw new LowbitError("E_SHAPE_MISMATCH", `AWQ: activations of ${x.length} values are not rows of ${cols}`);
  }
  const tokens = x.length / cols;
  const acc = new Float64Array(cols);
  for (let t = 0; t < tokens; t++) {
    const o = t * cols;
    for (let c = 0; c < cols; c++) acc[c]! += Math.abs(x[o + c]!);
  }
  const out = new Float32Array(cols);
  for (let c = 0; c < cols; c++) out[c] = acc[c]! / tokens;
  return out;
}

/**
 * AutoAWQ's w_mean for duo scaling: the weights of all scaled linears stacked [sum rows, cols],
 * each group's |w| divided by its max |w| (+1e-6), averaged over rows per input channel.
 */
export function weightMean(weights: readonly Float32Array[], cols: number, groupSize: number): Float32Array {
  const acc = new Float64Array(cols);
  let rows = 0;
  for (const w of weights) {
    const r = w.length / cols;
    rows += r;
    for (let i = 0; i < r; i++) {
      for (let g0 = 0; g0 < cols; g0 += groupSize) {
        const o = i * cols + g0;
        let m = 0;
        for (let c = 0; c < groupSize; c++) m = Math.max(m, Math.abs(w[o + c]!));
        const inv = 1 / (m + 1e-6);
        for (let c = 0; c < groupSize; c++) acc[g0 + c]! += Math.abs(w[o + c]!) * inv;
      }
    }
  }
  const out = new Float32Array(cols);
  for (let c = 0; c < cols; c++) out[c] = acc[c]! / rows;
  return out;
}

/**
 * The candidate scales of grid ratio r: s = max(xMean^r, 1e-4) (duo: max(xMean^r / (wMean^(1-r) + 1e-4), 1e-4)),
 * then s /= sqrt(max(s) * min(s)); non-finite entries become 1 (AutoAWQ). f32 like the reference.
 */
export function candidateScales(xMean: Float32Array, ratio: number, wMean?: Float32Array): Float32Array {
  const n = xMean.length;
  const s = new Float32Array(n);
  for (let c = 0; c < n; c++) {
    let v = Math.fround(xMean[c]! ** ratio);
    if (wMean) v = Math.fround(v / Math.fround(Math.fround(wMean[c]! ** (1 - ratio)) + 1e-4));
    s[c] = Math.max(v, 1e-4);
  }
  let max = Number.NEGATIVE_INFINITY;
  let min = Number.POSITIVE_INFINITY;
  for (let c = 0; c < n; c++) {
    max = Math.max(max, s[c]!);
    min = Math.min(min, s[c]!);
  }
  const norm = Math.fround(Math.sqrt(Math.fround(max * min)));
  for (let c = 0; c < n; c++) {
    const v = Math.fround(s[c]! / norm);
    s[c] = Number.isFinite(v) ? v : 1;
  }
  return s;
}

/** W[:, c] *= s[c] for W [rows, cols] (in place). */
export function scaleColumns(w: Float32Array, cols: number, s: Float32Array): Float32Array {
  for (let i = 0; i < w.length; i++) w[i] = w[i]! * s[i % cols]!;
  return w;
}

/** W[r, :] /= s[r] for the last s.length rows of W [rows, cols] (llm-awq scale_fc_fc), in place. */
export function divideRows(w: Float32Array, cols: number, s: Float32Array): Float32Array {
  const rows = w.length / cols;
  const first = rows - s.length;
  if (first < 0) throw new LowbitError("E_SHAPE_MISMATCH", `AWQ: ${s.length} scales for a linear with ${rows} output rows`);
  for (let r = first; r < rows; r++) {
    const d = s[r - first]!;
    for (let c = 0; c < cols; c++) w[r * cols + c] = w[r * cols + c]! / d;
  }
  return w;
}

/** x[:, c] /= s[c] for activations [tokens, cols] (in place). */
export function divideColumns(x: Float32Array, cols: number, s: Float32Array): Float32Array {
  for (let i = 0; i < x.length; i++) x[i] = x[i]! / s[i % cols]!;
  return x;
}
