import { LowbitError, type LowbitErrorCode } from "@lowbit/tensor";

/**
 * Positional reads from a file or from bytes in memory: what the lazy readers (GgufFile,
 * SafetensorsFile) need. RandomAccessFile (file-io.ts) is the file twin; MemoryFile the in-memory one,
 * so the same readers run in browsers over an ArrayBuffer.
 */
export interface ByteReader {
  /** What to call the bytes in messages (a path or a file name). */
  readonly path: string;
  readonly size: number;
  /** Exactly `length` bytes at `position`, in a fresh buffer; out of range is a LowbitError `code`. */
  readAt(position: number, length: number, code?: LowbitErrorCode): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** A ByteReader over a Uint8Array (the bytes are not copied; every read returns a fresh copy). */
export class MemoryFile implements ByteReader {
  private closed = false;

  constructor(
    private readonly bytes: Uint8Array,
    readonly path: string,
  ) {}

  get size(): number {
    return this.bytes.byteLength;
  }

  /** The bytes in [position, position + length) without copying. */
  view(position: number, length: number, code: LowbitErrorCode = "E_IO"): Uint8Array {
    if (this.closed) throw new LowbitError("E_IO", `${this.path}: file is closed`);
    if (
      !Number.isSafeInteger(position) ||
      !Number.isSafeInteger(length) ||
      position < 0 ||
      length < 0 ||
      position + length > this.size
    ) {
      throw new LowbitError(
        code,
        `${this.path}: byte range [${position}, ${position + length}) is outside the file (${this.size} bytes)`,
      );
    }
    return this.bytes.subarray(position, position + length);
  }

  async readAt(position: number, length: number, code: LowbitErrorCode = "E_IO"): Promise<Uint8Array> {
    // slice: a fresh, 8-byte aligned buffer, as RandomAccessFile gives (typed-array views need it)
    return this.view(position, length, code).slice();
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
