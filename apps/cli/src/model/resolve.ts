import { open, readdir, readFile, stat } from "node:fs/promises";
import { basename, dirname, extname, join } from "node:path";
import { LowbitError } from "@lowbit/tensor";

/** What a model path turned out to be. */
export type ModelKind =
  /** llama2.c float32 checkpoint (.bin) + llama2.c tokenizer. */
  | "llama2c"
  /** A GGUF file. */
  | "gguf"
  /** A Hugging Face folder (config.json + safetensors). */
  | "hf"
  /** A folder written by `lowbit quantize --format lowbit`. */
  | "lowbit"
  /** An AutoGPTQ-layout folder (quantize_config.json or quantization_config.quant_method "gptq"). */
  | "gptq"
  /** An AutoAWQ-layout folder (quantization_config.quant_method "awq"). */
  | "awq"
  /** A bare .safetensors file with no config beside it (inspect only). */
  | "safetensors";

export interface ResolvedModel {
  kind: ModelKind;
  /** The path as given (file or folder). */
  path: string;
  /** The file holding the weights (folder models: the folder itself, opened by openSafetensorsModel). */
  weights: string;
  /** config.json, for folder models. */
  config?: Record<string, unknown>;
  /** Tokenizer file: llama2.c .bin, tokenizer.json, or undefined for GGUF (embedded). */
  tokenizer?: string;
}

