import { dequantizeMatrix, quantizeRTN } from "@lowbit/int4";
import { LINEAR_NAMES, type LinearName, loadLlama2c } from "@lowbit/runtime";
import { dataFile, hasData } from "@lowbit/testing";
import { describe, expect, it } from "vitest";
import { quantizeModel } from "./driver";
import type { LayerContext, LayerPlugin } from "./plugin";
import { rtnPlugin } from "./rtn-plugin";
import { loadStories, smallCalibration } from "./test-model";

/** RMSNorm exactly as the runtime computes it. */
function rmsNorm(x: Float32Array, w: Float32Array, rows: number, dim: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[r * dim + i]! ** 2;
    const inv = 1 / Math.sqrt(ss / dim + 1e-5);
    for (let i = 0; i < dim; i++) out[r * dim + i] = x[r * dim + i]! * inv * w[i]!;
  }
  return out;
}

/** Replaces every linear by an all-zero f32 linear: the layer becomes the identity (residuals only). */
function zeroPlugin(propagate: "fp" | "quantized", seen: Float32Array[]): LayerPlugin {
  return {
    name: "zero",
    propagate,
    quantizeLayer(ctx: LayerContext) {
      seen.push(ctx.inputs.slice());
      for (const n of LINEAR_NAMES) ctx.setWeight(n, new Float32Array(ctx.weight(n).length));
    },
  };
}

