import { LowbitError } from "@lowbit/tensor";
import { effectiveGroupSize, quantizeRTN } from "@lowbit/int4";
import { LINEAR_NAMES, type LinearName, type LlamaModel } from "@lowbit/runtime";
import type { CalibrationSet } from "./dataset";
import { linearBias } from "./driver";
import { DequantizedLinear } from "./quantized-linear";

/** One linear layer's sensitivity: the model's output error when it alone is quantized. */
export interface LinearSensitivity {
  layer: number;
  name: LinearName;
  rows: number;
  cols: number;
  /** Mean KL(FP || quantized) of the next-token distributions per bit width. */
  error: Record<number, number>;
}

export interface SensitivityOptions {
  /** Bit widths to try, e.g. [3, 4, 8]. */
  bits: readonly number[];
  /** Requested group size (-1 per channel); widths it does not divide use effectiveGroupSize. */
  groupSize: number;
  sym?: boolean;
  /** Calibration windows to evaluate on (the first ones). Default min(8, all). */
  windows?: number;
  /** Windows per runLayer call. Default 8. */
  batchWindows?: number;
  onProgress?: (done: number, total: number) => void;
}

/** Log-softmax of each row of logits [rows, vocab] into f64. */
function logSoftmaxRows(logits: Float32Array, rows: number, vocab: number, out: Float64Array, outOffset: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * vocab;
    let max = Number.NEGATIVE_INFINITY;
    for (let v = 0; v < vocab; v++) max = Math.max(max, logits[o + v]!);
    let sum = 0;
    for (let v = 0; v < vocab; v++) sum += Math.exp(logits[o + v]! - max);
    const lse = max + Math.log(sum);
    for (let v = 0; v < vocab; v++) out[outOffset + o + v] = logits[o + v]! - lse;
  }
}

/**
 * Measures each linear layer's sensitivity: quantizes it alone with RTN at each bit width and
 * records the mean KL divergence of the model's next-token distributions from the float model's
 * on the first calibration windows. Float activations at every layer boundary are cached, so a
 * linear in layer i costs one pass through layers i..n-1.
 */
export async function measureSensitivity(
  model: LlamaModel,
  data: CalibrationSet,
  options: SensitivityOptions,
): Promise<LinearSensitivity[]> {
  const { seqLen } = data;
  const W = Math.min(options.windows ?? 8, data.windows);
  const batch = options.batchWindows ?? 8;
  if (!(W > 0)) throw new LowbitError("E_INVALID_ARGUMENT", "measureSensitivity: need at least one calibration window");
  if (options.bits.length === 0) throw new LowbitError("E_INVALID_ARGUMENT", "measureSensitivity: no bit widths to try");
  await model.loadAll();
  const { dim, vocabSize, nLayers } = model.config;
  const rows = W * seqLen;
  // float hidden states entering each layer, and the float log-probs
  const boundaries: Float32Array[] = [model.embed(data.tokens.subarray(0, rows))];
  for (let i = 0; i < nLayers; i++) {
    const x = boundaries[i]!;
    const y = new Float32Array(rows * dim);
    for (let c = 0; c < W; c += batch) {
      const n = Math.min(batch, W - c);
      y.set(model.runLayer(i, x.subarray(c * seqLen * dim, (c + n) * seqLen * dim), n, seqLen), c * seqLen * dim);
    }
    boundaries.push(y);
  }
  const fpLogp = new Float64Array(rows * vocabSize);
  for (let c = 0; c < W; c += batch) {
    const n = Math.min(batch, W - c);
    const h = boundaries[nLayers]!.subarray(c * seqLen * dim, (c + n) * seqLen * dim);
    logSoftmaxRows(model.head(h, n * seqLen), n * seqLen, vocabSize, fpLogp, c * seqLen * vocabSize);
  }
  const qLogp = new Float64Array(seqLen * batch * vocabSize);
  const meanKl = (fromLayer: number): number => {
    let kl = 0;
    for (let c = 0; c < W; c += batch) {
      const n = Math.min(batch, W - c);
      let h = boundaries[fromLayer]!.subarray(c * seqLen * dim, (c + n) * seqLen * dim);
      for (let i = fromLayer; i < nLayers; i++) h = model.runLayer(i, h, n, seqLen);
      logSoftmaxRows(model.head(h, n * seqLen), n * seqLen, vocabSize, qLogp, 0);
      const base = c * seqLen * vocabSize;
      for (let j = 0; j < n * seqLen * vocabSize; j++) {
        const lp = fpLogp[base + j]!;
        kl += Math.exp(lp) * (lp - qLogp[j]!);
      }
    }
    return kl / rows;
  };
  const total = nLayers * LINEAR_NAMES.length * options.bits.length;
  let done = 0;
  const out: LinearSensitivity[] = [];
  for (let i = 0; i < nLayers; i++) {
    for (const name of LINEAR_NAMES) {
      const orig = model.getLinear(i, name);
      const w = orig.dequantizedWeight();
      const r = orig.outFeatures;
      const cols = orig.inFeatures;
      const bias = linearBias(orig);
      const error: Record<number, number> = {};
      for (const bits of options.bits) {
        const qm = quantizeRTN(w, r, cols, {
          bits,
          groupSize: effectiveGroupSize(cols, options.groupSize),
          sym: options.sym ?? false,
        });
        const q = new DequantizedLinear(qm, bias);
        model.setLinear(i, name, q);
        try {
          error[bits] = meanKl(i);
        } finally {
          model.setLinear(i, name, orig);
          q.dispose();
        }
        options.onProgress?.(++done, total);
      }
      out.push({ layer: i, name, rows: r, cols, error });
    }
  }
  return out;
}
