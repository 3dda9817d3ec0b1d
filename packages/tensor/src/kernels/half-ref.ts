import { decodeBf16, decodeF16 } from "../half";
import type { HalfFormat } from "./half-kernels";
import { matmulABtRef } from "./f32-ref";

/**
 * Reference twin of the half-weight kernels: decodes the weight with the exact codecs of
 * ../half.ts (decodeF16 / decodeBf16), then the f32 reference product (f64 accumulation).
 */

/** The f32 values of half bits in `format` (exact). */
export function decodeHalfRef(bits: Uint16Array, format: HalfFormat, out?: Float32Array): Float32Array {
  return format === "bf16" ? decodeBf16(bits, out) : decodeF16(bits, out);
}

/** C[m,n] = A[m,k] . W[n,k]^T (+ bias over columns), W given as f16/bf16 bits. */
export function matmulABtHalfRef(
  a: Float32Array,
  w: Uint16Array,
  format: HalfFormat,
  m: number,
  n: number,
  k: number,
  bias?: Float32Array,
  out: Float32Array = new Float32Array(m * n),
): Float32Array {
  matmulABtRef(a, decodeHalfRef(w, format), m, n, k, out);
  if (bias) for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) out[i * n + j]! += bias[j]!;
  return out;
}
