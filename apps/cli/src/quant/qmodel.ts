import type { QuantizedMatrix } from "@lowbit/int4";
import type { LlamaConfig } from "@lowbit/runtime";
import { LowbitError } from "@lowbit/tensor";

/** A float tensor by name, PyTorch-order shape. */
export interface FloatTensor {
  shape: number[];
  data: Float32Array;
}

/** Where the tokenizer of a model comes from, so outputs can carry it. */
export type TokenizerFiles =
  | { kind: "llama2c"; path: string }
  | { kind: "hf"; dir: string; files: string[] }
  | { kind: "gguf"; path: string };

/** How a model was quantized (recorded in every output format's config). */
export interface QuantizationInfo {
  method: string;
  bits: number;
  groupSize: number;
  sym: boolean;
  actOrder: boolean;
  dampPercent?: number;
  seed?: number;
  samples?: number;
  seqLen?: number;
  /** Mixed-precision rules or budget, as given. */
  mixed?: string;
}

/**
 * A model whose linear layers are quantized (or kept float), in lowbit's vocabulary: GGUF-style
 * names (`blk.N.attn_q.weight`), [out, in] matrices, the config's RoPE convention. Exporters write
 * it to each format; readers of lowbit/GPTQ/AWQ outputs produce it.
 */
export interface QuantizedModel {
  config: LlamaConfig;
  /** Float tensors: embedding, norms, classifier, and any linear kept in float. */
  floats: Map<string, FloatTensor>;
  /** Quantized linear weights by tensor name (`blk.0.attn_q.weight`). */
  quantized: Map<string, QuantizedMatrix>;
  quantization: QuantizationInfo;
  /** Set when the feed-forward width was padded with zeros for a packed format. */
  padding?: { intermediateSize: { original: number; padded: number } };
  tokenizer?: TokenizerFiles;
}

/** Names of every linear weight of a config, in file order. */
export function linearWeightNames(cfg: LlamaConfig): string[] {
  const names: string[] = [];
  for (let i = 0; i < cfg.nLayers; i++) {
    for (const n of ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]) names.push(`blk.${i}.${n}.weight`);
  }
  return names;
}

/** Rows of a [rows, cols] matrix reordered: out[r] = src[perm[r]]. */
export function permuteRowsF32(data: Float32Array, rows: number, cols: number, perm: Int32Array): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) out.set(data.subarray(perm[r]! * cols, (perm[r]! + 1) * cols), r * cols);
  return out;
}

/** The same reordering applied to a quantized matrix's rows (codes, scales, zeros): exact. */
export function permuteRowsQ(qm: QuantizedMatrix, perm: Int32Array): QuantizedMatrix {
  const ng = qm.cols / qm.groupSize;
  const q = new Uint8Array(qm.q.length);
  const scales = new Float32Array(qm.scales.length);
  const zeros = new Float32Array(qm.zeros.length);
  for (let r = 0; r < qm.rows; r++) {
    const s = perm[r]!;
    q.set(qm.q.subarray(s * qm.cols, (s + 1) * qm.cols), r * qm.cols);
    scales.set(qm.scales.subarray(s * ng, (s + 1) * ng), r * ng);
    zeros.set(qm.zeros.subarray(s * ng, (s + 1) * ng), r * ng);
  }
  return { ...qm, q, scales, zeros };
}

/**
 * Row order converting q/k projections between RoPE conventions (llama.cpp's convert_hf_to_gguf
 * `permute`): "toInterleaved" maps Hugging Face half-split rows to GGUF/llama2.c adjacent pairs,
 * "toHalf" is its inverse. out[r] = in[perm[r]].
 */
export function ropePermutation(nHeads: number, headDim: number, direction: "toInterleaved" | "toHalf"): Int32Array {
  const perm = new Int32Array(nHeads * headDim);
  const half = headDim / 2;
  for (let h = 0; h < nHeads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const interleaved = h * headDim + 2 * i + j;
        const halfSplit = h * headDim + j * half + i;
        if (direction === "toInterleaved") perm[interleaved] = halfSplit;
        else perm[halfSplit] = interleaved;
      }
    }
  }
  return perm;
}

