import type { Linear } from "@lowbit/tensor";
import { type ClipSearchOptions, effectiveGroupSize, type QuantizedMatrix, quantizeRTN } from "@lowbit/int4";
import { LINEAR_NAMES, type LinearName } from "@lowbit/runtime";
import { bitsPerWeight, type LayerContext, type LayerPlugin } from "./plugin";
import { DequantizedLinear, quantizedKind } from "./quantized-linear";

/** Options shared by the weight-quantizing plug-ins. */
export interface WeightQuantOptions {
  /** Bits per weight (2, 3, 4 or 8). */
  bits: number;
  /** Requested group size, -1 for per channel; a linear whose width it does not divide uses effectiveGroupSize. */
  groupSize: number;
  /** Symmetric or asymmetric. Default false (asymmetric). */
  sym?: boolean;
  /** Per-linear bit widths (mixed precision); overrides `bits` where it returns a number. */
  bitsFor?: (layer: number, name: LinearName) => number | undefined;
  /** Linears to quantize (default all seven). */
  linears?: readonly LinearName[];
  /**
   * The backend built for each quantized matrix: default `DequantizedLinear` (f32 over the
   * dequantized weights, exact "fake quantization"); e.g. `(qm, bias) => new Int4Linear(qm, { bias })`
   * for packed int4 weights in memory.
   */
  makeLinear?: (qm: QuantizedMatrix, bias: Float32Array | undefined) => Linear;
}

/** The backend of a quantized matrix: the plug-in option's factory or DequantizedLinear. */
export function quantizedBackend(o: WeightQuantOptions, qm: QuantizedMatrix, bias: Float32Array | undefined): Linear {
  return o.makeLinear ? o.makeLinear(qm, bias) : new DequantizedLinear(qm, bias);
}

/** The bits and effective group size for one linear. */
export function linearQuantConfig(
  o: WeightQuantOptions,
  layer: number,
  name: LinearName,
  cols: number,
): { bits: number; groupSize: number; sym: boolean } {
  return {
    bits: o.bitsFor?.(layer, name) ?? o.bits,
    groupSize: effectiveGroupSize(cols, o.groupSize),
    sym: o.sym ?? false,
  };
}

export interface RtnPluginOptions extends WeightQuantOptions {
  /** Per-group clipping search (GPTQ's MSE grid): true for its defaults. */
  clipSearch?: boolean | ClipSearchOptions;
}

/** Round-to-nearest group quantization of every linear (needs no calibration data). */
export function rtnPlugin(options: RtnPluginOptions): LayerPlugin {
  return {
    name: "rtn",
    needsActivations: false,
    quantizeLayer(ctx: LayerContext) {
      for (const name of options.linears ?? LINEAR_NAMES) {
        const w = ctx.weight(name);
        const lin = ctx.model.getLinear(ctx.layer, name);
        const rows = lin.outFeatures;
        const cols = lin.inFeatures;
        const cfg = linearQuantConfig(options, ctx.layer, name, cols);
        const qm = quantizeRTN(w, rows, cols, {
          ...cfg,
          name: `blk.${ctx.layer}.${name}`,
          ...(options.clipSearch !== undefined ? { clipSearch: options.clipSearch } : {}),
        });
        const q = quantizedBackend(options, qm, ctx.bias(name));
        ctx.setLinear(name, q);
        ctx.record({
          name,
          kind: quantizedKind(qm),
          bits: cfg.bits,
          groupSize: cfg.groupSize,
          rows,
          cols,
          bitsPerWeight: bitsPerWeight(cfg.bits, cfg.groupSize),
        });
      }
    },
  };
}
