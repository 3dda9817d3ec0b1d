import { LowbitError } from "@lowbit/tensor";
import { effectiveGroupSize } from "@lowbit/int4";
import type { LinearName } from "@lowbit/runtime";
import { bitsPerWeight } from "./plugin";
import type { LinearSensitivity } from "./sensitivity";

export interface BitsPlan {
  /** Bits of each linear, keyed "layer.name" (e.g. "3.ffn_down"). */
  bits: Map<string, number>;
  /** Average storage bits per weight of the plan (codes, scales and zero points). */
  bitsPerWeight: number;
  /** Sum of the chosen sensitivities (an estimate of the total error). */
  estimatedError: number;
  /** For plug-ins' `bitsFor` option. */
  bitsFor(layer: number, name: LinearName): number | undefined;
}

export interface ChooseBitsOptions {
  /** Average bits per weight the plan may use (including group overhead). */
  budget: number;
  /** Requested group size (as for the sensitivity measurement). */
  groupSize: number;
  /** Bit widths to choose from; default the ones measured. */
  choices?: readonly number[];
}

/**
 * Chooses bits per linear under a bits-per-weight budget: every linear starts at the lowest
 * width, then the upgrade with the largest error reduction per added bit of storage is applied
 * while the budget allows, so the most sensitive layers (per weight) end at 8 bits. Throws
 * E_INVALID_ARGUMENT when even the lowest width exceeds the budget.
 */
export function chooseBits(sens: readonly LinearSensitivity[], options: ChooseBitsOptions): BitsPlan {
  if (sens.length === 0) throw new LowbitError("E_INVALID_ARGUMENT", "chooseBits: no sensitivities");
  const choices = [...(options.choices ?? Object.keys(sens[0]!.error).map(Number))].sort((a, b) => a - b);
  for (const s of sens) {
    for (const b of choices) {
      if (!(b in s.error)) {
        throw new LowbitError("E_INVALID_ARGUMENT", `chooseBits: ${s.layer}.${s.name} has no sensitivity measured at ${b} bits`);
      }
    }
  }
  const params = sens.map((s) => s.rows * s.cols);
  const totalParams = params.reduce((a, b) => a + b, 0);
  const bpw = (s: LinearSensitivity, b: number) => bitsPerWeight(b, effectiveGroupSize(s.cols, options.groupSize));
  const level = sens.map(() => 0);
  let used = sens.reduce((acc, s, i) => acc + bpw(s, choices[0]!) * params[i]!, 0);
  const budgetBits = options.budget * totalParams;
  if (used > budgetBits * (1 + 1e-12)) {
    throw new LowbitError(
      "E_INVALID_ARGUMENT",
      `chooseBits: budget ${options.budget} bits/weight is below ${(used / totalParams).toFixed(4)}, the cost of ${choices[0]} bits everywhere`,
    );
  }
  for (;;) {
    let best = -1;
    let bestGain = 0;
    let bestCost = 0;
    sens.forEach((s, i) => {
      const l = level[i]!;
      if (l + 1 >= choices.length) return;
      const cost = (bpw(s, choices[l + 1]!) - bpw(s, choices[l]!)) * params[i]!;
      if (used + cost > budgetBits * (1 + 1e-12)) return;
      const gain = (s.error[choices[l]!]! - s.error[choices[l + 1]!]!) / cost;
      if (gain > 0 && (best < 0 || gain > bestGain)) {
        best = i;
        bestGain = gain;
        bestCost = cost;
      }
    });
    if (best < 0) break;
    level[best]!++;
    used += bestCost;
  }
  const bits = new Map<string, number>();
  let err = 0;
  sens.forEach((s, i) => {
    const b = choices[level[i]!]!;
    bits.set(`${s.layer}.${s.name}`, b);
    err += s.error[b]!;
  });
  return {
    bits,
    bitsPerWeight: used / totalParams,
    estimatedError: err,
    bitsFor: (layer, name) => bits.get(`${layer}.${name}`),
  };
}
