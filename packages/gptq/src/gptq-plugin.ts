import {
  bitsPerWeight,
  defaultStepWindows,
  type LayerContext,
  type LayerPlugin,
  linearInputKey,
  linearQuantConfig,
  memTrace,
  quantizedBackend,
  quantizedKind,
  TRUE_SEQUENTIAL_GROUPS,
  type WeightQuantOptions,
} from "@lowbit/calibration";
import type { ClipSearchOptions } from "@lowbit/int4";
import { LINEAR_NAMES, type LinearName } from "@lowbit/runtime";
import { gptqQuantize } from "./gptq-quantize";
import { HessianAccumulator } from "./hessian";

export interface GptqPluginOptions extends WeightQuantOptions {
  /** desc_act: quantize columns by decreasing Hessian diagonal. Default false. */
  actOrder?: boolean;
  /** Fit group quantizers before the updates (natural order). Default false. */
  staticGroups?: boolean;
  /** Dampening as a fraction of mean(diag H). Default 0.01. */
  percdamp?: number;
  /** Added to percdamp each time Cholesky fails. Default 0.01. */
  dampAutoIncrement?: number;
  /** Columns per lazy batch. Default 128. */
  blockSize?: number;
  /**
   * Quantize in GPTQ's true-sequential order [k, v, q] -> [o] -> [up, gate] -> [down], rerunning
   * the layer after each group so later groups see the quantized earlier ones. Default true.
   */
  trueSequential?: boolean;
  /** The quantizer's MSE grid over shrink factors (quant.py `mse`). Default off. */
  mse?: boolean | ClipSearchOptions;
  /** Which weights a group quantizer is fitted on (see GptqOptions.groupFit). Default "reference". */
  groupFit?: "reference" | "updated";
  /**
   * Windows per layer run while capturing inputs (ForwardOptions.stepWindows): bounds the layer's
   * temporary buffers; the Hessians still take each driver chunk as one batch, so results do not
   * depend on it. Default: defaultStepWindows(seqLen) (512 rows).
   */
  stepWindows?: number;
}

/**
 * GPTQ on every linear of one decoder layer, as IST-DASLab llama.py `llama_sequential` does it:
 * for each group of linears, run the layer over the calibration windows with capture hooks
 * accumulating each input's Hessian (one per distinct input: q, k and v share theirs), then
 * quantize the group's linears and swap them in.
 */
export function gptqQuantizeLayer(ctx: LayerContext, options: GptqPluginOptions): void {
  const wanted = new Set<LinearName>(options.linears ?? LINEAR_NAMES);
  const groups = (options.trueSequential ?? true) ? TRUE_SEQUENTIAL_GROUPS : [LINEAR_NAMES];
  for (const group of groups) {
    const names = group.filter((n) => wanted.has(n));
    if (names.length === 0) continue;
    const accs = new Map<string, HessianAccumulator>();
    const last = new Map<string, Float32Array>();
    for (const n of names) {
      const key = linearInputKey(n);
      if (!accs.has(key)) accs.set(key, new HessianAccumulator(ctx.model.getLinear(ctx.layer, n).inFeatures));
    }
    // Only the linears' inputs are needed, so the layer runs up to the input of the group's last
    // input (q, k, v share one input, as do gate and up: the first of them in the decoder's
    // order) and stops before that linear runs, a few windows at a time; each chunk of the
    // driver is one Hessian batch, its rows transposed into the accumulator's buffer part by part
    // (the chunk's inputs are never held)
    const inOrder = LINEAR_NAMES.filter((n) => names.includes(n));
    const lastKey = linearInputKey(inOrder.at(-1)!);
    const stopAt = inOrder.find((n) => linearInputKey(n) === lastKey)!;
    try {
      ctx.forward({
        capture: names,
        inputsOnly: true,
        stopAfter: stopAt,
        stepWindows: options.stepWindows ?? defaultStepWindows(ctx.seqLen),
        onCapture: (a) => {
          const key = linearInputKey(a.name);
          if (last.get(key) === a.input) return; // q, k, v (and gate, up) receive the same array
          last.set(key, a.input);
          const acc = accs.get(key)!;
          if (a.rowOffset === 0) acc.beginBatch(a.chunkRows, a.chunkWindows);
          acc.addRows(a.input, a.rows);
          if (a.rowOffset + a.rows === a.chunkRows) acc.endBatch();
        },
      });
    } finally {
      for (const acc of accs.values()) acc.releaseScratch();
    }
    last.clear();
    memTrace(`layer ${ctx.layer} ${names.join(",")}: Hessians accumulated`);
    for (const name of names) {
      const lin = ctx.model.getLinear(ctx.layer, name);
      const rows = lin.outFeatures;
      const cols = lin.inFeatures;
      const cfg = linearQuantConfig(options, ctx.layer, name, cols);
      const res = gptqQuantize(ctx.weight(name), rows, cols, accs.get(linearInputKey(name))!.h, {
        ...cfg,
        name: `blk.${ctx.layer}.${name}`,
        actOrder: options.actOrder ?? false,
        staticGroups: options.staticGroups ?? false,
        percdamp: options.percdamp ?? 0.01,
        dampAutoIncrement: options.dampAutoIncrement ?? 0.01,
        blockSize: options.blockSize ?? 128,
        ...(options.mse !== undefined ? { mse: options.mse } : {}),
        ...(options.groupFit !== undefined ? { groupFit: options.groupFit } : {}),
      });
      if (res.dampRetries > 0) {
        ctx.log(`${name}: Cholesky failed, dampening raised ${res.dampRetries} time(s) to percdamp ${res.percdamp.toFixed(4)}`);
      }
      if (res.deadColumns > 0) ctx.log(`${name}: ${res.deadColumns} dead input(s) (zero Hessian diagonal) zeroed`);
      memTrace(`layer ${ctx.layer} ${name}: GPTQ solved`);
      ctx.setLinear(name, quantizedBackend(options, res.qm, ctx.bias(name)));
      ctx.record({
        name,
        kind: quantizedKind(res.qm),
        bits: cfg.bits,
        groupSize: cfg.groupSize,
        rows,
        cols,
        bitsPerWeight: bitsPerWeight(cfg.bits, cfg.groupSize),
        info: { loss: res.loss, percdamp: res.percdamp, dampRetries: res.dampRetries, deadColumns: res.deadColumns },
      });
    }
  }
}

/** GPTQ as a plug-in of the calibration driver (later layers calibrate on quantized activations). */
export function gptqPlugin(options: GptqPluginOptions): LayerPlugin {
  return {
    name: options.actOrder ? "gptq-act-order" : "gptq",
    propagate: "quantized",
    quantizeLayer: (ctx) => gptqQuantizeLayer(ctx, options),
  };
}
