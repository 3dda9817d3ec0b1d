import {
  GGML_TYPE,
  type GgufMetadataEntry,
  type GgufStreamTensor,
  type GgufTensorInput,
  type GgufWriteInput,
  ggmlTensorBytes,
  ggmlTypeInfo,
  type Llama2cTokenizer,
  llamaGgufMetadata,
  readLlama2cTokenizer,
  writeGgufStream,
} from "@lowbit/formats";
import { dequantizeMatrix, type QuantizedMatrix, quantizedMatrixToGgufInt4, quantizeGgufInt4 } from "@lowbit/int4";
import { quantizeQ8_0Ref } from "@lowbit/int8";
import type { LlamaConfig } from "@lowbit/runtime";
import { encodeF16, f32ToF16Bits, LowbitError } from "@lowbit/tensor";
import { DeferredMatrix, type FloatTensor, loadFloat, loadMatrix, permuteRowsF32, permuteRowsQ, ropePermutation, type TokenizerFiles } from "../quant/qmodel";

/**
 * GGUF for llama.cpp from a float or quantized model. Tensor types follow llama.cpp's quantizer:
 * norms stay F32; a tied embedding / the classifier is Q8_0 when the linears are 4-bit (as
 * llama-quantize does for rows not a multiple of 256); rows whose length is not a multiple of the
 * block size (stories260K's 172-wide ffn_down) fall back to F16, as llama-quantize's final
 * fallback does. Quantized matrices whose codes fit the type (4-bit sym -> Q4_0, 4-bit -> Q4_1,
 * 8-bit sym -> Q8_0, groups a multiple of 32, no act-order) are written exactly; others are
 * requantized from their dequantized weights with llama.cpp's reference quantizer (noted).
 */

export const GGUF_TYPES = ["f32", "f16", "q8_0", "q4_0", "q4_1"] as const;
export type GgufType = (typeof GGUF_TYPES)[number];

const TYPE_ID: Record<GgufType, number> = { f32: GGML_TYPE.F32, f16: GGML_TYPE.F16, q8_0: GGML_TYPE.Q8_0, q4_0: GGML_TYPE.Q4_0, q4_1: GGML_TYPE.Q4_1 };
const BLOCK: Record<GgufType, number> = { f32: 1, f16: 1, q8_0: 32, q4_0: 32, q4_1: 32 };
/** llama_ftype of a file whose linears are mostly of this type. */
const FILE_TYPE: Record<GgufType, number> = { f32: 0, f16: 1, q4_0: 2, q4_1: 3, q8_0: 7 };

export interface GgufModelInput {
  config: LlamaConfig;
  /** Float tensors by GGUF name (everything not in `quantized`). */
  floats: Map<string, FloatTensor>;
  quantized?: Map<string, QuantizedMatrix>;
  tokenizer?: TokenizerFiles;
  name?: string;
}

export interface GgufExportResult {
  input: GgufWriteInput;
  /** Type written per tensor name. */
  types: Map<string, GgufType>;
  notes: string[];
  fileType: GgufType;
}

/** The natural GGUF type of a quantized matrix (undefined when none fits its bit width). */
export function naturalGgufType(qm: QuantizedMatrix): GgufType | undefined {
  if (qm.bits === 8 && qm.zeros.every((z) => z === 128)) return "q8_0";
  if (qm.bits === 4) return qm.zeros.every((z) => z === 8) ? "q4_0" : "q4_1";
  return undefined;
}

/** The same matrix described with groups of 32 (each group of G split into G/32 blocks): exact. */
export function regroup32(qm: QuantizedMatrix): QuantizedMatrix | undefined {
  if (qm.groupSize % 32 !== 0 || qm.gIdx) return undefined;
  if (qm.groupSize === 32) return qm;
  const k = qm.groupSize / 32;
  const ng = qm.cols / qm.groupSize;
  const scales = new Float32Array(qm.rows * ng * k);
  const zeros = new Float32Array(qm.rows * ng * k);
  for (let i = 0; i < qm.rows * ng; i++) {
    scales.fill(qm.scales[i]!, i * k, (i + 1) * k);
    zeros.fill(qm.zeros[i]!, i * k, (i + 1) * k);
  }
  return { ...qm, groupSize: 32, scales, zeros };
}

/**
 * Q8_0 blocks holding exactly an 8-bit symmetric matrix (zero 128, groups of 32): d = f16(scale),
 * q = code - 128. (@lowbit/int8's Q8_0 codec encodes from floats; this keeps GPTQ's codes.)
 */