/** Rounds every scale to the nearest f16 value (what GPTQ/AWQ/GGUF store), in place. */
export function roundScalesToF16(qm: QuantizedMatrix, toF16: (x: number) => number, fromF16: (h: number) => number): void {
  for (let i = 0; i < qm.scales.length; i++) qm.scales[i] = fromF16(toF16(qm.scales[i]!));
}

/** Storage of a quantized model's weights in bytes if stored at `bits` with f16 scales and zeros (an estimate for tables). */
export function quantizedBytes(m: QuantizedModel): number {
  let total = 0;
  for (const t of m.floats.values()) total += t.data.length * 4;
  for (const qm of m.quantized.values()) {
    const groups = qm.rows * (qm.cols / qm.groupSize);
    total += Math.ceil((qm.rows * qm.cols * qm.bits) / 8) + groups * 2 + Math.ceil((groups * qm.bits) / 8);
  }
  return total;
}

/**
 * A quantized matrix not held in memory (spilled to disk by the quantize pipeline): its shape and
 * settings are fields, its arrays come from `load()`, one matrix at a time. Reading `q`, `scales`,
 * `zeros` or `gIdx` directly throws, so code that would silently pull every matrix into memory
 * fails instead; exporters read through `loadMatrix`.
 */
export class DeferredMatrix implements QuantizedMatrix {
  readonly bits: number;
  readonly groupSize: number;
  readonly rows: number;
  readonly cols: number;
  readonly sym: boolean;
  /** Whether the matrix has act-order group indices. */
  readonly hasGIdx: boolean;
  /** Whether every zero point is an integer in [0, 255] (lowbit's format then stores them as U8). */
  readonly byteZeros: boolean;
  constructor(
    readonly name: string,
    meta: Pick<QuantizedMatrix, "bits" | "groupSize" | "rows" | "cols" | "sym"> & { hasGIdx: boolean; byteZeros: boolean },
    private readonly loader: () => Promise<QuantizedMatrix>,
  ) {
    this.bits = meta.bits;
    this.groupSize = meta.groupSize;
    this.rows = meta.rows;
    this.cols = meta.cols;
    this.sym = meta.sym;
    this.hasGIdx = meta.hasGIdx;
    this.byteZeros = meta.byteZeros;
  }
  private unloaded(): never {
    throw new LowbitError("E_INTERNAL", `${this.name} is kept on disk until it is written; read it with loadMatrix()`);
  }
  get q(): Uint8Array {
    return this.unloaded();
  }
  get scales(): Float32Array {
    return this.unloaded();
  }
  get zeros(): Float32Array {
    return this.unloaded();
  }
  get gIdx(): Int32Array | undefined {
    return this.unloaded();
  }
  load(): Promise<QuantizedMatrix> {
    return this.loader();
  }
}

/** A float tensor not held in memory (still in the source model, or spilled): shape now, values from `load()`. */
export class DeferredFloat implements FloatTensor {
  constructor(
    readonly name: string,
    readonly shape: number[],
    private readonly loader: () => Promise<Float32Array>,
  ) {}
  get data(): Float32Array {
    throw new LowbitError("E_INTERNAL", `${this.name} is kept on disk until it is written; read it with loadFloat()`);
  }
  load(): Promise<Float32Array> {
    return this.loader();
  }
}

/** The arrays of a matrix: itself when in memory, read from disk when deferred. */
export function loadMatrix(qm: QuantizedMatrix): Promise<QuantizedMatrix> {
  return qm instanceof DeferredMatrix ? qm.load() : Promise.resolve(qm);
}

/** The values of a float tensor: its data when in memory, read when deferred. */
export function loadFloat(t: FloatTensor): Promise<Float32Array> {
  return t instanceof DeferredFloat ? t.load() : Promise.resolve(t.data);
}

/** Whether a matrix has act-order group indices, without loading it. */
export function hasGIdx(qm: QuantizedMatrix): boolean {
  return qm instanceof DeferredMatrix ? qm.hasGIdx : qm.gIdx !== undefined;
}

/** Whether every zero point is an integer in [0, 255], without loading a deferred matrix. */
export function byteZeros(qm: QuantizedMatrix): boolean {
  return qm instanceof DeferredMatrix ? qm.byteZeros : qm.zeros.every((z) => Number.isInteger(z) && z >= 0 && z <= 255);
}
