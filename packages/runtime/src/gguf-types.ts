import { dequantizeQ4_0Ref, dequantizeQ4_1Ref, type Int4LinearOptions, Q4_0Linear, Q4_1Linear } from "@lowbit/int4";
import { dequantizeQ8_0, Q8_0Linear } from "@lowbit/int8";
import { decodeBf16, decodeF16, F32Linear, type HalfFormat, HalfLinear, type Linear, LowbitError } from "@lowbit/tensor";
import { GGUF_KQUANT_TYPES } from "./gguf-kquants";
import type { EmbeddingTable } from "./model";

/**
 * What 16-bit float weights (GGUF F16/BF16, Hugging Face F16/BF16 safetensors) become.
 * "keep" (the default): a HalfLinear holding the 16-bit values in kernel memory, half the memory
 * and weight bandwidth of f32, converted exactly on the fly, so its output is the f32 product with
 * the stored weights up to summation order. "f32": decoded to an f32 linear at load (twice the
 * memory, the f32 kernels).
 */
export type HalfWeights = "keep" | "f32";

/** A linear over 16-bit weights [out, in] as `half` asks (see HalfWeights; default "keep"). */
export function halfLinear(
  bits: Uint16Array,
  format: HalfFormat,
  out: number,
  inp: number,
  bias: Float32Array | undefined,
  half: HalfWeights = "keep",
): Linear {
  if (half === "f32") return new F32Linear(format === "bf16" ? decodeBf16(bits) : decodeF16(bits), out, inp, bias);
  if (half !== "keep") {
    throw new LowbitError("E_INVALID_ARGUMENT", `halfWeights must be "keep" or "f32", got ${JSON.stringify(half)}`);
  }
  return new HalfLinear(bits, out, inp, { format, bias });
}

/**
 * What block-quantized GGUF linears multiply with. "quantized": activations are quantized per
 * token and 32-value block on the fly and multiplied in integers, as llama.cpp's CPU backend does
 * (Q8_0 x Q8_0 blocks; Q4_0/Q4_1 x int8 blocks), which about doubles the speed of a Q4_x GEMV;
 * "f32": f32 activations times weights dequantized on the fly. Unset, each type keeps its default:
 * Q8_0 and Q4_0 quantized (loadGguf routes Q4_0 to Q4_0TiledLinear), Q4_1, Q4_K and Q6_K f32.
 */
export type GgufActivations = "quantized" | "f32";

/** How the runtime reads one ggml tensor type: as f32 values, and as a linear layer. */
export interface GgufTensorType {
  id: number;
  name: string;
  /** Values per block and bytes per block (1 and the element size for plain types). */
  blockSize: number;
  blockBytes: number;
  /** Decodes `n` values. */
  toF32(bytes: Uint8Array, n: number): Float32Array;
  /**
   * A linear layer over the stored bytes ([out, in], rows of `in` values); undefined means
   * "dequantize to f32". `activations` unset: the type's default (see GgufActivations);
   * `half` applies to the 16-bit float types (see HalfWeights, default "keep").
   */
  linear?: (
    bytes: Uint8Array,
    out: number,
    inp: number,
    bias: Float32Array | undefined,
    name: string,
    activations?: GgufActivations,
    half?: HalfWeights,
  ) => Linear;
}

function view<T>(bytes: Uint8Array, n: number, width: number, make: (b: ArrayBuffer, o: number, n: number) => T): T {
  const b = bytes.byteOffset % width === 0 ? bytes : bytes.slice();
  return make(b.buffer as ArrayBuffer, b.byteOffset, n);
}

const f32 = (bytes: Uint8Array, n: number) => view(bytes, n, 4, (b, o, k) => new Float32Array(b, o, k)).slice();
const u16 = (bytes: Uint8Array, n: number) => view(bytes, n, 2, (b, o, k) => new Uint16Array(b, o, k));

