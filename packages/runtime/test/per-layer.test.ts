import { dataFile, hasData } from "@lowbit/testing";
import { describe, expect, it } from "vitest";
import { buildModel, type CaptureEvent, LINEAR_NAMES, makeConfig, memorySource } from "../src/index";
import { readRawLlama2c } from "./reference";

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  let d = 0;
  for (let i = 0; i < a.length; i++) {
    m = Math.max(m, Math.abs(b[i]!));
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
  }
  return d / m;
}

describe.runIf(hasData)("per-layer API on stories260K", () => {
  it("embed + runLayer over a batch of windows + head equals the cached forward pass of each window", async () => {
    const raw = readRawLlama2c(dataFile("stories260K", "stories260K.bin"));
    const cfg = makeConfig({ ...raw.config, maxSeqLen: 512, tiedEmbeddings: true });
    const model = await buildModel(cfg, memorySource(raw.f32));
    const L = 12;
    const windows = [
      [1, 403, 407, 261, 378, 395, 267, 261, 300, 400, 272, 266],
      [1, 71, 72, 300, 301, 302, 303, 304, 305, 306, 307, 308],
      [1, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    ];
    const seen: CaptureEvent[] = [];
    const off = model.registerHook((e) => seen.push(e));
    let h = model.embed(windows.flat());
    for (let i = 0; i < cfg.nLayers; i++) h = model.runLayer(i, h, windows.length, L);
    const logits = model.head(h, windows.length * L);
    off();
    expect(seen.length).toBe(cfg.nLayers * (LINEAR_NAMES.length + 1));
    const first = seen[0]!;
    expect(first.kind === "linear" && first.name === "attn_q" && first.layer === 0 && first.rows === 36).toBe(true);
    for (const [b, w] of windows.entries()) {
      const cache = model.createCache();
      const expected = model.forward(w, cache, "all");
      const got = logits.subarray(b * L * cfg.vocabSize, (b + 1) * L * cfg.vocabSize);
      expect(maxRelDiff(got, expected)).toBeLessThan(1e-5);
    }
    const before = seen.length;
    model.forward([1], model.createCache());
    expect(seen.length).toBe(before); // unregistered
  });

  it("a hook registered for linear inputs sees each linear's input before it runs, and can stop the layer there", async () => {
    const raw = readRawLlama2c(dataFile("stories260K", "stories260K.bin"));
    const cfg = makeConfig({ ...raw.config, maxSeqLen: 512, tiedEmbeddings: true });
    const model = await buildModel(cfg, memorySource(raw.f32));
    const ids = [1, 403, 407, 261, 378, 395, 267, 261];
    const x = model.embed(ids);
    const seen: CaptureEvent[] = [];
    const off = model.registerHook((e) => seen.push(e), { linearInputs: true });
    model.runLayer(0, x, 1, ids.length);
    off();
    // every linear: its input event, then its output event with the same input array
    expect(seen.map((e) => (e.kind === "layer" ? "layer" : `${e.kind}:${e.name}`))).toEqual([
      ...LINEAR_NAMES.flatMap((n) => [`linear-input:${n}`, `linear:${n}`]),
      "layer",
    ]);
    for (let i = 0; i < LINEAR_NAMES.length; i++) {
      const [a, b] = [seen[2 * i]!, seen[2 * i + 1]!];
      expect(a.kind === "linear-input" && b.kind === "linear" && a.input === b.input && a.rows === ids.length).toBe(true);
    }
    // a plain hook never sees input events
    const plain: CaptureEvent[] = [];
    const off2 = model.registerHook((e) => plain.push(e));
    model.runLayer(0, x, 1, ids.length);
    off2();
    expect(plain.some((e) => e.kind === "linear-input")).toBe(false);
    expect(plain.length).toBe(LINEAR_NAMES.length + 1);
    // stopping at ffn_gate's input: the linears after attn_output never run
    const ran: string[] = [];
    const stop = new Error("stop");
    const off3 = model.registerHook(
      (e) => {
        if (e.kind === "linear") ran.push(e.name);
        if (e.kind === "linear-input" && e.name === "ffn_gate") throw stop;
      },
      { linearInputs: true },
    );
    expect(() => model.runLayer(0, x, 1, ids.length)).toThrow(stop);
    off3();
    expect(ran).toEqual(["attn_q", "attn_k", "attn_v", "attn_output"]);
  });

  it("prefill of a prompt in one call equals token-by-token decoding", async () => {
    const raw = readRawLlama2c(dataFile("stories260K", "stories260K.bin"));
    const cfg = makeConfig({ ...raw.config, maxSeqLen: 512, tiedEmbeddings: true });
    const model = await buildModel(cfg, memorySource(raw.f32));
    const prompt = [1, 403, 407, 261, 378, 395, 267, 261];
    const a = model.createCache();
    const batched = model.forward(prompt, a);
    const b = model.createCache();
    let step: Float32Array = new Float32Array(0);
    for (const t of prompt) step = model.forward([t], b);
    expect(maxRelDiff(batched, step)).toBeLessThan(1e-5);
    expect(a.length).toBe(prompt.length);
  });
});
