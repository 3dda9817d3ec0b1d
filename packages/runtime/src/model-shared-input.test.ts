/**
 * The decoder layer hands one memo per input to the linears that read it (attn_q/k/v share the
 * normed input, ffn_gate/up the second one), so Q4_0 and Q8_0 linears quantize each input once:
 * logits are bit for bit those of every linear quantizing for itself (prefill and decode, 1 and 2
 * kernel threads, reference backend), and hooks still see every linear.
 */
import { Q4_0TiledLinear, quantizeQ4_0Ref } from "@lowbit/int4";
import { Q8_0Linear } from "@lowbit/int8";
import { kernelThreadsInfo, kernelThreadsReady, type Linear, setKernelThreads, shutdownKernelThreads } from "@lowbit/tensor";
import { bitsEqual } from "@lowbit/testing";
import { afterAll, describe, expect, it } from "vitest";
import { type LinearName, type LlamaConfigInput, LINEAR_NAMES } from "./config";
import { randomModel, withRef } from "./kernels/test-util";
import type { CaptureEvent, LlamaModel } from "./model";

type Format = "q4_0" | "q8_0";

interface Call {
  layer: number;
  name: LinearName;
  shared: Map<string, unknown> | undefined;
  /** The call added or replaced a memo entry: it quantized the input itself. */
  wrote: boolean;
}

/**
 * Wraps a linear: records each call's memo, and with `share` false drops the memo (every linear
 * alone, as before the decoder passed memos).
 */
class Spy implements Linear {
  readonly kind: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly storageBytes: number;
  constructor(
    private readonly inner: Linear,
    private readonly layer: number,
    private readonly name: LinearName,
    private readonly calls: Call[],
    private readonly share: { on: boolean },
  ) {
    this.kind = inner.kind;
    this.inFeatures = inner.inFeatures;
    this.outFeatures = inner.outFeatures;
    this.storageBytes = inner.storageBytes;
  }
  forward(x: Float32Array, m: number, out?: Float32Array, shared?: Map<string, unknown>): Float32Array {
    const memo = this.share.on ? shared : undefined;
    const before = memo ? [...memo.values()] : [];
    const y = this.inner.forward(x, m, out, memo);
    const after = memo ? [...memo.values()] : [];
    const wrote = after.length !== before.length || after.some((v, i) => v !== before[i]);
    this.calls.push({ layer: this.layer, name: this.name, shared: memo, wrote });
    return y;
  }
  dequantizedWeight(): Float32Array {
    return this.inner.dequantizedWeight();
  }
  dispose(): void {
    this.inner.dispose?.();
  }
}

// big enough that the prefill's q/k/v and gate/up GEMMs (9 x 256 x 256 and up) split on 2 threads
const INPUT: LlamaConfigInput = {
  dim: 256,
  hiddenDim: 512,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 4,
  vocabSize: 41,
  maxSeqLen: 32,
  attnBias: true,
};

/** A random model whose every layer linear is `format`, wrapped in a Spy. */
async function quantizedModel(format: Format, seed: number): Promise<{ model: LlamaModel; calls: Call[]; share: { on: boolean } }> {
  const model = await randomModel(INPUT, seed);
  const calls: Call[] = [];
  const share = { on: true };
  for (let l = 0; l < model.nLayers; l++) {
    for (const name of LINEAR_NAMES) {
      const w = model.getLinear(l, name);
      const [n, k] = [w.outFeatures, w.inFeatures];
      const bias = w.forward(new Float32Array(k), 1);
      const opts = { bias: bias.some((v) => v !== 0) ? bias : undefined, name: `blk.${l}.${name}` };
      const q =
        format === "q4_0"
          ? new Q4_0TiledLinear(quantizeQ4_0Ref(w.dequantizedWeight()), n, k, opts)
          : Q8_0Linear.fromWeight(w.dequantizedWeight(), n, k, opts);
      model.setLinear(l, name, new Spy(q, l, name, calls, share)).dispose?.();
    }
  }
  return { model, calls, share };
}

const PROMPT = [3, 17, 5, 40, 0, 22, 9, 31, 12];
const STEPS = [7, 28];

/** Logits of every prompt token, then of each decode step. */
function run(model: LlamaModel): Float32Array[] {
  const cache = model.createCache();
  const out = [model.forward(PROMPT, cache, "all")];
  for (const t of STEPS) out.push(model.forward([t], cache, "last"));
  return out;
}

function expectSameLogits(got: Float32Array[], want: Float32Array[], what: string): void {
  expect(got.length).toBe(want.length);
  got.forEach((g, i) => {
    expect(bitsEqual(g, want[i]!), `${what}, pass ${i}`).toBe(true);
  });
}

const FORMATS: Format[] = ["q4_0", "q8_0"];

