import { Rng } from "@lowbit/tensor";
import { describe, expect, it } from "vitest";
import { awqPseudoQuantize } from "./awq-quantizer";
import { applyClip, searchClip } from "./clip";

function outputError(w: Float32Array, q: Float32Array, x: Float32Array, rows: number, cols: number): number {
  const tokens = x.length / cols;
  let e = 0;
  for (let t = 0; t < tokens; t++) {
    for (let r = 0; r < rows; r++) {
      let d = 0;
      for (let c = 0; c < cols; c++) d += x[t * cols + c]! * (w[r * cols + c]! - q[r * cols + c]!);
      e += d * d;
    }
  }
  return e;
}

describe("searchClip (llm-awq auto_clip_layer)", () => {
  const rows = 8;
  const cols = 64;
  const rng = new Rng(11);
  // heavy-tailed weights: a few large entries per row make the max a poor clipping point at 3 bits
  const w = Float32Array.from({ length: rows * cols }, () => rng.normal() * Math.exp(rng.normal()));
  const x = Float32Array.from({ length: 2048 * cols }, () => rng.normal());

  it.each([
    { bits: 3, groupSize: 32 },
    { bits: 4, groupSize: 16 },
  ])("w$bits g$groupSize: thresholds in [0.55, 1] x max and output error no worse than without clipping", ({ bits, groupSize }) => {
    const t = searchClip(w, rows, cols, x, { bits, groupSize });
    const ng = cols / groupSize;
    expect(t).toHaveLength(rows * ng);
    for (let r = 0; r < rows; r++) {
      for (let g = 0; g < ng; g++) {
        let amax = 0;
        for (let c = 0; c < groupSize; c++) amax = Math.max(amax, Math.abs(w[r * cols + g * groupSize + c]!));
        expect(t[r * ng + g]!).toBeLessThanOrEqual(Math.fround(amax));
        expect(t[r * ng + g]!).toBeGreaterThanOrEqual(0.55 * amax - 1e-6);
      }
    }
    const plain = new Float32Array(w.length);
    awqPseudoQuantize(w, rows, cols, { bits, groupSize }, plain);
    const clipped = new Float32Array(w.length);
    awqPseudoQuantize(applyClip(w.slice(), rows, cols, groupSize, t), rows, cols, { bits, groupSize }, clipped);
    expect(outputError(w, clipped, x, rows, cols)).toBeLessThan(outputError(w, plain, x, rows, cols));
  });

  it("samples every (tokens / n)-th token from the first (input_feat[:, 0::tokens // n])", () => {
    // 64 tokens, 16 sampled: tokens 0, 4, 8, ... The others are garbage that must not matter.
    const xs = new Float32Array(64 * cols);
    const kept = new Float32Array(16 * cols);
    for (let tk = 0; tk < 64; tk++) {
      for (let c = 0; c < cols; c++) {
        const v = tk % 4 === 0 ? x[tk * cols + c]! : 1000 * (c % 3);
        xs[tk * cols + c] = v;
        if (tk % 4 === 0) kept[(tk / 4) * cols + c] = v;
      }
    }
    const a = searchClip(w, rows, cols, xs, { bits: 3, groupSize: 32, nSampleTokens: 16 });
    const b = searchClip(w, rows, cols, kept, { bits: 3, groupSize: 32, nSampleTokens: 16 });
    expect(a).toEqual(b);
  });
});
