import { dequantizeMatrix, type QuantizedMatrix } from "@lowbit/int4";
import { LINEAR_NAMES, type LlamaModel } from "@lowbit/runtime";
import type { Linear } from "@lowbit/tensor";
import type { FloatTensor } from "./qmodel";

/** The QuantizedMatrix behind a backend, when it keeps one (calibration's DequantizedLinear does). */
export function quantizedMatrixOf(lin: Linear): QuantizedMatrix | undefined {
  const qm = (lin as { qm?: unknown }).qm;
  return qm && typeof qm === "object" && "q" in qm && "scales" in qm ? (qm as QuantizedMatrix) : undefined;
}

function biasOf(lin: Linear): Float32Array | undefined {
  const b = (lin as { bias?: unknown }).bias;
  return b instanceof Float32Array ? b : undefined;
}

/** Everything a model computes with, by GGUF name: float tensors and quantized linears. */
export function collectModel(model: LlamaModel): { floats: Map<string, FloatTensor>; quantized: Map<string, QuantizedMatrix> } {
  const cfg = model.config;
  const w = model.weights;
  const floats = new Map<string, FloatTensor>();
  const quantized = new Map<string, QuantizedMatrix>();
  floats.set("token_embd.weight", { shape: [cfg.vocabSize, cfg.dim], data: model.embeddingWeight() });
  for (let i = 0; i < cfg.nLayers; i++) {
    const { attnNorm, ffnNorm } = model.layerNorms(i);
    floats.set(`blk.${i}.attn_norm.weight`, { shape: [cfg.dim], data: attnNorm });
    for (const name of LINEAR_NAMES) {
      const lin = model.getLinear(i, name);
      const key = `blk.${i}.${name}.weight`;
      const qm = quantizedMatrixOf(lin);
      if (qm) quantized.set(key, qm);
      else floats.set(key, { shape: [lin.outFeatures, lin.inFeatures], data: lin.dequantizedWeight() });
      const b = biasOf(lin);
      if (b) floats.set(`blk.${i}.${name}.bias`, { shape: [b.length], data: b });
      if (name === "attn_output") floats.set(`blk.${i}.ffn_norm.weight`, { shape: [cfg.dim], data: ffnNorm });
    }
  }
  floats.set("output_norm.weight", { shape: [cfg.dim], data: w.outputNorm });
  if (!cfg.tiedEmbeddings) floats.set("output.weight", { shape: [cfg.vocabSize, cfg.dim], data: w.output.dequantizedWeight() });
  return { floats, quantized };
}

/** Relative squared error ||a - b||² / ||a||². */
export function relativeError(ref: Float32Array, approx: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = ref[i]! - approx[i]!;
    num += d * d;
    den += ref[i]! * ref[i]!;
  }
  return den > 0 ? num / den : num;
}

export { dequantizeMatrix };

/**
 * Swaps every backend that keeps a QuantizedMatrix for @lowbit/int4's Int4Linear (packed codes,
 * dequantized on the fly by the kernels): the same values, the real storage and speed.
 */
export async function useInt4Backends(model: LlamaModel): Promise<void> {
  const { Int4Linear } = await import("@lowbit/int4");
  for (let i = 0; i < model.config.nLayers; i++) {
    for (const name of LINEAR_NAMES) {
      const lin = model.getLinear(i, name);
      const qm = quantizedMatrixOf(lin);
      if (!qm) continue;
      const bias = biasOf(lin);
      model.setLinear(i, name, new Int4Linear(qm, { ...(bias ? { bias } : {}), name: `blk.${i}.${name}` })).dispose?.();
    }
  }
}
