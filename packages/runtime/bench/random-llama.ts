/**
 * A LLaMA of about 100M parameters with random weights, generated (never stored) per tensor from a
 * seed, so every backend of the benchmark sees the same weights.
 */
import { GGML_TYPE, type GgufTensorInput, ggufDimsFromShape, llamaGgufMetadata, writeGguf } from "@lowbit/formats";
import { quantizeGgufInt4 } from "@lowbit/int4";
import { type Linear, Rng } from "@lowbit/tensor";
import {
  type DecoderLayerWeights,
  LINEAR_NAMES,
  type LinearName,
  type LlamaConfig,
  LlamaModel,
  linearShape,
  makeConfig,
  makeF32Linear,
} from "../src/index";

/** dim 768, 12 layers, 12 query / 4 key-value heads, SwiGLU 2048, vocabulary 32000, tied: 100.1M parameters. */
export const CONFIG_100M: LlamaConfig = makeConfig({
  architecture: "llama",
  dim: 768,
  hiddenDim: 2048,
  nLayers: 12,
  nHeads: 12,
  nKvHeads: 4,
  vocabSize: 32000,
  maxSeqLen: 1024,
  tiedEmbeddings: true,
});

function tensor(seed: number, id: number, n: number, std: number): Float32Array {
  const rng = new Rng(seed * 1_000_003 + id);
  const a = new Float32Array(n);
  rng.fillNormal(a, 0, std);
  return a;
}

/** The weight [out, in] of linear `name` of layer `layer`. */
export function randomLinearWeight(cfg: LlamaConfig, seed: number, layer: number, name: LinearName): Float32Array {
  const [o, i] = linearShape(cfg, name);
  return tensor(seed, 100 + layer * 16 + LINEAR_NAMES.indexOf(name), o * i, 1 / Math.sqrt(i));
}

export function randomEmbedding(cfg: LlamaConfig, seed: number): Float32Array {
  return tensor(seed, 1, cfg.vocabSize * cfg.dim, 1);
}

const ones = (n: number) => new Float32Array(n).fill(1);

export type MakeLinear = (w: Float32Array, out: number, inp: number) => Linear;

/** Builds the model in memory, one tensor at a time (the f32 copy of each is dropped once encoded). */
export function buildRandomModel(cfg: LlamaConfig, seed: number, make: MakeLinear, makeOutput: MakeLinear = make): LlamaModel {
  const embedding = randomEmbedding(cfg, seed);
  const layers: DecoderLayerWeights[] = [];
  for (let l = 0; l < cfg.nLayers; l++) {
    const linears = {} as Record<LinearName, Linear>;
    for (const name of LINEAR_NAMES) {
      const [o, i] = linearShape(cfg, name);
      linears[name] = make(randomLinearWeight(cfg, seed, l, name), o, i);
    }
    layers.push({ attnNorm: ones(cfg.dim), ffnNorm: ones(cfg.dim), linears });
  }
  const output = makeOutput(embedding, cfg.vocabSize, cfg.dim);
  return new LlamaModel(cfg, { embedding, outputNorm: ones(cfg.dim), output, outputShared: true, layers });
}

export const f32Linear: MakeLinear = (w, o, i) => makeF32Linear(w, o, i);

/** Writes the random model as a GGUF with every matrix (and the tied embedding) in Q4_0. */
export async function writeRandomQ4_0Gguf(cfg: LlamaConfig, seed: number, file: string): Promise<void> {
  const tensors: GgufTensorInput[] = [];
  const q4 = (name: string, w: Float32Array, shape: [number, number]) =>
    tensors.push({ name, type: GGML_TYPE.Q4_0, dims: ggufDimsFromShape(shape), data: quantizeGgufInt4("q4_0", w, shape[0], shape[1], name) });
  const f32 = (name: string, w: Float32Array) => tensors.push({ name, type: GGML_TYPE.F32, dims: [w.length], data: w });
  q4("token_embd.weight", randomEmbedding(cfg, seed), [cfg.vocabSize, cfg.dim]);
  f32("output_norm.weight", ones(cfg.dim));
  for (let l = 0; l < cfg.nLayers; l++) {
    f32(`blk.${l}.attn_norm.weight`, ones(cfg.dim));
    f32(`blk.${l}.ffn_norm.weight`, ones(cfg.dim));
    for (const name of LINEAR_NAMES) q4(`blk.${l}.${name}.weight`, randomLinearWeight(cfg, seed, l, name), linearShape(cfg, name));
  }
  const metadata = llamaGgufMetadata(
    {
      dim: cfg.dim,
      hiddenDim: cfg.hiddenDim,
      nLayers: cfg.nLayers,
      nHeads: cfg.nHeads,
      nKvHeads: cfg.nKvHeads,
      vocabSize: cfg.vocabSize,
      seqLen: cfg.maxSeqLen,
      sharedClassifier: true,
    },
    undefined,
    { name: "random-100M", fileType: 2 },
  );
  await writeGguf(file, { metadata, tensors });
}
