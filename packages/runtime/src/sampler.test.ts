import { isLowbitError } from "@lowbit/tensor";
import { describe, expect, it } from "vitest";
import { Sampler } from "./sampler";

const logits = Float32Array.from([1, 3, 2.5, -1, 0, 2.9]);

function histogram(s: Sampler, n: number): number[] {
  const h = new Array(logits.length).fill(0);
  for (let i = 0; i < n; i++) h[s.sample(logits)]++;
  return h;
}

describe("Sampler", () => {
  it.each([{}, { temperature: 0 }, { temperature: 1.5, topK: 1 }])("greedy for %j", (opts) => {
    expect(new Sampler(opts).sample(logits)).toBe(1);
  });

  it("the same seed gives the same draws; another seed differs", () => {
    const draw = (seed: number) => {
      const s = new Sampler({ temperature: 1, seed });
      return Array.from({ length: 50 }, () => s.sample(logits));
    };
    expect(draw(7)).toEqual(draw(7));
    expect(draw(1)).not.toEqual(draw(2));
  });

  it("temperature 1 draws in proportion to softmax (chi-square style bound)", () => {
    const n = 20000;
    const h = histogram(new Sampler({ temperature: 1, seed: 3 }), n);
    const z = Array.from(logits).reduce((a, x) => a + Math.exp(x), 0);
    for (let i = 0; i < logits.length; i++) {
      const p = Math.exp(logits[i]!) / z;
      const sd = Math.sqrt(n * p * (1 - p));
      expect(Math.abs(h[i]! - n * p)).toBeLessThan(5 * sd + 1);
    }
  });

  it("top-k keeps only the k most likely tokens", () => {
    const h = histogram(new Sampler({ temperature: 2, topK: 2, seed: 4 }), 2000);
    expect(h[1]! + h[5]!).toBe(2000);
    expect(h[1]!).toBeGreaterThan(0);
    expect(h[5]!).toBeGreaterThan(0);
  });

  it("top-p keeps the smallest prefix whose mass reaches p", () => {
    // probabilities at T=1: idx1 0.368, idx5 0.333, idx2 0.223 ...; p=0.6 keeps {1, 5}, p=0.8 adds 2
    const h = histogram(new Sampler({ temperature: 1, topP: 0.6, seed: 5 }), 2000);
    expect(h[1]! + h[5]!).toBe(2000);
    const h2 = histogram(new Sampler({ temperature: 1, topP: 0.8, seed: 5 }), 2000);
    expect(h2[1]! + h2[5]! + h2[2]!).toBe(2000);
    expect(h2[2]!).toBeGreaterThan(0);
  });

  it.each([{ temperature: -1 }, { topK: 1.5 }, { topP: 0 }, { topP: 1.2 }])("rejects %j", (opts) => {
    let err: unknown;
    try {
      new Sampler(opts);
    } catch (e) {
      err = e;
    }
    expect(isLowbitError(err)).toBe(true);
  });
});
