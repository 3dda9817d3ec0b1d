import { LowbitError } from "@lowbit/tensor";

export type HfArchitecture = "llama" | "mistral" | "qwen2";

/** A validated LLaMA-family Hugging Face config.json, with every default filled in. */
export interface HfLlamaConfig {
  architecture: HfArchitecture;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  /** Per-head dimension (head_dim, else hidden_size / num_attention_heads). */
  headDim: number;
  vocabSize: number;
  maxPositionEmbeddings: number;
  rmsNormEps: number;
  ropeTheta: number;
  /** rope_scaling as given (null when absent); its "rope_type"/"type" is checked to be a string. */
  ropeScaling: Record<string, unknown> | null;
  tieWordEmbeddings: boolean;
  /** Bias on q/k/v projections (llama: attention_bias; qwen2: always; mistral: never). */
  attentionBias: boolean;
  /** Bias on the output projection (llama: attention_bias; otherwise none). */
  attentionOutputBias: boolean;
  /** Bias on the MLP projections (llama: mlp_bias). */
  mlpBias: boolean;
  hiddenAct: "silu";
  /** Sliding attention window, null when attention is full. */
  slidingWindow: number | null;
  /** qwen2: layers from this index on use the sliding window (when slidingWindow is set). */
  maxWindowLayers: number | null;
  bosTokenId: number | null;
  /** eos_token_id as a list (config.json allows a number or a list). */
  eosTokenIds: number[];
  torchDtype: string | null;
}

export const SUPPORTED_ARCHITECTURES: Readonly<Record<HfArchitecture, string>> = {
  llama: "LlamaForCausalLM",
  mistral: "MistralForCausalLM",
  qwen2: "Qwen2ForCausalLM",
};

/** Defaults of transformers' LlamaConfig, MistralConfig and Qwen2Config. */
const DEFAULTS: Record<HfArchitecture, { maxPositionEmbeddings: number; rmsNormEps: number; slidingWindow: number | null }> = {
  llama: { maxPositionEmbeddings: 2048, rmsNormEps: 1e-6, slidingWindow: null },
  mistral: { maxPositionEmbeddings: 4096 * 32, rmsNormEps: 1e-6, slidingWindow: 4096 },
  qwen2: { maxPositionEmbeddings: 32768, rmsNormEps: 1e-6, slidingWindow: 4096 },
};

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Parses a Hugging Face config.json (text or parsed object) of a llama, mistral or qwen2 model.
 * Missing required fields, wrong types, impossible head counts or an unsupported activation are
 * E_CONFIG; another model_type is E_UNSUPPORTED_ARCHITECTURE naming itself and the supported ones.
 */
