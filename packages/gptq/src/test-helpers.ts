import { Rng } from "@lowbit/tensor";

/**
 * Synthetic layer for tests and benchmarks: weights W [rows, cols] ~ N(0, 1/cols) and inputs
 * X [tokens, cols] with correlated features and a few large-magnitude channels, like real
 * activations (GPTQ gains over RTN come from the correlations).
 */
export function syntheticLayer(
  rows: number,
  cols: number,
  tokens: number,
  seed: number,
): { w: Float32Array; x: Float32Array } {
  const rng = new Rng(seed);
  const w = new Float32Array(rows * cols);
  for (let i = 0; i < w.length; i++) w[i] = rng.normal() / Math.sqrt(cols);
  const rank = Math.max(2, Math.floor(cols / 4));
  const mix = new Float32Array(rank * cols);
  for (let i = 0; i < mix.length; i++) mix[i] = rng.normal();
  const chanScale = new Float32Array(cols);
  for (let c = 0; c < cols; c++) chanScale[c] = rng.uniform() < 0.05 ? 8 : 0.5 + rng.uniform();
  const x = new Float32Array(tokens * cols);
  const z = new Float32Array(rank);
  for (let t = 0; t < tokens; t++) {
    for (let k = 0; k < rank; k++) z[k] = rng.normal();
    for (let c = 0; c < cols; c++) {
      let s = 0.3 * rng.normal();
      for (let k = 0; k < rank; k++) s += z[k]! * mix[k * cols + c]!;
      x[t * cols + c] = (s / Math.sqrt(rank)) * chanScale[c]!;
    }
  }
  return { w, x };
}

/** ||X W^T - X Q^T||^2 / ||X W^T||^2 in f64. */
export function relativeOutputError(
  w: Float32Array,
  q: Float32Array,
  x: Float32Array,
  rows: number,
  cols: number,
  tokens: number,
): number {
  let num = 0;
  let den = 0;
  for (let t = 0; t < tokens; t++) {
    const xo = t * cols;
    for (let r = 0; r < rows; r++) {
      const wo = r * cols;
      let a = 0;
      let b = 0;
      for (let c = 0; c < cols; c++) {
        const xv = x[xo + c]!;
        a += xv * w[wo + c]!;
        b += xv * q[wo + c]!;
      }
      num += (a - b) * (a - b);
      den += a * a;
    }
  }
  return num / den;
}
