/**
 * The decoder's own kernels split across kernel threads (attention by query heads, RMSNorm and
 * RoPE by rows, SwiGLU and residual adds by element ranges) give bit for bit what one thread
 * gives, alone and inside whole forward passes (prefill, decode steps, runLayer windows) with f32
 * and Q4_0 linears. Before every call being checked the same shapes run on other inputs, so the
 * kernel scratch holds wrong values: a part that was skipped or wrote the wrong range shows.
 */
import { quantizeQ4_0Ref, Q4_0TiledLinear } from "@lowbit/int4";
import { getKernelThreads, kernelThreadsInfo, kernelThreadsReady, Rng, setKernelThreads, shutdownKernelThreads } from "@lowbit/tensor";
import { bitsEqual } from "@lowbit/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type AttentionShape, attentionParts, causalAttention, ropeAttention } from "../src/attention";
import { LINEAR_NAMES, type LlamaConfigInput, type LlamaModel } from "../src/index";
import { overrideSplitThreshold } from "../src/kernels/split";
import { normal, randomModel as randomF32Model } from "../src/kernels/test-util";
import { addVectors, RopeTable, rmsNorm, siluMul } from "../src/ops";

// [nHeads, nKvHeads, headDim, T, startPos, window]: prefill, decode, GQA groups split and not, ragged widths
const ATTENTION: Array<[number, number, number, number, number, number | undefined]> = [
  [12, 12, 64, 128, 0, undefined], // the 100M model's prefill of 128 tokens
  [12, 12, 64, 1, 200, undefined], // its decode step
  [8, 4, 8, 64, 0, undefined], // stories260K: GQA 8/4
  [3, 1, 7, 13, 5, undefined], // three heads on one key/value head (split inside a group)
  [6, 2, 10, 2, 37, undefined], // two new rows after a cache
  [5, 5, 18, 17, 50, 16], // sliding window with a cache, head count not a multiple of 2 or 3
];

type Outputs = Float32Array[];

/** Every single op of the decoder on one set of inputs (seeded), outputs in a fixed order. */
function runOps(seed: number): Outputs {
  const rng = new Rng(seed);
  const out: Outputs = [];
  for (const [nHeads, nKv, hd, T, startPos, window] of ATTENTION) {
    const shape: AttentionShape = { nHeads, nKvHeads: nKv, headDim: hd, window };
    const q = normal(rng, T * nHeads * hd, 2);
    const k = normal(rng, (startPos + T) * nKv * hd);
    const v = normal(rng, k.length);
    const o = new Float32Array(q.length);
    causalAttention(shape, q, 0, T, k, v, 0, startPos, o);
    out.push(o);
  }
  // RoPE + attention as the model runs them: windows of 16, and a cache continued at position 9
  const shape: AttentionShape = { nHeads: 6, nKvHeads: 3, headDim: 12 };
  const rope = new RopeTable(12, 10000, "half");
  const rows = 48;
  const q = normal(rng, rows * 72);
  const k = normal(rng, rows * 36);
  const v = normal(rng, rows * 36);
  out.push(ropeAttention(shape, rope, 0, q, k, v, rows, { kind: "windows", seqLen: 16 }));
  const qr = q.slice();
  rope.rotateRows(qr, rows, 72, 6, 9);
  out.push(qr);
  // row-wise and element-wise ops, ragged sizes
  for (const [r, dim] of [
    [128, 768],
    [7, 33],
    [3, 5],
  ] as const) {
    out.push(rmsNorm(normal(rng, r * dim), normal(rng, dim), r, dim, 1e-5));
    out.push(siluMul(normal(rng, r * dim, 3), normal(rng, r * dim)));
    out.push(addVectors(normal(rng, r * dim), normal(rng, r * dim)));
  }
  return out;
}

async function randomModel(input: LlamaConfigInput, seed: number, q4: boolean): Promise<LlamaModel> {
  const model = await randomF32Model(input, seed);
  const cfg = model.config;
  if (q4) {
    for (let l = 0; l < cfg.nLayers; l++) {
      for (const name of LINEAR_NAMES) {
        const w = model.getLinear(l, name);
        const bytes = quantizeQ4_0Ref(w.dequantizedWeight());
        model.setLinear(l, name, new Q4_0TiledLinear(bytes, w.outFeatures, w.inFeatures)).dispose?.();
      }
    }
  }
  return model;
}