describe.runIf(hasData)("quantizeModel (the sequential driver) on stories260K", () => {
  it("gives a plug-in each linear's real inputs (attn_q of layer 0 = RMSNorm(embedding))", async () => {
    const model = await loadStories();
    const data = await smallCalibration(3, 32);
    let captured: Map<LinearName, Float32Array> | undefined;
    let chunks = 0;
    await quantizeModel(
      model,
      data,
      {
        name: "probe",
        quantizeLayer(ctx) {
          if (ctx.layer !== 0) return;
          captured = ctx.captureInputs(["attn_q", "attn_k", "ffn_down"]);
          ctx.forward({ capture: ["ffn_gate"], onCapture: () => chunks++ });
        },
      },
      { batchWindows: 2 },
    );
    const dim = model.config.dim;
    const expected = rmsNorm(model.embed(data.tokens), model.layerNorms(0).attnNorm, 96, dim);
    const q = captured!.get("attn_q")!;
    expect(q.length).toBe(96 * dim);
    let maxDiff = 0;
    for (let i = 0; i < q.length; i++) maxDiff = Math.max(maxDiff, Math.abs(q[i]! - expected[i]!));
    expect(maxDiff).toBeLessThan(1e-5);
    expect(captured!.get("attn_k")).toBe(q); // shared input, one array
    expect(captured!.get("ffn_down")!.length).toBe(96 * model.config.hiddenDim);
    expect(chunks).toBe(2); // 3 windows in chunks of 2
  });

  it("runs a chunk in steps (stepWindows): the same outputs and inputs, parts carrying their chunk's rows in order", async () => {
    const model = await loadStories();
    const data = await smallCalibration(5, 16);
    const parts: string[] = [];
    let same = false;
    await quantizeModel(
      model,
      data,
      {
        name: "steps",
        quantizeLayer(ctx) {
          if (ctx.layer !== 1) return;
          const inputs = (step?: number) => {
            const xs: Float32Array[] = [];
            const out = ctx.forward({
              collectOutput: true,
              capture: ["ffn_down"],
              ...(step ? { stepWindows: step } : {}),
              onCapture: (a) => {
                xs.push(a.input);
                if (step) parts.push(`${a.rowOffset}+${a.rows}/${a.chunkRows} (${a.windows} of ${a.chunkWindows})`);
              },
            })!;
            const x = new Float32Array(xs.reduce((n, v) => n + v.length, 0));
            let o = 0;
            for (const v of xs) {
              x.set(v, o);
              o += v.length;
            }
            return { out, x };
          };
          const whole = inputs();
          const stepped = inputs(2);
          same =
            Buffer.from(whole.out.buffer).equals(Buffer.from(stepped.out.buffer)) &&
            Buffer.from(whole.x.buffer).equals(Buffer.from(stepped.x.buffer));
          expect(() => ctx.forward({ stepWindows: 0 })).toThrow(/stepWindows/);
        },
      },
      { batchWindows: 3 },
    );
    expect(same).toBe(true);
    // chunks of 3 + 2 windows of 16 tokens, in steps of 2 windows
    expect(parts).toEqual(["0+32/48 (2 of 3)", "32+16/48 (1 of 3)", "0+32/32 (2 of 2)"]);
  });

  it.each([1, 2, 5])(
    "computes every layer's outputs the same in steps of %i window(s) (in place), leaving startInputs untouched",
    async (stepWindows) => {
      const data = await smallCalibration(5, 16);
      const probe = (seen: Float32Array[]): LayerPlugin => ({
        name: "probe-rtn",
        propagate: "quantized",
        quantizeLayer(ctx) {
          seen.push(ctx.inputs.slice());
          for (const n of LINEAR_NAMES) {
            const l = ctx.model.getLinear(ctx.layer, n);
            ctx.setWeight(n, dequantizeMatrix(quantizeRTN(ctx.weight(n), l.outFeatures, l.inFeatures, { bits: 4, groupSize: l.inFeatures === 172 ? 43 : 32, sym: false })));
          }
        },
      });
      const ref: Float32Array[] = [];
      await quantizeModel(await loadStories(), data, probe(ref), { stepWindows: 5 });
      const seen: Float32Array[] = [];
      await quantizeModel(await loadStories(), data, probe(seen), { stepWindows });
      expect(seen.map((x, i) => Buffer.from(x.buffer).equals(Buffer.from(ref[i]!.buffer)))).toEqual([true, true, true, true, true]);
      const start = ref[2]!.slice();
      const resumed: Float32Array[] = [];
      await quantizeModel(await loadStories(), data, probe(resumed), { stepWindows, startLayer: 2, startInputs: start });
      expect(Buffer.from(start.buffer).equals(Buffer.from(ref[2]!.buffer))).toBe(true);
      expect(Buffer.from(resumed[2]!.buffer).equals(Buffer.from(ref[4]!.buffer))).toBe(true);
    },
  );

  it("RTN through the driver equals RTN applied to each weight, and needs no activations", async () => {
    const model = await loadStories();
    const fp = LINEAR_NAMES.map((n) => model.getLinear(2, n).dequantizedWeight());
    const progress: number[] = [];
    const rep = await quantizeModel(model, await smallCalibration(2, 16), rtnPlugin({ bits: 4, groupSize: 32 }), {
      onProgress: (p) => {
        progress.push(p.done);
        expect(p.etaMs).toBeGreaterThanOrEqual(0);
        expect(p.nLayers).toBe(5);
      },
    });
    expect(progress).toEqual([1, 2, 3, 4, 5]);
    expect(rep.records).toHaveLength(35);
    LINEAR_NAMES.forEach((n, j) => {
      const l = model.getLinear(2, n);
      const g = l.inFeatures === 172 ? 43 : 32;
      const ref = dequantizeMatrix(quantizeRTN(fp[j]!, l.outFeatures, l.inFeatures, { bits: 4, groupSize: g, sym: false }));
      expect(l.dequantizedWeight()).toEqual(ref);
      expect(l.kind).toBe(`w4g${g}`);
    });
    const down = rep.records.find((r) => r.layer === 0 && r.name === "ffn_down")!;
    expect(down.groupSize).toBe(43);
    expect(down.bitsPerWeight).toBeCloseTo(4 + 20 / 43, 10);
  });

  it.each([
    { propagate: "quantized" as const, identity: true },
    { propagate: "fp" as const, identity: false },
  ])("propagates $propagate outputs to the next layer", async ({ propagate, identity }) => {
    const model = await loadStories();
    const seen: Float32Array[] = [];
    await quantizeModel(model, await smallCalibration(2, 16), zeroPlugin(propagate, seen));
    expect(seen).toHaveLength(5);
    // a zeroed layer is the identity, so quantized propagation hands every layer the embeddings
    expect(seen[1]!.every((v, i) => v === seen[0]![i])).toBe(identity);
    expect(seen[4]!.every((v, i) => v === seen[0]![i])).toBe(identity);
  });

  it("resumes from a layer's saved inputs with the same result", async () => {
    const data = await smallCalibration(2, 32);
    const saved = new Map<number, Float32Array>();
    const b = await loadStories();
    const seenFull: Float32Array[] = [];
    await quantizeModel(b, data, zeroPlugin("fp", seenFull), { layerInputs: (i, x) => void saved.set(i, x.slice()) });
    const c = await loadStories();
    const seenResumed: Float32Array[] = [];
    await quantizeModel(c, data, zeroPlugin("fp", seenResumed), { startLayer: 3, startInputs: saved.get(3)! });
    expect(seenResumed).toHaveLength(2);
    expect(seenResumed[0]).toEqual(seenFull[3]);
    expect(seenResumed[1]).toEqual(seenFull[4]);
    await expect(quantizeModel(c, data, zeroPlugin("fp", []), { startLayer: 3 })).rejects.toThrow(/startInputs/);
  });

  it("inputsOnly: captures inputs before each linear runs (the same arrays as after), and stopAfter then stops before that linear", async () => {
    const model = await loadStories();
    const after: Array<[string, Float32Array]> = [];
    const before: Array<[string, Float32Array, number]> = [];
    const ran: string[] = [];
    await quantizeModel(model, await smallCalibration(2, 16), {
      name: "inputs-only",
      quantizeLayer(ctx) {
        if (ctx.layer > 0) return;
        const names = ["attn_q", "attn_output", "ffn_gate", "ffn_down"] as const;
        ctx.forward({ capture: names, onCapture: (a) => after.push([a.name, a.input.slice()]) });
        const off = ctx.model.registerHook((e) => {
          if (e.kind === "linear" && e.layer === 0) ran.push(e.name);
        });
        try {
          ctx.forward({ capture: names, inputsOnly: true, stopAfter: "ffn_gate", onCapture: (a) => before.push([a.name, a.input.slice(), a.output.length]) });
        } finally {
          off();
        }
      },
    });
    expect(before.map((b) => b[0])).toEqual(["attn_q", "attn_output", "ffn_gate"]);
    for (const [name, input, outLen] of before) {
      const ref = after.find((a) => a[0] === name)![1];
      expect(Array.from(input)).toEqual(Array.from(ref));
      expect(outLen).toBe(0);
    }
    // ffn_gate and the linears after it never ran
    expect(ran).toEqual(["attn_q", "attn_k", "attn_v", "attn_output"]);
  });

  it("inputsOnly without stopAfter runs the whole layer; with collectOutput its outputs are the plain forward's", async () => {
    const model = await loadStories();
    await quantizeModel(model, await smallCalibration(2, 16), {
      name: "inputs-only-full",
      quantizeLayer(ctx) {
        if (ctx.layer > 0) return;
        const plain = ctx.forward({ collectOutput: true })!;
        const seen: Array<[string, number]> = [];
        const out = ctx.forward({ capture: ["attn_q", "ffn_down"], inputsOnly: true, collectOutput: true, onCapture: (a) => seen.push([a.name, a.output.length]) })!;
        expect(seen).toEqual([
          ["attn_q", 0],
          ["ffn_down", 0],
        ]);
        expect(Array.from(out)).toEqual(Array.from(plain));
      },
    });
  });

  it("stops a chunk after a linear (attention block alone) without running the MLP", async () => {
    const model = await loadStories();
    const names: string[] = [];
    await quantizeModel(model, await smallCalibration(2, 16), {
      name: "stop",
      quantizeLayer(ctx) {
        if (ctx.layer > 0) return;
        ctx.forward({ capture: ["attn_q", "attn_output", "ffn_gate"], stopAfter: "attn_output", onCapture: (a) => names.push(a.name) });
        expect(() => ctx.forward({ stopAfter: "attn_output", collectOutput: true })).toThrow(/stopAfter/);
      },
    });
    expect(names).toEqual(["attn_q", "attn_output"]);
  });

  it("calls finishLayer after each layer's outputs; releasing finished layers of a lazy model changes no layer's inputs", async () => {
    const data = await smallCalibration(3, 16);
    /** RTN through setWeight with activations on, recording every layer's inputs. */
    const probe = (seen: Float32Array[]): LayerPlugin => ({
      name: "probe-rtn",
      propagate: "quantized",
      quantizeLayer(ctx) {
        seen.push(ctx.inputs.slice());
        for (const n of LINEAR_NAMES) {
          const l = ctx.model.getLinear(ctx.layer, n);
          ctx.setWeight(n, dequantizeMatrix(quantizeRTN(ctx.weight(n), l.outFeatures, l.inFeatures, { bits: 4, groupSize: l.inFeatures === 172 ? 43 : 32, sym: false })));
        }
      },
    });
    const eagerSeen: Float32Array[] = [];
    await quantizeModel(await loadStories(), data, probe(eagerSeen));
    const lazy = await loadLlama2c(dataFile("stories260K", "stories260K.bin"), { lazy: true });
    expect(lazy.isLayerLoaded(0)).toBe(false);
    const lazySeen: Float32Array[] = [];
    const events: string[] = [];
    await quantizeModel(lazy, data, probe(lazySeen), {
      finishLayer: (i, m) => {
        expect(m).toBe(lazy);
        events.push(`finish ${i} (seen ${lazySeen.length}, next loaded ${i + 1 < m.nLayers && m.isLayerLoaded(i + 1)})`);
        m.releaseLayer(i);
      },
    });
    expect(events).toEqual([0, 1, 2, 3, 4].map((i) => `finish ${i} (seen ${i + 1}, next loaded false)`));
    expect([0, 1, 2, 3, 4].some((i) => lazy.isLayerLoaded(i))).toBe(false);
    expect(lazySeen).toHaveLength(5);
    lazySeen.forEach((x, i) => {
      expect(x).toEqual(eagerSeen[i]);
    });
    // the last layer's inputs are the quantized layers' outputs: they differ from the embeddings
    expect(lazySeen[4]).not.toEqual(lazySeen[0]);
  });
});
