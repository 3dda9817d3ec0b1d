import { LowbitError, type LowbitErrorCode } from "@lowbit/tensor";

/** A ggml tensor type: `blockSize` values are stored in `typeSize` bytes (ggml's type_traits). */
export interface GgmlTypeInfo {
  readonly id: number;
  readonly name: string;
  readonly blockSize: number;
  readonly typeSize: number;
}

const QK_K = 256;

/** The ggml tensor types with their ids as written in GGUF files (ids 4, 5, 31-33, 36-38 are retired). */
const TYPES: readonly GgmlTypeInfo[] = [
  { id: 0, name: "F32", blockSize: 1, typeSize: 4 },
  { id: 1, name: "F16", blockSize: 1, typeSize: 2 },
  { id: 2, name: "Q4_0", blockSize: 32, typeSize: 2 + 16 },
  { id: 3, name: "Q4_1", blockSize: 32, typeSize: 2 + 2 + 16 },
  { id: 6, name: "Q5_0", blockSize: 32, typeSize: 2 + 4 + 16 },
  { id: 7, name: "Q5_1", blockSize: 32, typeSize: 2 + 2 + 4 + 16 },
  { id: 8, name: "Q8_0", blockSize: 32, typeSize: 2 + 32 },
  { id: 9, name: "Q8_1", blockSize: 32, typeSize: 4 + 4 + 32 },
  { id: 10, name: "Q2_K", blockSize: QK_K, typeSize: 2 + 2 + QK_K / 16 + QK_K / 4 },
  { id: 11, name: "Q3_K", blockSize: QK_K, typeSize: 2 + QK_K / 4 + QK_K / 8 + 12 },
  { id: 12, name: "Q4_K", blockSize: QK_K, typeSize: 2 + 2 + 12 + QK_K / 2 },
  { id: 13, name: "Q5_K", blockSize: QK_K, typeSize: 2 + 2 + 12 + QK_K / 8 + QK_K / 2 },
  { id: 14, name: "Q6_K", blockSize: QK_K, typeSize: 2 + QK_K / 2 + QK_K / 4 + QK_K / 16 },
  { id: 15, name: "Q8_K", blockSize: QK_K, typeSize: 4 + QK_K + (QK_K / 16) * 2 },
  { id: 16, name: "IQ2_XXS", blockSize: QK_K, typeSize: 2 + QK_K / 4 },
  { id: 17, name: "IQ2_XS", blockSize: QK_K, typeSize: 2 + QK_K / 4 + QK_K / 32 },
  { id: 18, name: "IQ3_XXS", blockSize: QK_K, typeSize: 2 + QK_K / 4 + QK_K / 8 },
  { id: 19, name: "IQ1_S", blockSize: QK_K, typeSize: 2 + QK_K / 8 + QK_K / 16 },
  { id: 20, name: "IQ4_NL", blockSize: 32, typeSize: 2 + 16 },
  { id: 21, name: "IQ3_S", blockSize: QK_K, typeSize: 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4 },
  { id: 22, name: "IQ2_S", blockSize: QK_K, typeSize: 2 + QK_K / 4 + QK_K / 16 },
  { id: 23, name: "IQ4_XS", blockSize: QK_K, typeSize: 2 + 2 + QK_K / 64 + QK_K / 2 },
  { id: 24, name: "I8", blockSize: 1, typeSize: 1 },
  { id: 25, name: "I16", blockSize: 1, typeSize: 2 },
  { id: 26, name: "I32", blockSize: 1, typeSize: 4 },
  { id: 27, name: "I64", blockSize: 1, typeSize: 8 },
  { id: 28, name: "F64", blockSize: 1, typeSize: 8 },
  { id: 29, name: "IQ1_M", blockSize: QK_K, typeSize: QK_K / 8 + QK_K / 16 + QK_K / 32 },
  { id: 30, name: "BF16", blockSize: 1, typeSize: 2 },
  { id: 34, name: "TQ1_0", blockSize: QK_K, typeSize: 2 + 4 * 13 },
  { id: 35, name: "TQ2_0", blockSize: QK_K, typeSize: 2 + 64 },
  { id: 39, name: "MXFP4", blockSize: 32, typeSize: 1 + 16 },
];

export type GgmlTypeName =
  | "F32" | "F16" | "Q4_0" | "Q4_1" | "Q5_0" | "Q5_1" | "Q8_0" | "Q8_1" | "Q2_K" | "Q3_K" | "Q4_K" | "Q5_K"
  | "Q6_K" | "Q8_K" | "IQ2_XXS" | "IQ2_XS" | "IQ3_XXS" | "IQ1_S" | "IQ4_NL" | "IQ3_S" | "IQ2_S" | "IQ4_XS"
  | "I8" | "I16" | "I32" | "I64" | "F64" | "IQ1_M" | "BF16" | "TQ1_0" | "TQ2_0" | "MXFP4";

/** ggml type ids by name: `GGML_TYPE.Q4_0 === 2`. */
export const GGML_TYPE = Object.freeze(Object.fromEntries(TYPES.map((t) => [t.name, t.id]))) as Readonly<
  Record<GgmlTypeName, number>
>;

/** Type info by id. */
export const GGML_TYPE_INFO: ReadonlyMap<number, GgmlTypeInfo> = new Map(TYPES.map((t) => [t.id, Object.freeze(t)]));

const byName = new Map(TYPES.map((t) => [t.name, t]));

/** Looks a type up by id or name; unknown types are a LowbitError naming the known ones. */
export function ggmlTypeInfo(type: number | string, code: LowbitErrorCode = "E_GGUF_TENSOR", where = ""): GgmlTypeInfo {
  const info = typeof type === "number" ? GGML_TYPE_INFO.get(type) : byName.get(type);
  if (!info) {
    const known = TYPES.map((t) => `${t.name}=${t.id}`).join(", ");
    throw new LowbitError(code, `${where}unknown ggml tensor type ${JSON.stringify(type)}; known: ${known}`);
  }
  return info;
}

/**
 * Bytes of a tensor with dims `ne` (ne[0] contiguous) of the given type, as a bigint so sizes of
 * any file fit. ne[0] must be a whole number of blocks (ggml quantizes rows block by block).
 */
export function ggmlTensorBytes(info: GgmlTypeInfo, ne: readonly (number | bigint)[], where = ""): bigint {
  const dims = ne.map((d) => BigInt(d));
  const row = dims[0] ?? 1n;
  const bs = BigInt(info.blockSize);
  if (row % bs !== 0n) {
    throw new LowbitError(
      "E_GGUF_TENSOR",
      `${where}ne[0] = ${row} is not a multiple of the ${info.name} block size ${info.blockSize}`,
    );
  }
  let rows = 1n;
  for (const d of dims.slice(1)) rows *= d;
  return (row / bs) * BigInt(info.typeSize) * rows;
}
