import { stat } from "node:fs/promises";
import { openLlama2c, openSafetensorsModel, readLlama2cTokenizer } from "@lowbit/formats";
import type { ResolvedModel } from "./resolve";

/** One tensor of a model as stored. */
export interface TensorSummary {
  name: string;
  /** Stored type: f32, f16, bf16, i32, q8_0, q4_0, ... (lower case). */
  dtype: string;
  shape: number[];
  bytes: number;
  stats?: TensorStats;
}

export interface TensorStats {
  min: number;
  max: number;
  mean: number;
  std: number;
}

/** Architecture facts in one vocabulary whatever the source format. */
export interface ArchitectureSummary {
  architecture: string;
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  contextLength: number;
  tiedEmbeddings?: boolean;
}

export interface ModelDescription {
  path: string;
  kind: ResolvedModel["kind"];
  /** Human name of the container format. */
  format: string;
  architecture?: ArchitectureSummary;
  /** Logical parameter count (quantized weights count their unpacked values). */
  parameters: number;
  bytesOnDisk: number;
  bitsPerWeight: number;
  tensors: TensorSummary[];
  tokenizer?: { path: string; vocabSize: number };
  /** Quantization settings recorded by the format (GPTQ/AWQ config, GGUF file type, lowbit run). */
  quantization?: Record<string, unknown>;
  metadata?: Record<string, unknown>;
}

export function tensorStats(data: ArrayLike<number>): TensorStats {
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let sq = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
    sq += v * v;
  }
  const n = Math.max(1, data.length);
  const mean = sum / n;
  return { min, max, mean, std: Math.sqrt(Math.max(0, sq / n - mean * mean)) };
}

async function sizeOnDisk(path: string): Promise<number> {
  const st = await stat(path);
  if (!st.isDirectory()) return st.size;
  const { readdir } = await import("node:fs/promises");
  const { join } = await import("node:path");
  let total = 0;
  for (const e of await readdir(path, { withFileTypes: true })) {
    total += e.isDirectory() ? await sizeOnDisk(join(path, e.name)) : (await stat(join(path, e.name))).size;
  }
  return total;
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, d) => a * d, 1);
}

/**
 * Logical parameter count of a stored tensor: packed GPTQ/AWQ int32 words hold 32/bits values;
 * lowbit's packed codes count rows x cols from its metadata; scales, zeros and g_idx count nothing.
 */
function logicalParams(name: string, dtype: string, shape: number[], bits: number | undefined, lowbitMeta: Record<string, { rows: number; cols: number }>): number {
  const stem = name.replace(/\.qweight$/, ".weight");
  if (lowbitMeta[stem] && name.endsWith(".qweight")) return lowbitMeta[stem]!.rows * lowbitMeta[stem]!.cols;
  if (bits && dtype === "i32" && /\.qweight$/.test(name)) return (numel(shape) * 32) / bits;
  if (/\.(qzeros|zeros|scales|g_idx)$/.test(name)) return 0;
  return numel(shape);
}

async function describeLlama2c(model: ResolvedModel, withStats: boolean): Promise<ModelDescription> {
  // the header gives every shape; tensors are read (one at a time) only for their statistics
  const file = await openLlama2c(model.weights);
  const c = file.config;
  const tensors: TensorSummary[] = [];
  let params = 0;
  try {
    for (const t of file.tensors.values()) {
      params += t.byteLength / 4;
      tensors.push({ name: t.name, dtype: "f32", shape: [...t.shape], bytes: t.byteLength, stats: withStats ? tensorStats(await file.readF32(t.name)) : undefined });
    }
  } finally {
    await file.close();
  }
  const bytes = await sizeOnDisk(model.weights);
  let tokenizer: ModelDescription["tokenizer"];
  if (model.tokenizer) {
    const tok = await readLlama2cTokenizer(model.tokenizer);
    tokenizer = { path: model.tokenizer, vocabSize: tok.tokens.length };
  }
  return {
    path: model.path,
    kind: model.kind,
    format: "llama2.c checkpoint (float32)",
    architecture: {
      architecture: "llama",
      dim: c.dim,
      hiddenDim: c.hiddenDim,
      nLayers: c.nLayers,
      nHeads: c.nHeads,
      nKvHeads: c.nKvHeads,
      vocabSize: c.vocabSize,
      contextLength: c.seqLen,
      tiedEmbeddings: c.sharedClassifier,
    },
    parameters: params,
    bytesOnDisk: bytes,
    bitsPerWeight: (bytes * 8) / params,
    tensors,
    tokenizer,
  };
}

