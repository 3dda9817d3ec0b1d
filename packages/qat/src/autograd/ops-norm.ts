import { LowbitError } from "@lowbit/tensor";
import { result, type Variable } from "./variable";

/**
 * RMSNorm over the last dimension, as LLaMA: y = x / sqrt(mean(x^2) + eps) * w.
 * Backward with r = 1/sqrt(mean(x^2)+eps), u = dy * w:
 *   dx = r u - x r^3 mean(u x),  dw = sum over rows of dy x r.
 */
export function rmsNorm(x: Variable, w: Variable, eps = 1e-5): Variable {
  const n = x.cols;
  if (w.size !== n) {
    throw new LowbitError("E_SHAPE_MISMATCH", `rmsNorm: weight${w.name ? ` "${w.name}"` : ""} has ${w.size} elements, x has ${n} features`);
  }
  const rows = x.rows;
  const xv = x.value;
  const wv = w.value;
  const out = new Float32Array(xv.length);
  const inv = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    const o = i * n;
    let ss = 0;
    for (let j = 0; j < n; j++) ss += xv[o + j]! * xv[o + j]!;
    const r = 1 / Math.sqrt(ss / n + eps);
    inv[i] = r;
    for (let j = 0; j < n; j++) out[o + j] = xv[o + j]! * r * wv[j]!;
  }
  return result(out, x.shape, [x, w], (g) => {
    const gx = x.requiresGrad ? x.gradBuffer() : null;
    const gwAcc = w.requiresGrad ? new Float64Array(n) : null;
    for (let i = 0; i < rows; i++) {
      const o = i * n;
      const r = inv[i]!;
      if (gx) {
        let dot = 0;
        for (let j = 0; j < n; j++) dot += g[o + j]! * wv[j]! * xv[o + j]!;
        const c = (r * r * r * dot) / n;
        for (let j = 0; j < n; j++) gx[o + j]! += r * g[o + j]! * wv[j]! - xv[o + j]! * c;
      }
      if (gwAcc) for (let j = 0; j < n; j++) gwAcc[j]! += g[o + j]! * xv[o + j]! * r;
    }
    if (gwAcc) {
      const gw = w.gradBuffer();
      for (let j = 0; j < n; j++) gw[j]! += gwAcc[j]!;
    }
  });
}