function q80FromQuantized(qm: QuantizedMatrix): Uint8Array {
  const nb = (qm.rows * qm.cols) / 32;
  const out = new Uint8Array(nb * 34);
  const dv = new DataView(out.buffer);
  for (let b = 0; b < nb; b++) {
    dv.setUint16(b * 34, f32ToF16Bits(qm.scales[b]!), true);
    for (let j = 0; j < 32; j++) dv.setInt8(b * 34 + 2 + j, qm.q[b * 32 + j]! - 128);
  }
  return out;
}

/** Exact GGUF bytes of a quantized matrix in `type`, or undefined when the codes do not fit it. */
function exactBytes(qm: QuantizedMatrix, type: GgufType, name: string): Uint8Array | undefined {
  const g = regroup32(qm);
  if (!g) return undefined;
  if (type === "q8_0") return qm.bits === 8 && qm.zeros.every((z) => z === 128) ? q80FromQuantized(g) : undefined;
  if (type === "q4_0") return qm.bits === 4 && qm.zeros.every((z) => z === 8) ? quantizedMatrixToGgufInt4("q4_0", g, name) : undefined;
  if (type === "q4_1") return qm.bits === 4 && qm.zeros.every((z) => Number.isInteger(z)) ? quantizedMatrixToGgufInt4("q4_1", g, name) : undefined;
  return undefined;
}

/** GGUF bytes of float values [rows, cols] in `type` (llama.cpp reference quantizers). */
function encodeFloat(w: Float32Array, rows: number, cols: number, type: GgufType, name: string): Uint8Array {
  switch (type) {
    case "f32":
      return new Uint8Array(w.buffer, w.byteOffset, w.byteLength);
    case "f16": {
      const h = encodeF16(w);
      return new Uint8Array(h.buffer, h.byteOffset, h.byteLength);
    }
    case "q8_0":
      return quantizeQ8_0Ref(w, { name });
    case "q4_0":
    case "q4_1":
      return quantizeGgufInt4(type, w, rows, cols, name);
  }
}

/** GGUF tensor order: token_embd, then each layer, then output_norm and output (as llama.cpp writes). */
function order(names: Iterable<string>): string[] {
  const rank = (n: string) => {
    if (n === "token_embd.weight") return [0, 0];
    const m = /^blk\.(\d+)\./.exec(n);
    if (m) return [1, Number(m[1])];
    return [2, n === "output_norm.weight" ? 0 : 1];
  };
  const parts = ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_down", "ffn_up"];
  const sub = (n: string) => parts.findIndex((p) => n.includes(`.${p}.`));
  return [...names].sort((a, b) => {
    const [ra, la] = rank(a);
    const [rb, lb] = rank(b);
    return ra! - rb! || la! - lb! || sub(a) - sub(b) || (a < b ? -1 : a > b ? 1 : 0);
  });
}

/**
 * Thrown by a tensor's encoder when a matrix kept on disk turns out to have another natural GGUF
 * type than its settings promised (an asymmetric matrix whose zeros all happen to be the middle
 * code): the plan is redone with every matrix's type read from its values.
 */
class GgufReplan extends LowbitError {
  constructor(name: string) {
    super("E_INTERNAL", `${name}: natural GGUF type differs from the one its settings imply; planning again from the values`);
  }
}

/**
 * The natural type of a matrix kept on disk, from its settings: symmetric codes have every zero at
 * 2^(bits-1) (the QuantizedMatrix contract), so 8-bit sym is Q8_0, 4-bit sym Q4_0, other 4-bit Q4_1.
 * The encoder checks it against the values when it reads the matrix.
 */
function impliedGgufType(qm: DeferredMatrix): GgufType | undefined {
  if (qm.bits === 8) return qm.sym ? "q8_0" : undefined;
  if (qm.bits === 4) return qm.sym ? "q4_0" : "q4_1";
  return undefined;
}

/** Natural types of every quantized matrix, reading those kept on disk one at a time when `exact`. */
async function naturalTypes(quantized: Map<string, QuantizedMatrix>, exact: boolean): Promise<Map<string, GgufType | undefined>> {
  const out = new Map<string, GgufType | undefined>();
  for (const [name, qm] of quantized) {
    out.set(name, qm instanceof DeferredMatrix && !exact ? impliedGgufType(qm) : naturalGgufType(await loadMatrix(qm)));
  }
  return out;
}

/**
 * The GGUF of a model, planned: metadata and every tensor's name, type and shape now, each tensor's
 * bytes from its `data()` (reading a matrix or float kept on disk, permuting, encoding), so a
 * writer can hold one tensor at a time. `notes()` is complete once every `data()` has run.
 */
