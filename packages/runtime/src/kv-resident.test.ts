/**
 * The model's resident copy of a KV cache in kernel memory (ResidentKV) never changes results:
 * interleaving two caches and truncating and re-decoding give exactly the logits of one cache
 * decoded alone (also past the first capacity of 64 rows), and rows rewritten through the
 * reference path after a truncation are what the fast steps after them read.
 */
import { describe, expect, it } from "vitest";
import { Rng } from "@lowbit/tensor";
import type { LlamaConfigInput } from "./config";
import { randomModel, rowRelDiff, withRef } from "./kernels/test-util";
import type { LlamaModel } from "./model";


const INPUT: LlamaConfigInput = { dim: 32, hiddenDim: 48, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 41, maxSeqLen: 200 };

/** Logits of `prompt` then each of `steps` decoded one at a time on a fresh cache. */
function alone(model: LlamaModel, prompt: number[], steps: number[]): Float32Array[] {
  const cache = model.createCache();
  const out = [model.forward(prompt, cache, "last").slice()];
  for (const t of steps) out.push(model.forward([t], cache, "last").slice());
  return out;
}

const eq = (a: Float32Array[], b: Float32Array[]) => expect(b.map((x) => Array.from(x))).toEqual(a.map((x) => Array.from(x)));

describe("ResidentKV (KV cache rows kept in kernel memory between forward passes)", () => {
  const rng = new Rng(11);
  const tokens = (n: number) => Array.from({ length: n }, () => rng.int(INPUT.vocabSize));
  const pA = tokens(7);
  const sA = tokens(90); // past the first capacity of 64 rows
  const pB = tokens(12);
  const sB = tokens(90);

  it.each([
    ["two caches decoded in turns", "interleave"],
    ["a cache truncated and decoded again", "truncate"],
    ["a cache whose rows the reference path rewrites after a truncation", "ref-writes"],
  ] as const)("%s: same logits as without the resident copy", async (_name, how) => {
    const model = await randomModel(INPUT, 5);
    const wantA = alone(model, pA, sA);
    const wantB = alone(model, pB, sB);
    if (how === "interleave") {
      const a = model.createCache();
      const b = model.createCache();
      const gotA = [model.forward(pA, a, "last").slice()];
      const gotB = [model.forward(pB, b, "last").slice()];
      for (let i = 0; i < sA.length; i++) {
        gotA.push(model.forward([sA[i]!], a, "last").slice());
        gotB.push(model.forward([sB[i]!], b, "last").slice());
      }
      eq(wantA, gotA);
      eq(wantB, gotB);
    } else if (how === "truncate") {
      const c = model.createCache();
      model.forward(pB, c, "none");
      for (const t of sB.slice(0, 20)) model.forward([t], c, "none");
      c.truncate(0);
      const got = [model.forward(pA, c, "last").slice()];
      for (const t of sA) got.push(model.forward([t], c, "last").slice());
      eq(wantA, got);
    } else {
      // rows 10..19 after the prompt are rewritten by the reference path after a truncation; the
      // fast steps that follow must read those rows, not the resident copy of the first pass
      const c = model.createCache();
      model.forward(pA, c, "none");
      for (const t of sB.slice(0, 30)) model.forward([t], c, "none");
      c.truncate(pA.length + 10);
      withRef(() => {
        for (const t of sA.slice(0, 10)) model.forward([t], c, "none");
      });
      const got = sA.slice(10, 40).map((t) => model.forward([t], c, "last").slice());
      const want = withRef(() => {
        const r = model.createCache();
        model.forward([...pA, ...sB.slice(0, 10), ...sA.slice(0, 10)], r, "none");
        return sA.slice(10, 40).map((t) => model.forward([t], r, "last").slice());
      });
      for (const [i, g] of got.entries()) expect(rowRelDiff(g, want[i]!, g.length)).toBeLessThan(1e-4);
    }
    model.dispose();
  });
});
