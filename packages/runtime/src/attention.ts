/**
 * Causal grouped-query attention for a run of T query rows.
 *
 * Query row t (absolute position startPos + t) attends to key/value rows kvRow0 .. kvRow0 +
 * startPos + t of `k`/`v` (row stride kvDim = nKvHeads * headDim). Query heads are grouped:
 * head h reads key/value head floor(h / (nHeads / nKvHeads)). Writes rows qRow0 .. qRow0 + T of
 * `out` ([rows, nHeads * headDim], the same row numbering as `q`).
 */
export interface AttentionShape {
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  /** Attend to at most this many most recent positions (self included); undefined: all. */
  window?: number;
}

export function causalAttention(
  shape: AttentionShape,
  q: Float32Array,
  qRow0: number,
  T: number,
  k: Float32Array,
  v: Float32Array,
  kvRow0: number,
  startPos: number,
  out: Float32Array,
): void {
  const { nHeads, nKvHeads, headDim } = shape;
  // small integers only: a double (Infinity) here would make the loop indices doubles
  const window = shape.window ?? 0x3fffffff;
  const qDim = nHeads * headDim;
  const kvDim = nKvHeads * headDim;
  const group = nHeads / nKvHeads;
  const scale = 1 / Math.sqrt(headDim);
  const scores = new Float64Array(startPos + T);
  const acc = new Float64Array(headDim);
  for (let t = 0; t < T; t++) {
    const n = startPos + t + 1;
    const j0 = n > window ? n - window : 0;
    const qo = (qRow0 + t) * qDim;
    for (let h = 0; h < nHeads; h++) {
      const qh = qo + h * headDim;
      const kvh = Math.floor(h / group) * headDim;
      let max = Number.NEGATIVE_INFINITY;
      for (let j = j0; j < n; j++) {
        const ko = (kvRow0 + j) * kvDim + kvh;
        let s = 0;
        for (let d = 0; d < headDim; d++) s += q[qh + d]! * k[ko + d]!;
        s *= scale;
        scores[j] = s;
        if (s > max) max = s;
      }
      let sum = 0;
      for (let j = j0; j < n; j++) {
        const e = Math.exp(scores[j]! - max);
        scores[j] = e;
        sum += e;
      }
      acc.fill(0);
      for (let j = j0; j < n; j++) {
        const p = scores[j]! / sum;
        const vo = (kvRow0 + j) * kvDim + kvh;
        for (let d = 0; d < headDim; d++) acc[d] = acc[d]! + p * v[vo + d]!;
      }
      for (let d = 0; d < headDim; d++) out[qh + d] = acc[d]!;
    }
  }
}
