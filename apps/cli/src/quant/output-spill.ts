import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LowbitError } from "@lowbit/tensor";

/**
 * A queue of f32 arrays kept in a temporary file instead of memory: written in one pass, read
 * back in the same order in the next (the float layer's outputs, compared with the quantized
 * layer's once it is quantized). The file lives in the page cache, not in the process.
 */
export class OutputSpill {
  private readonly dir: string;
  private readonly fd: number;
  private readonly lengths: number[] = [];
  private written = 0;
  private read = 0;
  private next = 0;

  constructor(parent: string = tmpdir()) {
    this.dir = mkdtempSync(join(parent, "lowbit-outputs-"));
    try {
      this.fd = openSync(join(this.dir, "outputs.f32"), "w+");
    } catch (e) {
      rmSync(this.dir, { recursive: true, force: true });
      throw e;
    }
  }

  /** Number of arrays written. */
  get count(): number {
    return this.lengths.length;
  }

  /** Appends a copy of `a`. */
  push(a: Float32Array): void {
    const bytes = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    let done = 0;
    while (done < bytes.length) done += writeSync(this.fd, bytes, done, bytes.length - done, this.written + done);
    this.written += bytes.length;
    this.lengths.push(a.length);
  }

  /** The next array in the order pushed (`length` must be its length). */
  shift(length: number): Float32Array {
    const want = this.lengths[this.next];
    if (want !== length) {
      throw new LowbitError("E_INTERNAL", `OutputSpill: array ${this.next} has ${want ?? "no"} values, ${length} were asked for`);
    }
    const out = new Float32Array(length);
    const bytes = new Uint8Array(out.buffer);
    let done = 0;
    while (done < bytes.length) {
      const n = readSync(this.fd, bytes, done, bytes.length - done, this.read + done);
      if (n === 0) throw new LowbitError("E_INTERNAL", `OutputSpill: the file ended inside array ${this.next}`);
      done += n;
    }
    this.read += bytes.length;
    this.next++;
    return out;
  }

  /** Closes and deletes the file. */
  dispose(): void {
    closeSync(this.fd);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
