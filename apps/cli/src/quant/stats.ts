import { defaultStepWindows, type ForwardOptions, type LayerContext, type LayerPlugin, memTrace } from "@lowbit/calibration";
import type { QuantizedMatrix } from "@lowbit/int4";
import { LINEAR_NAMES, type LinearName } from "@lowbit/runtime";
import { type Linear, LowbitError, Rng } from "@lowbit/tensor";
import { dequantizeMatrix, quantizedMatrixOf, relativeError } from "./collect";
import { OutputSpill } from "./output-spill";

/** What was measured about one decoder layer. */
export interface LayerStats {
  layer: number;
  /** ||layer_q(X) - layer_fp(X)||² / ||layer_fp(X)||² on the first calibration windows. */
  outputError?: number;
  linears: Array<{
    name: LinearName;
    bits: number;
    groupSize: number;
    /** ||W - Wq||² / ||W||² against the weight the plug-in replaced (absent for AWQ, which rescales weights). */
    weightError?: number;
    /** Relative error of the linear's output in the quantized layer against the float layer, same windows. */
    outputError?: number;
  }>;
  ms: number;
}

/** A seeded reservoir of (weight, error) pairs for the report's histograms. */
export class ValueSample {
  readonly weights: number[] = [];
  readonly errors: number[] = [];
  private seen = 0;
  private readonly rng: Rng;
  constructor(
    private readonly capacity = 50_000,
    seed = 0,
  ) {
    this.rng = new Rng(seed);
  }
  add(ref: Float32Array, approx: Float32Array): void {
    for (let i = 0; i < ref.length; i++) {
      this.seen++;
      if (this.weights.length < this.capacity) {
        this.weights.push(ref[i]!);
        this.errors.push(approx[i]! - ref[i]!);
      } else {
        const j = this.rng.int(this.seen);
        if (j < this.capacity) {
          this.weights[j] = ref[i]!;
          this.errors[j] = approx[i]! - ref[i]!;
        }
      }
    }
  }
}

/** Largest number of calibration rows (windows x seqLen) the per-layer measurement runs on. */
const MEASURE_ROWS = 2048;

/**
 * Wraps a plug-in to measure each layer on its first calibration windows: each linear's output
 * error (its output in the quantized layer against the float layer's, which also holds for AWQ's
 * rescaled weights), the decoder layer's output error, and the relative weight error against the
 * weight the plug-in replaced (not for AWQ, whose quantized weights are rescaled), read through
 * `reference` when given.
 */
