import { readFile } from "node:fs/promises";
import path from "node:path";
import { openSafetensorsModel } from "@lowbit/formats";
import { LowbitError } from "@lowbit/tensor";
import { type BuildOptions, buildModel, type TensorSource } from "./build";
import { type LlamaConfig, makeConfig } from "./config";
import type { LlamaModel } from "./model";

/** Hugging Face architectures this runtime runs (all LLaMA-family decoders). */
export const SUPPORTED_HF_ARCHITECTURES = ["LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"] as const;

type Json = Record<string, unknown>;

function num(json: Json, key: string, source: string, fallback?: number): number {
  const v = json[key];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new LowbitError("E_CONFIG", `${source}: missing field "${key}"`);
  }
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new LowbitError("E_CONFIG", `${source}: field "${key}" must be a number, got ${JSON.stringify(v)}`);
  }
  return v;
}

/**
 * Maps a Hugging Face config.json (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM) to a
 * LlamaConfig. Hugging Face checkpoints rotate half-split RoPE pairs.
 */
export function configFromHf(json: unknown, source = "config.json"): LlamaConfig {
  if (!json || typeof json !== "object" || Array.isArray(json)) {
    throw new LowbitError("E_CONFIG", `${source}: expected a JSON object`);
  }
  const c = json as Json;
  const archs = Array.isArray(c.architectures) ? (c.architectures as unknown[]).map(String) : [];
  const arch = archs[0] ?? String(c.model_type ?? "unknown");
  if (!(SUPPORTED_HF_ARCHITECTURES as readonly string[]).includes(arch)) {
    throw new LowbitError(
      "E_UNSUPPORTED_ARCHITECTURE",
      `${source}: architecture "${arch}" is not supported; supported: ${SUPPORTED_HF_ARCHITECTURES.join(", ")}`,
    );
  }
  const scaling = c.rope_scaling as Json | null | undefined;
  if (scaling && typeof scaling === "object") {
    const type = String(scaling.rope_type ?? scaling.type ?? "default");
    if (type !== "default") {
      throw new LowbitError("E_UNSUPPORTED", `${source}: rope_scaling of type "${type}" is not supported (only unscaled RoPE)`);
    }
  }
  const act = c.hidden_act ?? "silu";
  if (act !== "silu") throw new LowbitError("E_UNSUPPORTED", `${source}: hidden_act "${String(act)}" is not supported (silu is)`);
  const dim = num(c, "hidden_size", source);
  const nHeads = num(c, "num_attention_heads", source);
  const eos = c.eos_token_id;
  const eosTokenIds = Array.isArray(eos) ? eos.map(Number) : typeof eos === "number" ? [eos] : [];
  const isQwen2 = arch === "Qwen2ForCausalLM";
  return makeConfig({
    architecture: arch,
    dim,
    hiddenDim: num(c, "intermediate_size", source),
    nLayers: num(c, "num_hidden_layers", source),
    nHeads,
    nKvHeads: num(c, "num_key_value_heads", source, nHeads),
    headDim: num(c, "head_dim", source, Math.floor(dim / nHeads)),
    vocabSize: num(c, "vocab_size", source),
    maxSeqLen: num(c, "max_position_embeddings", source, 2048),
    normEps: num(c, "rms_norm_eps", source, 1e-6),
    ropeTheta: num(c, "rope_theta", source, 10000),
    ropeStyle: "half",
    tiedEmbeddings: c.tie_word_embeddings === true,
    attnBias: isQwen2 ? true : c.attention_bias === true,
    bosTokenId: typeof c.bos_token_id === "number" ? c.bos_token_id : 1,
    eosTokenIds,
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
}

/**
 * Loads a Hugging Face model folder: config.json plus model.safetensors or sharded safetensors
 * with an index. Tensors are read one at a time on demand (lazily per layer with `lazy: true`,
 * which keeps the files open until the model is released).
 */
export async function loadHfModel(dir: string, options: HfLoadOptions = {}): Promise<LlamaModel> {
  const cfgPath = path.join(dir, "config.json");
  let text: string;
  try {
    text = await readFile(cfgPath, "utf8");
  } catch (e) {
    throw new LowbitError("E_FILE_NOT_FOUND", `${cfgPath}: not found (a Hugging Face model folder needs config.json)`, { cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new LowbitError("E_CONFIG", `${cfgPath}: malformed JSON`, { cause: e });
  }
  let cfg = configFromHf(json, cfgPath);
  const st = await openSafetensorsModel(dir);
  const byInternal = new Map<string, string>();
  for (const name of st.tensors.keys()) {
    const internal = internalNameFromHf(name);
    if (internal) byInternal.set(internal, name);
  }
  // checkpoints without lm_head share the embedding even when config.json does not say so
  if (!cfg.tiedEmbeddings && !byInternal.has("output.weight")) cfg = { ...cfg, tiedEmbeddings: true };
  if (options.overrides) cfg = makeConfig({ ...cfg, ...options.overrides });
  const source: TensorSource = {
    shape: (name) => {
      const hf = byInternal.get(name);
      return hf ? [...st.tensors.get(hf)!.shape] : undefined;
    },
    readF32: (name) => {
      const hf = byInternal.get(name) ?? hfNameFromInternal(name) ?? name;
      return st.readF32(hf);
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
