import { bitsPerWeight, DequantizedLinear, type LayerPlugin, quantizedKind, rtnPlugin } from "@lowbit/calibration";
import type { QuantizedMatrix } from "@lowbit/int4";
import type { LinearName } from "@lowbit/runtime";
import { KeptQuantizedLinear } from "./compact";

export const METHODS = ["rtn", "gptq", "awq", "qat"] as const;
export type Method = (typeof METHODS)[number];

export interface PluginSettings {
  method: Method;
  bits: number;
  groupSize: number;
  sym: boolean;
  actOrder: boolean;
  /** GPTQ dampening (fraction of mean diag H). */
  damp: number;
  /** RTN: GPTQ's MSE clipping grid; AWQ: its clip search. */
  clip: boolean;
  /** QAT: passes over the calibration windows per layer, peak learning rate. */
  epochs: number;
  lr: number;
  seed: number;
}

/**
 * The calibration driver plug-in of a method (GPTQ, AWQ and QAT come from their packages).
 * `compact`: RTN's quantized linears keep only their matrices (no f32 copy of the dequantized
 * weights) — for runs without calibration data, where no quantized layer is ever run.
 */
export async function makePlugin(
  s: PluginSettings,
  bitsFor?: (layer: number, name: LinearName) => number | undefined,
  opts: { compact?: boolean } = {},
): Promise<LayerPlugin> {
  const common = { bits: s.bits, groupSize: s.groupSize, sym: s.sym, ...(bitsFor ? { bitsFor } : {}) };
  switch (s.method) {
    case "rtn":
      return rtnPlugin({
        ...common,
        ...(s.clip ? { clipSearch: true } : {}),
        ...(opts.compact ? { makeLinear: (qm: QuantizedMatrix, bias: Float32Array | undefined) => new KeptQuantizedLinear(qm, bias, quantizedKind(qm), Math.ceil((qm.rows * qm.cols * bitsPerWeight(qm.bits, qm.groupSize)) / 8) + (bias?.byteLength ?? 0)) } : {}),
      });
    case "gptq": {
      const { gptqPlugin } = await import("@lowbit/gptq");
      return gptqPlugin({ ...common, actOrder: s.actOrder, percdamp: s.damp });
    }
    case "awq": {
      const { awqPlugin } = await import("@lowbit/awq");
      return awqPlugin({ ...common, clip: s.clip });
    }
    case "qat": {
      const { qatPlugin } = await import("@lowbit/qat");
      return qatPlugin({
        weight: { bits: s.bits, sym: s.sym, granularity: s.groupSize > 0 ? "group" : "channel", ...(s.groupSize > 0 ? { groupSize: s.groupSize } : {}) },
        epochs: s.epochs,
        lr: s.lr,
        seed: s.seed,
        makeLinear: (qm) => new DequantizedLinear(qm),
      });
    }
  }
}
