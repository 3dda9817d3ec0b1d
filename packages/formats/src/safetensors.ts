import { decodeBf16, decodeF16, LowbitError } from "@lowbit/tensor";
import { asBytes, RandomAccessFile, writeAtomic } from "./file-io";
import { type ByteReader, MemoryFile } from "./memory-file";
import {
  checkHeaderLength,
  encodeSafetensorsHeader,
  isSafetensorsDType,
  parseSafetensorsHeader,
  SAFETENSORS_DTYPES,
  type SafetensorsDType,
  type SafetensorsTensorInfo,
} from "./safetensors-header";

/** What both a single safetensors file and a sharded model folder offer. */
export interface SafetensorsSource {
  readonly tensors: ReadonlyMap<string, SafetensorsTensorInfo>;
  readonly metadata: Record<string, string>;
  /** The tensor's raw little-endian bytes (a fresh, 8-byte aligned buffer). */
  read(name: string): Promise<Uint8Array>;
  /** The tensor as float32, converting F16/BF16/F64. */
  readF32(name: string): Promise<Float32Array>;
  close(): Promise<void>;
}

/**
 * A safetensors file opened lazily: only the header is read at open; each tensor's bytes are read
 * by position when asked for, so files beyond 4 GiB are fine. Opened from a path
 * (`openSafetensors`) or over bytes already in memory (`parseSafetensors`, for browsers).
 */
export class SafetensorsFile implements SafetensorsSource {
  private constructor(
    /** The path, or the name given to `parseSafetensors`. */
    readonly path: string,
    private readonly file: ByteReader,
    readonly tensors: ReadonlyMap<string, SafetensorsTensorInfo>,
    readonly metadata: Record<string, string>,
    /** Byte offset where the data buffer starts (8 + header length). */
    readonly dataOffset: number,
  ) {}

  static async open(path: string): Promise<SafetensorsFile> {
    const file = await RandomAccessFile.open(path);
    try {
      const prefix = await file.readAt(0, Math.min(8, file.size), "E_SAFETENSORS_HEADER");
      const n = checkHeaderLength(prefix, file.size, path);
      const json = await file.readAt(8, n, "E_SAFETENSORS_HEADER");
      const { tensors, metadata } = parseSafetensorsHeader(json, file.size - 8 - n, path);
      return new SafetensorsFile(path, file, tensors, metadata, 8 + n);
    } catch (e) {
      await file.close();
      throw e;
    }
  }

  /** A SafetensorsFile over a whole safetensors file in memory (`source` names it in messages). */
  static fromBytes(bytes: Uint8Array, source = "safetensors"): SafetensorsFile {
    const file = new MemoryFile(bytes, source);
    const n = checkHeaderLength(file.view(0, Math.min(8, file.size), "E_SAFETENSORS_HEADER"), file.size, source);
    const json = file.view(8, n, "E_SAFETENSORS_HEADER");
    const { tensors, metadata } = parseSafetensorsHeader(json, file.size - 8 - n, source);
    return new SafetensorsFile(source, file, tensors, metadata, 8 + n);
  }

  info(name: string): SafetensorsTensorInfo {
    const info = this.tensors.get(name);
    if (!info) throw new LowbitError("E_MISSING_TENSOR", `${this.path}: no tensor named "${name}"`);
    return info;
  }

  async read(name: string): Promise<Uint8Array> {
    const info = this.info(name);
    return this.file.readAt(info.offset, info.byteLength, "E_SAFETENSORS_TENSOR");
  }

  async readF32(name: string): Promise<Float32Array> {
    const info = this.info(name);
    return toF32(await this.read(name), info.dtype, `${this.path}: tensor "${name}"`);
  }

  close(): Promise<void> {
    return this.file.close();
  }
}

