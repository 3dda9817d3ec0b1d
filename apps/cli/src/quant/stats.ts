import type { LayerContext, LayerPlugin } from "@lowbit/calibration";
import { LINEAR_NAMES, type LinearName } from "@lowbit/runtime";
import { type Linear, Rng } from "@lowbit/tensor";
import { quantizedMatrixOf, relativeError } from "./collect";

/** What was measured about one decoder layer. */
export interface LayerStats {
  layer: number;
  /** ||layer_q(X) - layer_fp(X)||² / ||layer_fp(X)||² on the first calibration windows. */
  outputError?: number;
  linears: Array<{ name: LinearName; bits: number; groupSize: number; weightError: number }>;
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

/**
 * Wraps a plug-in to measure each layer: the relative error of every quantized weight against the
 * weight it replaced (the weight just before the quantized backend was set, so AWQ's scaling is
 * not counted as error), and the layer's relative output error on up to `evalWindows` calibration
 * windows (when the driver gives activations).
 */
export function withStats(
  inner: LayerPlugin,
  opts: { evalWindows?: number; sample?: ValueSample; onLayer?: (s: LayerStats) => void; needsActivations?: boolean },
): LayerPlugin {
  return {
    name: inner.name,
    propagate: inner.propagate,
    needsActivations: opts.needsActivations ?? inner.needsActivations,
    async quantizeLayer(ctx: LayerContext) {
      const t0 = performance.now();
      const hasInputs = ctx.inputs.length > 0;
      const windows = Array.from({ length: Math.min(opts.evalWindows ?? 8, ctx.windows) }, (_, i) => i);
      const fpOut = hasInputs ? ctx.forward({ windows, collectOutput: true }) : undefined;
      const before = new Map<LinearName, Float32Array>();
      const proxy: LayerContext = {
        get model() {
          return ctx.model;
        },
        get layer() {
          return ctx.layer;
        },
        get nLayers() {
          return ctx.nLayers;
        },
        get windows() {
          return ctx.windows;
        },
        get seqLen() {
          return ctx.seqLen;
        },
        get inputs() {
          return ctx.inputs;
        },
        forward: (o) => ctx.forward(o),
        captureInputs: (names) => ctx.captureInputs(names),
        weight: (name) => ctx.weight(name),
        bias: (name) => ctx.bias(name),
        setLinear: (name: LinearName, linear: Linear) => {
          if (quantizedMatrixOf(linear)) before.set(name, ctx.weight(name));
          ctx.setLinear(name, linear);
        },
        setWeight: (name, w) => ctx.setWeight(name, w),
        record: (rec) => ctx.record(rec),
        log: (m) => ctx.log(m),
      };
      await inner.quantizeLayer(proxy);
      const linears: LayerStats["linears"] = [];
      for (const name of LINEAR_NAMES) {
        const lin = ctx.model.getLinear(ctx.layer, name);
        const qm = quantizedMatrixOf(lin);
        const ref = before.get(name);
        if (!qm || !ref) continue;
        const deq = lin.dequantizedWeight();
        linears.push({ name, bits: qm.bits, groupSize: qm.groupSize, weightError: relativeError(ref, deq) });
        opts.sample?.add(ref, deq);
      }
      let outputError: number | undefined;
      if (fpOut) outputError = relativeError(fpOut, ctx.forward({ windows, collectOutput: true })!);
      const stats: LayerStats = { layer: ctx.layer, outputError, linears, ms: performance.now() - t0 };
      opts.onLayer?.(stats);
    },
  };
}
