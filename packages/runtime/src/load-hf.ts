import { openSafetensorsModel, parseHfConfig, SUPPORTED_ARCHITECTURES } from "@lowbit/formats";
import { LowbitError } from "@lowbit/tensor";
import { type BuildOptions, buildModel, type TensorSource } from "./build";
import { type LlamaConfig, makeConfig } from "./config";
import { blockEmbedding, ggufTensorType, type HalfWeights, halfLinear } from "./gguf-types";
import type { LlamaModel } from "./model";

/** Hugging Face architectures this runtime runs (all LLaMA-family decoders). */
export const SUPPORTED_HF_ARCHITECTURES: readonly string[] = Object.values(SUPPORTED_ARCHITECTURES);

/**
 * Maps a Hugging Face config.json (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM; parsed
 * and validated by @lowbit/formats' parseHfConfig) to a LlamaConfig. Hugging Face checkpoints
 * rotate half-split RoPE pairs. Features the decoder does not implement are E_UNSUPPORTED.
 */
export function configFromHf(json: unknown, source = "config.json"): LlamaConfig {
  const c = parseHfConfig(json, source);
  if (c.ropeScaling) {
    const type = String(c.ropeScaling.rope_type ?? c.ropeScaling.type);
    if (type !== "default") {
      throw new LowbitError("E_UNSUPPORTED", `${source}: rope_scaling of type "${type}" is not supported (only unscaled RoPE)`);
    }
  }
  if (c.attentionOutputBias || c.mlpBias) {
    throw new LowbitError("E_UNSUPPORTED", `${source}: biases on o_proj or the MLP (attention_bias / mlp_bias on llama) are not supported`);
  }
  return makeConfig({
    architecture: SUPPORTED_ARCHITECTURES[c.architecture],
    dim: c.hiddenSize,
    hiddenDim: c.intermediateSize,
    nLayers: c.numLayers,
    nHeads: c.numHeads,
    nKvHeads: c.numKvHeads,
    headDim: c.headDim,
    vocabSize: c.vocabSize,
    maxSeqLen: c.maxPositionEmbeddings,
    normEps: c.rmsNormEps,
    ropeTheta: c.ropeTheta,
    ropeStyle: "half",
    tiedEmbeddings: c.tieWordEmbeddings,
    attnBias: c.attentionBias,
    bosTokenId: c.bosTokenId ?? 1,
    eosTokenIds: c.eosTokenIds,
    slidingWindow: c.slidingWindow ?? undefined,
    slidingWindowFromLayer: c.maxWindowLayers ?? 0,
  });
}

const HF_LAYER_NAMES: Record<string, string> = {
  "input_layernorm.weight": "attn_norm.weight",
  "post_attention_layernorm.weight": "ffn_norm.weight",
  "self_attn.q_proj.weight": "attn_q.weight",
  "self_attn.k_proj.weight": "attn_k.weight",
  "self_attn.v_proj.weight": "attn_v.weight",
  "self_attn.q_proj.bias": "attn_q.bias",
  "self_attn.k_proj.bias": "attn_k.bias",
  "self_attn.v_proj.bias": "attn_v.bias",
  "self_attn.o_proj.weight": "attn_output.weight",
  "mlp.gate_proj.weight": "ffn_gate.weight",
  "mlp.up_proj.weight": "ffn_up.weight",
  "mlp.down_proj.weight": "ffn_down.weight",
};

/** The internal (GGUF-style) name of a Hugging Face tensor name, or undefined if unused. */
export function internalNameFromHf(name: string): string | undefined {
  if (name === "model.embed_tokens.weight") return "token_embd.weight";
  if (name === "model.norm.weight") return "output_norm.weight";
  if (name === "lm_head.weight") return "output.weight";
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(name);
  if (m) {
    const suffix = HF_LAYER_NAMES[m[2]!];
    if (suffix) return `blk.${m[1]}.${suffix}`;
  }
  return undefined;
}

/** The Hugging Face name of an internal tensor name (inverse of internalNameFromHf). */
export function hfNameFromInternal(name: string): string | undefined {
  if (name === "token_embd.weight") return "model.embed_tokens.weight";
  if (name === "output_norm.weight") return "model.norm.weight";
  if (name === "output.weight") return "lm_head.weight";
  const m = /^blk\.(\d+)\.(.+)$/.exec(name);
  if (m) {
    for (const [hf, internal] of Object.entries(HF_LAYER_NAMES)) if (internal === m[2]) return `model.layers.${m[1]}.${hf}`;
  }
  return undefined;
}

