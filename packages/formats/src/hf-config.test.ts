import { describe, expect, it } from "vitest";
import { parseHfConfig } from "./hf-config";

/** Abridged real config.json files. */
const llama2 = {
  architectures: ["LlamaForCausalLM"],
  bos_token_id: 1,
  eos_token_id: 2,
  hidden_act: "silu",
  hidden_size: 4096,
  initializer_range: 0.02,
  intermediate_size: 11008,
  max_position_embeddings: 4096,
  model_type: "llama",
  num_attention_heads: 32,
  num_hidden_layers: 32,
  num_key_value_heads: 32,
  pretraining_tp: 1,
  rms_norm_eps: 1e-5,
  rope_scaling: null,
  tie_word_embeddings: false,
  torch_dtype: "float16",
  vocab_size: 32000,
};
const llama32 = {
  architectures: ["LlamaForCausalLM"],
  attention_bias: false,
  bos_token_id: 128000,
  eos_token_id: 128001,
  head_dim: 64,
  hidden_act: "silu",
  hidden_size: 2048,
  intermediate_size: 8192,
  max_position_embeddings: 131072,
  mlp_bias: false,
  model_type: "llama",
  num_attention_heads: 32,
  num_hidden_layers: 16,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-5,
  rope_scaling: {
    factor: 32.0,
    high_freq_factor: 4.0,
    low_freq_factor: 1.0,
    original_max_position_embeddings: 8192,
    rope_type: "llama3",
  },
  rope_theta: 500000.0,
  tie_word_embeddings: true,
  torch_dtype: "bfloat16",
  vocab_size: 128256,
};
const mistral = {
  architectures: ["MistralForCausalLM"],
  bos_token_id: 1,
  eos_token_id: 2,
  hidden_act: "silu",
  hidden_size: 4096,
  intermediate_size: 14336,
  max_position_embeddings: 32768,
  model_type: "mistral",
  num_attention_heads: 32,
  num_hidden_layers: 32,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-5,
  rope_theta: 10000.0,
  sliding_window: 4096,
  tie_word_embeddings: false,
  torch_dtype: "bfloat16",
  vocab_size: 32000,
};
const qwen2 = {
  architectures: ["Qwen2ForCausalLM"],
  bos_token_id: 151643,
  eos_token_id: 151643,
  hidden_act: "silu",
  hidden_size: 896,
  intermediate_size: 4864,
  max_position_embeddings: 131072,
  max_window_layers: 24,
  model_type: "qwen2",
  num_attention_heads: 14,
  num_hidden_layers: 24,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  sliding_window: 131072,
  tie_word_embeddings: true,
  torch_dtype: "bfloat16",
  use_sliding_window: false,
  vocab_size: 151936,
};

