import fs from "node:fs";
import path from "node:path";
import { writeShardedSafetensors } from "@lowbit/formats";
import { tmpDir } from "@lowbit/testing";
import { encodeBf16, encodeF16, isLowbitError } from "@lowbit/tensor";
import { describe, expect, it } from "vitest";
import { loadHfModel } from "../src/index";
import { type RefConfig, Reference64 } from "./reference";
import { hfTensors, randomWeights } from "./random-model";

const base: RefConfig = {
  dim: 48,
  hiddenDim: 80,
  nLayers: 2,
  nHeads: 6,
  nKvHeads: 2,
  vocabSize: 96,
  seqLen: 64,
  ropeStyle: "half",
  ropeTheta: 500000,
  eps: 1e-6,
};

function hfConfig(arch: string, tied: boolean, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ...extra,
    architectures: [arch],
    model_type: arch.replace("ForCausalLM", "").toLowerCase(),
    hidden_size: base.dim,
    intermediate_size: base.hiddenDim,
    num_hidden_layers: base.nLayers,
    num_attention_heads: base.nHeads,
    num_key_value_heads: base.nKvHeads,
    vocab_size: base.vocabSize,
    max_position_embeddings: base.seqLen,
    rms_norm_eps: base.eps,
    rope_theta: base.ropeTheta,
    hidden_act: "silu",
    tie_word_embeddings: tied,
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: "float32",
  };
}

async function writeFolder(
  arch: string,
  opts: { bias: boolean; tied: boolean; seed: number; drop?: string[]; reshape?: string; extra?: Record<string, unknown> },
) {
  const dir = tmpDir("lowbit-hf-");
  const w = randomWeights(base, opts.seed, { bias: opts.bias, tied: opts.tied });
  let tensors = hfTensors(base, w, opts.tied).filter((t) => !opts.drop?.includes(t.name));
  if (opts.reshape) {
    tensors = tensors.map((t) => (t.name === opts.reshape ? { ...t, shape: [t.shape[1]!, t.shape[0]!] } : t));
  }
  const res = await writeShardedSafetensors(dir, tensors, { maxShardBytes: 40_000 });
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(hfConfig(arch, opts.tied, opts.extra)));
  return { dir, w, shards: res.shards.length };
}

describe("Hugging Face folders (random weights, half-split RoPE, GQA, sharded safetensors)", () => {
  it.each([
    ["LlamaForCausalLM", false, false, undefined],
    ["MistralForCausalLM", false, true, undefined],
    ["MistralForCausalLM", false, false, 5],
    ["Qwen2ForCausalLM", true, true, undefined],
  ] as const)("%s (q/k/v bias %s, tied %s, sliding window %s) matches the float64 reference", async (arch, bias, tied, window) => {
    const extra = arch === "MistralForCausalLM" ? { sliding_window: window ?? null } : {};
    const { dir, w, shards } = await writeFolder(arch, { bias, tied, seed: 11, extra });
    expect(shards).toBeGreaterThan(1);
    const model = await loadHfModel(dir);
    expect(model.config.ropeStyle).toBe("half");
    expect(model.config.nKvHeads).toBe(2);
    expect(model.config.tiedEmbeddings).toBe(tied);
    expect(model.config.attnBias).toBe(bias);
    expect(model.config.slidingWindow).toBe(window);
    const ref = new Reference64({ ...base, window }, w);
    const prompt = [1, 5, 17, 42, 8, 77, 3, 60, 61, 2, 9, 90];
    const logits = model.forward(prompt, model.createCache(), "all");
    let worst = 0;
    for (const [t, tok] of prompt.entries()) {
      const lr = ref.step(tok);
      let maxAbs = 0;
      let maxDiff = 0;
      for (let i = 0; i < lr.length; i++) {
        maxAbs = Math.max(maxAbs, Math.abs(lr[i]!));
        maxDiff = Math.max(maxDiff, Math.abs(lr[i]! - logits[t * base.vocabSize + i]!));
      }
      worst = Math.max(worst, maxDiff / maxAbs);
    }
    expect(worst).toBeLessThan(1e-4);
  });

  it("lazy loading reads layers on demand and can release them", async () => {
    const { dir } = await writeFolder("LlamaForCausalLM", { bias: false, tied: false, seed: 3 });
    const eager = await loadHfModel(dir);
    const lazy = await loadHfModel(dir, { lazy: true });
    expect(lazy.isLayerLoaded(0)).toBe(false);
    expect(() => lazy.forward([1, 2], lazy.createCache())).toThrow(/not loaded/);
    await lazy.loadAll();
    const a = eager.forward([1, 5, 6], eager.createCache());
    expect(Array.from(lazy.forward([1, 5, 6], lazy.createCache()))).toEqual(Array.from(a));
    lazy.releaseLayer(1);
    expect(lazy.isLayerLoaded(1)).toBe(false);
    await lazy.ensureLayer(1);
    expect(Array.from(lazy.forward([1, 5, 6], lazy.createCache()))).toEqual(Array.from(a));
    await lazy.close();
    lazy.releaseLayer(0);
    await expect(lazy.ensureLayer(0)).rejects.toThrow();
  });

  it("lists every missing tensor by its Hugging Face name", async () => {
    const drop = ["model.layers.1.mlp.up_proj.weight", "model.norm.weight"];
    const { dir } = await writeFolder("LlamaForCausalLM", { bias: false, tied: false, seed: 1, drop });
    const err = await loadHfModel(dir).catch((e) => e);
    expect(isLowbitError(err) && err.code).toBe("E_MISSING_TENSOR");
    for (const d of drop) expect(err.message).toContain(d);
  });

  it("names the tensor, expected and found shape on a shape mismatch", async () => {
    const { dir } = await writeFolder("LlamaForCausalLM", { bias: false, tied: false, seed: 1, reshape: "model.layers.0.mlp.down_proj.weight" });
    const err = await loadHfModel(dir).catch((e) => e);
    expect(err.code).toBe("E_SHAPE_MISMATCH");
    expect(err.message).toContain("model.layers.0.mlp.down_proj.weight");
    expect(err.message).toContain("[80, 48]");
    expect(err.message).toContain("[48, 80]");
  });

  it("an unsupported architecture names itself and the supported ones", async () => {
    const { dir } = await writeFolder("LlamaForCausalLM", { bias: false, tied: false, seed: 1 });
    fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify({ ...hfConfig("GPT2LMHeadModel", false), model_type: "gpt2" }));
    const err = await loadHfModel(dir).catch((e) => e);
    expect(err.code).toBe("E_UNSUPPORTED_ARCHITECTURE");
    expect(err.message).toContain("gpt2");
    for (const a of ["LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"]) expect(err.message).toContain(a);
  });
});

