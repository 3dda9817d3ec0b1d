import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { writeShardedSafetensors } from "@lowbit/formats";
import { expectedTensors, hfNameFromInternal, type LlamaConfig, type TensorSource } from "@lowbit/runtime";
import { encodeF16, LowbitError } from "@lowbit/tensor";
import { writeAtomically } from "../output/atomic";
import { type FloatTensor, materialize, permuteRowsF32, type QuantizedModel, ropePermutation, type TokenizerFiles } from "../quant/qmodel";
import { type GgufType, writeGgufModel } from "./gguf-format";
import { hfConfigJson } from "./hf-config";
import { type GptqCheckpointFormat, writeAwqModel, writeGptqModel } from "./hf-quantized";
import { copyTokenizer, writeLowbitModel } from "./lowbit-format";

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

/** Every tensor a config needs, read as f32 from a source (for float exports). */
export async function readAllFloats(config: LlamaConfig, source: TensorSource): Promise<Map<string, FloatTensor>> {
  const out = new Map<string, FloatTensor>();
  for (const [name, shape] of expectedTensors(config)) out.set(name, { shape, data: await source.readF32(name) });
  return out;
}

/**
 * Writes a model in one of the output formats, atomically at `path` (a folder for lowbit, GPTQ,
 * AWQ and safetensors, a file for GGUF). `q` is the quantized model; float-only models (convert)
 * pass `floats` instead. The lowbit, GPTQ, AWQ and GGUF writers read tensors kept on disk
 * (DeferredMatrix, DeferredFloat) one at a time; safetensors reads them all first.
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
    const floats = model.floats ?? (q ? (await import("../model/qmodel-source")).dequantizedFloats(await materialize(q)) : undefined);
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

/** An unquantized Hugging Face folder: HF names, q/k rows in half-split order, f32 or f16. */
async function writeHfFloat(dir: string, config: LlamaConfig, floats: Map<string, FloatTensor>, tokenizer: TokenizerFiles | undefined, dtype: "f32" | "f16"): Promise<void> {
  const permQ = config.ropeStyle === "interleaved" ? ropePermutation(config.nHeads, config.headDim, "toHalf") : undefined;
  const permK = config.ropeStyle === "interleaved" ? ropePermutation(config.nKvHeads, config.headDim, "toHalf") : undefined;
  const tensors = [];
  for (const [name, t] of floats) {
    const hf = hfNameFromInternal(name);
    if (!hf) continue;
    const perm = /\.attn_q\./.test(name) ? permQ : /\.attn_k\./.test(name) ? permK : undefined;
    const data = perm ? permuteRowsF32(t.data, t.shape[0]!, t.data.length / t.shape[0]!, perm) : t.data;
    tensors.push(dtype === "f16" ? { name: hf, dtype: "F16" as const, shape: t.shape, data: encodeF16(data) } : { name: hf, dtype: "F32" as const, shape: t.shape, data });
  }
  await writeShardedSafetensors(dir, tensors, { maxShardBytes: 4 * 1024 ** 3, metadata: { format: "pt" } });
  await writeFile(join(dir, "config.json"), `${JSON.stringify(hfConfigJson({ ...config, ropeStyle: "half" }, { torchDtype: dtype === "f16" ? "float16" : "float32" }), null, 2)}\n`);
  await copyTokenizer(dir, { tokenizer } as QuantizedModel);
}