export function parseHfConfig(json: unknown, source = "config.json"): HfLlamaConfig {
  const bad = (msg: string): never => {
    throw new LowbitError("E_CONFIG", `${source}: ${msg}`);
  };
  let raw = json;
  if (typeof json === "string") {
    try {
      raw = JSON.parse(json);
    } catch (e) {
      bad(`not valid JSON (${(e as Error).message})`);
    }
  }
  if (!isObject(raw)) return bad("is not a JSON object");
  const c = raw;

  const arch = architectureOf(c, source);
  const has = (k: string) => c[k] !== undefined && c[k] !== null;
  const int = (k: string, fallback?: number, min = 1): number => {
    if (!has(k)) return fallback ?? bad(`required field "${k}" is missing`);
    const v = c[k];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) {
      bad(`field "${k}" is ${JSON.stringify(v)}; expected an integer >= ${min}`);
    }
    return v as number;
  };
  const positive = (k: string, fallback: number): number => {
    if (!has(k)) return fallback;
    const v = c[k];
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) bad(`field "${k}" is ${JSON.stringify(v)}; expected a positive number`);
    return v as number;
  };
  const bool = (k: string, fallback: boolean): boolean => {
    if (!has(k)) return fallback;
    if (typeof c[k] !== "boolean") bad(`field "${k}" is ${JSON.stringify(c[k])}; expected true or false`);
    return c[k] as boolean;
  };
  const d = DEFAULTS[arch];

  const hiddenSize = int("hidden_size");
  const numHeads = int("num_attention_heads");
  const numKvHeads = int("num_key_value_heads", numHeads);
  if (numHeads % numKvHeads !== 0) {
    bad(`num_attention_heads (${numHeads}) is not divisible by num_key_value_heads (${numKvHeads})`);
  }
  if (!has("head_dim") && hiddenSize % numHeads !== 0) {
    bad(`hidden_size (${hiddenSize}) is not divisible by num_attention_heads (${numHeads}) and head_dim is not given`);
  }
  const headDim = int("head_dim", hiddenSize / numHeads);
  if (headDim % 2 !== 0) bad(`head dimension ${headDim} must be even for rotary embeddings`);

  const act = c.hidden_act ?? c.hidden_activation ?? "silu";
  if (act !== "silu") {
    throw new LowbitError("E_UNSUPPORTED", `${source}: hidden_act "${String(act)}" is not supported; LLaMA-family models use "silu"`);
  }

  const ropeParams = isObject(c.rope_parameters) ? c.rope_parameters : undefined;
  let ropeTheta = positive("rope_theta", 10000);
  if (!has("rope_theta") && ropeParams && ropeParams.rope_theta !== undefined) {
    const t = ropeParams.rope_theta;
    if (typeof t !== "number" || !(t > 0) || !Number.isFinite(t)) bad(`rope_parameters.rope_theta is ${JSON.stringify(t)}`);
    ropeTheta = t as number;
  }
  let ropeScaling: Record<string, unknown> | null = null;
  if (has("rope_scaling")) {
    if (!isObject(c.rope_scaling)) return bad(`rope_scaling is ${JSON.stringify(c.rope_scaling)}; expected an object or null`);
    const kind = c.rope_scaling.rope_type ?? c.rope_scaling.type;
    if (typeof kind !== "string") bad(`rope_scaling has no string "rope_type" or "type"`);
    ropeScaling = { ...c.rope_scaling };
  }

  let slidingWindow: number | null = null;
  let maxWindowLayers: number | null = null;
  if (arch === "mistral") {
    slidingWindow = "sliding_window" in c ? (c.sliding_window === null ? null : int("sliding_window")) : d.slidingWindow;
  } else if (arch === "qwen2" && bool("use_sliding_window", false)) {
    slidingWindow = int("sliding_window", d.slidingWindow ?? undefined);
    maxWindowLayers = int("max_window_layers", 28, 0);
  }

  const attnBias = arch === "llama" ? bool("attention_bias", false) : false;
  const eos = c.eos_token_id;
  let eosTokenIds: number[] = [];
  if (eos !== undefined && eos !== null) {
    const list = Array.isArray(eos) ? eos : [eos];
    if (!list.every((x) => Number.isSafeInteger(x) && (x as number) >= 0)) {
      bad(`field "eos_token_id" is ${JSON.stringify(eos)}; expected a token id or a list of them`);
    }
    eosTokenIds = list as number[];
  }
  if (has("torch_dtype") && typeof c.torch_dtype !== "string") bad(`field "torch_dtype" is not a string`);
  const dtype = c.torch_dtype ?? c.dtype;

  return {
    architecture: arch,
    hiddenSize,
    intermediateSize: int("intermediate_size"),
    numLayers: int("num_hidden_layers"),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: int("vocab_size"),
    maxPositionEmbeddings: int("max_position_embeddings", d.maxPositionEmbeddings),
    rmsNormEps: positive("rms_norm_eps", d.rmsNormEps),
    ropeTheta,
    ropeScaling,
    tieWordEmbeddings: bool("tie_word_embeddings", false),
    attentionBias: arch === "qwen2" ? true : attnBias,
    attentionOutputBias: attnBias,
    mlpBias: arch === "llama" ? bool("mlp_bias", false) : false,
    hiddenAct: "silu",
    slidingWindow,
    maxWindowLayers,
    bosTokenId: has("bos_token_id") ? int("bos_token_id", undefined, 0) : null,
    eosTokenIds,
    torchDtype: typeof dtype === "string" ? dtype : null,
  };
}

function architectureOf(c: Record<string, unknown>, source: string): HfArchitecture {
  const supported = Object.entries(SUPPORTED_ARCHITECTURES)
    .map(([k, v]) => `${k} (${v})`)
    .join(", ");
  const modelType = c.model_type;
  if (typeof modelType === "string") {
    if (Object.hasOwn(SUPPORTED_ARCHITECTURES, modelType)) return modelType as HfArchitecture;
    throw new LowbitError(
      "E_UNSUPPORTED_ARCHITECTURE",
      `${source}: model_type "${modelType}" is not supported; supported: ${supported}`,
    );
  }
  const archs = Array.isArray(c.architectures) ? c.architectures : [];
  for (const [k, cls] of Object.entries(SUPPORTED_ARCHITECTURES)) {
    if (archs.includes(cls)) return k as HfArchitecture;
  }
  const named = archs.length > 0 ? `architectures ${JSON.stringify(archs)}` : "no model_type or architectures";
  throw new LowbitError("E_UNSUPPORTED_ARCHITECTURE", `${source}: ${named} is not supported; supported: ${supported}`);
}
