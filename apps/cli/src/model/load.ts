import { Llama2cTokenizer, type LlamaModel, loadLlama2c, type Tokenizer } from "@lowbit/runtime";
import { LowbitError } from "@lowbit/tensor";
import { type ResolvedModel, resolveModel } from "./resolve";

/** A model ready to run, with its tokenizer. */
export interface LoadedModel {
  resolved: ResolvedModel;
  model: LlamaModel;
  tokenizer: Tokenizer;
}

export interface LoadOptions {
  tokenizer?: string;
  /** Read decoder layers only when asked (the quantization driver walks them one by one). */
  lazy?: boolean;
}

/** Loads the tokenizer of a resolved model. */
export async function loadTokenizer(resolved: ResolvedModel, vocabSize: number): Promise<Tokenizer> {
  if (resolved.kind === "llama2c" || resolved.tokenizer?.endsWith(".bin")) {
    if (!resolved.tokenizer) {
      throw new LowbitError("E_TOKENIZER", `${resolved.path}: no tokenizer; pass the llama2.c tokenizer .bin with --tokenizer FILE.`);
    }
    return Llama2cTokenizer.fromFile(resolved.tokenizer, { expectedVocabSize: vocabSize });
  }
  throw new LowbitError("E_UNSUPPORTED", `${resolved.path}: loading a ${resolved.kind} model's tokenizer is not available in this build yet.`);
}

/** Resolves a model path and loads it into lowbit's runtime. */
export async function loadModel(path: string, opts: LoadOptions = {}): Promise<LoadedModel> {
  const resolved = await resolveModel(path, { tokenizer: opts.tokenizer });
  return loadResolved(resolved, opts);
}

export async function loadResolved(resolved: ResolvedModel, opts: LoadOptions = {}): Promise<LoadedModel> {
  switch (resolved.kind) {
    case "llama2c": {
      const model = await loadLlama2c(resolved.weights, { lazy: opts.lazy });
      const tokenizer = await loadTokenizer(resolved, model.config.vocabSize);
      return { resolved, model, tokenizer };
    }
    default:
      throw new LowbitError("E_UNSUPPORTED", `${resolved.path}: running ${resolved.kind} models is not available in this build yet.`);
  }
}
