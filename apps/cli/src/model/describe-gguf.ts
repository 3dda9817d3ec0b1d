import { readGguf, shapeFromGgufDims } from "@lowbit/formats";
import { type ArchitectureSummary, type ModelDescription, type TensorSummary, tensorStats } from "./describe";
import type { ResolvedModel } from "./resolve";

/** llama.cpp's llama_ftype names for general.file_type. */
const FILE_TYPES: Record<number, string> = {
  0: "ALL_F32",
  1: "MOSTLY_F16",
  2: "MOSTLY_Q4_0",
  3: "MOSTLY_Q4_1",
  7: "MOSTLY_Q8_0",
  8: "MOSTLY_Q5_0",
  9: "MOSTLY_Q5_1",
  10: "MOSTLY_Q2_K",
  15: "MOSTLY_Q4_K_M",
  14: "MOSTLY_Q4_K_S",
  18: "MOSTLY_Q6_K",
  32: "MOSTLY_BF16",
};

function n(v: unknown): number | undefined {
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  return undefined;
}

/** What `lowbit inspect` shows for a GGUF file (stats dequantize F32/F16 tensors only). */
export async function describeGguf(model: ResolvedModel, withStats: boolean): Promise<ModelDescription> {
  const f = await readGguf(model.weights);
  try {
    const arch = String(f.get("general.architecture") ?? "unknown");
    const k = (s: string) => n(f.get(`${arch}.${s}`));
    const tensors: TensorSummary[] = [];
    let params = 0;
    for (const t of f.tensors) {
      const shape = shapeFromGgufDims(t.dims);
      params += shape.reduce((a, d) => a * d, 1);
      let stats: TensorSummary["stats"];
      if (withStats && (t.typeName === "F32" || t.typeName === "F16")) {
        const raw = await f.read(t.name);
        if (t.typeName === "F32") stats = tensorStats(new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4));
        else {
          const { decodeF16 } = await import("@lowbit/tensor");
          stats = tensorStats(decodeF16(new Uint16Array(raw.buffer, raw.byteOffset, raw.byteLength / 2)));
        }
      }
      tensors.push({ name: t.name, dtype: t.typeName.toLowerCase(), shape, bytes: t.byteLength, stats });
    }
    const { stat } = await import("node:fs/promises");
    const bytes = (await stat(model.weights)).size;
    let architecture: ArchitectureSummary | undefined;
    const dim = k("embedding_length");
    if (dim !== undefined) {
      const tokens = f.get("tokenizer.ggml.tokens") as unknown as { value?: unknown[] } | unknown[] | undefined;
      const vocab = k("vocab_size") ?? (Array.isArray(tokens) ? tokens.length : undefined) ?? 0;
      architecture = {
        architecture: arch,
        dim,
        hiddenDim: k("feed_forward_length") ?? 0,
        nLayers: k("block_count") ?? 0,
        nHeads: k("attention.head_count") ?? 0,
        nKvHeads: k("attention.head_count_kv") ?? k("attention.head_count") ?? 0,
        vocabSize: vocab,
        contextLength: k("context_length") ?? 0,
        tiedEmbeddings: !f.tensors.some((t) => t.name === "output.weight"),
      };
    }
    const fileType = n(f.get("general.file_type"));
    const metadata: Record<string, unknown> = {};
    for (const [key, v] of f.metadata) {
      if (v.type === "array") metadata[key] = `[${v.itemType} × ${v.value.length}]`;
      else metadata[key] = typeof v.value === "bigint" ? Number(v.value) : v.value;
    }
    return {
      path: model.path,
      kind: model.kind,
      format: `GGUF v${f.version}`,
      architecture,
      parameters: params,
      bytesOnDisk: bytes,
      bitsPerWeight: params > 0 ? (bytes * 8) / params : Number.NaN,
      tensors,
      tokenizer: f.metadata.has("tokenizer.ggml.model")
        ? { path: `embedded (${String(f.get("tokenizer.ggml.model"))})`, vocabSize: architecture?.vocabSize ?? 0 }
        : undefined,
      quantization: fileType !== undefined ? { file_type: FILE_TYPES[fileType] ?? fileType, quantization_version: n(f.get("general.quantization_version")) } : undefined,
      metadata,
    };
  } finally {
    await f.close();
  }
}