const MODELS: Array<[string, LlamaConfigInput, boolean]> = [
  ["f32, GQA 8/4, head width 8", { dim: 64, hiddenDim: 172, nLayers: 2, nHeads: 8, nKvHeads: 4, vocabSize: 97 }, false],
  ["Q4_0, 6 heads of 16, sliding window 7", { dim: 96, hiddenDim: 160, nLayers: 2, nHeads: 6, nKvHeads: 2, vocabSize: 50, slidingWindow: 7 }, true],
];

/** Prefill (all logits), three decode steps and runLayer over 3 windows of 9, for one prompt seed. */
function runModel(model: LlamaModel, seed: number): Outputs {
  const V = model.config.vocabSize;
  const rng = new Rng(seed);
  const prompt = Array.from({ length: 29 }, () => rng.int(V));
  const cache = model.createCache();
  const out = [model.forward(prompt, cache, "all")];
  for (let i = 0; i < 3; i++) out.push(model.forward([rng.int(V)], cache, "last"));
  let h = model.embed(prompt.slice(0, 27));
  for (let i = 0; i < model.nLayers; i++) h = model.runLayer(i, h, 3, 9);
  out.push(h);
  return out;
}

describe("the decoder's kernels on 2 and 3 kernel threads equal one thread bit for bit", () => {
  let models: LlamaModel[] = [];
  let single: { ops: Outputs; models: Outputs[] };

  beforeAll(async () => {
    expect(getKernelThreads()).toBe(1);
    models = await Promise.all(MODELS.map(([, input, q4], i) => randomModel({ maxSeqLen: 64, ...input }, 10 + i, q4)));
    single = { ops: runOps(1), models: models.map((m) => runModel(m, 1)) };
  });
  afterEach(() => overrideSplitThreshold(undefined));
  afterAll(async () => {
    await shutdownKernelThreads();
    for (const m of models) m.dispose();
  });

  it.each([2, 3])("%i threads, every call split as far as it goes", async (t) => {
    expect(setKernelThreads(t, { spinMicros: 50 })).toBe(t);
    expect(await kernelThreadsReady()).toBe(t);
    overrideSplitThreshold(1);
    runOps(2); // other values into the same scratch
    const before = kernelThreadsInfo().dispatches;
    const ops = runOps(1);
    // attention cases + ropeAttention windows (3 windows, RoPE of q and k) + rotateRows + 3 x 3 ops
    expect(kernelThreadsInfo().dispatches - before).toBe(ATTENTION.length + 5 + 1 + 9);
    for (const [i, o] of ops.entries()) expect(bitsEqual(o, single.ops[i]!), `op output ${i}`).toBe(true);
    for (const [mi, m] of models.entries()) {
      runModel(m, 2);
      const got = runModel(m, 1);
      for (const [i, o] of got.entries()) expect(bitsEqual(o, single.models[mi]![i]!), `${MODELS[mi]![0]}: output ${i}`).toBe(true);
    }
  });

  it("with the default thresholds: a 128-token prefill's attention is split, a decode step over a short context is not", async () => {
    setKernelThreads(2, { spinMicros: 50 });
    await kernelThreadsReady();
    const shape: AttentionShape = { nHeads: 12, nKvHeads: 12, headDim: 64 };
    expect(attentionParts(shape, 128, 0)).toBe(2);
    expect(attentionParts(shape, 1, 128)).toBe(1);
    expect(attentionParts(shape, 1, 2048)).toBe(2); // a long context's decode step is
    expect(attentionParts({ ...shape, window: 16 }, 8, 0)).toBe(1);
    const before = kernelThreadsInfo().dispatches;
    const ops = runOps(1);
    expect(kernelThreadsInfo().dispatches).toBeGreaterThan(before);
    for (const [i, o] of ops.entries()) expect(bitsEqual(o, single.ops[i]!), `op output ${i}`).toBe(true);
    await shutdownKernelThreads();
    expect(attentionParts(shape, 128, 0)).toBe(1);
  });
});
