import { getEngine, type KernelBuffer } from "@lowbit/tensor";
import type { KVCache } from "./kv-cache";

/**
 * A copy of one KV cache's keys and values in kernel memory, kept by a model between forward
 * passes so that a decoding step copies in only its new row instead of every cached position of
 * every layer (the attention kernel reads the cached rows in place).
 *
 * The KVCache's arrays stay the source of truth: each layer's copy is trusted only while it
 * mirrors the same cache object, that cache's layer was last written through this copy (the
 * cache counts writes per layer) and it holds the rows asked for; otherwise the missing rows are
 * copied in again. So switching between caches, truncating or writing a cache elsewhere (e.g.
 * the reference path) stays correct and costs one full copy.
 */
export class ResidentKV {
  private owner: KVCache | undefined;
  private kvDim = 0;
  /** Rows each layer's buffer holds. */
  private capacity = 0;
  private buffers: KernelBuffer[] = [];
  /** Rows [0, valid[l]) of layer l equal the owner's. */
  private valid: number[] = [];
  /** The owner's write count of each layer when its copy was last brought up to date. */
  private epochs: number[] = [];

  /**
   * Makes rows [0, pos0) of `cache`'s layer resident, with room for `rows` more at pos0. Returns
   * the kernel addresses of the layer's keys and values ([capacity, kvDim] each). May allocate
   * kernel memory: call before taking scratch regions or typed-array views.
   */
  prepare(cache: KVCache, layer: number, pos0: number, rows: number): { pk: number; pv: number } {
    const need = pos0 + rows;
    if (this.owner !== cache || this.kvDim !== cache.kvDim) {
      this.owner = cache;
      this.kvDim = cache.kvDim;
      this.valid = [];
      this.epochs = [];
    }
    if (need > this.capacity || this.buffers.length === 0) this.grow(Math.max(need, Math.min(cache.maxLength, 2 * this.capacity), 64));
    const kvDim = this.kvDim;
    let buf = this.buffers[layer];
    if (!buf) {
      buf = getEngine().buffer(2 * this.capacity * kvDim * 4);
      this.buffers[layer] = buf;
    }
    const pk = buf.ptr;
    const pv = buf.ptr + this.capacity * kvDim * 4;
    let have = this.valid[layer] ?? 0;
    if (this.epochs[layer] !== cache.writes(layer)) have = 0;
    if (have < pos0) {
      const e = getEngine();
      e.f32(pk + have * kvDim * 4, (pos0 - have) * kvDim).set(cache.layerKeys(layer).subarray(have * kvDim, pos0 * kvDim));
      e.f32(pv + have * kvDim * 4, (pos0 - have) * kvDim).set(cache.layerValues(layer).subarray(have * kvDim, pos0 * kvDim));
    }
    this.valid[layer] = pos0;
    this.epochs[layer] = cache.writes(layer);
    return { pk, pv };
  }

  /**
   * Records that rows [pos0, pos0 + rows) of the layer's resident keys and values were written
   * (by the caller, at the addresses prepare() returned) and copies them into `cache`.
   */
  commit(cache: KVCache, layer: number, pos0: number, rows: number, pk: number, pv: number): void {
    const n = rows * this.kvDim;
    const e = getEngine();
    cache.write(layer, pos0, e.f32(pk + pos0 * this.kvDim * 4, n), e.f32(pv + pos0 * this.kvDim * 4, n), rows);
    this.valid[layer] = pos0 + rows;
    this.epochs[layer] = cache.writes(layer);
  }

  /** Bytes of kernel memory held. */
  get bytes(): number {
    return this.buffers.reduce((s, b) => s + (b ? b.bytes : 0), 0);
  }

  /** Frees the kernel memory (the next prepare() starts over). */
  dispose(): void {
    for (const b of this.buffers) b?.dispose();
    this.buffers = [];
    this.capacity = 0;
    this.valid = [];
    this.epochs = [];
    this.owner = undefined;
  }

  /** New, larger buffers (allocated per layer on first use); the copies are made again from the cache. */
  private grow(capacity: number): void {
    for (const b of this.buffers) b?.dispose();
    this.buffers = [];
    this.capacity = capacity;
    this.valid = [];
    this.epochs = [];
  }
}
