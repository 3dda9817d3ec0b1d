import { buildModel, type LlamaModel, type Tokenizer } from "@lowbit/runtime";
import { type OpenedModel, openModel, openTokenizer } from "./open";
import { resolveModel } from "./resolve";

/** A model ready to run, with its tokenizer. */
export interface LoadedModel {
  opened: OpenedModel;
  model: LlamaModel;
  tokenizer: Tokenizer;
}

export interface LoadOptions {
  tokenizer?: string;
}

/** Resolves a model path and loads it (weights and tokenizer) into lowbit's runtime. */
export async function loadModel(path: string, opts: LoadOptions = {}): Promise<LoadedModel> {
  const resolved = await resolveModel(path, { tokenizer: opts.tokenizer });
  const opened = await openModel(resolved);
  try {
    const tokenizer = await openTokenizer(opened);
    const model = await buildModel(opened.config, opened.source, { what: path });
    return { opened, model, tokenizer };
  } finally {
    await opened.close();
  }
}
