import { dequantizeMatrix, type QuantizedMatrix } from "@lowbit/int4";
import { makeF32Linear } from "@lowbit/runtime";
import type { Linear } from "@lowbit/tensor";

/**
 * The Linear backend converted layers get by default.
 * TODO(int4 Int4Linear): switch to @lowbit/int4's Int4Linear once it lands; until then the
 * runtime's f32 linear over the dequantized codes (same values, f32 storage).
 */
export function defaultQuantizedLinear(qm: QuantizedMatrix): Linear {
  return makeF32Linear(dequantizeMatrix(qm), qm.rows, qm.cols);
}
