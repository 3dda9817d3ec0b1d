import { LowbitError, type Linear } from "@lowbit/tensor";
import { type LinearName, type LlamaConfig, LINEAR_NAMES, linearShape } from "./config";
import { makeF32Linear } from "./linear-factory";
import { type DecoderLayerWeights, type EmbeddingTable, LlamaModel, type ModelWeights } from "./model";

/**
 * Where a model's tensors come from, by GGUF-style name (`token_embd.weight`,
 * `blk.N.attn_q.weight`, ...). Shapes are in PyTorch order ([out, in] for matrices). Reads are
 * per tensor and on demand, so a lazy loader never holds more than it asked for.
 */
export interface TensorSource {
  /** Shape of a tensor, or undefined when the source lacks it. */
  shape(name: string): number[] | undefined;
  /** The tensor's values as f32 (dequantized if stored otherwise). */
  readF32(name: string): Promise<Float32Array>;
  /**
   * A linear layer over a weight in its stored encoding (e.g. GGUF Q8_0 blocks), or undefined to
   * fall back to readF32 + an f32 linear.
   */
  readLinear?(name: string, outFeatures: number, inFeatures: number, bias?: Float32Array): Promise<Linear | undefined>;
  /**
   * The token embedding kept in its stored encoding (e.g. quantized blocks), or undefined to read
   * it as f32.
   */
  readEmbedding?(name: string, vocabSize: number, dim: number): Promise<EmbeddingTable | undefined>;
  /** How the source names a tensor in messages (e.g. the Hugging Face name); default: the name. */
  describe?(name: string): string;
  /** Releases files. */
  close?(): Promise<void>;
}

/** A TensorSource over tensors already in memory (e.g. a parsed llama2.c checkpoint). */
export function memorySource(tensors: Map<string, { shape: number[]; data: Float32Array }>): TensorSource {
  return {
    shape: (name) => tensors.get(name)?.shape,
    readF32: async (name) => {
      const t = tensors.get(name);
      if (!t) throw new LowbitError("E_MISSING_TENSOR", `missing tensor "${name}"`);
      return t.data;
    },
  };
}

export interface BuildOptions {
  /**
   * Read only the embedding, final norm and classifier now; decoder layers are read when
   * `model.ensureLayer(i)` / `model.loadAll()` asks (and can be released again).
   */
  lazy?: boolean;
  /** What to call the model in error messages (a path). */
  what?: string;
}

const layerTensor = (i: number, name: string) => `blk.${i}.${name}.weight`;
const biasTensor = (i: number, name: string) => `blk.${i}.${name}.bias`;

/** The tensors a config needs, with their expected shapes. */
export function expectedTensors(cfg: LlamaConfig): Map<string, number[]> {
  const m = new Map<string, number[]>();
  m.set("token_embd.weight", [cfg.vocabSize, cfg.dim]);
  m.set("output_norm.weight", [cfg.dim]);
  if (!cfg.tiedEmbeddings) m.set("output.weight", [cfg.vocabSize, cfg.dim]);
  for (let i = 0; i < cfg.nLayers; i++) {
    m.set(layerTensor(i, "attn_norm"), [cfg.dim]);
    m.set(layerTensor(i, "ffn_norm"), [cfg.dim]);
    for (const n of LINEAR_NAMES) m.set(layerTensor(i, n), linearShape(cfg, n));
    if (cfg.attnBias) {
      for (const n of ["attn_q", "attn_k", "attn_v"] as const) m.set(biasTensor(i, n), [linearShape(cfg, n)[0]]);
    }
  }
  return m;
}

/**
 * Checks that the source has every tensor the config needs with the right shape. Errors list all
 * missing tensors at once, or name the tensor with its expected and found shapes.
 */
export function validateSource(cfg: LlamaConfig, source: TensorSource, what = "model"): void {
  const missing: string[] = [];
  for (const [name, shape] of expectedTensors(cfg)) {
    const found = source.shape(name);
    const shown = source.describe ? source.describe(name) : name;
    if (!found) {
      missing.push(shown);
      continue;
    }
    const same = found.length === shape.length && found.every((d, j) => d === shape[j]);
    // 1-D tensors may be stored as [1, n] by some writers
    const squeezed = !same && shape.length === 1 && found.length === 2 && found[0] === 1 && found[1] === shape[0];
    if (!same && !squeezed) {
      throw new LowbitError(
        "E_SHAPE_MISMATCH",
        `${what}: tensor "${shown}" has shape [${found.join(", ")}], expected [${shape.join(", ")}]`,
      );
    }
  }
  if (missing.length > 0) {
    const shown = missing.slice(0, 20).join(", ") + (missing.length > 20 ? `, ... (${missing.length} in all)` : "");
    throw new LowbitError("E_MISSING_TENSOR", `${what}: missing tensors: ${shown}`);
  }
}

async function readLinear(source: TensorSource, name: string, out: number, inp: number, bias?: Float32Array): Promise<Linear> {
  if (source.readLinear) {
    const l = await source.readLinear(name, out, inp, bias);
    if (l) return l;
  }
  return makeF32Linear(await source.readF32(name), out, inp, bias);
}

/** Reads decoder layer i from a source. */
export async function readLayer(cfg: LlamaConfig, source: TensorSource, i: number): Promise<DecoderLayerWeights> {
  const linears = {} as Record<LinearName, Linear>;
  for (const n of LINEAR_NAMES) {
    const [o, k] = linearShape(cfg, n);
    const hasBias = cfg.attnBias && (n === "attn_q" || n === "attn_k" || n === "attn_v");
    const bias = hasBias ? await source.readF32(biasTensor(i, n)) : undefined;
    linears[n] = await readLinear(source, layerTensor(i, n), o, k, bias);
  }
  return {
    attnNorm: (await source.readF32(layerTensor(i, "attn_norm"))).slice(),
    ffnNorm: (await source.readF32(layerTensor(i, "ffn_norm"))).slice(),
    linears,
  };
}

/** Builds a LlamaModel from a config and a tensor source (validated first). */
export async function buildModel(cfg: LlamaConfig, source: TensorSource, options: BuildOptions = {}): Promise<LlamaModel> {
  validateSource(cfg, source, options.what);
  const embeddingTable = await source.readEmbedding?.("token_embd.weight", cfg.vocabSize, cfg.dim);
  const embedding = embeddingTable ? new Float32Array(0) : (await source.readF32("token_embd.weight")).slice();
  const outputNorm = (await source.readF32("output_norm.weight")).slice();
  let output: Linear;
  if (cfg.tiedEmbeddings) {
    output =
      (await source.readLinear?.("token_embd.weight", cfg.vocabSize, cfg.dim)) ??
      makeF32Linear(embedding.length > 0 ? embedding : await source.readF32("token_embd.weight"), cfg.vocabSize, cfg.dim);
  } else {
    output = await readLinear(source, "output.weight", cfg.vocabSize, cfg.dim);
  }
  const layers: Array<DecoderLayerWeights | undefined> = new Array(cfg.nLayers).fill(undefined);
  if (!options.lazy) {
    for (let i = 0; i < cfg.nLayers; i++) layers[i] = await readLayer(cfg, source, i);
  }
  const weights: ModelWeights = { embedding, outputNorm, output, outputShared: cfg.tiedEmbeddings, layers };
  if (embeddingTable) weights.embeddingTable = embeddingTable;
  if (!options.lazy) return new LlamaModel(cfg, weights);
  return new LlamaModel(cfg, weights, (i) => readLayer(cfg, source, i), source.close ? () => source.close!() : undefined);
}
