import { DequantizedLinear, type LayerPlugin, rtnPlugin } from "@lowbit/calibration";
import type { LinearName } from "@lowbit/runtime";

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

/** The calibration driver plug-in of a method (GPTQ, AWQ and QAT come from their packages). */
export async function makePlugin(s: PluginSettings, bitsFor?: (layer: number, name: LinearName) => number | undefined): Promise<LayerPlugin> {
  const common = { bits: s.bits, groupSize: s.groupSize, sym: s.sym, ...(bitsFor ? { bitsFor } : {}) };
  switch (s.method) {
    case "rtn":
      return rtnPlugin({ ...common, ...(s.clip ? { clipSearch: true } : {}) });
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
