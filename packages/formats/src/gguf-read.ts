import { LowbitError } from "@lowbit/tensor";
import { RandomAccessFile } from "./file-io";
import { type GgmlTypeInfo, ggmlTensorBytes, ggmlTypeInfo } from "./ggml-types";
import { ByteCursor, type GgufValue, NeedMore } from "./gguf-values";
import { type ByteReader, MemoryFile } from "./memory-file";

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** Largest tensor rank ggml supports. */
export const GGML_MAX_DIMS = 4;
/** Headers (metadata + tensor infos) beyond this are refused rather than read into memory. */
const MAX_HEADER_BYTES = 1 << 30;

export interface GgufTensorInfo {
  name: string;
  /** ggml type id (see GGML_TYPE). */
  type: number;
  typeName: string;
  /** ne: dims with ne[0] the contiguous one (the reverse of a PyTorch shape). */
  dims: number[];
  /** Offset relative to the start of the data section, as stored in the file. */
  offset: number;
  byteLength: number;
}

export interface GgufHeader {
  version: number;
  metadata: Map<string, GgufValue>;
  tensors: GgufTensorInfo[];
  alignment: number;
  /** Absolute file offset of the data section (end of the tensor infos, padded to the alignment). */
  dataOffset: number;
}

/** Smallest tensor info: name length + 1 byte, n_dims, one dim, type, offset. */
const MIN_TENSOR_INFO_BYTES = 8 + 1 + 4 + 8 + 4 + 8;
/** Smallest KV pair: key length + 1 byte, value type, 1-byte value. */
const MIN_KV_BYTES = 8 + 1 + 4 + 1;

/**
 * Parses the header of a GGUF file held whole in memory (tensor data ranges are checked against
 * its length). Anything malformed is a LowbitError E_GGUF_HEADER, E_GGUF_METADATA or E_GGUF_TENSOR.
 */
export function parseGgufHeader(bytes: Uint8Array, source = "gguf"): GgufHeader {
  return parseGgufHeaderPrefix(bytes, bytes.byteLength, source);
}

/**
 * Parses a GGUF header from the first bytes of a file of `fileSize` bytes. Throws NeedMore when
 * `buf` is too short, LowbitError (E_GGUF_HEADER/METADATA/TENSOR) for anything malformed.
 */
export function parseGgufHeaderPrefix(buf: Uint8Array, fileSize: number, source: string): GgufHeader {
  const c = new ByteCursor(buf, fileSize, source);
  const magic = c.u32("magic", "E_GGUF_HEADER");
  if (magic !== GGUF_MAGIC) {
    c.fail("E_GGUF_HEADER", `bad magic 0x${magic.toString(16).padStart(8, "0")}; expected "GGUF"`);
  }
  const version = c.u32("version", "E_GGUF_HEADER");
  if (version !== 2 && version !== 3) {
    const hint = (version & 0xffff) === 0 && version !== 0 ? " (a big-endian GGUF, which is not supported)" : "";
    c.fail("E_GGUF_HEADER", `unsupported GGUF version ${version}${hint}; versions 2 and 3 are readable`);
  }
  const tensorCount = c.count("tensor count", MIN_TENSOR_INFO_BYTES, "E_GGUF_HEADER");
  const kvCount = c.count("metadata count", MIN_KV_BYTES, "E_GGUF_HEADER");

  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < kvCount; i++) {
    const key = c.string(`metadata key ${i}`, "E_GGUF_METADATA");
    if (key.length === 0) c.fail("E_GGUF_METADATA", `metadata key ${i} is empty`);
    if (metadata.has(key)) c.fail("E_GGUF_METADATA", `duplicate metadata key "${key}"`);
    const t = c.valueType(`metadata "${key}" type`, "E_GGUF_METADATA");
    metadata.set(key, c.value(t, `metadata "${key}"`));
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const al = metadata.get("general.alignment");
  if (al !== undefined) {
    if (al.type !== "u32" || al.value === 0 || (al.value & (al.value - 1)) !== 0) {
      c.fail("E_GGUF_METADATA", `general.alignment must be a u32 power of two, got ${al.type} ${String(al.value)}`);
    }
    alignment = al.value as number;
  }

  const raw: Array<{ name: string; info: GgmlTypeInfo; dims: number[]; offset: bigint; bytes: bigint }> = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const name = c.string(`tensor info ${i} name`, "E_GGUF_TENSOR");
    const where = `tensor "${name}": `;
    if (names.has(name)) c.fail("E_GGUF_TENSOR", `duplicate tensor name "${name}"`);
    names.add(name);
    const nDims = c.u32(`${where}n_dims`, "E_GGUF_TENSOR");
    if (nDims < 1 || nDims > GGML_MAX_DIMS) {
      c.fail("E_GGUF_TENSOR", `${where}n_dims is ${nDims}; expected 1..${GGML_MAX_DIMS}`);
    }
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) {
      const ne = c.i64(`${where}ne[${d}]`, "E_GGUF_TENSOR");
      if (ne < 0n || ne > BigInt(Number.MAX_SAFE_INTEGER)) c.fail("E_GGUF_TENSOR", `${where}ne[${d}] = ${ne} is out of range`);
      dims.push(Number(ne));
    }
    const typeId = c.i32(`${where}type`, "E_GGUF_TENSOR");
    const info = ggmlTypeInfo(typeId, "E_GGUF_TENSOR", `${source}: ${where}`);
    const offset = c.u64(`${where}offset`, "E_GGUF_TENSOR");
    if (offset % BigInt(alignment) !== 0n) {
      c.fail("E_GGUF_TENSOR", `${where}offset ${offset} is not a multiple of the alignment ${alignment}`);
    }
    raw.push({ name, info, dims, offset, bytes: ggmlTensorBytes(info, dims, `${source}: ${where}`) });
  }

  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  const dataSize = BigInt(fileSize) - BigInt(dataOffset);
  const tensors: GgufTensorInfo[] = [];
  for (const t of raw) {
    if (t.offset + t.bytes > dataSize) {
      c.fail(
        "E_GGUF_TENSOR",
        `tensor "${t.name}": data [${t.offset}, ${t.offset + t.bytes}) runs past the data section ` +
          `(${dataSize < 0n ? 0n : dataSize} bytes from byte ${dataOffset})`,
      );
    }
    tensors.push({
      name: t.name,
      type: t.info.id,
      typeName: t.info.name,
      dims: t.dims,
      offset: Number(t.offset),
      byteLength: Number(t.bytes),
    });
  }
  const sorted = tensors.filter((t) => t.byteLength > 0).sort((a, b) => a.offset - b.offset);
  let last: GgufTensorInfo | undefined;
  for (const cur of sorted) {
    if (last && last.offset + last.byteLength > cur.offset) {
      c.fail("E_GGUF_TENSOR", `tensor "${cur.name}" overlaps tensor "${last.name}" in the data section`);
    }
    if (!last || cur.offset + cur.byteLength > last.offset + last.byteLength) last = cur;
  }
  return { version, metadata, tensors, alignment, dataOffset };
}

