/**
 * Models from files the user drops on the playground, parsed from ArrayBuffers with the bytes readers
 * of @lowbit/formats (nothing here touches node:fs):
 * - a .gguf (llama / qwen2; F32, F16, BF16, Q8_0, Q4_0, Q4_1 tensors) with its embedded vocabulary
 *   (parseGguf: the same GgufFile the runtime's GGUF helpers read from a path);
 * - a Hugging Face .safetensors (F32/F16/BF16) with its config.json and tokenizer.json (parseSafetensors);
 * - a llama2.c checkpoint .bin with its tokenizer .bin (parseLlama2cCheckpoint, parseLlama2cTokenizer).
 */
import { type GgufFile, parseGguf, parseLlama2cCheckpoint, parseLlama2cTokenizer, parseSafetensors } from "@lowbit/formats";
import {
  HfTokenizer,
  Llama2cTokenizer,
  type LlamaConfig,
  type TensorSource,
  type Tokenizer,
  configFromGguf,
  configFromHf,
  ggufSource,
  hfNameFromInternal,
  internalNameFromHf,
  makeConfig,
  memorySource,
} from "@lowbit/runtime";
import { LowbitError } from "@lowbit/tensor";

export interface DroppedFile {
  name: string;
  bytes: Uint8Array;
}

export interface LoadedModel {
  name: string;
  format: "gguf" | "safetensors" | "llama2c";
  config: LlamaConfig;
  source: () => TensorSource;
  tokenizer: Tokenizer;
  fileBytes: number;
}

/** The largest model file the playground accepts (it is held in memory several times over). */
export const MAX_MODEL_BYTES = 512 * 1024 * 1024;

const lower = (f: DroppedFile) => f.name.toLowerCase();

/**
 * The SentencePiece-style vocabulary embedded in a GGUF, as the runtime's loadGgufTokenizer builds it
 * (that one takes a path only).
 */
function ggufTokenizer(file: GgufFile, name: string): Tokenizer {
  const model = file.get("tokenizer.ggml.model");
  const tokens = file.get("tokenizer.ggml.tokens");
  const scores = file.get("tokenizer.ggml.scores");
  if (model !== "llama" || !Array.isArray(tokens) || !Array.isArray(scores) || tokens.length !== scores.length) {
    throw new LowbitError("E_TOKENIZER", `${name}: the playground needs a GGUF with a "llama" (SentencePiece) vocabulary with scores`);
  }
  const enc = new TextEncoder();
  const eos = file.get("tokenizer.ggml.eos_token_id");
  return new Llama2cTokenizer(
    {
      maxTokenLength: Math.max(...tokens.map((t) => String(t).length)),
      tokens: tokens.map((t) => enc.encode(String(t).replaceAll("\u2581", " "))),
      scores: Float32Array.from(scores as number[]),
    },
    { eosIds: eos === undefined ? [2] : [Number(eos)] },
  );
}

function fromGguf(f: DroppedFile): LoadedModel {
  const file = parseGguf(f.bytes, f.name);
  const config = configFromGguf(file);
  // a GgufFile per source: closing one model's source leaves the other's readable
  const source = () => ggufSource(parseGguf(f.bytes, f.name));
  return { name: f.name, format: "gguf", config, source, tokenizer: ggufTokenizer(file, f.name), fileBytes: f.bytes.byteLength };
}

