import { LowbitError } from "./errors";

/**
 * The dtype table. Plain element types have a fixed byte size; packed formats (registered by
 * other packages, e.g. GGUF Q4_0 by @lowbit/int4) describe blocks: `blockSize` values stored in
 * `blockBytes` bytes.
 */
export interface DTypeInfo {
  readonly name: string;
  /** Values per block (1 for plain element types). */
  readonly blockSize: number;
  /** Bytes per block. */
  readonly blockBytes: number;
  readonly kind: "float" | "int" | "uint" | "packed";
}

export type DType = "f32" | "f64" | "f16" | "bf16" | "i8" | "u8" | "i16" | "i32" | (string & {});

const table = new Map<string, DTypeInfo>();

export function registerDType(info: DTypeInfo): void {
  const existing = table.get(info.name);
  if (existing) {
    if (existing.blockSize === info.blockSize && existing.blockBytes === info.blockBytes && existing.kind === info.kind) return;
    throw new LowbitError("E_DTYPE", `dtype "${info.name}" is already registered with a different layout`);
  }
  if (!(info.blockSize >= 1 && info.blockBytes >= 1)) {
    throw new LowbitError("E_DTYPE", `dtype "${info.name}": blockSize and blockBytes must be positive`);
  }
  table.set(info.name, Object.freeze({ ...info }));
}

for (const [name, bytes, kind] of [
  ["f32", 4, "float"],
  ["f64", 8, "float"],
  ["f16", 2, "float"],
  ["bf16", 2, "float"],
  ["i8", 1, "int"],
  ["u8", 1, "uint"],
  ["i16", 2, "int"],
  ["i32", 4, "int"],
] as const) {
  registerDType({ name, blockSize: 1, blockBytes: bytes, kind });
}

export function dtypeInfo(name: DType): DTypeInfo {
  const info = table.get(name);
  if (!info) {
    throw new LowbitError("E_DTYPE", `unknown dtype "${name}"; known: ${[...table.keys()].join(", ")}`);
  }
  return info;
}

export function hasDType(name: string): boolean {
  return table.has(name);
}

/** Bytes needed for `count` values of `dtype`; throws if count is not a whole number of blocks. */
export function byteSize(dtype: DType, count: number): number {
  const info = dtypeInfo(dtype);
  if (!Number.isSafeInteger(count) || count < 0) {
    throw new LowbitError("E_INVALID_ARGUMENT", `element count ${count} is not a non-negative integer`);
  }
  if (count % info.blockSize !== 0) {
    throw new LowbitError(
      "E_SHAPE_MISMATCH",
      `${count} values of ${dtype} are not a whole number of ${info.blockSize}-value blocks`,
    );
  }
  return (count / info.blockSize) * info.blockBytes;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