describe("linears reading one input share its quantization", () => {
  afterAll(async () => {
    await shutdownKernelThreads();
  });

  it.each(FORMATS)("%s: same logits as unshared on 1 and 2 threads and the reference backend", async (format) => {
    const { model, share } = await quantizedModel(format, format === "q4_0" ? 3 : 4);
    share.on = false;
    const alone = run(model);
    const aloneRef = withRef(() => run(model));
    share.on = true;
    expectSameLogits(run(model), alone, "1 thread");
    expectSameLogits(
      withRef(() => run(model)),
      aloneRef,
      "reference backend",
    );
    setKernelThreads(2, { spinMicros: 50 });
    expect(await kernelThreadsReady()).toBe(2);
    try {
      const before = kernelThreadsInfo().dispatches;
      expectSameLogits(run(model), alone, "2 threads");
      expect(kernelThreadsInfo().dispatches - before).toBeGreaterThanOrEqual(model.nLayers * 5);
      share.on = false;
      expectSameLogits(run(model), alone, "2 threads unshared");
    } finally {
      setKernelThreads(1);
    }
    model.dispose();
  });

  it.each(FORMATS)("%s: each prefill input is quantized once per layer, by its first reader; decode steps share nothing", async (format) => {
    const { model, calls } = await quantizedModel(format, 5);
    const passes = [() => run(model), () => withRef(() => run(model))];
    for (const pass of passes) {
      calls.length = 0;
      pass();
      const steps = 1 + STEPS.length;
      expect(calls.length).toBe(steps * model.nLayers * LINEAR_NAMES.length);
      for (let s = 0; s < steps; s++) {
        for (let l = 0; l < model.nLayers; l++) {
          const at = (s * model.nLayers + l) * LINEAR_NAMES.length;
          const c = Object.fromEntries(calls.slice(at, at + LINEAR_NAMES.length).map((e) => [e.name, e])) as Record<LinearName, Call>;
          expect(Object.values(c).every((e) => e.layer === l)).toBe(true);
          if (s > 0) {
            // a decode step (one row): no memos, every linear quantizes its input itself
            expect(LINEAR_NAMES.map((n) => c[n].shared)).toEqual(LINEAR_NAMES.map(() => undefined));
            continue;
          }
          // prefill: one memo for q/k/v, another for gate/up; none for the linears that read an input alone
          expect(c.attn_q.shared).toBeInstanceOf(Map);
          expect(c.attn_k.shared).toBe(c.attn_q.shared);
          expect(c.attn_v.shared).toBe(c.attn_q.shared);
          expect(c.ffn_gate.shared).toBeInstanceOf(Map);
          expect(c.ffn_up.shared).toBe(c.ffn_gate.shared);
          expect(c.ffn_gate.shared).not.toBe(c.attn_q.shared);
          expect(c.attn_output.shared).toBeUndefined();
          expect(c.ffn_down.shared).toBeUndefined();
          expect(LINEAR_NAMES.map((n) => c[n].wrote)).toEqual([true, false, false, false, true, false, false]);
          expect(c.attn_q.shared!.size).toBe(1);
          expect(c.ffn_gate.shared!.size).toBe(1);
        }
      }
      // a fresh memo every layer of the prefill
      const prefillMemos = calls.filter((e) => e.name === "attn_q" && e.shared !== undefined).map((e) => e.shared);
      expect(new Set(prefillMemos).size).toBe(model.nLayers);
      expect(prefillMemos.length).toBe(model.nLayers);
    }
    model.dispose();
  });

  it.each(FORMATS)("%s: hooks see every linear's input and output as before", async (format) => {
    const { model, share } = await quantizedModel(format, 6);
    const record = () => {
      const events: CaptureEvent[] = [];
      const off = model.registerHook((e) => events.push(e), { linearInputs: true });
      run(model);
      off();
      return events;
    };
    share.on = false;
    const alone = record();
    share.on = true;
    const shared = record();
    const label = (e: CaptureEvent) => `${e.kind} ${e.layer} ${e.kind === "layer" ? "" : e.name} ${e.rows}`;
    expect(shared.map(label)).toEqual(alone.map(label));
    const steps = 1 + STEPS.length;
    for (const kind of ["linear-input", "linear"] as const) {
      expect(shared.filter((e) => e.kind === kind).length).toBe(steps * model.nLayers * LINEAR_NAMES.length);
    }
    shared.forEach((e, i) => {
      const a = alone[i]!;
      expect(bitsEqual(e.input, a.input), label(e)).toBe(true);
      if (e.kind !== "linear-input" && a.kind !== "linear-input") expect(bitsEqual(e.output, a.output), label(e)).toBe(true);
    });
    model.dispose();
  });
});
