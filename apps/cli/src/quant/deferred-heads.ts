import type { EmbeddingTable, LlamaConfig, TensorSource } from "@lowbit/runtime";
import { type Linear, LowbitError } from "@lowbit/tensor";

/**
 * The classifier of a model opened for quantization: the calibration driver never runs it, and the
 * exporters read `output.weight` from the source model when they write it, so it is not loaded.
 * Running it is an error saying so.
 */
export class UnloadedClassifier implements Linear {
  readonly kind = "not loaded";
  readonly storageBytes = 0;
  constructor(
    readonly name: string,
    readonly outFeatures: number,
    readonly inFeatures: number,
  ) {}
  private fail(): never {
    throw new LowbitError(
      "E_INTERNAL",
      `${this.name} is not loaded while quantizing (the layer-by-layer driver does not use the classifier; exporters read it from the model file)`,
    );
  }
  forward(): Float32Array {
    return this.fail();
  }
  dequantizedWeight(): Float32Array {
    return this.fail();
  }
}

/**
 * The embedding rows of the calibration tokens only (the driver embeds nothing else): rows copied
 * exactly from the source's table, distinct tokens x dim floats instead of vocabulary x dim.
 */
export class CalibrationRows implements EmbeddingTable {
  readonly kind = "calibration rows";
  readonly storageBytes: number;
  private readonly index = new Map<number, number>();
  private readonly rows: Float32Array;
  constructor(
    private readonly dim: number,
    tokens: ArrayLike<number>,
    readRow: (id: number, out: Float32Array, offset: number) => void,
  ) {
    for (let t = 0; t < tokens.length; t++) {
      const id = tokens[t]!;
      if (!this.index.has(id)) this.index.set(id, this.index.size);
    }
    this.rows = new Float32Array(this.index.size * dim);
    for (const [id, r] of this.index) readRow(id, this.rows, r * dim);
    this.storageBytes = this.rows.byteLength;
  }
  row(id: number, out: Float32Array, offset: number): void {
    const r = this.index.get(id);
    if (r === undefined) {
      throw new LowbitError("E_INTERNAL", `token ${id} is not among the calibration tokens whose embedding rows were loaded for quantization`);
    }
    out.set(this.rows.subarray(r * this.dim, (r + 1) * this.dim), offset);
  }
}

/**
 * A view of `source` for building the model the quantize pipeline runs layer by layer: the token
 * embedding holds only the rows of `tokens` (the calibration windows; none without calibration)
 * and the classifier is not loaded, so neither is resident while the layers are quantized. Decoder
 * layers and every other tensor read through unchanged.
 */
export function deferHeads(source: TensorSource, cfg: LlamaConfig, tokens: ArrayLike<number> | undefined): TensorSource {
  const ids = tokens ?? [];
  return {
    shape: (name) => source.shape(name),
    readF32: (name) => source.readF32(name),
    ...(source.describe ? { describe: (name: string) => source.describe!(name) } : {}),
    ...(source.close ? { close: () => source.close!() } : {}),
    async readLinear(name, outFeatures, inFeatures, bias) {
      if (name === "output.weight" || (cfg.tiedEmbeddings && name === "token_embd.weight")) return new UnloadedClassifier(name, outFeatures, inFeatures);
      return source.readLinear?.(name, outFeatures, inFeatures, bias);
    },
    async readEmbedding(name, vocabSize, dim) {
      const table = await source.readEmbedding?.(name, vocabSize, dim);
      if (table) return new CalibrationRows(dim, ids, (id, out, off) => table.row(id, out, off));
      if (ids.length === 0) return new CalibrationRows(dim, ids, () => {});
      const all = await source.readF32(name);
      return new CalibrationRows(dim, ids, (id, out, off) => out.set(all.subarray(id * dim, (id + 1) * dim), off));
    },
  };
}
