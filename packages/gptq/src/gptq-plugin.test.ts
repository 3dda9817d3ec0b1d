import fs from "node:fs";
import {
  type CalibrationSet,
  consecutiveWindows,
  type DequantizedLinear,
  encodeDocuments,
  quantizeModel,
  rtnPlugin,
  sampleWindows,
  splitOnBlankLines,
} from "@lowbit/calibration";
import { dequantizeMatrix, quantizeRTN } from "@lowbit/int4";
import { LINEAR_NAMES, Llama2cTokenizer, type LlamaModel, loadLlama2c } from "@lowbit/runtime";
import { dataFile, hasData } from "@lowbit/testing";
import { beforeAll, describe, expect, it } from "vitest";
import { gptqPlugin } from "./gptq-plugin";
import { gptqQuantize } from "./gptq-quantize";
import { HessianAccumulator } from "./hessian";
import { relativeOutputError } from "./test-helpers";

function logits(model: LlamaModel, data: CalibrationSet): Float32Array {
  let h = model.embed(data.tokens);
  for (let i = 0; i < model.nLayers; i++) h = model.runLayer(i, h, data.windows, data.seqLen);
  return model.head(h, data.tokens.length);
}

function meanKl(p: Float32Array, q: Float32Array, V: number): number {
  let kl = 0;
  const rows = p.length / V;
  const lse = (x: Float32Array, r: number) => {
    let mx = Number.NEGATIVE_INFINITY;
    for (let v = 0; v < V; v++) mx = Math.max(mx, x[r * V + v]!);
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(x[r * V + v]! - mx);
    return mx + Math.log(s);
  };
  for (let r = 0; r < rows; r++) {
    const lp = lse(p, r);
    const lq = lse(q, r);
    for (let v = 0; v < V; v++) {
      const a = p[r * V + v]! - lp;
      kl += Math.exp(a) * (a - (q[r * V + v]! - lq));
    }
  }
  return kl / rows;
}

