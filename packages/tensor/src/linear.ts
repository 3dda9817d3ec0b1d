/**
 * A linear layer y = x W^T (+ b), W stored [outFeatures, inFeatures] like nn.Linear. Every weight
 * backend (f32, int8, int4, GGUF blocks) implements this, so the runtime can choose one per layer.
 */
export interface Linear {
  /** Short backend name shown in reports, e.g. "f32", "int8-w", "w8a8", "int4-g128", "q4_0". */
  readonly kind: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** Bytes of weight storage (packed weights, scales, zero points, bias). */
  readonly storageBytes: number;
  /**
   * x is [m, inFeatures] row-major; returns [m, outFeatures] (written into `out` when given).
   *
   * `shared` (optional) is a caller-owned memo for this one input: when several linears read the
   * same x, the caller makes one empty Map, passes it to each of their forward() calls with the
   * same x, m and contents, and drops it after the last one. A backend may keep work derived from
   * x there under a key of its own (e.g. x quantized to Q8_0 blocks) and reuse it instead of
   * redoing it; results are the same bits as without it. Ignoring it is always correct.
   */
  forward(x: Float32Array, m: number, out?: Float32Array, shared?: Map<string, unknown>): Float32Array;
  /** The effective f32 weight [outFeatures, inFeatures] (dequantized), for tests and exports. */
  dequantizedWeight(): Float32Array;
  /** Frees kernel memory held by this layer, if any. */
  dispose?(): void;
}
