import { dequantizeQ4_0Ref, dequantizeQ4_1Ref, Q4_0Linear, Q4_1Linear } from "@lowbit/int4";
import { dequantizeQ8_0, Q8_0Linear } from "@lowbit/int8";
import { decodeBf16, decodeF16, LowbitError, type Linear } from "@lowbit/tensor";

/** How the runtime reads one ggml tensor type: as f32 values, and as a linear layer. */
export interface GgufTensorType {
  id: number;
  name: string;
  /** Decodes `n` values. */
  toF32(bytes: Uint8Array, n: number): Float32Array;
  /**
   * A linear layer over the stored bytes ([out, in], rows of `in` values); undefined means
   * "dequantize to f32".
   */
  linear?: (bytes: Uint8Array, out: number, inp: number, bias: Float32Array | undefined, name: string) => Linear;
}

function view<T>(bytes: Uint8Array, n: number, width: number, make: (b: ArrayBuffer, o: number, n: number) => T): T {
  const b = bytes.byteOffset % width === 0 ? bytes : bytes.slice();
  return make(b.buffer as ArrayBuffer, b.byteOffset, n);
}

const f32 = (bytes: Uint8Array, n: number) => view(bytes, n, 4, (b, o, k) => new Float32Array(b, o, k)).slice();

/** The table of ggml types the GGUF loader reads (a table, not a switch). */
const TYPES: GgufTensorType[] = [
  { id: 0, name: "F32", toF32: f32 },
  { id: 1, name: "F16", toF32: (bytes, n) => decodeF16(view(bytes, n, 2, (b, o, k) => new Uint16Array(b, o, k))) },
  { id: 30, name: "BF16", toF32: (bytes, n) => decodeBf16(view(bytes, n, 2, (b, o, k) => new Uint16Array(b, o, k))) },
  {
    id: 8,
    name: "Q8_0",
    toF32: (bytes, n) => dequantizeQ8_0(bytes, n),
    linear: (bytes, out, inp, bias, name) => Q8_0Linear.fromBytes(bytes, out, inp, { bias, name }),
  },
  {
    id: 2,
    name: "Q4_0",
    toF32: (bytes, n) => dequantizeQ4_0Ref(bytes, n),
    linear: (bytes, out, inp, bias, name) => new Q4_0Linear(bytes, out, inp, { bias, name }),
  },
  {
    id: 3,
    name: "Q4_1",
    toF32: (bytes, n) => dequantizeQ4_1Ref(bytes, n),
    linear: (bytes, out, inp, bias, name) => new Q4_1Linear(bytes, out, inp, { bias, name }),
  },
];

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

