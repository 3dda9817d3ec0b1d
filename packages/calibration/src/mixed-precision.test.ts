import { LINEAR_NAMES, type LinearName } from "@lowbit/runtime";
import { hasData } from "@lowbit/testing";
import { describe, expect, it } from "vitest";
import { chooseBits } from "./mixed-precision";
import { bitsPerWeight } from "./plugin";
import { type LinearSensitivity, measureSensitivity } from "./sensitivity";
import { loadStories, smallCalibration } from "./test-model";

const sens = (name: LinearName, rows: number, e4: number, e8 = 0): LinearSensitivity => ({
  layer: 0,
  name,
  rows,
  cols: 64,
  error: { 4: e4, 8: e8 },
});

describe("chooseBits", () => {
  const layers = [sens("attn_q", 64, 0.5), sens("attn_k", 64, 0.1), sens("attn_v", 64, 0.9), sens("attn_output", 64, 0.2)];
  const low = bitsPerWeight(4, 32);
  const high = bitsPerWeight(8, 32);

  it.each([
    { budget: low, eight: [] as string[] },
    { budget: (3 * low + high) / 4, eight: ["attn_v"] },
    { budget: (2 * low + 2 * high) / 4, eight: ["attn_v", "attn_q"] },
    { budget: high, eight: ["attn_v", "attn_q", "attn_output", "attn_k"] },
  ])("budget $budget keeps the most sensitive at 8 bits: $eight", ({ budget, eight }) => {
    const plan = chooseBits(layers, { budget, groupSize: 32 });
    const at8 = layers.filter((l) => plan.bits.get(`0.${l.name}`) === 8).map((l) => l.name);
    expect(at8.sort()).toEqual([...eight].sort());
    expect(plan.bitsPerWeight).toBeLessThanOrEqual(budget + 1e-9);
    expect(plan.bitsFor(0, "attn_v")).toBe(eight.includes("attn_v") ? 8 : 4);
  });

  it("weighs sensitivity by size: a big layer costs more bits to promote", () => {
    const mixed = [sens("ffn_gate", 256, 0.6), sens("attn_k", 32, 0.4)];
    const total = 256 * 64 + 32 * 64;
    const budget = (low * total + (high - low) * 32 * 64) / total; // room for the small one only
    const plan = chooseBits(mixed, { budget, groupSize: 32 });
    expect(plan.bits.get("0.attn_k")).toBe(8);
    expect(plan.bits.get("0.ffn_gate")).toBe(4);
  });

  it("rejects a budget below the lowest width", () => {
    expect(() => chooseBits(layers, { budget: 4, groupSize: 32 })).toThrow(expect.objectContaining({ code: "E_INVALID_ARGUMENT" }));
  });
});

describe.runIf(hasData)("measureSensitivity on stories260K", () => {
  it("measures every linear, with lower error at more bits, and feeds chooseBits", async () => {
    const model = await loadStories();
    const before = model.getLinear(1, "ffn_up").dequantizedWeight();
    const s = await measureSensitivity(model, await smallCalibration(2, 32), { bits: [3, 8], groupSize: 32, windows: 2 });
    expect(s).toHaveLength(5 * LINEAR_NAMES.length);
    let ordered = 0;
    for (const x of s) {
      expect(x.error[8]).toBeGreaterThanOrEqual(0);
      if (x.error[3]! > x.error[8]!) ordered++;
    }
    expect(ordered).toBe(s.length);
    // the model is left as it was
    expect(model.getLinear(1, "ffn_up").dequantizedWeight()).toEqual(before);
    const plan = chooseBits(s, { budget: 5, groupSize: 32 });
    expect(plan.bitsPerWeight).toBeLessThanOrEqual(5);
    expect([...plan.bits.values()].filter((b) => b === 8).length).toBeGreaterThan(0);
  });
});