export interface HfLoadOptions extends BuildOptions {
  overrides?: Partial<LlamaConfig>;
  /**
   * F16/BF16 tensors: "keep" (default) leaves linear weights and the token embedding in 16 bits
   * (HalfLinear, an embedding decoded per looked-up row); "f32" decodes them to f32 at load.
   */
  halfWeights?: HalfWeights;
}

/** The 16-bit float dtypes of safetensors, as HalfLinear formats and ggml type ids. */
const HALF_DTYPES = { F16: { format: "f16", ggml: 1 }, BF16: { format: "bf16", ggml: 30 } } as const;

function halfDType(dtype: string): (typeof HALF_DTYPES)[keyof typeof HALF_DTYPES] | undefined {
  return dtype === "F16" || dtype === "BF16" ? HALF_DTYPES[dtype] : undefined;
}

function u16(bytes: Uint8Array): Uint16Array {
  const b = bytes.byteOffset % 2 === 0 ? bytes : bytes.slice();
  return new Uint16Array(b.buffer, b.byteOffset, b.byteLength >> 1);
}

/**
 * Loads a Hugging Face model folder: config.json plus model.safetensors or sharded safetensors
 * with an index. Tensors are read one at a time on demand (lazily per layer with `lazy: true`,
 * which keeps the files open until the model is released). F16/BF16 weights stay 16-bit unless
 * `halfWeights: "f32"` (see HalfWeights).
 */
export async function loadHfModel(dir: string, options: HfLoadOptions = {}): Promise<LlamaModel> {
  const { readFile } = await import("node:fs/promises");
  const cfgPath = dir.endsWith("/") ? `${dir}config.json` : `${dir}/config.json`;
  let text: string;
  try {
    text = await readFile(cfgPath, "utf8");
  } catch (e) {
    throw new LowbitError("E_FILE_NOT_FOUND", `${cfgPath}: not found (a Hugging Face model folder needs config.json)`, { cause: e });
  }
  let cfg = configFromHf(text, cfgPath);
  const st = await openSafetensorsModel(dir);
  const byInternal = new Map<string, string>();
  for (const name of st.tensors.keys()) {
    const internal = internalNameFromHf(name);
    if (internal) byInternal.set(internal, name);
  }
  // checkpoints without lm_head share the embedding even when config.json does not say so
  if (!cfg.tiedEmbeddings && !byInternal.has("output.weight")) cfg = { ...cfg, tiedEmbeddings: true };
  if (options.overrides) cfg = makeConfig({ ...cfg, ...options.overrides });
  const keepHalf = (options.halfWeights ?? "keep") !== "f32";
  if (options.halfWeights !== undefined && options.halfWeights !== "keep" && options.halfWeights !== "f32") {
    throw new LowbitError("E_INVALID_ARGUMENT", `${dir}: halfWeights must be "keep" or "f32", got ${JSON.stringify(options.halfWeights)}`);
  }
  /** The Hugging Face name and 16-bit dtype of an internal tensor name, when it is stored as F16/BF16. */
  const halfTensor = (name: string) => {
    const hf = byInternal.get(name);
    const half = hf ? halfDType(st.tensors.get(hf)!.dtype) : undefined;
    return hf && half && keepHalf ? { hf, half } : undefined;
  };
  const source: TensorSource = {
    shape: (name) => {
      const hf = byInternal.get(name);
      return hf ? [...st.tensors.get(hf)!.shape] : undefined;
    },
    readF32: (name) => {
      const hf = byInternal.get(name) ?? hfNameFromInternal(name) ?? name;
      return st.readF32(hf);
    },
    readLinear: async (name, out, inp, bias) => {
      const t = halfTensor(name);
      return t ? halfLinear(u16(await st.read(t.hf)), t.half.format, out, inp, bias) : undefined;
    },
    readEmbedding: async (name, vocabSize, dim) => {
      const t = halfTensor(name);
      if (!t) return undefined;
      const where = `${dir}: tensor "${t.hf}"`;
      return blockEmbedding(ggufTensorType(t.half.ggml, where), await st.read(t.hf), vocabSize, dim, where);
    },
    describe: (name) => byInternal.get(name) ?? hfNameFromInternal(name) ?? name,
    close: () => st.close(),
  };
  try {
    const model = await buildModel(cfg, source, { ...options, what: dir });
    if (!options.lazy) await st.close();
    return model;
  } catch (e) {
    await st.close();
    throw e;
  }
}
