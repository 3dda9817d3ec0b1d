import { LowbitError } from "@lowbit/tensor";
import { LITTLE_ENDIAN, RandomAccessFile } from "./file-io";
import { LLAMA2C_HEADER_BYTES, type Llama2cConfig, llama2cLayout, parseLlama2cHeader } from "./llama2c";
import { type ByteReader, MemoryFile } from "./memory-file";

/** Where one weight tensor of a llama2.c checkpoint lies in the file. */
export interface Llama2cTensorInfo {
  /** GGUF-style name (token_embd.weight, blk.N.attn_q.weight, ..., output.weight). */
  name: string;
  /** Row-major shape; matrices are [out, in]. */
  shape: readonly number[];
  /** Absolute byte offset of the first float. */
  offset: number;
  byteLength: number;
}

/**
 * A llama2.c float32 checkpoint opened lazily: the 28-byte header is read and validated at open
 * (the same checks and messages as readLlama2cCheckpoint, including the exact file size), and each
 * tensor's floats are read by position when asked for, so a converter holds one tensor at a time.
 * Opened from a path (`openLlama2c`) or over bytes already in memory (`Llama2cFile.fromBytes`).
 */
export class Llama2cFile {
  private constructor(
    /** The path, or the name given to `fromBytes`. */
    readonly path: string,
    private readonly file: ByteReader,
    readonly config: Llama2cConfig,
    /** The weights in file order (the RoPE freq_cis tables are not tensors). */
    readonly tensors: ReadonlyMap<string, Llama2cTensorInfo>,
  ) {}

  static async open(path: string): Promise<Llama2cFile> {
    const file = await RandomAccessFile.open(path);
    try {
      const header = await file.readAt(0, Math.min(LLAMA2C_HEADER_BYTES, file.size), "E_LLAMA2C");
      const config = parseLlama2cHeader(path, header, file.size);
      return new Llama2cFile(path, file, config, tensorInfos(config));
    } catch (e) {
      await file.close();
      throw e;
    }
  }

  /** A Llama2cFile over a whole checkpoint in memory (`source` names it in messages; not copied). */
  static fromBytes(bytes: Uint8Array, source = "llama2.c checkpoint"): Llama2cFile {
    const file = new MemoryFile(bytes, source);
    const config = parseLlama2cHeader(source, file.view(0, Math.min(LLAMA2C_HEADER_BYTES, file.size), "E_LLAMA2C"), file.size);
    return new Llama2cFile(source, file, config, tensorInfos(config));
  }

  /** The file's size in bytes (what the header implies). */
  get size(): number {
    return this.file.size;
  }

  info(name: string): Llama2cTensorInfo {
    const info = this.tensors.get(name);
    if (!info) throw new LowbitError("E_MISSING_TENSOR", `${this.path}: no tensor named "${name}" in the llama2.c checkpoint`);
    return info;
  }

  /** The tensor's raw little-endian float32 bytes (a fresh, 8-byte aligned buffer). */
  async read(name: string): Promise<Uint8Array> {
    const info = this.info(name);
    try {
      return await this.file.readAt(info.offset, info.byteLength, "E_LLAMA2C");
    } catch (e) {
      if (!(e instanceof LowbitError)) throw e;
      // e.g. the file shrank after it was opened: say which tensor could not be read
      const detail = e.message.startsWith(`${this.path}: `) ? e.message.slice(this.path.length + 2) : e.message;
      throw new LowbitError(
        e.code,
        `${this.path}: tensor "${name}" (bytes [${info.offset}, ${info.offset + info.byteLength})) cannot be read: ${detail}`,
        { cause: e },
      );
    }
  }

  /** The tensor's values in a Float32Array of its own. */
  async readF32(name: string): Promise<Float32Array> {
    const bytes = await this.read(name);
    if (!LITTLE_ENDIAN) {
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const out = new Float32Array(bytes.byteLength / 4);
      for (let i = 0; i < out.length; i++) out[i] = dv.getFloat32(i * 4, true);
      return out;
    }
    return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  }

  close(): Promise<void> {
    return this.file.close();
  }
}

function tensorInfos(config: Llama2cConfig): Map<string, Llama2cTensorInfo> {
  const out = new Map<string, Llama2cTensorInfo>();
  for (const e of llama2cLayout(config).entries) {
    out.set(e.name, { name: e.name, shape: e.shape, offset: LLAMA2C_HEADER_BYTES + e.floatOffset * 4, byteLength: e.count * 4 });
  }
  return out;
}

/** Opens a llama2.c checkpoint lazily (see Llama2cFile); the caller closes it. */
export function openLlama2c(path: string): Promise<Llama2cFile> {
  return Llama2cFile.open(path);
}