const GGUF_MAGIC = 0x46554747; // "GGUF" little-endian

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function readPrefix(path: string, n: number): Promise<Uint8Array> {
  const fh = await open(path, "r");
  try {
    const buf = new Uint8Array(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

async function readJson(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new LowbitError("E_FILE_NOT_FOUND", `${path}: cannot read (${(e as Error).message}).`, { cause: e });
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("not a JSON object");
    return v as Record<string, unknown>;
  } catch (e) {
    throw new LowbitError("E_CONFIG", `${path}: not valid JSON (${(e as Error).message}); fix or regenerate the file.`, { cause: e });
  }
}

/** What a file's first bytes say it is. */
export async function sniffFile(path: string): Promise<"gguf" | "safetensors" | "unknown"> {
  const p = await readPrefix(path, 9);
  if (p.length >= 4 && new DataView(p.buffer, p.byteOffset, 4).getUint32(0, true) === GGUF_MAGIC) return "gguf";
  if (p.length === 9 && p[8] === 0x7b /* { */) {
    const n = new DataView(p.buffer, p.byteOffset, 8).getBigUint64(0, true);
    if (n > 1n && n < 100_000_000n) return "safetensors";
  }
  return "unknown";
}

/** The kind of a model folder from its config files. */
function folderKind(config: Record<string, unknown>, hasQuantizeConfig: boolean): ModelKind {
  if ((config.lowbit as { format?: unknown } | undefined)?.format === "lowbit") return "lowbit";
  const qc = config.quantization_config as { quant_method?: unknown } | undefined;
  const method = typeof qc?.quant_method === "string" ? qc.quant_method.toLowerCase() : undefined;
  if (method === "gptq" || (hasQuantizeConfig && method === undefined)) return "gptq";
  if (method === "awq") return "awq";
  if (method !== undefined) {
    throw new LowbitError(
      "E_UNSUPPORTED",
      `quantization_config.quant_method "${method}" is not supported; lowbit reads unquantized models and gptq/awq checkpoints. Start from the unquantized model.`,
    );
  }
  return "hf";
}

/**
 * Finds the llama2.c tokenizer for a checkpoint: `explicit` when given, else the single tokenizer
 * .bin in the checkpoint's folder (a .bin that is not the model and whose name says "tok", or the
 * only other .bin).
 */
export async function findLlama2cTokenizer(modelPath: string, explicit?: string): Promise<string> {
  if (explicit) {
    if (!(await exists(explicit))) {
      throw new LowbitError("E_FILE_NOT_FOUND", `tokenizer "${explicit}" not found; give the llama2.c tokenizer .bin with --tokenizer.`);
    }
    return explicit;
  }
  const dir = dirname(modelPath);
  const others = (await readdir(dir)).filter((n) => extname(n) === ".bin" && n !== basename(modelPath));
  const named = others.filter((n) => /tok/i.test(n));
  const candidates = named.length > 0 ? named : others;
  if (candidates.length === 1) return join(dir, candidates[0]!);
  const found = candidates.length === 0 ? "there is no other .bin file there" : `there are several: ${candidates.join(", ")}`;
  throw new LowbitError(
    "E_TOKENIZER",
    `no tokenizer for the llama2.c checkpoint ${modelPath}: ${found}. Pass the tokenizer .bin with --tokenizer FILE (for stories260K it is tok512.bin).`,
  );
}

/**
 * Resolves a model path: a Hugging Face folder (config.json + safetensors; GPTQ/AWQ folders and
 * lowbit outputs are such folders with quantization info), a .gguf file, a .safetensors file, or a
 * llama2.c .bin (tokenizer from `tokenizer` or beside it).
 */
export async function resolveModel(
  path: string,
  opts: { tokenizer?: string; /** false: do not look; "optional": look, none is fine; default: required. */ needTokenizer?: boolean | "optional" } = {},
): Promise<ResolvedModel> {
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(path);
  } catch (e) {
    throw new LowbitError(
      "E_FILE_NOT_FOUND",
      `model "${path}" not found. Give a Hugging Face folder, a .gguf file, a lowbit output folder, or a llama2.c .bin checkpoint.`,
      { cause: e },
    );
  }
  if (st.isDirectory()) {
    const names = await readdir(path);
    if (!names.includes("config.json")) {
      const gguf = names.filter((n) => n.endsWith(".gguf"));
      const hint = gguf.length ? ` It holds ${gguf.join(", ")}: pass that file instead.` : "";
      throw new LowbitError(
        "E_FORMAT",
        `${path} is a folder without config.json, so it is not a Hugging Face model folder.${hint} Give a folder with config.json and .safetensors weights, a .gguf file, or a llama2.c .bin.`,
      );
    }
    const config = await readJson(join(path, "config.json"));
    const kind = folderKind(config, names.includes("quantize_config.json"));
    const weights = names.some((n) => n.endsWith(".safetensors") || n.endsWith(".safetensors.index.json"));
    if (!weights) {
      const torch = names.filter((n) => /\.(bin|pt|pth|ckpt)$/.test(n));
      throw new LowbitError(
        "E_FORMAT",
        `${path} has no .safetensors weights${torch.length ? ` (only PyTorch pickles: ${torch.slice(0, 3).join(", ")})` : ""}. lowbit reads safetensors only; save the model with safe_serialization=True or convert it first.`,
      );
    }
    const tokenizer = ["tokenizer.json", "tokenizer.bin"].find((n) => names.includes(n));
    const tokPath = opts.tokenizer ?? (tokenizer ? join(path, tokenizer) : undefined);
    if (opts.needTokenizer === true && !tokPath) {
      throw new LowbitError("E_TOKENIZER", `${path} has no tokenizer.json or tokenizer.bin; pass one with --tokenizer FILE.`);
    }
    return { kind, path, weights: path, config, tokenizer: tokPath };
  }
  const sniff = await sniffFile(path);
  if (sniff === "gguf") return { kind: "gguf", path, weights: path, tokenizer: opts.tokenizer };
  if (sniff === "safetensors") {
    const dir = dirname(path);
    if (await exists(join(dir, "config.json"))) {
      const resolved = await resolveModel(dir, opts);
      return { ...resolved, path, weights: path };
    }
    return { kind: "safetensors", path, weights: path, tokenizer: opts.tokenizer };
  }
  if (extname(path) === ".bin") {
    let tokenizer: string | undefined;
    if (opts.needTokenizer === false) tokenizer = opts.tokenizer;
    else if (opts.needTokenizer === "optional") tokenizer = await findLlama2cTokenizer(path, opts.tokenizer).catch(() => opts.tokenizer);
    else tokenizer = await findLlama2cTokenizer(path, opts.tokenizer);
    return { kind: "llama2c", path, weights: path, tokenizer };
  }
  throw new LowbitError(
    "E_FORMAT",
    `${path} is not a model file lowbit recognises: not GGUF (no "GGUF" magic), not safetensors, and not a llama2.c .bin. Give a Hugging Face folder, a .gguf file, a lowbit output folder, or a llama2.c checkpoint.`,
  );
}
