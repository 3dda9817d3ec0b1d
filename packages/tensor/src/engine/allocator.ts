import { LowbitError } from "../errors";

/**
 * First-fit free-list allocator over a linear memory that can only grow. Pure bookkeeping: it
 * hands out byte offsets and asks `grow(bytes)` for more room when no free block fits.
 * Offsets are aligned to `align` (a power of two, at most 4096); freed neighbours coalesce.
 */
export class Allocator {
  /** Free blocks as [start, end) sorted by start. */
  private free: Array<[number, number]> = [];
  private readonly used = new Map<number, number>();
  private top: number;

  constructor(
    private readonly base: number,
    private readonly grow: (minEnd: number) => void,
  ) {
    this.top = base;
  }

  alloc(bytes: number, align = 64): number {
    if (!Number.isSafeInteger(bytes) || bytes < 0) {
      throw new LowbitError("E_INVALID_ARGUMENT", `cannot allocate ${bytes} bytes of kernel memory`);
    }
    if (align < 1 || align > 4096 || (align & (align - 1)) !== 0) {
      throw new LowbitError("E_INVALID_ARGUMENT", `alignment ${align} is not a power of two <= 4096`);
    }
    const size = Math.max(16, Math.ceil(bytes / 16) * 16);
    for (let i = 0; i < this.free.length; i++) {
      const [s, e] = this.free[i]!;
      const p = alignUp(s, align);
      if (p + size <= e) {
        this.free.splice(i, 1);
        if (p > s) this.insertFree(s, p);
        if (p + size < e) this.insertFree(p + size, e);
        this.used.set(p, size);
        return p;
      }
    }
    const p = alignUp(this.top, align);
    const end = p + size;
    if (end > 4 * 1024 ** 3) {
      throw new LowbitError(
        "E_KERNEL",
        `kernel memory would exceed the 4 GiB WebAssembly limit (asked for ${bytes} bytes)`,
      );
    }
    this.grow(end);
    if (p > this.top) this.insertFree(this.top, p);
    this.top = end;
    this.used.set(p, size);
    return p;
  }

  release(ptr: number): void {
    const size = this.used.get(ptr);
    if (size === undefined) throw new LowbitError("E_INTERNAL", `kernel memory ${ptr} is not allocated`);
    this.used.delete(ptr);
    this.insertFree(ptr, ptr + size);
  }

  /** Bytes currently handed out. */
  get allocatedBytes(): number {
    let n = 0;
    for (const s of this.used.values()) n += s;
    return n;
  }

  get highWater(): number {
    return this.top - this.base;
  }

  private insertFree(s: number, e: number): void {
    const list = this.free;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid]![0] < s) lo = mid + 1;
      else hi = mid;
    }
    list.splice(lo, 0, [s, e]);
    // coalesce with next and previous
    const cur = list[lo]!;
    const next = list[lo + 1];
    if (next && next[0] === cur[1]) {
      cur[1] = next[1];
      list.splice(lo + 1, 1);
    }
    const prev = list[lo - 1];
    if (prev && prev[1] === cur[0]) {
      prev[1] = cur[1];
      list.splice(lo, 1);
    }
    // give the top block back to the bump pointer
    const last = list[list.length - 1];
    if (last && last[1] === this.top) {
      this.top = last[0];
      list.pop();
    }
  }
}

function alignUp(x: number, a: number): number {
  return Math.ceil(x / a) * a;
}
