import { LowbitError } from "@lowbit/tensor";
import type { BuildOptions } from "./build";
import type { LlamaConfig } from "./config";
import { type GgufLoadOptions, loadGguf, loadGgufTokenizer } from "./load-gguf";
import { loadHfModel } from "./load-hf";
import { loadLlama2c } from "./load-llama2c";
import type { LlamaModel } from "./model";
import { HfTokenizer } from "./tokenizer/hf";
import { Llama2cTokenizer } from "./tokenizer/llama2c";
import type { Tokenizer } from "./tokenizer/types";

export type ModelFormat = "hf" | "gguf" | "llama2c";

const GGUF_MAGIC = "GGUF";

/** What a path holds: a Hugging Face folder, a GGUF file (by its magic), else a llama2.c checkpoint. */
export async function detectModelFormat(path: string): Promise<ModelFormat> {
  const { open, stat } = await import("node:fs/promises");
  let s: Awaited<ReturnType<typeof stat>>;
  try {
    s = await stat(path);
  } catch (e) {
    throw new LowbitError("E_FILE_NOT_FOUND", `${path}: not found`, { cause: e });
  }
  if (s.isDirectory()) return "hf";
  const fh = await open(path, "r");
  try {
    const buf = new Uint8Array(4);
    await fh.read(buf, 0, 4, 0);
    return new TextDecoder().decode(buf) === GGUF_MAGIC ? "gguf" : "llama2c";
  } finally {
    await fh.close();
  }
}

/** Loads a model from a Hugging Face folder, a GGUF file or a llama2.c checkpoint. */
export async function loadModel(
  path: string,
  options: BuildOptions & {
    overrides?: Partial<LlamaConfig>;
    format?: ModelFormat;
    activations?: GgufLoadOptions["activations"];
    /** f16/bf16 weights (GGUF, safetensors): "keep" them 16-bit (default) or decode to "f32". */
    halfWeights?: GgufLoadOptions["halfWeights"];
  } = {},
): Promise<LlamaModel> {
  const format = options.format ?? (await detectModelFormat(path));
  if (format === "hf") return loadHfModel(path, options);
  if (format === "gguf") return loadGguf(path, options);
  return loadLlama2c(path, options);
}

/**
 * Loads a tokenizer: a folder with tokenizer.json, a tokenizer.json file, a GGUF file's embedded
 * vocabulary, or a llama2.c tokenizer.bin.
 */
export async function loadTokenizer(path: string): Promise<Tokenizer> {
  if (path.endsWith(".json")) return HfTokenizer.fromPath(path);
  const format = await detectModelFormat(path);
  if (format === "hf") return HfTokenizer.fromPath(path);
  if (format === "gguf") return loadGgufTokenizer(path);
  return Llama2cTokenizer.fromFile(path);
}
