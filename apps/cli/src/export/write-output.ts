import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { dequantizeMatrix } from "@lowbit/int4";
import { expectedTensors, hfNameFromInternal, type LlamaConfig, type TensorSource, validateSource } from "@lowbit/runtime";
import { encodeF16, LowbitError } from "@lowbit/tensor";
import { writeAtomically } from "../output/atomic";
import { DeferredFloat, type FloatTensor, loadFloat, loadMatrix, permuteRowsF32, type QuantizedModel, ropePermutation, type TokenizerFiles } from "../quant/qmodel";
import { type GgufType, writeGgufModel } from "./gguf-format";
import { hfConfigJson } from "./hf-config";
import { type GptqCheckpointFormat, writeAwqModel, writeGptqModel } from "./hf-quantized";
import { copyTokenizer, writeLowbitModel } from "./lowbit-format";
import { type StreamedTensor, writeShardedSafetensorsStreaming } from "./stream-safetensors";

export const OUTPUT_FORMATS = ["lowbit", "gguf", "gptq", "awq", "safetensors"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export interface WriteOptions {
  ggufType?: GgufType;
  checkpointFormat?: GptqCheckpointFormat | "auto";
  /** dtype of float tensors in plain safetensors output. */
  dtype?: "f32" | "f16";
}

export interface WriteResult {
  format: OutputFormat;
  path: string;
  notes: string[];
  /** Per-tensor GGUF types, for GGUF outputs. */
  ggufTypes?: Map<string, GgufType>;
  checkpointFormat?: string;
}

/**
 * Every tensor a config needs, left in its source (for float exports): each is read as f32 only
 * when a writer asks for it, so a model is converted one tensor at a time. The source is checked
 * first (every tensor present, shapes as the config says), so a model missing a tensor fails
 * before anything is written.
 */
export function sourceFloats(config: LlamaConfig, source: TensorSource, what = "model"): Map<string, FloatTensor> {
  validateSource(config, source, what);
  const out = new Map<string, FloatTensor>();
  for (const [name, shape] of expectedTensors(config)) out.set(name, new DeferredFloat(name, shape, () => source.readF32(name)));
  return out;
}

/** Every tensor of a quantized model as floats, each matrix read and dequantized only when asked for. */
function dequantizedLazily(q: QuantizedModel): Map<string, FloatTensor> {
  const out = new Map<string, FloatTensor>(q.floats);
  for (const [name, qm] of q.quantized) out.set(name, new DeferredFloat(name, [qm.rows, qm.cols], async () => dequantizeMatrix(await loadMatrix(qm))));
  return out;
}

/**
 * Writes a model in one of the output formats, atomically at `path` (a folder for lowbit, GPTQ,
 * AWQ and safetensors, a file for GGUF). `q` is the quantized model; float-only models (convert)
 * pass `floats` instead (see sourceFloats). Every writer reads tensors kept on disk (DeferredMatrix,
 * DeferredFloat) one at a time, when their turn comes.
 */
export async function writeModel(
  format: OutputFormat,
  path: string,
  model: { config: LlamaConfig; q?: QuantizedModel; floats?: Map<string, FloatTensor>; tokenizer?: TokenizerFiles },
  opts: WriteOptions = {},
): Promise<WriteResult> {
  const notes: string[] = [];
  const q = model.q;
  const tokenizer = q?.tokenizer ?? model.tokenizer;
  if (format === "gguf") {
    // one tensor at a time: tensors kept on disk are read, encoded and written one by one
    let written: Awaited<ReturnType<typeof writeGgufModel>> | undefined;
    await writeAtomically(path, "file", async (tmp) => {
      written = await writeGgufModel(tmp, { config: model.config, floats: q?.floats ?? model.floats ?? new Map(), quantized: q?.quantized, tokenizer }, { type: opts.ggufType });
    });
    return { format, path, notes: written!.notes, ggufTypes: written!.types };
  }
  if (format === "safetensors") {
    const floats = model.floats ?? (q ? dequantizedLazily(q) : undefined);
    if (!floats) throw new LowbitError("E_INTERNAL", "writeModel: no tensors to write");
    await writeAtomically(path, "dir", (tmp) => writeHfFloat(tmp, model.config, floats, tokenizer, opts.dtype ?? "f32"));
    return { format, path, notes };
  }
  if (!q) {
    throw new LowbitError(
      "E_UNSUPPORTED",
      `--to ${format} needs a quantized model (a lowbit, GPTQ or AWQ output); this one is unquantized. Quantize it instead: lowbit quantize <model> --format ${format} --out ${path}`,
    );
  }
  if (format === "lowbit") {
    await writeAtomically(path, "dir", (tmp) => writeLowbitModel(tmp, q));
    return { format, path, notes };
  }
  let checkpointFormat: string | undefined;
  await writeAtomically(path, "dir", async (tmp) => {
    const r = format === "gptq" ? await writeGptqModel(tmp, q, { checkpointFormat: opts.checkpointFormat }) : await writeAwqModel(tmp, q);
    notes.push(...r.notes);
    checkpointFormat = r.checkpointFormat;
  });
  return { format, path, notes, checkpointFormat };
}

/**
 * An unquantized Hugging Face folder: HF names, q/k rows in half-split order, f32 or f16. Each
 * tensor is read (when kept on disk), permuted and encoded when its turn comes in the file.
 */
async function writeHfFloat(dir: string, config: LlamaConfig, floats: Map<string, FloatTensor>, tokenizer: TokenizerFiles | undefined, dtype: "f32" | "f16"): Promise<void> {
  const permQ = config.ropeStyle === "interleaved" ? ropePermutation(config.nHeads, config.headDim, "toHalf") : undefined;
  const permK = config.ropeStyle === "interleaved" ? ropePermutation(config.nKvHeads, config.headDim, "toHalf") : undefined;
  const tensors: StreamedTensor[] = [];
  for (const [name, t] of floats) {
    const hf = hfNameFromInternal(name);
    if (!hf) continue;
    const perm = /\.attn_q\./.test(name) ? permQ : /\.attn_k\./.test(name) ? permK : undefined;
    const data = async () => {
      const raw = await loadFloat(t);
      const values = perm ? permuteRowsF32(raw, t.shape[0]!, raw.length / t.shape[0]!, perm) : raw;
      return dtype === "f16" ? encodeF16(values) : values;
    };
    tensors.push({ name: hf, dtype: dtype === "f16" ? "F16" : "F32", shape: t.shape, data });
  }
  await writeShardedSafetensorsStreaming(dir, tensors, { maxShardBytes: 4 * 1024 ** 3, metadata: { format: "pt" } });
  await writeFile(join(dir, "config.json"), `${JSON.stringify(hfConfigJson({ ...config, ropeStyle: "half" }, { torchDtype: dtype === "f16" ? "float16" : "float32" }), null, 2)}\n`);
  await copyTokenizer(dir, { tokenizer } as QuantizedModel);
}