export function withStats(
  inner: LayerPlugin,
  opts: {
    sample?: ValueSample;
    onLayer?: (s: LayerStats) => void;
    needsActivations?: boolean;
    weightErrors?: boolean;
    /**
     * The weight a linear had before the plug-in replaced it, read again after the layer is
     * quantized (e.g. from the model file), one linear at a time. Without it, each layer's seven
     * weights are copied before the plug-in runs (a second copy of the layer in memory).
     */
    reference?: (layer: number, name: LinearName) => Promise<Float32Array>;
    /**
     * Keep the float layer's outputs, from measuring it until the quantized layer is measured, in
     * a temporary file instead of memory (they are 2048 rows of every linear's outputs).
     */
    spillOutputs?: boolean;
  },
): LayerPlugin {
  return {
    name: inner.name,
    propagate: inner.propagate,
    needsActivations: opts.needsActivations ?? inner.needsActivations,
    async quantizeLayer(ctx: LayerContext) {
      const t0 = performance.now();
      const hasInputs = ctx.inputs.length > 0;
      const nWin = Math.max(1, Math.min(ctx.windows, Math.floor(MEASURE_ROWS / Math.max(1, ctx.seqLen))));
      const windows = Array.from({ length: nWin }, (_, i) => i);
      const step = defaultStepWindows(ctx.seqLen);
      // the float layer's linear outputs on the measured windows, one array per linear and step in
      // order (in a temporary file with spillOutputs)
      const spill = hasInputs && opts.spillOutputs ? new OutputSpill() : undefined;
      const fpOuts: Float32Array[] = [];
      const fpNames: LinearName[] = [];
      // the layer's output on the measured windows, every linear's output handed to onCapture
      const measure = (onCapture: NonNullable<ForwardOptions["onCapture"]>) =>
        ctx.forward({ windows, stepWindows: step, collectOutput: true, capture: LINEAR_NAMES, onCapture })!;
      try {
        const fpLayerOut = hasInputs
          ? measure((a) => {
              if (spill) spill.push(a.output);
              else fpOuts.push(a.output);
              fpNames.push(a.name);
            })
          : undefined;
        memTrace(`layer ${ctx.layer} stats: float outputs measured`);
        const weightErrors = opts.weightErrors !== false;
        const original = new Map<LinearName, Float32Array>();
        if (weightErrors && !opts.reference) for (const n of LINEAR_NAMES) original.set(n, ctx.weight(n));
        await inner.quantizeLayer(ctx);
        // the quantized layer on the same windows, each linear's output compared with the float one
        // as it is produced (relativeError's sums over the concatenated outputs, in the same order)
        const errs = new Map<LinearName, { num: number; den: number }>();
        let next = 0;
        const qLayerOut = fpLayerOut
          ? measure((a) => {
              const i = next++;
              const ref = fpNames[i] !== a.name ? undefined : spill ? spill.shift(a.output.length) : fpOuts[i];
              if (!ref || ref.length !== a.output.length) {
                throw new LowbitError("E_INTERNAL", `layer statistics: blk.${ctx.layer}.${a.name} ran differently after quantization`);
              }
              const e = errs.get(a.name) ?? { num: 0, den: 0 };
              const approx = a.output;
              for (let k = 0; k < ref.length; k++) {
                const d = ref[k]! - approx[k]!;
                e.num += d * d;
                e.den += ref[k]! * ref[k]!;
              }
              errs.set(a.name, e);
            })
          : undefined;
        fpOuts.length = 0;
        memTrace(`layer ${ctx.layer} stats: quantized outputs measured`);
        const linears: LayerStats["linears"] = [];
        for (const name of LINEAR_NAMES) {
          const lin: Linear = ctx.model.getLinear(ctx.layer, name);
          const qm = quantizedMatrixOf(lin);
          if (!qm) continue;
          const entry: LayerStats["linears"][number] = { name, bits: qm.bits, groupSize: qm.groupSize };
          const ref = weightErrors ? (original.get(name) ?? (await opts.reference?.(ctx.layer, name))) : undefined;
          if (ref) entry.weightError = weightError(ref, qm, opts.sample);
          const e = errs.get(name);
          if (e) entry.outputError = e.den > 0 ? e.num / e.den : e.num;
          linears.push(entry);
        }
        const stats: LayerStats = { layer: ctx.layer, linears, ms: performance.now() - t0 };
        if (fpLayerOut && qLayerOut) stats.outputError = relativeError(fpLayerOut, qLayerOut);
        opts.onLayer?.(stats);
      } finally {
        spill?.dispose();
      }
    },
  };
}

/** Rows dequantized at a time by weightError. */
const ERROR_ROWS = 256;

/**
 * ||W - Wq||² / ||W||² with Wq dequantized a block of rows at a time (the values and the order of
 * the sums are relativeError's over the whole dequantized matrix), feeding the sample in order.
 */
export function weightError(ref: Float32Array, qm: QuantizedMatrix, sample?: ValueSample): number {
  const { cols } = qm;
  const ng = qm.cols / qm.groupSize;
  let num = 0;
  let den = 0;
  for (let r0 = 0; r0 < qm.rows; r0 += ERROR_ROWS) {
    const r1 = Math.min(qm.rows, r0 + ERROR_ROWS);
    const deq = dequantizeMatrix({
      ...qm,
      rows: r1 - r0,
      q: qm.q.subarray(r0 * cols, r1 * cols),
      scales: qm.scales.subarray(r0 * ng, r1 * ng),
      zeros: qm.zeros.subarray(r0 * ng, r1 * ng),
    });
    const part = ref.subarray(r0 * cols, r1 * cols);
    for (let i = 0; i < part.length; i++) {
      const d = part[i]! - deq[i]!;
      num += d * d;
      den += part[i]! * part[i]!;
    }
    sample?.add(part, deq);
  }
  return den > 0 ? num / den : num;
}
