import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { type Llama2cFile, openLlama2c, openSafetensorsModel, readGguf } from "@lowbit/formats";
import {
  configFromGguf,
  configFromHf,
  ggufSource,
  HfTokenizer,
  hfNameFromInternal,
  internalNameFromHf,
  Llama2cTokenizer,
  type LlamaConfig,
  loadGgufTokenizer,
  makeConfig,
  type TensorSource,
  type Tokenizer,
} from "@lowbit/runtime";
import { LowbitError } from "@lowbit/tensor";
import { readHfQuantizedModel } from "../export/hf-quantized";
import { readLowbitModel } from "../export/lowbit-format";
import type { QuantizedModel, TokenizerFiles } from "../quant/qmodel";
import { qmodelSource } from "./qmodel-source";
import type { ResolvedModel } from "./resolve";

/** A model opened as a config + tensor source (not yet built), with where its tokenizer lives. */
export interface OpenedModel {
  resolved: ResolvedModel;
  config: LlamaConfig;
  source: TensorSource;
  tokenizerFiles?: TokenizerFiles;
  /** Set for lowbit/GPTQ/AWQ inputs: the quantized weights as stored. */
  quantized?: QuantizedModel;
  close(): Promise<void>;
}

const HF_TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model", "generation_config.json"];

/**
 * llama2.c conventions, as the runtime's loadLlama2c uses them. The runtime exports only the built
 * model (loadLlama2c), not this config + source step, which openModel needs unbuilt; until it does,
 * the CLI repeats the config here.
 */
function llama2cConfig(c: { dim: number; hiddenDim: number; nLayers: number; nHeads: number; nKvHeads: number; vocabSize: number; seqLen: number; sharedClassifier: boolean }): LlamaConfig {
  return makeConfig({
    architecture: "llama2.c",
    dim: c.dim,
    hiddenDim: c.hiddenDim,
    nLayers: c.nLayers,
    nHeads: c.nHeads,
    nKvHeads: c.nKvHeads,
    vocabSize: c.vocabSize,
    maxSeqLen: c.seqLen,
    normEps: 1e-5,
    ropeTheta: 10000,
    ropeStyle: "interleaved",
    tiedEmbeddings: c.sharedClassifier,
    bosTokenId: 1,
    eosTokenIds: [2, 1],
  });
}

/** A TensorSource reading a llama2.c checkpoint's tensors by position, one per call. */
function llama2cSource(file: Llama2cFile): TensorSource {
  return {
    shape: (name) => {
      const t = file.tensors.get(name);
      return t ? [...t.shape] : undefined;
    },
    readF32: (name) => file.readF32(name),
  };
}

async function openHf(resolved: ResolvedModel): Promise<OpenedModel> {
  const cfgPath = join(resolved.path, "config.json");
  let config = configFromHf(await readFile(cfgPath, "utf8"), cfgPath);
  const st = await openSafetensorsModel(resolved.weights);
  const byInternal = new Map<string, string>();
  for (const name of st.tensors.keys()) {
    const internal = internalNameFromHf(name);
    if (internal) byInternal.set(internal, name);
  }
  if (!config.tiedEmbeddings && !byInternal.has("output.weight")) config = { ...config, tiedEmbeddings: true };
  const { readdir } = await import("node:fs/promises");
  const names = await readdir(resolved.path);
  const tokFiles = names.filter((n) => HF_TOKENIZER_FILES.includes(n));
  return {
    resolved,
    config,
    source: {
      shape: (name) => {
        const hf = byInternal.get(name);
        return hf ? [...st.tensors.get(hf)!.shape] : undefined;
      },
      readF32: (name) => st.readF32(byInternal.get(name) ?? hfNameFromInternal(name) ?? name),
      describe: (name) => byInternal.get(name) ?? hfNameFromInternal(name) ?? name,
    },
    tokenizerFiles: resolved.tokenizer?.endsWith(".bin")
      ? { kind: "llama2c", path: resolved.tokenizer }
      : tokFiles.includes("tokenizer.json")
        ? { kind: "hf", dir: resolved.path, files: tokFiles }
        : undefined,
    close: () => st.close(),
  };
}

/** Opens any model path lowbit reads. The caller closes it (lazy sources keep files open). */
export async function openModel(resolved: ResolvedModel): Promise<OpenedModel> {
  switch (resolved.kind) {
    case "llama2c": {
      // only the header is read now; each tensor is read from the file when asked for
      const file = await openLlama2c(resolved.weights);
      return {
        resolved,
        config: llama2cConfig(file.config),
        source: llama2cSource(file),
        tokenizerFiles: resolved.tokenizer ? { kind: "llama2c", path: resolved.tokenizer } : undefined,
        close: () => file.close(),
      };
    }
    case "gguf": {
      const file = await readGguf(resolved.weights);
      try {
        return {
          resolved,
          config: configFromGguf(file),
          source: ggufSource(file),
          tokenizerFiles: resolved.tokenizer ? { kind: "llama2c", path: resolved.tokenizer } : { kind: "gguf", path: resolved.weights },
          close: () => file.close(),
        };
      } catch (e) {
        await file.close();
        throw e;
      }
    }
    case "hf":
      return openHf(resolved);
    case "lowbit":
    case "gptq":
    case "awq": {
      const q = resolved.kind === "lowbit" ? await readLowbitModel(resolved.path) : await readHfQuantizedModel(resolved.path, resolved.kind);
      const tokenizerFiles: TokenizerFiles | undefined = resolved.tokenizer?.endsWith(".bin") ? { kind: "llama2c", path: resolved.tokenizer } : q.tokenizer;
      return { resolved, config: q.config, source: qmodelSource(q), tokenizerFiles, quantized: q, close: async () => {} };
    }
    case "safetensors":
      throw new LowbitError(
        "E_CONFIG",
        `${resolved.path} is a bare .safetensors file without config.json beside it, so its architecture is unknown. Put it in a folder with the model's config.json (a Hugging Face model folder).`,
      );
  }
}

/** The tokenizer of an opened model. */
export async function openTokenizer(m: OpenedModel): Promise<Tokenizer> {
  const t = m.tokenizerFiles;
  if (!t) {
    throw new LowbitError(
      "E_TOKENIZER",
      `${m.resolved.path} has no tokenizer lowbit can find; pass --tokenizer FILE (a llama2.c tokenizer .bin or a tokenizer.json).`,
    );
  }
  let tok: Tokenizer;
  if (t.kind === "llama2c") tok = await Llama2cTokenizer.fromFile(t.path, { expectedVocabSize: m.config.vocabSize });
  else if (t.kind === "gguf") tok = await loadGgufTokenizer(t.path);
  else tok = await HfTokenizer.fromPath(t.dir, { bosId: m.config.bosTokenId, eosIds: m.config.eosTokenIds });
  if (tok.vocabSize > m.config.vocabSize) {
    throw new LowbitError(
      "E_TOKENIZER",
      `the tokenizer has ${tok.vocabSize} tokens but ${m.resolved.path} has a vocabulary of ${m.config.vocabSize}; pass the model's own tokenizer with --tokenizer.`,
    );
  }
  return tok;
}