function num(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

/** Architecture facts from a Hugging Face config.json (LLaMA family). */
export function hfArchitecture(cfg: Record<string, unknown>): ArchitectureSummary | undefined {
  const dim = num(cfg.hidden_size);
  const nLayers = num(cfg.num_hidden_layers);
  const nHeads = num(cfg.num_attention_heads);
  if (dim === undefined || nLayers === undefined || nHeads === undefined) return undefined;
  return {
    architecture: typeof cfg.model_type === "string" ? cfg.model_type : "llama",
    dim,
    hiddenDim: num(cfg.intermediate_size) ?? 0,
    nLayers,
    nHeads,
    nKvHeads: num(cfg.num_key_value_heads) ?? nHeads,
    vocabSize: num(cfg.vocab_size) ?? 0,
    contextLength: num(cfg.max_position_embeddings) ?? 0,
    tiedEmbeddings: cfg.tie_word_embeddings === true,
  };
}

async function describeSafetensors(model: ResolvedModel, withStats: boolean): Promise<ModelDescription> {
  const st = await openSafetensorsModel(model.weights);
  try {
    const qc = (model.config?.quantization_config ?? undefined) as Record<string, unknown> | undefined;
    const bits = num(qc?.bits) ?? num((model.config?.lowbit as Record<string, unknown> | undefined)?.bits);
    const tensors: TensorSummary[] = [];
    let params = 0;
    let lowbitMeta: Record<string, { rows: number; cols: number }> = {};
    try {
      lowbitMeta = JSON.parse(st.metadata["lowbit.quantized"] ?? "{}") as typeof lowbitMeta;
    } catch {
      // not lowbit's layout
    }
    for (const [name, info] of st.tensors) {
      const dtype = info.dtype.toLowerCase();
      params += logicalParams(name, dtype, info.shape, bits, lowbitMeta);
      let stats: TensorStats | undefined;
      if (withStats && ["f32", "f16", "bf16", "f64"].includes(dtype)) stats = tensorStats(await st.readF32(name));
      tensors.push({ name, dtype, shape: info.shape, bytes: info.byteLength, stats });
    }
    const bytes = await sizeOnDisk(model.path);
    const format =
      model.kind === "gptq"
        ? "GPTQ safetensors (AutoGPTQ layout)"
        : model.kind === "awq"
          ? "AWQ safetensors (AutoAWQ GEMM layout)"
          : model.kind === "lowbit"
            ? "lowbit safetensors"
            : model.kind === "hf"
              ? "Hugging Face safetensors"
              : "safetensors file";
    return {
      path: model.path,
      kind: model.kind,
      format,
      architecture: model.config ? hfArchitecture(model.config) : undefined,
      parameters: params,
      bytesOnDisk: bytes,
      bitsPerWeight: params > 0 ? (bytes * 8) / params : Number.NaN,
      tensors,
      tokenizer: model.tokenizer ? { path: model.tokenizer, vocabSize: num(model.config?.vocab_size) ?? 0 } : undefined,
      quantization: qc ?? (model.config?.lowbit as Record<string, unknown> | undefined),
      metadata: Object.keys(st.metadata).length ? st.metadata : undefined,
    };
  } finally {
    await st.close();
  }
}

/** Reads what `lowbit inspect` shows; `withStats` also reads every float tensor for min/max/mean/std. */
export async function describeModel(model: ResolvedModel, opts: { stats?: boolean } = {}): Promise<ModelDescription> {
  switch (model.kind) {
    case "llama2c":
      return describeLlama2c(model, opts.stats ?? false);
    case "gguf":
      return (await import("./describe-gguf")).describeGguf(model, opts.stats ?? false);
    default:
      return describeSafetensors(model, opts.stats ?? false);
  }
}
