import { type GgufFile, readGguf } from "@lowbit/formats";
import { Q4_0TiledLinear } from "@lowbit/int4";
import { type Linear, LowbitError } from "@lowbit/tensor";
import { type BuildOptions, buildModel, type TensorSource } from "./build";
import { type LlamaConfig, makeConfig } from "./config";
import { blockEmbedding, type GgufActivations, ggufTensorType, type HalfWeights } from "./gguf-types";
import type { LlamaModel } from "./model";
import { Llama2cTokenizer } from "./tokenizer/llama2c";

/** GGUF `general.architecture` values this runtime runs. */
export const SUPPORTED_GGUF_ARCHITECTURES = ["llama", "qwen2"] as const;

function meta(file: GgufFile, key: string): unknown {
  return file.get(key);
}

function metaNum(file: GgufFile, key: string, fallback?: number): number {
  const v = meta(file, key);
  if (v === undefined) {
    if (fallback !== undefined) return fallback;
    throw new LowbitError("E_GGUF_METADATA", `${file.path}: missing metadata key "${key}"`);
  }
  const n = typeof v === "bigint" ? Number(v) : v;
  if (typeof n !== "number" || !Number.isFinite(n)) {
    throw new LowbitError("E_GGUF_METADATA", `${file.path}: metadata "${key}" must be a number, got ${String(v)}`);
  }
  return n;
}

/**
 * The LlamaConfig of a GGUF file. llama.cpp's "llama" models rotate interleaved pairs (its
 * converter permutes Hugging Face q/k rows); "qwen2" uses half-split (NEOX) RoPE and q/k/v biases.
 */
export function configFromGguf(file: GgufFile): LlamaConfig {
  const arch = String(meta(file, "general.architecture") ?? "unknown");
  if (!(SUPPORTED_GGUF_ARCHITECTURES as readonly string[]).includes(arch)) {
    throw new LowbitError(
      "E_UNSUPPORTED_ARCHITECTURE",
      `${file.path}: GGUF architecture "${arch}" is not supported; supported: ${SUPPORTED_GGUF_ARCHITECTURES.join(", ")}`,
    );
  }
  const embd = file.tensors.find((t) => t.name === "token_embd.weight");
  const tokens = meta(file, "tokenizer.ggml.tokens");
  const vocabFallback = embd?.dims[1] ?? (Array.isArray(tokens) ? tokens.length : undefined);
  const dim = metaNum(file, `${arch}.embedding_length`);
  const nHeads = metaNum(file, `${arch}.attention.head_count`);
  const eos = meta(file, "tokenizer.ggml.eos_token_id");
  return makeConfig({
    architecture: arch,
    dim,
    hiddenDim: metaNum(file, `${arch}.feed_forward_length`),
    nLayers: metaNum(file, `${arch}.block_count`),
    nHeads,
    nKvHeads: metaNum(file, `${arch}.attention.head_count_kv`, nHeads),
    headDim: metaNum(file, `${arch}.rope.dimension_count`, dim / nHeads),
    vocabSize: metaNum(file, `${arch}.vocab_size`, vocabFallback),
    maxSeqLen: metaNum(file, `${arch}.context_length`, 2048),
    normEps: metaNum(file, `${arch}.attention.layer_norm_rms_epsilon`, 1e-5),
    ropeTheta: metaNum(file, `${arch}.rope.freq_base`, 10000),
    ropeStyle: arch === "qwen2" ? "half" : "interleaved",
    tiedEmbeddings: !file.tensors.some((t) => t.name === "output.weight"),
    attnBias: arch === "qwen2",
    bosTokenId: metaNum(file, "tokenizer.ggml.bos_token_id", 1),
    eosTokenIds: eos === undefined ? [2] : [Number(eos)],
  });
}

/** Options of loadGguf. */
export interface GgufLoadOptions extends BuildOptions {
  overrides?: Partial<LlamaConfig>;
  /**
   * What block-quantized linears multiply with (see GgufActivations). Unset: Q8_0 and Q4_0
   * quantized (llama.cpp's arithmetic and the fastest), Q4_1, Q4_K and Q6_K f32.
   */
  activations?: GgufActivations;
  /** F16/BF16 linears: "keep" (default) 16-bit HalfLinear, "f32" decoded at load (see HalfWeights). */
  halfWeights?: HalfWeights;
}

/** ggml type id of Q4_0. */
const GGML_Q4_0 = 2;

