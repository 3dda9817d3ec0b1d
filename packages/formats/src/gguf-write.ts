import { LowbitError } from "@lowbit/tensor";
import { asBytes, writeAtomic } from "./file-io";
import { type GgmlTypeName, ggmlTensorBytes, ggmlTypeInfo } from "./ggml-types";
import { GGML_MAX_DIMS, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC } from "./gguf-read";
import {
  ByteWriter,
  GGUF_VALUE_TYPES,
  type GgufArrayItems,
  type GgufBigIntType,
  type GgufMetadataEntry,
  type GgufNumberType,
  type GgufValueType,
} from "./gguf-values";

export interface GgufTensorInput {
  name: string;
  /** ggml type id or name (e.g. 0 or "F32"). */
  type: number | GgmlTypeName;
  /** ne, ne[0] contiguous: the reverse of the [out, in] shape. */
  dims: readonly number[];
  data: ArrayBufferView;
}

export interface GgufWriteInput {
  metadata: readonly GgufMetadataEntry[] | GgufMetadataBuilder;
  tensors: readonly GgufTensorInput[];
  /** Data alignment; written as general.alignment when not the default 32. */
  alignment?: number;
}

/**
 * A tensor of a streamed GGUF: its layout now, its bytes from `data()` when the writer reaches it
 * (once, in file order), so only one tensor's bytes need to exist at a time.
 */
export interface GgufStreamTensor {
  name: string;
  /** ggml type id or name (e.g. 0 or "F32"). */
  type: number | GgmlTypeName;
  /** ne, ne[0] contiguous: the reverse of the [out, in] shape. */
  dims: readonly number[];
  /** Bytes `data()` will return: what the type and dims take (checked before anything is written). */
  byteLength: number;
  /** The tensor's bytes; called once, after every tensor before it is written. */
  data: () => Promise<ArrayBufferView> | ArrayBufferView;
}

export interface GgufStreamInput {
  metadata: readonly GgufMetadataEntry[] | GgufMetadataBuilder;
  tensors: readonly GgufStreamTensor[];
  /** Data alignment; written as general.alignment when not the default 32. */
  alignment?: number;
}

/** llama.cpp's GGML_MAX_NAME (names must be shorter). */
export const GGML_MAX_NAME = 64;

/**
 * A typed way to build metadata: `new GgufMetadataBuilder().string("general.architecture", "llama")
 * .u32("llama.block_count", 5).array("tokenizer.ggml.tokens", "string", tokens).build()`.
 */
export class GgufMetadataBuilder {
  private readonly entries: GgufMetadataEntry[] = [];

  add(entry: GgufMetadataEntry): this {
    this.entries.push(entry);
    return this;
  }
  private num(key: string, type: GgufNumberType, value: number): this {
    return this.add({ key, type, value });
  }
  u8(key: string, v: number): this { return this.num(key, "u8", v); }
  i8(key: string, v: number): this { return this.num(key, "i8", v); }
  u16(key: string, v: number): this { return this.num(key, "u16", v); }
  i16(key: string, v: number): this { return this.num(key, "i16", v); }
  u32(key: string, v: number): this { return this.num(key, "u32", v); }
  i32(key: string, v: number): this { return this.num(key, "i32", v); }
  f32(key: string, v: number): this { return this.num(key, "f32", v); }
  f64(key: string, v: number): this { return this.num(key, "f64", v); }
  u64(key: string, v: bigint | number): this { return this.big(key, "u64", v); }
  i64(key: string, v: bigint | number): this { return this.big(key, "i64", v); }
  bool(key: string, v: boolean): this { return this.add({ key, type: "bool", value: v }); }
  string(key: string, v: string): this { return this.add({ key, type: "string", value: v }); }
  array(key: string, itemType: GgufValueType, value: GgufArrayItems): this {
    return this.add({ key, type: "array", itemType, value });
  }
  private big(key: string, type: GgufBigIntType, value: bigint | number): this {
    return this.add(typeof value === "bigint" ? { key, type, value } : { key, type, value });
  }
  build(): GgufMetadataEntry[] {
    return [...this.entries];
  }
}

