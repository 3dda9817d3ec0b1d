import { Int4Linear, type QuantizedMatrix } from "@lowbit/int4";
import type { Linear } from "@lowbit/tensor";

/**
 * The Linear backend converted layers get by default: @lowbit/int4's Int4Linear (2..8-bit codes
 * kept packed in kernel memory, dequantized on the fly by its WebAssembly SIMD kernels).
 */
export function defaultQuantizedLinear(qm: QuantizedMatrix, name?: string): Linear {
  return new Int4Linear(qm, { name });
}
