import { effectiveGroupSize, Int4Linear, Q4_0Linear, Q4_1Linear, quantizeGgufInt4, quantizeRTN } from "@lowbit/int4";
import { DynamicW8A8Linear, Int8WeightOnlyLinear, Q8_0Linear } from "@lowbit/int8";
import { dataFile, hasData } from "@lowbit/testing";
import type { Linear } from "@lowbit/tensor";
import { beforeAll, describe, expect, it } from "vitest";
import { evaluate, generate, LINEAR_NAMES, type LlamaModel, loadLlama2c } from "../src/index";

type Make = (w: Float32Array, out: number, inp: number) => Linear | undefined;

/** Relative RMS error of b against a. */
function relRmse(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += a[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

const blockOk = (inp: number) => inp % 32 === 0;

/**
 * Backends with the tolerance on the relative RMS error of all logits of a 32-token prompt, per
 * bit width. Block formats (Q8_0, Q4_x) need rows of a multiple of 32: ffn_down (172) stays f32
 * there, as llama.cpp keeps such tensors in a wider type.
 */
const BACKENDS: Array<[string, number, string, Make]> = [
  ["int8 weight-only per-channel", 0.015, "int8-w", (w, o, i) => Int8WeightOnlyLinear.fromWeight(w, o, i)],
  ["dynamic W8A8 (per-tensor activations)", 0.04, "w8a8", (w, o, i) => DynamicW8A8Linear.fromWeight(w, o, i)],
  ["Q8_0", 0.015, "q8_0", (w, o, i) => (blockOk(i) ? Q8_0Linear.fromWeight(w, o, i) : undefined)],
  [
    "Int4Linear RTN g32 asym",
    0.15,
    "int4",
    (w, o, i) => new Int4Linear(quantizeRTN(w, o, i, { bits: 4, groupSize: effectiveGroupSize(i, 32), sym: false })),
  ],
  [
    "Int4Linear RTN g32 asym, int8 activations (W4A8)",
    0.15,
    "int4",
    (w, o, i) =>
      new Int4Linear(quantizeRTN(w, o, i, { bits: 4, groupSize: effectiveGroupSize(i, 32), sym: false }), { activations: "int8" }),
  ],
  ["Q4_0", 0.15, "q4_0", (w, o, i) => (blockOk(i) ? new Q4_0Linear(quantizeGgufInt4("q4_0", w, o, i), o, i) : undefined)],
  ["Q4_1", 0.15, "q4_1", (w, o, i) => (blockOk(i) ? new Q4_1Linear(quantizeGgufInt4("q4_1", w, o, i), o, i) : undefined)],
];

function quantizeModel(model: LlamaModel, make: Make): number {
  let swapped = 0;
  for (let l = 0; l < model.nLayers; l++) {
    for (const name of LINEAR_NAMES) {
      const f = model.getLinear(l, name);
      const q = make(f.dequantizedWeight(), f.outFeatures, f.inFeatures);
      if (q) {
        model.setLinear(l, name, q);
        swapped++;
      }
    }
  }
  return swapped;
}

describe.runIf(hasData)("quantized linear backends on stories260K", () => {
  let f32: LlamaModel;
  const prompt = Array.from({ length: 32 }, (_, i) => (i === 0 ? 1 : 259 + ((i * 97) % 250)));
  let ref: Float32Array;
  beforeAll(async () => {
    f32 = await loadLlama2c(dataFile("stories260K", "stories260K.bin"));
    ref = f32.forward(prompt, f32.createCache(), "all");
  });

  it.each(BACKENDS)("%s: logits within %s relative RMS error of f32", async (_name, tol, kind, make) => {
    const m = await loadLlama2c(dataFile("stories260K", "stories260K.bin"));
    const swapped = quantizeModel(m, make);
    expect(swapped).toBeGreaterThanOrEqual(m.nLayers * 6);
    expect(m.getLinear(0, "attn_q").kind.startsWith(kind)).toBe(true);
    const err = relRmse(ref, m.forward(prompt, m.createCache(), "all"));
    expect(err).toBeLessThan(tol);
    expect(err).toBeGreaterThan(0);
    expect(m.storageBytes).toBeLessThan(f32.storageBytes);
  });

  it("mixed precision: int4 attention, int8 feed-forward, per layer; KL and top-1 against f32 are reported sensibly", async () => {
    const m = await loadLlama2c(dataFile("stories260K", "stories260K.bin"));
    for (let l = 0; l < m.nLayers; l++) {
      for (const name of LINEAR_NAMES) {
        const f = m.getLinear(l, name);
        const w = f.dequantizedWeight();
        const q = name.startsWith("attn")
          ? new Int4Linear(quantizeRTN(w, f.outFeatures, f.inFeatures, { bits: 4, groupSize: 32, sym: true }))
          : Int8WeightOnlyLinear.fromWeight(w, f.outFeatures, f.inFeatures);
        m.setLinear(l, name, q);
      }
    }
    expect(m.backends()[0]).toMatchObject({ attn_q: "int4-g32", ffn_up: "int8-w" });
    const tokens = generate(f32, [1], { maxTokens: 127, stopTokens: [] }).tokens;
    const r = evaluate(m, [1, ...tokens], { windowLength: 64, reference: f32 });
    expect(r.kl!).toBeGreaterThan(0);
    expect(r.kl!).toBeLessThan(0.08);
    expect(r.top1!).toBeGreaterThan(0.8);
  });

  it("setLinear rejects a backend of the wrong shape, naming the tensor and both shapes", () => {
    const wrong = Int8WeightOnlyLinear.fromWeight(new Float32Array(64 * 32), 32, 64);
    expect(() => f32.setLinear(0, "attn_q", wrong)).toThrow(/blk\.0\.attn_q\.weight.*\[64, 64\].*\[32, 64\]/);
  });
});