/** Encodes everything before the data section; returns the bytes and each tensor's data offset. */
export function encodeGgufHeader(
  input: GgufWriteInput | GgufStreamInput,
  path = "gguf",
): { header: Uint8Array; offsets: number[]; alignment: number } {
  const entries = input.metadata instanceof GgufMetadataBuilder ? input.metadata.build() : [...input.metadata];
  const alignEntry = entries.find((e) => e.key === "general.alignment");
  let alignment = input.alignment ?? GGUF_DEFAULT_ALIGNMENT;
  if (alignEntry) {
    if (alignEntry.type !== "u32") {
      throw new LowbitError("E_GGUF_METADATA", `${path}: general.alignment must have type u32`);
    }
    if (input.alignment !== undefined && alignEntry.value !== input.alignment) {
      throw new LowbitError("E_GGUF_METADATA", `${path}: general.alignment ${alignEntry.value} differs from alignment ${input.alignment}`);
    }
    alignment = alignEntry.value as number;
  } else if (alignment !== GGUF_DEFAULT_ALIGNMENT) {
    entries.push({ key: "general.alignment", type: "u32", value: alignment });
  }
  if (!Number.isInteger(alignment) || alignment <= 0 || alignment > 0xffffffff || (alignment & (alignment - 1)) !== 0) {
    throw new LowbitError("E_INVALID_ARGUMENT", `${path}: alignment ${alignment} is not a power of two`);
  }

  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(3);
  w.u64(input.tensors.length);
  w.u64(entries.length);
  const keys = new Set<string>();
  for (const e of entries) {
    if (typeof e.key !== "string" || e.key.length === 0) {
      throw new LowbitError("E_GGUF_METADATA", `${path}: metadata key must be a non-empty string`);
    }
    if (keys.has(e.key)) throw new LowbitError("E_GGUF_METADATA", `${path}: duplicate metadata key "${e.key}"`);
    keys.add(e.key);
    const typeId = GGUF_VALUE_TYPES.indexOf(e.type);
    if (typeId < 0) throw new LowbitError("E_GGUF_METADATA", `${path}: metadata "${e.key}" has unknown type ${String(e.type)}`);
    w.string(e.key);
    w.u32(typeId);
    w.value(e.type, e.type === "array" ? { itemType: e.itemType, value: e.value } : e.value, `${path}: metadata "${e.key}"`);
  }

  const offsets: number[] = [];
  const names = new Set<string>();
  let offset = 0;
  for (const t of input.tensors) {
    const where = `${path}: tensor "${t.name}": `;
    if (typeof t.name !== "string" || t.name.length === 0) throw new LowbitError("E_GGUF_TENSOR", `${where}empty name`);
    if (new TextEncoder().encode(t.name).length >= GGML_MAX_NAME) {
      throw new LowbitError("E_GGUF_TENSOR", `${where}name must be shorter than ${GGML_MAX_NAME} bytes (llama.cpp limit)`);
    }
    if (names.has(t.name)) throw new LowbitError("E_GGUF_TENSOR", `${where}duplicate tensor name`);
    names.add(t.name);
    if (t.dims.length < 1 || t.dims.length > GGML_MAX_DIMS || t.dims.some((d) => !Number.isSafeInteger(d) || d < 0)) {
      throw new LowbitError("E_GGUF_TENSOR", `${where}dims ${JSON.stringify(t.dims)} must be 1..${GGML_MAX_DIMS} non-negative integers`);
    }
    const info = ggmlTypeInfo(t.type, "E_GGUF_TENSOR", where);
    const bytes = ggmlTensorBytes(info, t.dims, where);
    const length = declaredLength(t, where);
    if (bytes !== BigInt(length)) {
      throw new LowbitError(
        "E_SHAPE_MISMATCH",
        `${where}dims ${JSON.stringify(t.dims)} of ${info.name} need ${bytes} bytes, data has ${length}`,
      );
    }
    w.string(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.i64(d);
    w.i32(info.id);
    w.u64(offset);
    offsets.push(offset);
    offset += alignUp(length, alignment);
  }
  w.zeros(alignUp(w.length, alignment) - w.length);
  return { header: w.result(), offsets, alignment };
}

function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

function isStreamTensor(t: GgufTensorInput | GgufStreamTensor): t is GgufStreamTensor {
  return typeof t.data === "function";
}

/** Bytes of a tensor's data: its declared byteLength when streamed, the data's byteLength otherwise. */
function declaredLength(t: GgufTensorInput | GgufStreamTensor, where: string): number {
  const length: unknown = isStreamTensor(t) ? t.byteLength : t.data?.byteLength;
  if (typeof length !== "number" || !Number.isSafeInteger(length) || length < 0) {
    throw new LowbitError("E_INVALID_ARGUMENT", `${where}byteLength ${String(length)} must be a non-negative integer`);
  }
  return length;
}

/**
 * Writes a GGUF v3 file atomically: header, metadata, tensor infos, padding to the alignment,
 * then each tensor's data padded to the alignment.
 */
export async function writeGguf(path: string, input: GgufWriteInput): Promise<void> {
  const bad = input.tensors.find((t) => !ArrayBuffer.isView(t.data));
  if (bad) throw new LowbitError("E_INVALID_ARGUMENT", `${path}: tensor "${bad.name}": data must be a typed array or DataView`);
  const tensors = input.tensors.map((t): GgufStreamTensor => ({ name: t.name, type: t.type, dims: t.dims, byteLength: t.data.byteLength, data: () => t.data }));
  await writeGgufStream(path, { metadata: input.metadata, tensors, alignment: input.alignment });
}

/**
 * Writes a GGUF v3 file atomically, one tensor at a time: the header (with every tensor's offset,
 * from the declared byte lengths) first, then each tensor's `data()` in file order, padded to the
 * alignment, so at most one tensor's bytes are held at once. A `data()` returning another length
 * than declared, or throwing, fails the write and leaves no file behind.
 */
export async function writeGgufStream(path: string, input: GgufStreamInput): Promise<void> {
  const bad = input.tensors.find((t) => typeof t.data !== "function");
  if (bad) throw new LowbitError("E_INVALID_ARGUMENT", `${path}: tensor "${bad.name}": data must be a function returning the bytes`);
  const { header, alignment } = encodeGgufHeader(input, path);
  await writeAtomic(path, async (sink) => {
    await sink.write(header);
    for (const t of input.tensors) {
      const data = await t.data();
      if (!ArrayBuffer.isView(data)) {
        throw new LowbitError("E_INVALID_ARGUMENT", `${path}: tensor "${t.name}": data() returned ${typeof data}, not a typed array or DataView`);
      }
      if (data.byteLength !== t.byteLength) {
        throw new LowbitError(
          "E_SHAPE_MISMATCH",
          `${path}: tensor "${t.name}": data() returned ${data.byteLength} bytes, expected ${t.byteLength} (dims ${JSON.stringify(t.dims)} of ${ggmlTypeInfo(t.type).name})`,
        );
      }
      await sink.write(asBytes(data));
      await sink.zeros(alignUp(t.byteLength, alignment) - t.byteLength);
    }
  });
}