/** Relative RMS error of b against a. */
function relRmse(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += a[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

describe("Hugging Face folders with F16 / BF16 safetensors", () => {
  // tolerances: relative RMS error of all logits against the f32 model, per 16-bit format
  // (bf16 keeps 8 significant bits, f16 11: about 8x apart)
  it.each([
    ["BF16", "LlamaForCausalLM", false, false, 2e-2],
    ["F16", "Qwen2ForCausalLM", true, true, 2e-3],
  ] as const)("%s %s (bias %s, tied %s): 16-bit linears and embedding, logits within %s of f32", async (dtype, arch, bias, tied, tol) => {
    const f32 = await writeFolder(arch, { bias, tied, seed: 23 });
    const dir = tmpDir("lowbit-hf-half-");
    const encode = dtype === "BF16" ? encodeBf16 : encodeF16;
    const tensors = hfTensors(base, f32.w, tied).map((t) => ({ ...t, dtype, data: encode(t.data) }));
    await writeShardedSafetensors(dir, tensors, { maxShardBytes: 20_000 });
    fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(hfConfig(arch, tied, { torch_dtype: dtype === "BF16" ? "bfloat16" : "float16" })));
    const kind = dtype.toLowerCase();

    const ref = await loadHfModel(f32.dir);
    const half = await loadHfModel(dir);
    const wide = await loadHfModel(dir, { halfWeights: "f32" });
    for (const backends of half.backends()) expect(new Set(Object.values(backends!))).toEqual(new Set([kind]));
    for (const backends of wide.backends()) expect(new Set(Object.values(backends!))).toEqual(new Set(["f32"]));
    expect(half.weights.output.kind).toBe(kind);
    expect(half.weights.embeddingTable?.kind).toBe(kind);
    expect(wide.weights.embeddingTable).toBeUndefined();
    // weights and embedding in 2 bytes instead of 4 (norms and biases stay f32)
    expect(half.storageBytes).toBeLessThan(0.55 * ref.storageBytes);
    expect(wide.storageBytes).toBe(ref.storageBytes);
    expect(Array.from(half.embeddingWeight())).toEqual(Array.from(wide.embeddingWeight()));

    const prompt = [1, 5, 17, 42, 8, 77, 3, 60, 61, 2, 9, 90];
    const want = ref.forward(prompt, ref.createCache(), "all");
    const got = half.forward(prompt, half.createCache(), "all");
    const err = relRmse(want, got);
    expect(err).toBeLessThan(tol);
    expect(err).toBeGreaterThan(0);
    // "keep" and "f32" compute with the same (exactly decoded) weights: only summation order may differ
    expect(relRmse(wide.forward(prompt, wide.createCache(), "all"), got)).toBeLessThan(1e-6);

    const lazy = await loadHfModel(dir, { lazy: true });
    await lazy.loadAll();
    expect(Array.from(lazy.forward(prompt, lazy.createCache(), "all"))).toEqual(Array.from(got));
    await lazy.close();
    for (const m of [ref, half, wide, lazy]) m.dispose();
  });

  it("rejects an unknown halfWeights value", async () => {
    const { dir } = await writeFolder("LlamaForCausalLM", { bias: false, tied: false, seed: 1 });
    const err = await loadHfModel(dir, { halfWeights: "f8" as "f32" }).catch((e) => e);
    expect(isLowbitError(err) && err.code).toBe("E_INVALID_ARGUMENT");
    expect(err.message).toMatch(/halfWeights must be "keep" or "f32"/);
  });
});
