/**
 * The decoder on the WebAssembly kernels against the same model on the reference twins (the "ref"
 * kernel backend), on random models with ragged head widths, and the batched paths' use of the
 * linears' GEMM (one call per linear with m = all tokens, never a loop of single-row calls).
 */
import { type Linear, Rng } from "@lowbit/tensor";
import { describe, expect, it } from "vitest";
import { RUNTIME_KERNEL_MODULES } from "../src/kernels/modules";
import { randomModel, rowRelDiff, withRef } from "../src/kernels/test-util";
import { evaluate, LINEAR_NAMES, type LinearName, type LlamaConfigInput } from "../src/index";

const CASES: Array<[string, LlamaConfigInput]> = [
  ["stories260K shape (head width 8, GQA 8/4, interleaved)", { dim: 64, hiddenDim: 172, nLayers: 2, nHeads: 8, nKvHeads: 4, vocabSize: 97 }],
  ["head width 10, 3 heads on 1, half-split RoPE", { dim: 30, hiddenDim: 50, nLayers: 2, nHeads: 3, nKvHeads: 1, vocabSize: 61, ropeStyle: "half" }],
  [
    "head width 6, sliding window 5 from layer 1, q/k/v biases",
    { dim: 36, hiddenDim: 44, nLayers: 2, nHeads: 6, nKvHeads: 2, vocabSize: 50, ropeStyle: "half", slidingWindow: 5, slidingWindowFromLayer: 1, attnBias: true },
  ],
  ["head width 18, multi-head, odd vocabulary", { dim: 36, hiddenDim: 70, nLayers: 1, nHeads: 2, nKvHeads: 2, vocabSize: 33 }],
];

describe("decoder on the WebAssembly kernels against the reference twins", () => {
  it.each(CASES)("%s: prefill, decode and runLayer windows within 1e-5 relative per logit row", async (_name, input) => {
    const model = await randomModel({ maxSeqLen: 64, ...input }, input.dim);
    const V = model.config.vocabSize;
    const rng = new Rng(3);
    const prompt = Array.from({ length: 29 }, () => rng.int(V));
    const steps = [rng.int(V), rng.int(V), rng.int(V)];
    const run = () => {
      const cache = model.createCache();
      const rows = [model.forward(prompt, cache, "all")];
      for (const t of steps) rows.push(model.forward([t], cache, "last"));
      const L = 9;
      let h = model.embed(prompt.slice(0, 3 * L));
      for (let i = 0; i < model.nLayers; i++) h = model.runLayer(i, h, 3, L);
      rows.push(model.head(h, 3 * L));
      return rows;
    };
    const fast = run();
    const ref = withRef(run);
    for (const [i, f] of fast.entries()) expect(rowRelDiff(f, ref[i]!, V)).toBeLessThan(1e-5);
    // and the reference backend really is a different code path: not bit-identical
    expect(fast.some((f, i) => f.some((x, j) => x !== ref[i]![j]))).toBe(true);
  });
});

/** Delegates to a Linear and records the row count of every forward call. */
class CountingLinear implements Linear {
  readonly calls: number[] = [];
  constructor(private readonly inner: Linear) {}
  get kind() {
    return this.inner.kind;
  }
  get inFeatures() {
    return this.inner.inFeatures;
  }
  get outFeatures() {
    return this.inner.outFeatures;
  }
  get storageBytes() {
    return this.inner.storageBytes;
  }
  forward(x: Float32Array, m: number, out?: Float32Array): Float32Array {
    this.calls.push(m);
    return this.inner.forward(x, m, out);
  }
  dequantizedWeight(): Float32Array {
    return this.inner.dequantizedWeight();
  }
}

describe("batched prefill and evaluation go through the linears' GEMM path", () => {
  it("prefill of T tokens: one call per linear with m = T; decode: m = 1; evaluate: m = window length per window", async () => {
    const model = await randomModel({ dim: 32, hiddenDim: 48, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 40, maxSeqLen: 64 }, 1);
    const counters = new Map<string, CountingLinear>();
    for (let l = 0; l < model.nLayers; l++) {
      for (const name of LINEAR_NAMES) {
        const c = new CountingLinear(model.getLinear(l, name));
        model.setLinear(l, name, c);
        counters.set(`${l}.${name}`, c);
      }
    }
    const cls = new CountingLinear(model.weights.output);
    model.setClassifier(cls);
    const reset = () => {
      for (const c of [...counters.values(), cls]) c.calls.length = 0;
    };
    const cache = model.createCache();
    model.forward(Array.from({ length: 37 }, (_, i) => i % 40), cache, "all");
    for (const c of counters.values()) expect(c.calls).toEqual([37]);
    expect(cls.calls).toEqual([37]);
    reset();
    model.forward([5], cache);
    for (const c of counters.values()) expect(c.calls).toEqual([1]);
    reset();
    const tokens = Array.from({ length: 3 * 16 + 5 }, (_, i) => (i * 7) % 40);
    evaluate(model, tokens, { windowLength: 16 });
    for (const [key, c] of counters) expect(c.calls, key).toEqual([16, 16, 16]);
    expect(cls.calls).toEqual([16, 16, 16]);
    reset();
    model.runLayer(0, model.embed(tokens.slice(0, 32)), 2, 16);
    const names: LinearName[] = [...LINEAR_NAMES];
    for (const n of names) expect(counters.get(`0.${n}`)!.calls).toEqual([32]);
  });
});

describe("runtime kernel modules", () => {
  it.each(RUNTIME_KERNEL_MODULES.map((m) => [m.name, m] as const))("%s has no data segment and imports only env.memory", (_name, mod) => {
    const bytes = Buffer.from(mod.base64, "base64");
    const module = new WebAssembly.Module(bytes);
    expect(WebAssembly.Module.imports(module)).toEqual([{ module: "env", name: "memory", kind: "memory" }]);
    // walk the sections: id 11 is the data section
    const ids: number[] = [];
    let p = 8;
    while (p < bytes.length) {
      ids.push(bytes[p]!);
      p++;
      let size = 0;
      let shift = 0;
      for (;;) {
        const b = bytes[p++]!;
        size |= (b & 0x7f) << shift;
        shift += 7;
        if (b < 0x80) break;
      }
      p += size;
    }
    expect(p).toBe(bytes.length);
    expect(ids).not.toContain(11);
  });
});