function fromSafetensors(f: DroppedFile, all: DroppedFile[]): LoadedModel {
  const cfgFile = all.find((x) => lower(x) === "config.json");
  const tokFile = all.find((x) => lower(x) === "tokenizer.json");
  if (!cfgFile || !tokFile) {
    throw new LowbitError("E_INVALID_ARGUMENT", `${f.name}: drop config.json and tokenizer.json together with the .safetensors file`);
  }
  const file = parseSafetensors(f.bytes, f.name);
  const dec = new TextDecoder();
  let config = configFromHf(dec.decode(cfgFile.bytes), cfgFile.name);
  const byInternal = new Map<string, string>();
  for (const name of file.tensors.keys()) {
    const internal = internalNameFromHf(name);
    if (internal) byInternal.set(internal, name);
  }
  if (!config.tiedEmbeddings && !byInternal.has("output.weight")) config = makeConfig({ ...config, tiedEmbeddings: true });
  const cfgJson = all.find((x) => lower(x) === "tokenizer_config.json");
  const tokenizer = new HfTokenizer(JSON.parse(dec.decode(tokFile.bytes)), cfgJson ? JSON.parse(dec.decode(cfgJson.bytes)) : {}, {
    source: tokFile.name,
    ...(config.bosTokenId !== undefined ? { bosId: config.bosTokenId } : {}),
    eosIds: config.eosTokenIds,
  });
  const source = (): TensorSource => ({
    shape: (name) => {
      const hf = byInternal.get(name);
      return hf ? [...file.tensors.get(hf)!.shape] : undefined;
    },
    readF32: (name) => file.readF32(byInternal.get(name) ?? hfNameFromInternal(name) ?? name),
    describe: (name) => byInternal.get(name) ?? hfNameFromInternal(name) ?? name,
  });
  return { name: f.name, format: "safetensors", config, source, tokenizer, fileBytes: f.bytes.byteLength };
}

/** A llama2.c checkpoint and its tokenizer (llama2.c conventions, as the runtime's loadLlama2c uses them). */
export function loadLlama2cFiles(model: DroppedFile, tok: DroppedFile | undefined): LoadedModel {
  if (!tok) throw new LowbitError("E_INVALID_ARGUMENT", `${model.name}: drop the llama2.c tokenizer .bin together with the checkpoint`);
  const ckpt = parseLlama2cCheckpoint(model.bytes, model.name);
  const c = ckpt.config;
  const config = makeConfig({
    architecture: "llama2.c",
    dim: c.dim,
    hiddenDim: c.hiddenDim,
    nLayers: c.nLayers,
    nHeads: c.nHeads,
    nKvHeads: c.nKvHeads,
    vocabSize: c.vocabSize,
    maxSeqLen: c.seqLen,
    tiedEmbeddings: c.sharedClassifier,
    bosTokenId: 1,
    eosTokenIds: [2, 1],
  });
  const tokenizer = new Llama2cTokenizer(parseLlama2cTokenizer(tok.bytes, tok.name, { expectedVocabSize: c.vocabSize }));
  return { name: model.name, format: "llama2c", config, source: () => memorySource(ckpt.tensors), tokenizer, fileBytes: model.bytes.byteLength };
}

/** Is this .bin a llama2.c tokenizer (max_token_length, then score/length/bytes records)? */
function looksLikeTokenizer(f: DroppedFile): boolean {
  try {
    parseLlama2cTokenizer(f.bytes, f.name);
    return true;
  } catch {
    return false;
  }
}

/** Picks the model among the dropped files and parses it. Errors say which file is missing. */
export function loadDroppedFiles(files: DroppedFile[]): LoadedModel {
  const big = files.find((f) => f.bytes.byteLength > MAX_MODEL_BYTES);
  if (big) {
    throw new LowbitError("E_UNSUPPORTED", `${big.name}: ${(big.bytes.byteLength / 2 ** 20).toFixed(0)} MiB is more than the playground holds in memory (${MAX_MODEL_BYTES / 2 ** 20} MiB); use the CLI for big models`);
  }
  const gguf = files.find((f) => lower(f).endsWith(".gguf"));
  if (gguf) return fromGguf(gguf);
  const st = files.find((f) => lower(f).endsWith(".safetensors"));
  if (st) return fromSafetensors(st, files);
  const bins = files.filter((f) => lower(f).endsWith(".bin"));
  if (bins.length > 0) {
    const tok = bins.find(looksLikeTokenizer);
    const model = bins.filter((b) => b !== tok).sort((a, b) => b.bytes.byteLength - a.bytes.byteLength)[0];
    if (!model) throw new LowbitError("E_INVALID_ARGUMENT", "only a tokenizer .bin was dropped; drop the llama2.c checkpoint .bin too");
    return loadLlama2cFiles(model, tok);
  }
  throw new LowbitError(
    "E_INVALID_ARGUMENT",
    `none of ${files.map((f) => f.name).join(", ")} is a model: drop a .gguf, a .safetensors with config.json and tokenizer.json, or a llama2.c .bin with its tokenizer .bin`,
  );
}
