import { LowbitError } from "@lowbit/tensor";

/** How RoPE pairs the dimensions of a head. */
export type RopeStyle =
  /** Adjacent pairs (x[2i], x[2i+1]): llama2.c checkpoints and GGUF (llama.cpp permutes q/k rows into this). */
  | "interleaved"
  /** Pairs (x[i], x[i + headDim/2]): Hugging Face checkpoints (`rotate_half`). */
  | "half";

/** The names of the seven linear layers of a decoder layer (GGUF-style). */
export const LINEAR_NAMES = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"] as const;
export type LinearName = (typeof LINEAR_NAMES)[number];

export function isLinearName(name: string): name is LinearName {
  return (LINEAR_NAMES as readonly string[]).includes(name);
}

/** Everything the decoder needs to know about a LLaMA-family model. */
export interface LlamaConfig {
  /** Source architecture, e.g. "llama", "mistral", "qwen2" (informational). */
  architecture: string;
  /** Hidden size (embedding width). */
  dim: number;
  /** Feed-forward (SwiGLU) hidden size. */
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  /** Width of one attention head; usually dim / nHeads. */
  headDim: number;
  vocabSize: number;
  /** Longest context the model was trained for (the KV cache default size). */
  maxSeqLen: number;
  /** RMSNorm epsilon. */
  normEps: number;
  /** RoPE base frequency. */
  ropeTheta: number;
  ropeStyle: RopeStyle;
  /** The classifier shares the token embedding matrix. */
  tiedEmbeddings: boolean;
  /** q, k and v projections carry biases (Qwen2). */
  attnBias: boolean;
  bosTokenId: number;
  /** Token ids that end generation. */
  eosTokenIds: number[];
  /**
   * Sliding-window attention (Mistral, Qwen2 with use_sliding_window): a query attends to at most
   * this many most recent positions, itself included. Undefined: full causal attention.
   */
  slidingWindow?: number;
  /** First layer that uses the sliding window (Qwen2's max_window_layers); default 0. */
  slidingWindowFromLayer?: number;
}

export type LlamaConfigInput = Partial<LlamaConfig> &
  Pick<LlamaConfig, "dim" | "hiddenDim" | "nLayers" | "nHeads" | "vocabSize">;

/** Fills defaults (llama2.c conventions) and validates a config; errors name the field. */
export function makeConfig(input: LlamaConfigInput): LlamaConfig {
  const nHeads = input.nHeads;
  const cfg: LlamaConfig = {
    architecture: input.architecture ?? "llama",
    dim: input.dim,
    hiddenDim: input.hiddenDim,
    nLayers: input.nLayers,
    nHeads,
    nKvHeads: input.nKvHeads ?? nHeads,
    headDim: input.headDim ?? Math.floor(input.dim / nHeads),
    vocabSize: input.vocabSize,
    maxSeqLen: input.maxSeqLen ?? 2048,
    normEps: input.normEps ?? 1e-5,
    ropeTheta: input.ropeTheta ?? 10000,
    ropeStyle: input.ropeStyle ?? "interleaved",
    tiedEmbeddings: input.tiedEmbeddings ?? false,
    attnBias: input.attnBias ?? false,
    bosTokenId: input.bosTokenId ?? 1,
    eosTokenIds: input.eosTokenIds ?? [2],
  };
  if (input.slidingWindow !== undefined) {
    if (!Number.isSafeInteger(input.slidingWindow) || input.slidingWindow <= 0) {
      throw new LowbitError("E_CONFIG", `model config: slidingWindow must be a positive integer, got ${input.slidingWindow}`);
    }
    cfg.slidingWindow = input.slidingWindow;
    cfg.slidingWindowFromLayer = input.slidingWindowFromLayer ?? 0;
  }
  for (const key of ["dim", "hiddenDim", "nLayers", "nHeads", "nKvHeads", "headDim", "vocabSize", "maxSeqLen"] as const) {
    const v = cfg[key];
    if (!Number.isSafeInteger(v) || v <= 0) {
      throw new LowbitError("E_CONFIG", `model config: ${key} must be a positive integer, got ${v}`);
    }
  }
  if (cfg.nHeads % cfg.nKvHeads !== 0) {
    throw new LowbitError(
      "E_CONFIG",
      `model config: nHeads (${cfg.nHeads}) must be a multiple of nKvHeads (${cfg.nKvHeads})`,
    );
  }
  if (cfg.headDim % 2 !== 0) {
    throw new LowbitError("E_CONFIG", `model config: headDim must be even for RoPE, got ${cfg.headDim}`);
  }
  if (!(cfg.normEps > 0) || !(cfg.ropeTheta > 0)) {
    throw new LowbitError("E_CONFIG", `model config: normEps and ropeTheta must be positive`);
  }
  if (cfg.ropeStyle !== "interleaved" && cfg.ropeStyle !== "half") {
    throw new LowbitError("E_CONFIG", `model config: ropeStyle must be "interleaved" or "half", got "${cfg.ropeStyle}"`);
  }
  return cfg;
}

/** [out, in] shape of a linear layer of a decoder layer. */
export function linearShape(cfg: LlamaConfig, name: LinearName): [number, number] {
  const q = cfg.nHeads * cfg.headDim;
  const kv = cfg.nKvHeads * cfg.headDim;
  switch (name) {
    case "attn_q":
      return [q, cfg.dim];
    case "attn_k":
    case "attn_v":
      return [kv, cfg.dim];
    case "attn_output":
      return [cfg.dim, q];
    case "ffn_gate":
    case "ffn_up":
      return [cfg.hiddenDim, cfg.dim];
    case "ffn_down":
      return [cfg.dim, cfg.hiddenDim];
  }
}

/** Number of parameters (weights, norms, biases, embedding, classifier). */
export function parameterCount(cfg: LlamaConfig): number {
  let perLayer = 2 * cfg.dim;
  for (const n of LINEAR_NAMES) {
    const [o, i] = linearShape(cfg, n);
    perLayer += o * i;
  }
  if (cfg.attnBias) perLayer += (cfg.nHeads + 2 * cfg.nKvHeads) * cfg.headDim;
  const embed = cfg.vocabSize * cfg.dim;
  return perLayer * cfg.nLayers + embed + cfg.dim + (cfg.tiedEmbeddings ? 0 : embed);
}
