import type { LlamaConfig } from "@lowbit/runtime";

/** A Hugging Face LlamaConfig-style config.json for a lowbit config (intermediate size as given). */
export function hfConfigJson(cfg: LlamaConfig, opts: { intermediateSize?: number; torchDtype?: string } = {}): Record<string, unknown> {
  const arch = cfg.architecture === "qwen2" ? "qwen2" : cfg.architecture === "mistral" ? "mistral" : "llama";
  const classes: Record<string, string> = { llama: "LlamaForCausalLM", mistral: "MistralForCausalLM", qwen2: "Qwen2ForCausalLM" };
  return {
    architectures: [classes[arch]],
    model_type: arch,
    hidden_size: cfg.dim,
    intermediate_size: opts.intermediateSize ?? cfg.hiddenDim,
    num_hidden_layers: cfg.nLayers,
    num_attention_heads: cfg.nHeads,
    num_key_value_heads: cfg.nKvHeads,
    head_dim: cfg.headDim,
    vocab_size: cfg.vocabSize,
    max_position_embeddings: cfg.maxSeqLen,
    rms_norm_eps: cfg.normEps,
    rope_theta: cfg.ropeTheta,
    tie_word_embeddings: cfg.tiedEmbeddings,
    attention_bias: cfg.attnBias,
    hidden_act: "silu",
    bos_token_id: cfg.bosTokenId,
    eos_token_id: cfg.eosTokenIds.length === 1 ? cfg.eosTokenIds[0] : cfg.eosTokenIds,
    torch_dtype: opts.torchDtype ?? "float16",
  };
}