/**
 * Q4_0 linears use the dedicated Q4_0 kernel (4-row tiles of the file's 4-bit codes, activations
 * quantized to Q8_0 blocks as llama.cpp's vec_dot_q4_0_q8_0 does) unless `activations: "f32"` asks
 * for f32 activations (then the type table's Int4Linear layout, weights dequantized on the fly).
 * Unset, Q4_0 is therefore quantized, like Q8_0; Q4_1 keeps f32 activations unless asked.
 */
function q4_0Linear(bytes: Uint8Array, out: number, inp: number, bias: Float32Array | undefined, name: string): Linear {
  return new Q4_0TiledLinear(bytes, out, inp, { bias, name });
}

/**
 * A TensorSource over a GGUF file: reads per tensor; block-quantized weights become block linears
 * (with `activations`, see GgufActivations).
 */
export function ggufSource(file: GgufFile, activations?: GgufActivations, halfWeights?: HalfWeights): TensorSource {
  const info = new Map(file.tensors.map((t) => [t.name, t]));
  const get = (name: string) => {
    const t = info.get(name);
    if (!t) throw new LowbitError("E_MISSING_TENSOR", `${file.path}: missing tensor "${name}"`);
    return t;
  };
  return {
    shape: (name) => {
      const t = info.get(name);
      return t ? [...t.dims].reverse() : undefined;
    },
    readF32: async (name) => {
      const t = get(name);
      const n = t.dims.reduce((a, d) => a * d, 1);
      return ggufTensorType(t.type, `${file.path}: tensor "${name}"`).toF32(await file.read(name), n);
    },
    readLinear: async (name, out, inp, bias) => {
      const t = get(name);
      const type = ggufTensorType(t.type, `${file.path}: tensor "${name}"`);
      if (!type.linear) return undefined;
      if (t.type === GGML_Q4_0 && type.name === "Q4_0" && activations !== "f32") return q4_0Linear(await file.read(name), out, inp, bias, name);
      return type.linear(await file.read(name), out, inp, bias, name, activations, halfWeights);
    },
    readEmbedding: async (name, vocabSize, dim) => {
      const t = get(name);
      if (t.type === 0) return undefined;
      const where = `${file.path}: tensor "${name}"`;
      return blockEmbedding(ggufTensorType(t.type, where), await file.read(name), vocabSize, dim, where);
    },
    close: () => file.close(),
  };
}

/** Loads a GGUF model (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K; Q5_0, Q5_1, Q2_K, Q3_K, Q5_K decoded to f32; see gguf-types.ts). */
export async function loadGguf(path: string, options: GgufLoadOptions = {}): Promise<LlamaModel> {
  const file = await readGguf(path);
  try {
    let cfg = configFromGguf(file);
    if (options.overrides) cfg = makeConfig({ ...cfg, ...options.overrides });
    const model = await buildModel(cfg, ggufSource(file, options.activations, options.halfWeights), { ...options, what: path });
    if (!options.lazy) await file.close();
    return model;
  } catch (e) {
    await file.close();
    throw e;
  }
}

/**
 * The SentencePiece-style vocabulary embedded in a GGUF (tokenizer.ggml.model "llama") as a
 * tokenizer that encodes like llama2.c's run.c. U+2581 in token texts stands for a space.
 */
export async function loadGgufTokenizer(path: string): Promise<Llama2cTokenizer> {
  const file = await readGguf(path);
  try {
    const model = meta(file, "tokenizer.ggml.model");
    if (model !== "llama") {
      throw new LowbitError(
        "E_UNSUPPORTED",
        `${path}: GGUF tokenizer model "${String(model)}" is not supported (only "llama", SentencePiece-style)`,
      );
    }
    const tokens = meta(file, "tokenizer.ggml.tokens");
    const scores = meta(file, "tokenizer.ggml.scores");
    if (!Array.isArray(tokens) || !Array.isArray(scores) || tokens.length !== scores.length) {
      throw new LowbitError("E_TOKENIZER", `${path}: tokenizer.ggml.tokens and tokenizer.ggml.scores must be arrays of equal length`);
    }
    const enc = new TextEncoder();
    const eos = meta(file, "tokenizer.ggml.eos_token_id");
    return new Llama2cTokenizer(
      {
        maxTokenLength: Math.max(...tokens.map((t) => String(t).length)),
        tokens: tokens.map((t) => enc.encode(String(t).replaceAll("\u2581", " "))),
        scores: Float32Array.from(scores as number[]),
      },
      { eosIds: eos === undefined ? [2] : [Number(eos)] },
    );
  } finally {
    await file.close();
  }
}
