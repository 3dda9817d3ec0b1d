import { LowbitError } from "@lowbit/tensor";
import type { LlamaConfig } from "./config";

/**
 * Key/value cache of one sequence: per layer, keys and values of every position so far
 * ([positions, nKvHeads * headDim], RoPE already applied to keys). Storage grows on demand up to
 * `maxLength`.
 */
export class KVCache {
  /** Number of positions stored (the next token's position). */
  length = 0;
  readonly maxLength: number;
  readonly kvDim: number;
  private capacity = 0;
  private keys: Float32Array[];
  private values: Float32Array[];
  /** Writes per layer (lets a resident copy in kernel memory know it is still current). */
  private readonly writeCounts: number[];

  constructor(config: LlamaConfig, maxLength = config.maxSeqLen) {
    if (!Number.isSafeInteger(maxLength) || maxLength <= 0) {
      throw new LowbitError("E_INVALID_ARGUMENT", `KV cache: maxLength must be a positive integer, got ${maxLength}`);
    }
    this.maxLength = maxLength;
    this.kvDim = config.nKvHeads * config.headDim;
    this.keys = Array.from({ length: config.nLayers }, () => new Float32Array(0));
    this.values = Array.from({ length: config.nLayers }, () => new Float32Array(0));
    this.writeCounts = new Array<number>(config.nLayers).fill(0);
  }

  /** Makes room for `n` more positions; throws E_CONTEXT_LENGTH past maxLength. */
  reserve(n: number): void {
    const need = this.length + n;
    if (need > this.maxLength) {
      throw new LowbitError(
        "E_CONTEXT_LENGTH",
        `context length exceeded: ${this.length} cached + ${n} new tokens > ${this.maxLength}`,
      );
    }
    if (need <= this.capacity) return;
    const cap = Math.min(this.maxLength, Math.max(need, this.capacity * 2, 64));
    for (let l = 0; l < this.keys.length; l++) {
      const k = new Float32Array(cap * this.kvDim);
      k.set(this.keys[l]!);
      this.keys[l] = k;
      const v = new Float32Array(cap * this.kvDim);
      v.set(this.values[l]!);
      this.values[l] = v;
    }
    this.capacity = cap;
  }

  /** Keys of a layer ([capacity, kvDim]; rows < length + pending are valid). */
  layerKeys(layer: number): Float32Array {
    return this.keys[layer]!;
  }

  layerValues(layer: number): Float32Array {
    return this.values[layer]!;
  }

  /** Copies `rows` rows of k and v into positions [pos, pos + rows) of a layer. */
  write(layer: number, pos: number, k: Float32Array, v: Float32Array, rows: number): void {
    const n = rows * this.kvDim;
    this.keys[layer]!.set(k.subarray(0, n), pos * this.kvDim);
    this.values[layer]!.set(v.subarray(0, n), pos * this.kvDim);
    this.writeCounts[layer] = (this.writeCounts[layer] ?? 0) + 1;
  }

  /** How many times a layer was written (see ResidentKV). */
  writes(layer: number): number {
    return this.writeCounts[layer] ?? 0;
  }

  /** Forgets positions from `length` on (e.g. to reuse a shared prompt prefix). */
  truncate(length: number): void {
    if (length < 0 || length > this.length) {
      throw new LowbitError("E_INVALID_ARGUMENT", `KV cache: cannot truncate ${this.length} positions to ${length}`);
    }
    this.length = length;
  }

  reset(): void {
    this.length = 0;
  }

  /** Bytes held by the cache. */
  get bytes(): number {
    return 2 * this.keys.length * this.capacity * this.kvDim * 4;
  }
}
