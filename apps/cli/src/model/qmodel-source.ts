import { dequantizeMatrix, Int4Linear } from "@lowbit/int4";
import type { TensorSource } from "@lowbit/runtime";
import { LowbitError } from "@lowbit/tensor";
import type { QuantizedModel } from "../quant/qmodel";

/**
 * A runtime TensorSource over a QuantizedModel: float tensors as they are; quantized weights run
 * as @lowbit/int4 Int4Linear backends (packed codes), or dequantized on demand (readF32).
 */
export function qmodelSource(m: QuantizedModel): TensorSource {
  return {
    shape(name) {
      const f = m.floats.get(name);
      if (f) return f.shape;
      const q = m.quantized.get(name);
      return q ? [q.rows, q.cols] : undefined;
    },
    async readF32(name) {
      const f = m.floats.get(name);
      if (f) return f.data;
      const q = m.quantized.get(name);
      if (q) return dequantizeMatrix(q);
      throw new LowbitError("E_MISSING_TENSOR", `missing tensor "${name}"`);
    },
    async readLinear(name, _out, _in, bias) {
      const q = m.quantized.get(name);
      return q ? new Int4Linear(q, { ...(bias ? { bias } : {}), name }) : undefined;
    },
  };
}
