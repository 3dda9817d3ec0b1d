import type { FileHandle } from "node:fs/promises";
import { LowbitError, type LowbitErrorCode } from "@lowbit/tensor";
import { nodeFs, nodePath } from "./node-io";

/** Largest single read/write handed to the OS (well below the 2 GiB limit of one call). */
const CHUNK = 1 << 30;

/**
 * A file opened for positional reads. Offsets are plain numbers (safe up to 2^53), so files
 * beyond 4 GiB work; every read is bounds-checked against the size seen at open time.
 */
export class RandomAccessFile {
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    readonly size: number,
  ) {}

  static async open(path: string): Promise<RandomAccessFile> {
    const { open } = await nodeFs();
    let handle: FileHandle;
    try {
      handle = await open(path, "r");
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT") throw new LowbitError("E_FILE_NOT_FOUND", `${path}: file not found`, { cause: e });
      throw new LowbitError("E_IO", `${path}: cannot open (${(e as Error).message})`, { cause: e });
    }
    try {
      const st = await handle.stat();
      if (!st.isFile()) throw new LowbitError("E_IO", `${path}: not a regular file`);
      return new RandomAccessFile(path, handle, st.size);
    } catch (e) {
      await handle.close().catch(() => {});
      if (e instanceof LowbitError) throw e;
      throw new LowbitError("E_IO", `${path}: cannot stat (${(e as Error).message})`, { cause: e });
    }
  }

  /** Reads exactly `length` bytes at `position` into `target` (a fresh buffer when omitted). */
  async readAt(
    position: number,
    length: number,
    code: LowbitErrorCode = "E_IO",
    target?: Uint8Array,
  ): Promise<Uint8Array> {
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
    const out = target ?? new Uint8Array(length);
    if (out.byteLength < length) throw new LowbitError("E_INTERNAL", "readAt target too small");
    let done = 0;
    while (done < length) {
      const want = Math.min(CHUNK, length - done);
      let bytesRead: number;
      try {
        ({ bytesRead } = await this.handle.read(out, done, want, position + done));
      } catch (e) {
        throw new LowbitError("E_IO", `${this.path}: read failed at byte ${position + done}`, { cause: e });
      }
      if (bytesRead === 0) {
        throw new LowbitError(code, `${this.path}: unexpected end of file at byte ${position + done}`);
      }
      done += bytesRead;
    }
    return out;
  }

  /** Reads `count` little-endian float32 values at `position`. */
  async readF32At(position: number, count: number, code: LowbitErrorCode = "E_IO"): Promise<Float32Array> {
    const out = new Float32Array(count);
    await this.readAt(position, count * 4, code, new Uint8Array(out.buffer));
    if (!LITTLE_ENDIAN) swap32(new Uint8Array(out.buffer));
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }
}

export const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function swap32(b: Uint8Array): void {
  for (let i = 0; i + 3 < b.length; i += 4) {
    const a0 = b[i]!;
    const a1 = b[i + 1]!;
    b[i] = b[i + 3]!;
    b[i + 1] = b[i + 2]!;
    b[i + 2] = a1;
    b[i + 3] = a0;
  }
}

/** Reads a whole (small) file, mapping errors to LowbitError. */
export async function readWholeFile(path: string, maxBytes: number, code: LowbitErrorCode): Promise<Uint8Array> {
  const f = await RandomAccessFile.open(path);
  try {
    if (f.size > maxBytes) {
      throw new LowbitError(code, `${path}: file is ${f.size} bytes, more than the ${maxBytes} allowed`);
    }
    return await f.readAt(0, f.size, code);
  } finally {
    await f.close();
  }
}

let tempCounter = 0;

/**
 * Atomic write: `produce` writes into a temporary file in the same folder, which is fsynced and
 * renamed over `path`. On any error the temporary file is removed and nothing appears at `path`.
 */
export async function writeAtomic(path: string, produce: (sink: FileSink) => Promise<void>): Promise<void> {
  const { open, rename, rm } = await nodeFs();
  const { basename, dirname, join } = await nodePath();
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.${tempCounter++}.tmp`);
  let handle: FileHandle | undefined;
  try {
    try {
      handle = await open(tmp, "wx");
    } catch (e) {
      throw new LowbitError("E_IO", `${path}: cannot create temporary file ${tmp} (${(e as Error).message})`, {
        cause: e,
      });
    }
    const sink = new FileSink(handle, path);
    await produce(sink);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(tmp, path);
  } catch (e) {
    if (handle) await handle.close().catch(() => {});
    await rm(tmp, { force: true }).catch(() => {});
    if (e instanceof LowbitError) throw e;
    throw new LowbitError("E_IO", `${path}: write failed (${(e as Error).message})`, { cause: e });
  }
}

/** Sequential writer used by the atomic writers; tracks the byte position. */
export class FileSink {
  position = 0;

  constructor(
    private readonly handle: FileHandle,
    readonly path: string,
  ) {}

  async write(data: ArrayBufferView): Promise<void> {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    let done = 0;
    while (done < bytes.length) {
      const want = Math.min(CHUNK, bytes.length - done);
      const { bytesWritten } = await this.handle.write(bytes, done, want, this.position);
      if (bytesWritten <= 0) throw new LowbitError("E_IO", `${this.path}: write made no progress`);
      done += bytesWritten;
      this.position += bytesWritten;
    }
  }

  async zeros(count: number): Promise<void> {
    if (count > 0) await this.write(new Uint8Array(count));
  }
}

/** View of any ArrayBufferView as bytes (no copy). */
export function asBytes(data: ArrayBufferView): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