describe("parseHfConfig", () => {
  it("reads Llama-2-7B", () => {
    expect(parseHfConfig(llama2)).toEqual({
      architecture: "llama",
      hiddenSize: 4096,
      intermediateSize: 11008,
      numLayers: 32,
      numHeads: 32,
      numKvHeads: 32,
      headDim: 128,
      vocabSize: 32000,
      maxPositionEmbeddings: 4096,
      rmsNormEps: 1e-5,
      ropeTheta: 10000,
      ropeScaling: null,
      tieWordEmbeddings: false,
      attentionBias: false,
      attentionOutputBias: false,
      mlpBias: false,
      hiddenAct: "silu",
      slidingWindow: null,
      maxWindowLayers: null,
      bosTokenId: 1,
      eosTokenIds: [2],
      torchDtype: "float16",
    });
  });

  it("reads Llama-3.2-1B (GQA, head_dim, llama3 rope scaling, tied embeddings)", () => {
    const c = parseHfConfig(JSON.stringify(llama32));
    expect(c).toMatchObject({ numKvHeads: 8, headDim: 64, ropeTheta: 500000, tieWordEmbeddings: true });
    expect(c.ropeScaling).toMatchObject({ rope_type: "llama3", factor: 32 });
  });

  it("reads Mistral-7B (sliding window, no biases)", () => {
    expect(parseHfConfig(mistral)).toMatchObject({
      architecture: "mistral",
      numKvHeads: 8,
      headDim: 128,
      slidingWindow: 4096,
      attentionBias: false,
      attentionOutputBias: false,
    });
    expect(parseHfConfig({ ...mistral, sliding_window: null }).slidingWindow).toBeNull();
  });

  it("reads Qwen2-0.5B (q/k/v bias, no o bias, tied, full attention)", () => {
    expect(parseHfConfig(qwen2)).toMatchObject({
      architecture: "qwen2",
      headDim: 64,
      numKvHeads: 2,
      ropeTheta: 1e6,
      rmsNormEps: 1e-6,
      attentionBias: true,
      attentionOutputBias: false,
      tieWordEmbeddings: true,
      slidingWindow: null,
      maxWindowLayers: null,
    });
    expect(parseHfConfig({ ...qwen2, use_sliding_window: true })).toMatchObject({
      slidingWindow: 131072,
      maxWindowLayers: 24,
    });
  });

  it("fills defaults: num_key_value_heads, rope_theta, rms_norm_eps, max_position_embeddings, tie_word_embeddings", () => {
    const minimal = {
      model_type: "llama",
      hidden_size: 64,
      intermediate_size: 172,
      num_hidden_layers: 5,
      num_attention_heads: 8,
      vocab_size: 512,
    };
    expect(parseHfConfig(minimal)).toMatchObject({
      numKvHeads: 8,
      headDim: 8,
      ropeTheta: 10000,
      rmsNormEps: 1e-6,
      maxPositionEmbeddings: 2048,
      tieWordEmbeddings: false,
      bosTokenId: null,
      eosTokenIds: [],
      torchDtype: null,
    });
    expect(parseHfConfig({ ...minimal, attention_bias: true })).toMatchObject({
      attentionBias: true,
      attentionOutputBias: true,
    });
    expect(parseHfConfig({ ...minimal, rope_parameters: { rope_type: "default", rope_theta: 5e5 } }).ropeTheta).toBe(5e5);
    expect(parseHfConfig({ ...minimal, eos_token_id: [128001, 128009] }).eosTokenIds).toEqual([128001, 128009]);
    const { model_type: _, ...noType } = minimal;
    expect(parseHfConfig({ ...noType, architectures: ["Qwen2ForCausalLM"] }).architecture).toBe("qwen2");
  });

  it.each<[string, unknown, string, RegExp]>([
    ["unsupported model_type", { ...llama2, model_type: "gpt2" }, "E_UNSUPPORTED_ARCHITECTURE", /model_type "gpt2" is not supported; supported: llama \(LlamaForCausalLM\), mistral \(MistralForCausalLM\), qwen2 \(Qwen2ForCausalLM\)/],
    ["unsupported architectures", { architectures: ["BertModel"] }, "E_UNSUPPORTED_ARCHITECTURE", /\["BertModel"\] is not supported; supported: llama/],
    ["nothing", {}, "E_UNSUPPORTED_ARCHITECTURE", /no model_type or architectures/],
    ["missing hidden_size", { ...llama2, hidden_size: undefined }, "E_CONFIG", /required field "hidden_size" is missing/],
    ["missing vocab_size", { ...llama2, vocab_size: undefined }, "E_CONFIG", /"vocab_size" is missing/],
    ["string layers", { ...llama2, num_hidden_layers: "32" }, "E_CONFIG", /"num_hidden_layers" is "32"; expected an integer >= 1/],
    ["zero heads", { ...llama2, num_attention_heads: 0 }, "E_CONFIG", /"num_attention_heads" is 0/],
    ["kv heads not dividing", { ...llama2, num_key_value_heads: 5 }, "E_CONFIG", /not divisible by num_key_value_heads \(5\)/],
    ["hidden not dividing", { ...llama2, hidden_size: 4000, num_attention_heads: 48, num_key_value_heads: 48 }, "E_CONFIG", /hidden_size \(4000\) is not divisible/],
    ["odd head_dim", { ...llama2, head_dim: 63 }, "E_CONFIG", /must be even/],
    ["negative eps", { ...llama2, rms_norm_eps: -1 }, "E_CONFIG", /"rms_norm_eps" is -1/],
    ["string rope_theta", { ...llama2, rope_theta: "1e4" }, "E_CONFIG", /"rope_theta"/],
    ["tie not boolean", { ...llama2, tie_word_embeddings: 1 }, "E_CONFIG", /"tie_word_embeddings" is 1; expected true or false/],
    ["bad rope_scaling", { ...llama2, rope_scaling: { factor: 2 } }, "E_CONFIG", /rope_scaling has no string/],
    ["bad eos", { ...llama2, eos_token_id: ["x"] }, "E_CONFIG", /eos_token_id/],
    ["gelu", { ...llama2, hidden_act: "gelu" }, "E_UNSUPPORTED", /hidden_act "gelu"/],
    ["not JSON", "{nope", "E_CONFIG", /not valid JSON/],
    ["array", "[]", "E_CONFIG", /not a JSON object/],
  ])("rejects %s", (_label, input, code, message) => {
    let err: unknown;
    try {
      parseHfConfig(input, "models/x/config.json");
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code, message: expect.stringMatching(message) });
    expect((err as Error).message.startsWith("models/x/config.json: ")).toBe(true);
  });
});
