import { f16BitsToF32, LowbitError } from "@lowbit/tensor";
import type { QuantizedMatrix } from "./quantized-matrix";

/**
 * GGUF Q6_K: super-blocks of 256 values in 210 bytes {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}.
 * Sixteen sub-blocks of 16 values each have an int8 scale sc; value = d*sc * (q - 32) with 6-bit q:
 * its low four bits in ql, its high two in qh. Per half h of a block (128 values), value
 * 128h + 32t + l (t = 0..3, l = 0..31) takes
 *   t = 0: ql[64h + l] & 15,       qh[32h + l] bits 0-1
 *   t = 1: ql[64h + l + 32] & 15,  qh[32h + l] bits 2-3
 *   t = 2: ql[64h + l] >> 4,       qh[32h + l] bits 4-5
 *   t = 3: ql[64h + l + 32] >> 4,  qh[32h + l] bits 6-7
 * and value v of the block belongs to sub-block v >> 4 (scale byte 192 + (v >> 4)). This is
 * llama.cpp's dequantize_row_q6_K.
 */

export const Q6_K_BLOCK_VALUES = 256;
export const Q6_K_BLOCK_BYTES = 210;
const f = Math.fround;

/**
 * Q6_K bytes -> QuantizedMatrix (bits 6, groupSize 16): each sub-block's scale f32(d * sc) and the
 * integer zero 32, so scale * (q - 32) is dequantize_row_q6_K's value exactly (the same f32
 * products). The codes keep their 6 bits (Int4Linear stores them in 8-bit containers).
 */
export function q6kToQuantizedMatrix(bytes: Uint8Array, rows: number, cols: number, name = "weight"): QuantizedMatrix {
  if (!(Number.isInteger(rows) && rows > 0)) {
    throw new LowbitError("E_SHAPE_MISMATCH", `q6_k ${name}: row count ${rows} is not a positive integer`);
  }
  if (!(Number.isInteger(cols) && cols > 0 && cols % Q6_K_BLOCK_VALUES === 0)) {
    throw new LowbitError("E_SHAPE_MISMATCH", `q6_k ${name}: row length ${cols} is not a positive multiple of 256`);
  }
  const nb = (rows * cols) / Q6_K_BLOCK_VALUES;
  if (bytes.length !== nb * Q6_K_BLOCK_BYTES) {
    throw new LowbitError("E_SHAPE_MISMATCH", `q6_k ${name}: ${bytes.length} bytes, expected ${nb * Q6_K_BLOCK_BYTES} for ${rows}x${cols}`);
  }
  const q = new Uint8Array(rows * cols);
  const scales = new Float32Array(nb * 16);
  const zeros = new Float32Array(nb * 16).fill(32);
  for (let i = 0; i < nb; i++) {
    const o = i * Q6_K_BLOCK_BYTES;
    const d = f16BitsToF32(bytes[o + 208]! | (bytes[o + 209]! << 8));
    if (!Number.isFinite(d)) {
      const perRow = cols / Q6_K_BLOCK_VALUES;
      throw new LowbitError("E_NON_FINITE", `q6_k ${name}: block ${i} (row ${Math.floor(i / perRow)}) has a non-finite scale d (${d})`);
    }
    for (let j = 0; j < 16; j++) scales[i * 16 + j] = f(d * ((bytes[o + 192 + j]! << 24) >> 24));
    const y = i * Q6_K_BLOCK_VALUES;
    for (let h = 0; h < 2; h++) {
      const ql = o + 64 * h;
      const qh = o + 128 + 32 * h;
      const yo = y + 128 * h;
      for (let l = 0; l < 32; l++) {
        const hb = bytes[qh + l]!;
        const a = bytes[ql + l]!;
        const b = bytes[ql + l + 32]!;
        q[yo + l] = (a & 15) | ((hb & 3) << 4);
        q[yo + l + 32] = (b & 15) | (((hb >> 2) & 3) << 4);
        q[yo + l + 64] = (a >> 4) | (((hb >> 4) & 3) << 4);
        q[yo + l + 96] = (b >> 4) | (((hb >> 6) & 3) << 4);
      }
    }
  }
  return { bits: 6, groupSize: 16, rows, cols, sym: false, q, scales, zeros };
}