/** Converts raw little-endian bytes of a float dtype to float32 (F32 is returned as a view). */
export function toF32(raw: Uint8Array, dtype: SafetensorsDType, where: string): Float32Array {
  const bytes = raw.byteOffset % 8 === 0 ? raw : raw.slice();
  const n = bytes.byteLength / SAFETENSORS_DTYPES[dtype];
  switch (dtype) {
    case "F32":
      return new Float32Array(bytes.buffer, bytes.byteOffset, n);
    case "F16":
      return decodeF16(new Uint16Array(bytes.buffer, bytes.byteOffset, n));
    case "BF16":
      return decodeBf16(new Uint16Array(bytes.buffer, bytes.byteOffset, n));
    case "F64":
      return Float32Array.from(new Float64Array(bytes.buffer, bytes.byteOffset, n));
    default:
      throw new LowbitError("E_DTYPE", `${where}: dtype ${dtype} cannot be read as float32 (F32, F16, BF16, F64 can)`);
  }
}

export function openSafetensors(path: string): Promise<SafetensorsFile> {
  return SafetensorsFile.open(path);
}

/**
 * A SafetensorsFile over the bytes of a whole .safetensors file (e.g. a file dropped in a browser
 * page): the same interface and validation as `openSafetensors`. The bytes are not copied.
 */
export function parseSafetensors(bytes: Uint8Array, source = "safetensors"): SafetensorsFile {
  return SafetensorsFile.fromBytes(bytes, source);
}

export interface SafetensorsTensorInput {
  name: string;
  dtype: SafetensorsDType;
  shape: readonly number[];
  /** Little-endian element data; its byteLength must equal product(shape) x dtype size. */
  data: ArrayBufferView;
}

/** Checks names, dtypes and shapes of tensors to write; returns their byte sizes. */
export function checkTensorInputs(tensors: readonly SafetensorsTensorInput[], path: string): void {
  const seen = new Set<string>();
  for (const t of tensors) {
    const where = `${path}: tensor "${t.name}"`;
    if (typeof t.name !== "string" || t.name.length === 0 || t.name === "__metadata__") {
      throw new LowbitError("E_INVALID_ARGUMENT", `${where}: invalid tensor name`);
    }
    if (seen.has(t.name)) throw new LowbitError("E_INVALID_ARGUMENT", `${where}: duplicate tensor name`);
    seen.add(t.name);
    if (!isSafetensorsDType(t.dtype)) {
      throw new LowbitError("E_DTYPE", `${where}: unknown dtype ${String(t.dtype)}`);
    }
    let numel = 1;
    for (const d of t.shape) {
      if (!Number.isSafeInteger(d) || d < 0) {
        throw new LowbitError("E_SHAPE_MISMATCH", `${where}: bad shape ${JSON.stringify(t.shape)}`);
      }
      numel *= d;
    }
    const expected = numel * SAFETENSORS_DTYPES[t.dtype];
    if (expected !== t.data.byteLength) {
      throw new LowbitError(
        "E_SHAPE_MISMATCH",
        `${where}: shape ${JSON.stringify(t.shape)} of ${t.dtype} needs ${expected} bytes, data has ${t.data.byteLength}`,
      );
    }
  }
}

/**
 * Writes a safetensors file atomically (temporary file in the same folder, fsync, rename). Tensors
 * are stored in the given order; the header is padded with spaces to a multiple of 8 bytes.
 */
export async function writeSafetensors(
  path: string,
  tensors: readonly SafetensorsTensorInput[],
  metadata?: Record<string, string>,
): Promise<void> {
  checkTensorInputs(tensors, path);
  if (metadata) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") {
        throw new LowbitError("E_INVALID_ARGUMENT", `${path}: metadata "${k}" must be a string, got ${typeof v}`);
      }
    }
  }
  const header = encodeSafetensorsHeader(
    tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, byteLength: t.data.byteLength })),
    metadata,
  );
  await writeAtomic(path, async (sink) => {
    await sink.write(header);
    for (const t of tensors) await sink.write(asBytes(t.data));
  });
}
