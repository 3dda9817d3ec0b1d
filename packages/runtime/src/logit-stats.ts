import { getEngine, LowbitError } from "@lowbit/tensor";
import { logitKernels, put, scratchRegions, useWasm } from "./kernels/modules";

/** Values per row of logitStats() output. */
export const STATS_STRIDE = 10;

/**
 * Per-row statistics over the vocabulary, everything the evaluation needs except one logarithm
 * per sum. For row r of `logits` [rows, V] (f32) with target id targets[r], and optionally a
 * reference row of the same shape, out[r * 10 + i] holds (f64):
 *   0 max, 1 sum_j e^(x_j - max), 2 x[target], 3 argmax (first on ties),
 *   4 reference max, 5 sum_j e^(r_j - rmax), 6 r[target], 7 sum_j e^(r_j - rmax) (r_j - x_j),
 *   8 reference argmax, 9 unused (0); entries 4..8 are 0 without a reference.
 * Then log-softmax: x[target] - (max + ln S); KL(ref || model) = W/Sr - (rmax - max) - ln Sr + ln S.
 * WebAssembly SIMD with f64 accumulation, or logitStatsRef under the "ref" kernel backend.
 */
export function logitStats(
  logits: Float32Array,
  ref: Float32Array | undefined,
  targets: ArrayLike<number>,
  rows: number,
  V: number,
): Float64Array {
  checkStats(logits, ref, targets, rows, V);
  if (!useWasm() || rows === 0) return logitStatsRef(logits, ref, targets, rows, V);
  const kx = logitKernels();
  const n = rows * V;
  const [pl, pr, pt, po] = scratchRegions([n * 4, ref ? n * 4 : 0, rows * 4, rows * STATS_STRIDE * 8]) as [
    number,
    number,
    number,
    number,
  ];
  put(pl, logits.subarray(0, n));
  if (ref) put(pr, ref.subarray(0, n));
  put(pt, Int32Array.from({ length: rows }, (_, r) => targets[r]!));
  kx.logit_stats(pl, ref ? pr : 0, pt, rows, V, po);
  return getEngine().f64(po, rows * STATS_STRIDE).slice();
}

/** Reference twin of logitStats: plain loops in f64 with Math.exp. */
export function logitStatsRef(
  logits: Float32Array,
  ref: Float32Array | undefined,
  targets: ArrayLike<number>,
  rows: number,
  V: number,
): Float64Array {
  checkStats(logits, ref, targets, rows, V);
  const out = new Float64Array(rows * STATS_STRIDE);
  for (let r = 0; r < rows; r++) {
    const o = r * V;
    const s = r * STATS_STRIDE;
    const t = targets[r]!;
    const [m, sum, am] = rowStats(logits, o, V);
    out[s] = m;
    out[s + 1] = sum;
    out[s + 2] = logits[o + t]!;
    out[s + 3] = am;
    if (ref) {
      const [rm, rsum, ram] = rowStats(ref, o, V);
      let w = 0;
      for (let j = 0; j < V; j++) w += Math.exp(ref[o + j]! - rm) * (ref[o + j]! - logits[o + j]!);
      out[s + 4] = rm;
      out[s + 5] = rsum;
      out[s + 6] = ref[o + t]!;
      out[s + 7] = w;
      out[s + 8] = ram;
    }
  }
  return out;
}

/** [max, sum e^(x - max), first argmax] of x[o, o + n). */
function rowStats(x: Float32Array, o: number, n: number): [number, number, number] {
  let m = x[o]!;
  let am = 0;
  for (let j = 1; j < n; j++) {
    if (x[o + j]! > m) {
      m = x[o + j]!;
      am = j;
    }
  }
  let sum = 0;
  for (let j = 0; j < n; j++) sum += Math.exp(x[o + j]! - m);
  return [m, sum, am];
}

function checkStats(logits: Float32Array, ref: Float32Array | undefined, targets: ArrayLike<number>, rows: number, V: number): void {
  if (!Number.isSafeInteger(rows) || rows < 0 || !Number.isSafeInteger(V) || V <= 0) {
    throw new LowbitError("E_INVALID_ARGUMENT", `logitStats: rows (${rows}) and vocabulary size (${V}) must be non-negative integers, V > 0`);
  }
  if (logits.length < rows * V || (ref && ref.length < rows * V)) {
    throw new LowbitError(
      "E_SHAPE_MISMATCH",
      `logitStats: logits need ${rows} x ${V} values, got ${logits.length}${ref ? ` (reference ${ref.length})` : ""}`,
    );
  }
  if (targets.length < rows) throw new LowbitError("E_SHAPE_MISMATCH", `logitStats: ${rows} rows need ${rows} targets, got ${targets.length}`);
  for (let r = 0; r < rows; r++) {
    const t = targets[r]!;
    if (!Number.isInteger(t) || t < 0 || t >= V) {
      throw new LowbitError("E_INVALID_ARGUMENT", `logitStats: target ${t} of row ${r} is outside the vocabulary [0, ${V})`);
    }
  }
}
