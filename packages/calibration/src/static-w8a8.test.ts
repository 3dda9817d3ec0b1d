import { Rng } from "@lowbit/tensor";
import { hasData } from "@lowbit/testing";
import { describe, expect, it } from "vitest";
import { consecutiveWindows } from "./dataset";
import { quantizeModel } from "./driver";
import { HistogramObserver } from "./histogram-observer";
import { computeQParams } from "./qparams";
import { StaticW8A8Linear, staticW8A8Plugin } from "./static-w8a8";
import { loadStories, smallCalibration, storiesStream } from "./test-model";

function rand(n: number, seed: number, scale = 1): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.normal() * scale);
}

describe("StaticW8A8Linear", () => {
  it.each([
    { m: 1, n: 5, k: 37 },
    { m: 3, n: 17, k: 64 },
    { m: 9, n: 8, k: 130 },
  ])("int8 GEMM path equals its TypeScript twin exactly (m $m, n $n, k $k)", ({ m, n, k }) => {
    const w = rand(n * k, 1, 0.2);
    const x = rand(m * k, 2);
    const bias = rand(n, 3);
    const lin = new StaticW8A8Linear(w, n, k, computeQParams(-2.5, 3), bias);
    expect(lin.forward(x, m)).toEqual(lin.forwardRef(x, m));
    lin.dispose();
  });

  it("is close to the float product for activations inside the calibrated range", () => {
    const [m, n, k] = [8, 16, 96];
    const w = rand(n * k, 4, 0.1);
    const x = rand(m * k, 5).map((v) => Math.max(-3, Math.min(3, v)));
    const lin = new StaticW8A8Linear(w, n, k, computeQParams(-3, 3));
    const y = lin.forward(x, m);
    let num = 0;
    let den = 0;
    for (let r = 0; r < m; r++) {
      for (let o = 0; o < n; o++) {
        let s = 0;
        for (let i = 0; i < k; i++) s += x[r * k + i]! * w[o * k + i]!;
        num += (s - y[r * n + o]!) ** 2;
        den += s * s;
      }
    }
    expect(num / den).toBeLessThan(1e-3); // 8-bit weights and activations: ~1e-4 relative MSE
    expect(lin.kind).toBe("w8a8-static");
    expect(lin.storageBytes).toBe(n * k + n * 4 + 8);
  });
});

describe.runIf(hasData)("static W8A8 end to end on stories260K", () => {
  it.each([
    { name: "min/max", observer: undefined },
    { name: "histogram (MSE)", observer: () => new HistogramObserver() },
  ])("with the $name observer stays close to FP32", async ({ observer }) => {
    const evalSet = consecutiveWindows((await storiesStream()).subarray(20000), 64, 4 * 64, 1);
    const nll = (m: Awaited<ReturnType<typeof loadStories>>) => {
      let h = m.embed(evalSet.tokens);
      for (let i = 0; i < m.nLayers; i++) h = m.runLayer(i, h, evalSet.windows, 64);
      const logits = m.head(h, evalSet.tokens.length);
      let s = 0;
      const V = m.config.vocabSize;
      for (let w = 0; w < evalSet.windows; w++) {
        for (let t = 0; t < 63; t++) {
          const o = (w * 64 + t) * V;
          let max = Number.NEGATIVE_INFINITY;
          for (let v = 0; v < V; v++) max = Math.max(max, logits[o + v]!);
          let z = 0;
          for (let v = 0; v < V; v++) z += Math.exp(logits[o + v]! - max);
          s += max + Math.log(z) - logits[o + evalSet.tokens[w * 64 + t + 1]!]!;
        }
      }
      return s / (evalSet.windows * 63);
    };
    const fp = await loadStories();
    const q = await loadStories();
    const rep = await quantizeModel(q, await smallCalibration(8, 64), staticW8A8Plugin(observer ? { observer } : {}));
    expect(q.getLinear(3, "ffn_down").kind).toBe("w8a8-static");
    expect(rep.records.every((r) => r.info?.observer !== undefined)).toBe(true);
    const dfp = nll(fp);
    const dq = nll(q);
    expect(Math.abs(Math.exp(dq) / Math.exp(dfp) - 1)).toBeLessThan(0.03);
  });

  it("is deterministic: two runs with the same calibration seed give bit-identical weights and scales", async () => {
    const runOnce = async () => {
      const m = await loadStories();
      await quantizeModel(m, await smallCalibration(4, 64, 7), staticW8A8Plugin({ observer: () => new HistogramObserver() }));
      return m;
    };
    const a = await runOnce();
    const b = await runOnce();
    for (let i = 0; i < a.nLayers; i++) {
      for (const n of ["attn_q", "ffn_down"] as const) {
        const la = a.getLinear(i, n) as StaticW8A8Linear;
        const lb = b.getLinear(i, n) as StaticW8A8Linear;
        expect(Buffer.from(la.wq.buffer).equals(Buffer.from(lb.wq.buffer))).toBe(true);
        expect(Buffer.from(la.wScale.buffer).equals(Buffer.from(lb.wScale.buffer))).toBe(true);
        expect(la.act).toEqual(lb.act);
      }
    }
  });
});