/**
 * A GGUF file opened lazily: the header is parsed at open, tensor data read on demand. Opened from a
 * path (`readGguf`) or over bytes already in memory (`parseGguf`, for browsers); both behave alike.
 */
export class GgufFile implements GgufHeader {
  readonly version: number;
  readonly metadata: Map<string, GgufValue>;
  readonly tensors: GgufTensorInfo[];
  readonly alignment: number;
  readonly dataOffset: number;
  private readonly byName: Map<string, GgufTensorInfo>;

  private constructor(
    /** The path, or the name given to `parseGguf`. */
    readonly path: string,
    private readonly file: ByteReader,
    header: GgufHeader,
  ) {
    this.version = header.version;
    this.metadata = header.metadata;
    this.tensors = header.tensors;
    this.alignment = header.alignment;
    this.dataOffset = header.dataOffset;
    this.byName = new Map(header.tensors.map((t) => [t.name, t]));
  }

  static async open(path: string): Promise<GgufFile> {
    const file = await RandomAccessFile.open(path);
    try {
      let size = Math.min(file.size, 1 << 20);
      for (;;) {
        const buf = await file.readAt(0, size, "E_GGUF_HEADER");
        try {
          return new GgufFile(path, file, parseGgufHeaderPrefix(buf, file.size, path));
        } catch (e) {
          if (!(e instanceof NeedMore)) throw e;
          const next = Math.min(file.size, Math.max(size * 2, e.bytes + (1 << 20)));
          if (next <= size) throw new LowbitError("E_INTERNAL", `${path}: header parse needs no more bytes`);
          size = next;
          if (size > MAX_HEADER_BYTES) {
            throw new LowbitError("E_GGUF_HEADER", `${path}: header larger than ${MAX_HEADER_BYTES} bytes is not supported`);
          }
        }
      }
    } catch (e) {
      await file.close();
      throw e;
    }
  }

  /** A GgufFile over a whole GGUF file in memory (`source` names it in messages). */
  static fromBytes(bytes: Uint8Array, source = "gguf"): GgufFile {
    return new GgufFile(source, new MemoryFile(bytes, source), parseGgufHeader(bytes, source));
  }

  tensor(name: string): GgufTensorInfo {
    const t = this.byName.get(name);
    if (!t) throw new LowbitError("E_MISSING_TENSOR", `${this.path}: no tensor named "${name}"`);
    return t;
  }

  /** The metadata value of `key` (undefined when absent). */
  get(key: string): GgufValue["value"] | undefined {
    return this.metadata.get(key)?.value;
  }

  /** The tensor's raw bytes (a fresh, aligned buffer). */
  async read(name: string): Promise<Uint8Array> {
    const t = this.tensor(name);
    return this.file.readAt(this.dataOffset + t.offset, t.byteLength, "E_GGUF_TENSOR");
  }

  close(): Promise<void> {
    return this.file.close();
  }
}

export function readGguf(path: string): Promise<GgufFile> {
  return GgufFile.open(path);
}

/**
 * A GgufFile over the bytes of a whole GGUF file (e.g. a file dropped in a browser page): the same
 * interface and validation as `readGguf`. The bytes are not copied; `read(name)` returns a fresh copy.
 */
export function parseGguf(bytes: Uint8Array, source = "gguf"): GgufFile {
  return GgufFile.fromBytes(bytes, source);
}
