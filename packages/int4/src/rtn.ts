import { LowbitError } from "@lowbit/tensor";
import { type ClipSearchOptions, fitGroupParams, quantizeValue, resolveGroupSize, searchGroupParams } from "./group-params";
import { checkBits, maxCode, type QuantizedMatrix } from "./quantized-matrix";

export interface RTNOptions {
  /** Bits per weight: 2, 3, 4 or 8 (5..7 work too). */
  bits: number;
  /** Input columns per group; -1 (or cols) for per channel. Must divide cols (see effectiveGroupSize). */
  groupSize: number;
  /** Symmetric (zero at 2^(bits-1)) or asymmetric (zero = round(-min/scale)). */
  sym: boolean;
  /** Clipping search per group: true for GPTQ's mse defaults, or the grid options. */
  clipSearch?: boolean | ClipSearchOptions;
  /** Tensor name used in error messages. */
  name?: string;
}

/** Throws LowbitError E_NON_FINITE naming the tensor and the first NaN/Inf index. */
export function assertFinite(w: ArrayLike<number>, name = "weight", cols?: number): void {
  for (let i = 0; i < w.length; i++) {
    const v = w[i]!;
    if (!Number.isFinite(v)) {
      const where = cols ? ` (row ${Math.floor(i / cols)}, col ${i % cols})` : "";
      throw new LowbitError("E_NON_FINITE", `${name}: element ${i}${where} is ${v}; weights must be finite to quantize`);
    }
  }
}

/**
 * Round-to-nearest group quantization of W [rows, cols] (row-major, [out, in]) with the GPTQ/torch
 * quantizer: per row and group, fit (scale, zero) on the group's range (optionally searching a
 * clipping factor), then q = clamp(round(x/scale) + zero, 0, maxq).
 */
export function quantizeRTN(w: ArrayLike<number>, rows: number, cols: number, options: RTNOptions): QuantizedMatrix {
  const name = options.name ?? "weight";
  checkBits(options.bits, `quantizeRTN(${name})`);
  if (!(Number.isInteger(rows) && rows > 0 && Number.isInteger(cols) && cols > 0)) {
    throw new LowbitError("E_SHAPE_MISMATCH", `quantizeRTN(${name}): rows and cols must be positive integers, got ${rows}x${cols}`);
  }
  if (w.length !== rows * cols) {
    throw new LowbitError("E_SHAPE_MISMATCH", `quantizeRTN(${name}): ${w.length} values, expected ${rows}*${cols}`);
  }
  assertFinite(w, name, cols);
  const bits = options.bits;
  const sym = options.sym;
  const groupSize = resolveGroupSize(cols, options.groupSize, `quantizeRTN(${name})`);
  const ng = cols / groupSize;
  const maxq = maxCode(bits);
  const clip = options.clipSearch === true ? {} : options.clipSearch || undefined;
  const q = new Uint8Array(rows * cols);
  const scales = new Float32Array(rows * ng);
  const zeros = new Float32Array(rows * ng);
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < ng; g++) {
      const off = r * cols + g * groupSize;
      const p = clip
        ? searchGroupParams(w, off, groupSize, bits, sym, clip)
        : fitGroupParams(w, off, groupSize, bits, sym);
      scales[r * ng + g] = p.scale;
      zeros[r * ng + g] = p.zero;
      for (let i = off; i < off + groupSize; i++) q[i] = quantizeValue(w[i]!, p.scale, p.zero, maxq);
    }
  }
  return { bits, groupSize, rows, cols, sym, q, scales, zeros };
}