export interface GgufPlan {
  metadata: GgufMetadataEntry[];
  tensors: GgufStreamTensor[];
  /** Type written per tensor name. */
  types: Map<string, GgufType>;
  fileType: GgufType;
  notes(): string[];
}

/**
 * Plans the GGUF of a model; `type` forces the linears' type. Matrices kept on disk are typed from
 * their settings unless `exact` (then each is read once, one at a time, to check its zeros).
 */
export async function planGguf(m: GgufModelInput, opts: { type?: GgufType; exact?: boolean } = {}): Promise<GgufPlan> {
  const cfg = m.config;
  const types = new Map<string, GgufType>();
  const quantized = m.quantized ?? new Map<string, QuantizedMatrix>();
  const natural = opts.type ? undefined : await naturalTypes(quantized, opts.exact === true);
  // an 8-bit asymmetric matrix on disk could still hold Q8_0's zeros: read them before refusing it
  const unsure = [...quantized].some(([name, qm]) => qm instanceof DeferredMatrix && qm.bits === 8 && natural?.get(name) === undefined);
  if (natural && !opts.exact && unsure) return planGguf(m, { ...opts, exact: true });
  // linears' type: forced, else the natural type of the quantized matrices, else f32
  let linearType: GgufType = opts.type ?? "f32";
  if (natural && quantized.size > 0) {
    const kinds = new Set(natural.values());
    if (kinds.has(undefined)) {
      const bits = [...new Set([...quantized.values()].map((q) => q.bits))].join("/");
      throw new LowbitError(
        "E_UNSUPPORTED",
        `GGUF has no type lowbit writes for ${bits}-bit weights (it writes F32, F16, Q8_0, Q4_0, Q4_1). Pass --gguf-type q4_0, q4_1 or q8_0 to requantize, or write --format lowbit.`,
      );
    }
    linearType = kinds.has("q4_1") ? "q4_1" : kinds.has("q4_0") ? "q4_0" : "q8_0";
  }
  const embdType: GgufType = linearType === "q4_0" || linearType === "q4_1" ? "q8_0" : linearType;
  const permute = cfg.ropeStyle === "half";
  const permQ = permute ? ropePermutation(cfg.nHeads, cfg.headDim, "toInterleaved") : undefined;
  const permK = permute ? ropePermutation(cfg.nKvHeads, cfg.headDim, "toInterleaved") : undefined;
  const permFor = (name: string) => (/\.attn_q\.(weight|bias)$/.test(name) ? permQ : /\.attn_k\.(weight|bias)$/.test(name) ? permK : undefined);
  const fallbacks: string[] = [];
  const requantized: string[] = [];
  const tensors: GgufStreamTensor[] = [];
  const add = (name: string, type: GgufType, dims: number[], data: () => Promise<Uint8Array | Float32Array>) => {
    types.set(name, type);
    tensors.push({ name, type: TYPE_ID[type], dims, byteLength: Number(ggmlTensorBytes(ggmlTypeInfo(TYPE_ID[type]), dims)), data });
  };
  for (const name of order([...m.floats.keys(), ...quantized.keys()])) {
    const perm = permFor(name);
    const stored = quantized.get(name);
    if (stored) {
      const { rows, cols } = stored;
      let type = opts.type ?? natural?.get(name) ?? linearType;
      const fallback = cols % BLOCK[type] !== 0;
      if (fallback) {
        fallbacks.push(`${name} (${cols} columns)`);
        type = "f16";
      }
      const promised = stored instanceof DeferredMatrix ? natural?.get(name) : undefined;
      add(name, type, [cols, rows], async () => {
        const qm0 = await loadMatrix(stored);
        if (promised !== undefined && naturalGgufType(qm0) !== promised) throw new GgufReplan(name);
        const qm = perm ? permuteRowsQ(qm0, perm) : qm0;
        if (fallback) return encodeFloat(dequantizeMatrix(qm), rows, cols, "f16", name);
        const exact = exactBytes(qm, type, name);
        if (exact) return exact;
        if (type !== "f32" && type !== "f16") requantized.push(name);
        return encodeFloat(dequantizeMatrix(qm), rows, cols, type, name);
      });
      continue;
    }
    const t = m.floats.get(name)!;
    const values = async () => {
      const data = await loadFloat(t);
      return perm ? permuteRowsF32(data, t.shape[0]!, data.length / t.shape[0]!, perm) : data;
    };
    if (t.shape.length === 1) {
      add(name, "f32", [t.shape[0]!], values);
      continue;
    }
    const [rows, cols] = t.shape as [number, number];
    let type: GgufType = name === "token_embd.weight" || name === "output.weight" ? embdType : linearType;
    if (cols % BLOCK[type] !== 0) {
      fallbacks.push(`${name} (${cols} columns)`);
      type = "f16";
    }
    const encodedAs = type;
    add(name, type, [cols, rows], async () => encodeFloat(await values(), rows, cols, encodedAs, name));
  }
  let tokenizer: Llama2cTokenizer | undefined;
  let tokenizerNote: string | undefined;
  if (m.tokenizer?.kind === "llama2c") tokenizer = await readLlama2cTokenizer(m.tokenizer.path);
  else if (m.tokenizer?.kind === "gguf") tokenizer = await tokenizerFromGguf(m.tokenizer.path);
  else tokenizerNote = "no llama.cpp tokenizer metadata written (lowbit converts llama2.c and GGUF vocabularies only); llama.cpp needs one to run the file";
  const metadata = llamaGgufMetadata(
    {
      dim: cfg.dim,
      hiddenDim: cfg.hiddenDim,
      nLayers: cfg.nLayers,
      nHeads: cfg.nHeads,
      nKvHeads: cfg.nKvHeads,
      vocabSize: cfg.vocabSize,
      seqLen: cfg.maxSeqLen,
      sharedClassifier: cfg.tiedEmbeddings,
    },
    tokenizer,
    {
      name: m.name ?? "lowbit",
      ropeFreqBase: cfg.ropeTheta,
      rmsNormEps: cfg.normEps,
      fileType: FILE_TYPE[linearType],
      bosTokenId: cfg.bosTokenId,
      eosTokenId: cfg.eosTokenIds[0],
    },
  ).build();
  const notes = () => {
    const out: string[] = [];
    if (fallbacks.length) out.push(`rows not a multiple of 32 fell back to F16 (as llama-quantize does): ${fallbacks.join(", ")}`);
    if (requantized.length) {
      out.push(`not representable exactly in ${linearType.toUpperCase()}, requantized with llama.cpp's reference quantizer: ${requantized.join(", ")}`);
    }
    if (tokenizerNote) out.push(tokenizerNote);
    return out;
  };
  return { metadata, tensors, types, fileType: linearType, notes };
}

