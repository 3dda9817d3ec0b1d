import { LowbitError } from "@lowbit/tensor";
import { result, type Variable } from "./variable";

/**
 * Mean softmax cross-entropy of logits [m, classes] against integer targets (length m). Rows whose
 * target equals `ignoreIndex` (default -1) do not count. Backward: (softmax - onehot) / count.
 */
export function crossEntropy(logits: Variable, targets: ArrayLike<number>, ignoreIndex = -1): Variable {
  const c = logits.cols;
  const m = logits.rows;
  if (targets.length !== m) {
    throw new LowbitError("E_SHAPE_MISMATCH", `crossEntropy: ${targets.length} targets for ${m} rows of logits`);
  }
  const lv = logits.value;
  const probs = new Float32Array(lv.length);
  let total = 0;
  let count = 0;
  for (let i = 0; i < m; i++) {
    const t = targets[i]!;
    if (t === ignoreIndex) continue;
    if (!(Number.isInteger(t) && t >= 0 && t < c)) {
      throw new LowbitError("E_INVALID_ARGUMENT", `crossEntropy: target ${t} at row ${i} is outside 0..${c - 1}`);
    }
    const o = i * c;
    let mx = Number.NEGATIVE_INFINITY;
    for (let j = 0; j < c; j++) if (lv[o + j]! > mx) mx = lv[o + j]!;
    let z = 0;
    for (let j = 0; j < c; j++) {
      const e = Math.exp(lv[o + j]! - mx);
      probs[o + j] = e;
      z += e;
    }
    total += mx + Math.log(z) - lv[o + t]!;
    const inv = 1 / z;
    for (let j = 0; j < c; j++) probs[o + j] = probs[o + j]! * inv;
    count++;
  }
  const loss = count > 0 ? total / count : 0;
  const targetsCopy = Int32Array.from(targets);
  return result(Float32Array.of(loss), [], [logits], (g) => {
    if (count === 0) return;
    const gl = logits.gradBuffer();
    const f = g[0]! / count;
    for (let i = 0; i < m; i++) {
      const t = targetsCopy[i]!;
      if (t === ignoreIndex) continue;
      const o = i * c;
      for (let j = 0; j < c; j++) gl[o + j]! += f * probs[o + j]!;
      gl[o + t]! -= f;
    }
  });
}

/** Mean squared error of `pred` against a constant target of the same size (block distillation). */
export function mseLoss(pred: Variable, target: Float32Array): Variable {
  if (target.length !== pred.size) {
    throw new LowbitError("E_SHAPE_MISMATCH", `mseLoss: target has ${target.length} elements, prediction ${pred.size}`);
  }
  const pv = pred.value;
  const n = pv.length;
  let s = 0;
  for (let i = 0; i < n; i++) {
    const d = pv[i]! - target[i]!;
    s += d * d;
  }
  return result(Float32Array.of(s / n), [], [pred], (g) => {
    const gp = pred.gradBuffer();
    const f = (2 * g[0]!) / n;
    for (let i = 0; i < n; i++) gp[i]! += f * (pv[i]! - target[i]!);
  });
}