/** The table of ggml types the GGUF loader reads (a table, not a switch). */
const TYPES: GgufTensorType[] = [
  { id: 0, name: "F32", blockSize: 1, blockBytes: 4, toF32: f32 },
  {
    id: 1,
    name: "F16",
    blockSize: 1,
    blockBytes: 2,
    toF32: (bytes, n) => decodeF16(u16(bytes, n)),
    linear: (bytes, out, inp, bias, _name, _act, half) => halfLinear(u16(bytes, bytes.length >> 1), "f16", out, inp, bias, half),
  },
  {
    id: 30,
    name: "BF16",
    blockSize: 1,
    blockBytes: 2,
    toF32: (bytes, n) => decodeBf16(u16(bytes, n)),
    linear: (bytes, out, inp, bias, _name, _act, half) => halfLinear(u16(bytes, bytes.length >> 1), "bf16", out, inp, bias, half),
  },
  {
    id: 8,
    name: "Q8_0",
    blockSize: 32,
    blockBytes: 34,
    toF32: (bytes, n) => dequantizeQ8_0(bytes, n),
    linear: (bytes, out, inp, bias, name, act) =>
      Q8_0Linear.fromBytes(bytes, out, inp, { bias, name, activation: act === "f32" ? "f32" : "q8_0" }),
  },
  {
    id: 2,
    name: "Q4_0",
    blockSize: 32,
    blockBytes: 18,
    toF32: (bytes, n) => dequantizeQ4_0Ref(bytes, n),
    linear: (bytes, out, inp, bias, name, act) => new Q4_0Linear(bytes, out, inp, int4Options(bias, name, act, "q4_0")),
  },
  {
    id: 3,
    name: "Q4_1",
    blockSize: 32,
    blockBytes: 20,
    toF32: (bytes, n) => dequantizeQ4_1Ref(bytes, n),
    linear: (bytes, out, inp, bias, name, act) => new Q4_1Linear(bytes, out, inp, int4Options(bias, name, act, "q4_1")),
  },
  // Q4_K and Q6_K (kept 4- and 6-bit), and Q5_0/Q5_1/Q2_K/Q3_K/Q5_K (decoded to f32 at load): gguf-kquants.ts
  ...GGUF_KQUANT_TYPES,
];

/** Int4Linear options for a GGUF Q4_x tensor: f32 activations unless "quantized" is asked for. */
function int4Options(bias: Float32Array | undefined, name: string, act: GgufActivations | undefined, kind: string): Int4LinearOptions {
  return act === "quantized" ? { bias, name, activations: "int8", kind: `${kind}-a8` } : { bias, name, activations: "f32", kind };
}

const byId = new Map(TYPES.map((t) => [t.id, t]));

/** Registers (or replaces) how a ggml type is read, e.g. a block linear from another package. */
export function registerGgufTensorType(type: GgufTensorType): void {
  byId.set(type.id, type);
}

export function ggufTensorType(id: number, where: string): GgufTensorType {
  const t = byId.get(id);
  if (!t) {
    const known = [...byId.values()].map((x) => x.name).join(", ");
    throw new LowbitError("E_UNSUPPORTED", `${where}: ggml type ${id} is not supported by the runtime (supported: ${known})`);
  }
  return t;
}


/** An embedding kept as the file's rows (F16, Q8_0, Q4_x ...), decoded one row per lookup. */
export function blockEmbedding(type: GgufTensorType, bytes: Uint8Array, vocabSize: number, dim: number, where: string): EmbeddingTable {
  if (dim % type.blockSize !== 0) {
    throw new LowbitError("E_SHAPE_MISMATCH", `${where}: rows of ${dim} values are not whole ${type.name} blocks of ${type.blockSize}`);
  }
  const rowBytes = (dim / type.blockSize) * type.blockBytes;
  if (bytes.length !== rowBytes * vocabSize) {
    throw new LowbitError("E_SHAPE_MISMATCH", `${where}: ${bytes.length} bytes, expected ${rowBytes * vocabSize} for [${vocabSize}, ${dim}] ${type.name}`);
  }
  return {
    kind: type.name.toLowerCase(),
    storageBytes: bytes.length,
    row: (id, out, offset) => out.set(type.toF32(bytes.subarray(id * rowBytes, (id + 1) * rowBytes), dim), offset),
  };
}
