import { Rng } from "@lowbit/tensor";
import { backward, noGrad, type Variable } from "./variable";

export interface GradCheckOptions {
  /** Central-difference step. Default 1e-2 (f32 values: smaller steps drown in rounding). */
  eps?: number;
  /** Seed of the random projection used for non-scalar outputs. Default 0. */
  seed?: number;
  /** Check at most this many elements per input (chosen evenly). Default: all. */
  maxPerInput?: number;
  /** Absolute tolerance. Default 1e-3. */
  atol?: number;
  /** Relative tolerance. Default 1e-2. */
  rtol?: number;
}

export interface GradCheckResult {
  ok: boolean;
  /** Largest |analytic - numeric| over the checked elements. */
  maxAbsError: number;
  /** The element with the largest error relative to the tolerance. */
  worst: { input: number; index: number; analytic: number; numeric: number } | null;
  checked: number;
}

/**
 * Checks the backward pass of `fn` against central finite differences. The scalar checked is
 * L = sum(out * R) for a fixed random R (or the output itself when it is a scalar), reduced in
 * doubles so that only the forward's f32 rounding limits the numeric estimate. Inputs are
 * perturbed in place and restored; `fn` may ignore its argument and read the same Variables
 * (e.g. a model's parameters). The inputs' existing gradients are left as they were.
 */
export function gradCheck(
  fn: (inputs: readonly Variable[]) => Variable,
  inputs: readonly Variable[],
  options: GradCheckOptions = {},
): GradCheckResult {
  const eps = options.eps ?? 1e-2;
  const atol = options.atol ?? 1e-3;
  const rtol = options.rtol ?? 1e-2;
  const leaves = inputs;
  // analytic gradients land in the inputs' own grad fields: save and restore them
  const saved = leaves.map((v) => v.grad);
  for (const v of leaves) v.zeroGrad();
  const out = fn(leaves);
  const rng = new Rng(options.seed ?? 0);
  const proj = new Float64Array(out.size);
  if (out.size === 1) proj[0] = 1;
  else for (let i = 0; i < proj.length; i++) proj[i] = rng.normal();
  const objective = (o: Float32Array): number => {
    let s = 0;
    for (let i = 0; i < o.length; i++) s += o[i]! * proj[i]!;
    return s;
  };
  backward(out, Float32Array.from(proj));
  const analyticGrads = leaves.map((v) => v.grad);
  leaves.forEach((v, i) => {
    v.grad = saved[i] ?? null;
  });
  let maxAbsError = 0;
  let worstRatio = -1;
  let worst: GradCheckResult["worst"] = null;
  let checked = 0;
  leaves.forEach((leaf, inputIndex) => {
    if (!leaf.requiresGrad) return;
    const analytic = analyticGrads[inputIndex] ?? new Float32Array(leaf.size);
    const n = leaf.size;
    const count = Math.min(n, options.maxPerInput ?? n);
    for (let c = 0; c < count; c++) {
      const idx = count === n ? c : Math.floor((c * n) / count);
      const orig = leaf.value[idx]!;
      leaf.value[idx] = orig + eps;
      const hiVal = Math.fround(orig + eps);
      const plus = noGrad(() => objective(fn(leaves).value));
      leaf.value[idx] = orig - eps;
      const loVal = Math.fround(orig - eps);
      const minus = noGrad(() => objective(fn(leaves).value));
      leaf.value[idx] = orig;
      const numeric = (plus - minus) / (hiVal - loVal);
      const a = analytic[idx]!;
      const err = Math.abs(a - numeric);
      const ratio = err / (atol + rtol * Math.abs(numeric));
      if (err > maxAbsError) maxAbsError = err;
      if (ratio > worstRatio) {
        worstRatio = ratio;
        worst = { input: inputIndex, index: idx, analytic: a, numeric };
      }
      checked++;
    }
  });
  return { ok: worstRatio <= 1, maxAbsError, worst, checked };
}