describe.runIf(hasData)("GPTQ through the calibration driver on stories260K", () => {
  const load = () => loadLlama2c(dataFile("stories260K", "stories260K.bin"));
  let calib: CalibrationSet;
  let held: CalibrationSet;
  let stream: Int32Array;
  const stream4000 = () => stream.subarray(0, 4000);
  beforeAll(async () => {
    const tok = await Llama2cTokenizer.fromFile(dataFile("stories260K", "tok512.bin"));
    const docs = splitOnBlankLines(fs.readFileSync(dataFile("text", "tinystories-valid.txt"), "utf8"));
    stream = encodeDocuments(docs.slice(0, 120), tok);
    // the second run samples its windows again from the same seed
    calib = sampleWindows(stream4000(), { windows: 8, seqLen: 128, seed: 0, bosId: 1 });
    held = consecutiveWindows(stream.subarray(4000), 128, 4 * 128, 1);
  });

  it("is deterministic: two runs with the same seed give bit-identical weights", async () => {
    const a = await load();
    const b = await load();
    const opts = { bits: 4, groupSize: 32, actOrder: true };
    await quantizeModel(a, calib, gptqPlugin(opts));
    await quantizeModel(b, sampleWindows(stream4000(), { windows: 8, seqLen: 128, seed: 0, bosId: 1 }), gptqPlugin(opts));
    for (let i = 0; i < a.nLayers; i++) {
      for (const n of LINEAR_NAMES) {
        const qa = (a.getLinear(i, n) as DequantizedLinear).qm;
        const qb = (b.getLinear(i, n) as DequantizedLinear).qm;
        expect(Buffer.from(qa.q).equals(Buffer.from(qb.q))).toBe(true);
        expect(Buffer.from(qa.scales.buffer).equals(Buffer.from(qb.scales.buffer))).toBe(true);
        expect(Buffer.from(qa.zeros.buffer).equals(Buffer.from(qb.zeros.buffer))).toBe(true);
        expect(Buffer.from(qa.gIdx!.buffer).equals(Buffer.from(qb.gIdx!.buffer))).toBe(true);
      }
    }
  });

  it.each([{ trueSequential: true }, { trueSequential: false }])(
    "gives bit-identical weights whether the layer runs one window at a time or a whole chunk at once (true-sequential $trueSequential)",
    async ({ trueSequential }) => {
      const a = await load();
      const b = await load();
      const opts = { bits: 4, groupSize: 32, trueSequential };
      // chunks of 3 windows (the Hessian batches): 3 + 3 + 2 of the 8
      const ra = await quantizeModel(a, calib, gptqPlugin({ ...opts, stepWindows: 1 }), { batchWindows: 3, stepWindows: 1 });
      const rb = await quantizeModel(b, calib, gptqPlugin({ ...opts, stepWindows: 3 }), { batchWindows: 3, stepWindows: 8 });
      expect(ra.records.map((r) => r.info?.loss)).toEqual(rb.records.map((r) => r.info?.loss));
      for (let i = 0; i < a.nLayers; i++) {
        for (const n of LINEAR_NAMES) {
          const qa = (a.getLinear(i, n) as DequantizedLinear).qm;
          const qb = (b.getLinear(i, n) as DequantizedLinear).qm;
          expect(Buffer.from(qa.q).equals(Buffer.from(qb.q))).toBe(true);
          expect(Buffer.from(qa.scales.buffer).equals(Buffer.from(qb.scales.buffer))).toBe(true);
          expect(Buffer.from(qa.zeros.buffer).equals(Buffer.from(qb.zeros.buffer))).toBe(true);
        }
      }
    },
  );

  it.each([{ trueSequential: true }, { trueSequential: false }])(
    "w3 g32 (true-sequential $trueSequential) loses less than RTN on held-out text",
    async ({ trueSequential }) => {
      const fp = await load();
      const rtn = await load();
      const gq = await load();
      await quantizeModel(rtn, calib, rtnPlugin({ bits: 3, groupSize: 32 }));
      const rep = await quantizeModel(gq, calib, gptqPlugin({ bits: 3, groupSize: 32, trueSequential }));
      expect(rep.records).toHaveLength(35);
      expect(rep.records.every((r) => typeof r.info?.loss === "number" && r.info.dampRetries === 0)).toBe(true);
      expect(gq.getLinear(4, "ffn_down").kind).toBe("w3g43");
      const V = fp.config.vocabSize;
      const ref = logits(fp, held);
      const klRtn = meanKl(ref, logits(rtn, held), V);
      const klGptq = meanKl(ref, logits(gq, held), V);
      expect(klGptq).toBeLessThan(klRtn * 0.8);
    },
  );

  it.each(["attn_q", "ffn_down"] as const)(
    "on one real layer (%s of layer 2): ||XW^T - XQ^T||^2 / ||XW^T||^2 below RTN's, the same value on every run",
    async (name) => {
      const model = await load();
      let x: Float32Array | undefined;
      await quantizeModel(model, calib, {
        name: "capture",
        propagate: "fp",
        quantizeLayer(ctx) {
          if (ctx.layer === 2) x = ctx.captureInputs([name]).get(name)!;
        },
      });
      const lin = model.getLinear(2, name);
      const [rows, cols] = [lin.outFeatures, lin.inFeatures];
      const w = lin.dequantizedWeight();
      const tokens = x!.length / cols;
      const acc = new HessianAccumulator(cols);
      for (let t = 0; t < tokens; t += 128) acc.addBatch(x!.subarray(t * cols, (t + 128) * cols), 128);
      const g = cols === 172 ? 43 : 32;
      const err = (q: Float32Array) => relativeOutputError(w, q, x!, rows, cols, tokens);
      const e1 = err(dequantizeMatrix(gptqQuantize(w, rows, cols, acc.h, { bits: 4, groupSize: g, sym: false }).qm));
      const e2 = err(dequantizeMatrix(gptqQuantize(w, rows, cols, acc.h, { bits: 4, groupSize: g, sym: false }).qm));
      const eRtn = err(dequantizeMatrix(quantizeRTN(w, rows, cols, { bits: 4, groupSize: g, sym: false })));
      expect(e1).toBe(e2);
      expect(e1).toBeLessThan(eRtn * 0.8);
    },
  );
});