/**
 * Runs `use` on the model's plan; when a matrix kept on disk contradicts the type its settings
 * implied, plans again with every matrix's type read from its values and runs `use` again.
 */
async function withPlan<T>(m: GgufModelInput, opts: { type?: GgufType }, use: (plan: GgufPlan) => Promise<T>): Promise<T> {
  try {
    return await use(await planGguf(m, opts));
  } catch (e) {
    if (!(e instanceof GgufReplan)) throw e;
    return await use(await planGguf(m, { ...opts, exact: true }));
  }
}

/**
 * Writes a model's GGUF at `path`, one tensor at a time (tensors kept on disk are read, encoded
 * and written one by one): peak memory is one tensor and its encoding, not the model.
 */
export async function writeGgufModel(path: string, m: GgufModelInput, opts: { type?: GgufType } = {}): Promise<Omit<GgufExportResult, "input">> {
  return withPlan(m, opts, async (plan) => {
    await writeGgufStream(path, plan);
    return { types: plan.types, notes: plan.notes(), fileType: plan.fileType };
  });
}

/** Builds the GGUF (metadata + every tensor's bytes, in memory) of a model; `type` forces the linears' type. */
export async function buildGguf(m: GgufModelInput, opts: { type?: GgufType } = {}): Promise<GgufExportResult> {
  return withPlan(m, opts, async (plan) => {
    const tensors: GgufTensorInput[] = [];
    for (const t of plan.tensors) tensors.push({ name: t.name, type: t.type, dims: t.dims, data: await t.data() });
    return { input: { metadata: plan.metadata, tensors }, types: plan.types, notes: plan.notes(), fileType: plan.fileType };
  });
}

/** The llama2.c-style vocabulary stored in a GGUF (tokenizer.ggml.*), to carry it over. */
async function tokenizerFromGguf(path: string): Promise<Llama2cTokenizer | undefined> {
  const { readGguf } = await import("@lowbit/formats");
  const f = await readGguf(path);
  try {
    const tokens = f.get("tokenizer.ggml.tokens");
    const scores = f.get("tokenizer.ggml.scores");
    if (f.get("tokenizer.ggml.model") !== "llama" || !Array.isArray(tokens) || !Array.isArray(scores)) return undefined;
    const enc = new TextEncoder();
    const toks = (tokens as string[]).map((t) => enc.encode(String(t).replaceAll("\u2581", " ")));
    return { maxTokenLength: Math.max(...toks.map((t) => t.length)), tokens: toks, scores: Float32Array.from(scores as number[]) };
  } finally {
    await f.close();
  }
}
