import { LowbitError } from "@lowbit/tensor";
import { GGML_TYPE } from "./ggml-types";
import { GgufMetadataBuilder, type GgufTensorInput, type GgufWriteInput } from "./gguf-write";
import type { Llama2cCheckpoint, Llama2cConfig, Llama2cTokenizer } from "./llama2c";

/** llama.cpp token types (tokenizer.ggml.token_type). */
export const LLAMA_TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

export interface LlamaGgufOptions {
  /** general.name (default "llama"). */
  name?: string;
  /** RoPE base; llama2.c models use 10000. */
  ropeFreqBase?: number;
  /** RMSNorm epsilon; llama2.c models use 1e-5. */
  rmsNormEps?: number;
  /** general.file_type (llama_ftype); 0 = all F32, 1 = mostly F16, 2 = Q4_0, 7 = Q8_0, ... */
  fileType?: number;
  bosTokenId?: number;
  eosTokenId?: number;
  unknownTokenId?: number;
}

/** The gguf ne of a row-major shape: the same dims reversed (ne[0] is the contiguous one). */
export function ggufDimsFromShape(shape: readonly number[]): number[] {
  return [...shape].reverse();
}

/** The row-major shape of gguf dims ne. */
export function shapeFromGgufDims(ne: readonly number[]): number[] {
  return [...ne].reverse();
}

const BYTE_TOKEN = /^<0x[0-9A-Fa-f]{2}>$/;

/**
 * tokenizer.ggml.* entries for a llama2.c (SentencePiece-derived) vocabulary, following
 * llama.cpp's convert-llama2c-to-ggml: ids 0/1/2 become <unk>/<s>/</s>, `<0xNN>` tokens are byte
 * tokens, empty tokens control tokens, and spaces are written as U+2581 as SentencePiece does.
 */
export function llamaTokenizerMetadata(
  tokenizer: Llama2cTokenizer,
  b: GgufMetadataBuilder,
  ids: { unk: number; bos: number; eos: number },
): GgufMetadataBuilder {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const texts: string[] = [];
  const types: number[] = [];
  tokenizer.tokens.forEach((bytes, id) => {
    let text: string;
    try {
      text = decoder.decode(bytes);
    } catch (e) {
      throw new LowbitError("E_TOKENIZER", `token ${id} is not valid UTF-8; GGUF token texts must be strings`, {
        cause: e,
      });
    }
    let type: number = LLAMA_TOKEN_TYPE.NORMAL;
    if (id === ids.unk) [text, type] = ["<unk>", LLAMA_TOKEN_TYPE.UNKNOWN];
    else if (id === ids.bos) [text, type] = ["<s>", LLAMA_TOKEN_TYPE.CONTROL];
    else if (id === ids.eos) [text, type] = ["</s>", LLAMA_TOKEN_TYPE.CONTROL];
    else if (text.length === 0) type = LLAMA_TOKEN_TYPE.CONTROL;
    else if (BYTE_TOKEN.test(text)) type = LLAMA_TOKEN_TYPE.BYTE;
    texts.push(text.replaceAll(" ", "\u2581"));
    types.push(type);
  });
  return b
    .string("tokenizer.ggml.model", "llama")
    .array("tokenizer.ggml.tokens", "string", texts)
    .array("tokenizer.ggml.scores", "f32", Array.from(tokenizer.scores))
    .array("tokenizer.ggml.token_type", "i32", types)
    .u32("tokenizer.ggml.bos_token_id", ids.bos)
    .u32("tokenizer.ggml.eos_token_id", ids.eos)
    .u32("tokenizer.ggml.unknown_token_id", ids.unk);
}

/** llama.* and general.* metadata of a LLaMA model described by a llama2.c config. */
export function llamaGgufMetadata(
  config: Llama2cConfig,
  tokenizer?: Llama2cTokenizer,
  options: LlamaGgufOptions = {},
): GgufMetadataBuilder {
  if (tokenizer && tokenizer.tokens.length !== config.vocabSize) {
    throw new LowbitError(
      "E_TOKENIZER",
      `tokenizer has ${tokenizer.tokens.length} tokens but the model's vocab_size is ${config.vocabSize}`,
    );
  }
  const b = new GgufMetadataBuilder()
    .string("general.architecture", "llama")
    .string("general.name", options.name ?? "llama")
    .u32("general.file_type", options.fileType ?? 0)
    .u32("general.quantization_version", 2)
    .u32("llama.context_length", config.seqLen)
    .u32("llama.embedding_length", config.dim)
    .u32("llama.block_count", config.nLayers)
    .u32("llama.feed_forward_length", config.hiddenDim)
    .u32("llama.rope.dimension_count", config.dim / config.nHeads)
    .f32("llama.rope.freq_base", options.ropeFreqBase ?? 10000)
    .u32("llama.attention.head_count", config.nHeads)
    .u32("llama.attention.head_count_kv", config.nKvHeads)
    .f32("llama.attention.layer_norm_rms_epsilon", options.rmsNormEps ?? 1e-5)
    .u32("llama.vocab_size", config.vocabSize);
  if (tokenizer) {
    llamaTokenizerMetadata(tokenizer, b, {
      unk: options.unknownTokenId ?? 0,
      bos: options.bosTokenId ?? 1,
      eos: options.eosTokenId ?? 2,
    });
  }
  return b;
}

/**
 * A llama2.c checkpoint as GGUF input: F32 tensors with GGUF names and ne = reversed shapes, plus
 * the llama metadata (and tokenizer.ggml.* when a tokenizer is given). No weights are changed:
 * llama2.c q/k rows already follow llama.cpp's interleaved RoPE convention.
 */
export function llama2cToGguf(
  checkpoint: Llama2cCheckpoint,
  tokenizer?: Llama2cTokenizer,
  options: LlamaGgufOptions = {},
): GgufWriteInput {
  const tensors: GgufTensorInput[] = [];
  for (const [name, t] of checkpoint.tensors) {
    tensors.push({ name, type: GGML_TYPE.F32, dims: ggufDimsFromShape(t.shape), data: t.data });
  }
  return { metadata: llamaGgufMetadata(checkpoint.config, tokenizer, options), tensors };
}
