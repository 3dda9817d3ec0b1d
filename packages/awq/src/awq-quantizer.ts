import { LowbitError } from "@lowbit/tensor";
import type { QuantizedMatrix } from "@lowbit/int4";

/** Round half to even (torch.round). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export interface AwqQuantizerOptions {
  bits: number;
  /** Columns per group; must divide cols (cols for per channel). */
  groupSize: number;
  /** AWQ's zero_point: asymmetric (default true). false is llm-awq's rarely used symmetric branch. */
  zeroPoint?: boolean;
}

/**
 * llm-awq / AutoAWQ `pseudo_quantize_tensor` on W [rows, cols]: per group, with zero point:
 * scale = max(max - min, 1e-5) / (2^b - 1), zero = clamp(-round(min / scale), 0, 2^b - 1) (the range
 * is NOT widened to include 0, unlike GPTQ's quantizer); without: scale = max(|w|max, 1e-5) / (2^(b-1) - 1),
 * codes -2^(b-1)..2^(b-1)-1. Returns the quantized matrix (codes shifted to 0..2^b-1) and, when
 * `dequantized` is given, writes W' = (q - zero) * scale into it.
 */
export function awqPseudoQuantize(
  w: Float32Array,
  rows: number,
  cols: number,
  options: AwqQuantizerOptions,
  dequantized?: Float32Array,
): QuantizedMatrix {
  const { bits, groupSize } = options;
  const zp = options.zeroPoint ?? true;
  if (!(Number.isInteger(bits) && bits >= 2 && bits <= 8)) {
    throw new LowbitError("E_INVALID_ARGUMENT", `AWQ quantizer: bits must be 2..8, got ${bits}`);
  }
  if (!(Number.isInteger(groupSize) && groupSize > 0 && cols % groupSize === 0)) {
    throw new LowbitError("E_SHAPE_MISMATCH", `AWQ quantizer: group size ${groupSize} must divide ${cols} columns`);
  }
  if (w.length !== rows * cols) {
    throw new LowbitError("E_SHAPE_MISMATCH", `AWQ quantizer: weight has ${w.length} values, expected ${rows}x${cols}`);
  }
  const ng = cols / groupSize;
  const maxInt = zp ? 2 ** bits - 1 : 2 ** (bits - 1) - 1;
  const minInt = zp ? 0 : -(2 ** (bits - 1));
  const offset = zp ? 0 : 2 ** (bits - 1);
  const q = new Uint8Array(rows * cols);
  const scales = new Float32Array(rows * ng);
  const zeros = new Float32Array(rows * ng);
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < ng; g++) {
      const o = r * cols + g * groupSize;
      let max = Number.NEGATIVE_INFINITY;
      let min = Number.POSITIVE_INFINITY;
      for (let i = o; i < o + groupSize; i++) {
        const v = w[i]!;
        if (v > max) max = v;
        if (v < min) min = v;
      }
      let scale: number;
      let zero: number;
      if (zp) {
        scale = Math.fround(Math.max(Math.fround(max - min), 1e-5) / maxInt);
        zero = Math.min(maxInt, Math.max(minInt, -roundHalfEven(Math.fround(min / scale))));
      } else {
        scale = Math.fround(Math.max(Math.max(Math.abs(max), Math.abs(min)), 1e-5) / maxInt);
        zero = 0;
      }
      scales[r * ng + g] = scale;
      zeros[r * ng + g] = zero + offset;
      for (let i = o; i < o + groupSize; i++) {
        let c = roundHalfEven(Math.fround(w[i]! / scale)) + zero;
        c = Math.min(maxInt, Math.max(minInt, c));
        q[i] = c + offset;
        if (dequantized) dequantized[i] = Math.fround((c - zero) * scale);
      }
    }
  }
  return { bits, groupSize, rows, cols, sym: !zp, q, scales, zeros };
}
