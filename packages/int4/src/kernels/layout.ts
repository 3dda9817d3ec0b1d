import { LowbitError } from "@lowbit/tensor";
import { columnGroups, groupCount, type QuantizedMatrix, validateQuantizedMatrix } from "../quantized-matrix";

/**
 * The kernel layout of a group-quantized weight matrix (what Int4Linear keeps in kernel memory).
 *
 * - Codes live in containers of 2, 4 or 8 bits (3-bit codes in 4-bit containers, 5..7-bit in 8-bit).
 * - Columns are grouped: group g occupies columns [g*gp, (g+1)*gp) of a padded row of kp = ng*gp
 *   codes, gp being the largest group's column count rounded up to a whole 16-byte block. With
 *   act-order (gIdx) the columns of each group are gathered there, and activations are gathered the
 *   same way at run time (`colMap`); padding columns hold code 0 and meet activation 0.
 * - Rows are padded to a multiple of 4 (a tile). Each row is a run of 16-byte blocks of
 *   B = 128/cbits codes; i16 lane k of a block holds codes k, k+8, ..., k+8(P-1) (P = 16/cbits) in
 *   cbits-bit fields, so field j shifted and masked is the i16x8 of codes [8j, 8j+8).
 * - Scales and zeros are f32, interleaved per tile: index ((r >> 2) * ng + g) * 4 + (r & 3).
 */
export interface GroupedLayout {
  bits: number;
  cbits: 2 | 4 | 8;
  rows: number;
  cols: number;
  ng: number;
  gp: number;
  kp: number;
  n4: number;
  /** Source column of each padded column (-1 for padding), or null when the layout is the identity. */
  colMap: Int32Array | null;
  weights: Uint8Array;
  scales: Float32Array;
  zeros: Float32Array;
}

export function containerBits(bits: number): 2 | 4 | 8 {
  return bits <= 2 ? 2 : bits <= 4 ? 4 : 8;
}

/** Codes per 16-byte block for a container width. */
export function blockCodes(cbits: number): number {
  return 128 / cbits;
}

/** Byte offset and bit shift of code k (0..B-1) inside its block. */
function fieldPos(k: number, cbits: number): [byte: number, shift: number] {
  const lane = k & 7;
  const bit = cbits * (k >> 3);
  return [2 * lane + (bit >> 3), bit & 7];
}

export function packLayout(qm: QuantizedMatrix, name = "weight"): GroupedLayout {
  validateQuantizedMatrix(qm, name);
  for (let i = 0; i < qm.scales.length; i++) {
    if (!Number.isFinite(qm.scales[i]!) || !Number.isFinite(qm.zeros[i]!)) {
      throw new LowbitError("E_NON_FINITE", `${name}: scale/zero ${i} is not finite (${qm.scales[i]}, ${qm.zeros[i]})`);
    }
  }
  const { rows, cols, bits } = qm;
  const cbits = containerBits(bits);
  const B = blockCodes(cbits);
  const ng = groupCount(qm);
  const groups = columnGroups(qm);
  const counts = new Int32Array(ng);
  for (let c = 0; c < cols; c++) counts[groups[c]!]!++;
  let maxCount = 0;
  for (let g = 0; g < ng; g++) maxCount = Math.max(maxCount, counts[g]!);
  const gp = Math.ceil(maxCount / B) * B;
  const kp = ng * gp;
  let colMap: Int32Array | null = null;
  if (qm.gIdx || gp !== qm.groupSize) {
    colMap = new Int32Array(kp).fill(-1);
    const fill = new Int32Array(ng);
    for (let c = 0; c < cols; c++) {
      const g = groups[c]!;
      colMap[g * gp + fill[g]!++] = c;
    }
    let identity = kp === cols;
    for (let k = 0; identity && k < kp; k++) identity = colMap[k] === k;
    if (identity) colMap = null;
  }
  const n4 = Math.ceil(rows / 4);
  const rowBytes = (kp / B) * 16;
  const weights = new Uint8Array(n4 * 4 * rowBytes);
  for (let r = 0; r < rows; r++) {
    const src = r * cols;
    const dst = r * rowBytes;
    for (let k = 0; k < kp; k++) {
      const c = colMap ? colMap[k]! : k;
      if (c < 0) continue;
      const code = qm.q[src + c]!;
      const [byte, shift] = fieldPos(k % B, cbits);
      const at = dst + Math.floor(k / B) * 16 + byte;
      weights[at] = weights[at]! | (code << shift);
    }
  }
  const scales = new Float32Array(n4 * ng * 4);
  const zeros = new Float32Array(n4 * ng * 4);
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < ng; g++) {
      const i = ((r >> 2) * ng + g) * 4 + (r & 3);
      scales[i] = qm.scales[r * ng + g]!;
      zeros[i] = qm.zeros[r * ng + g]!;
    }
  }
  return { bits, cbits, rows, cols, ng, gp, kp, n4, colMap, weights, scales, zeros };
}

/** Code of row r at padded column k. */
export function layoutCode(weights: Uint8Array, cbits: number, kp: number, r: number, k: number): number {
  const B = blockCodes(cbits);
  const [byte, shift] = fieldPos(k % B, cbits);
  const at = r * (kp / B) * 16 + Math.floor(k / B) * 16 + byte;
  return (weights[at]! >> shift) & ((1 << cbits) - 1);
}

/** The dequantized f32 weight [rows, cols] held by a layout: scale * (q - zero), in f32. */
export function layoutDequantize(l: GroupedLayout, weights: Uint8Array, scales: Float32Array, zeros: Float32Array): Float32Array {
  const out = new Float32Array(l.rows * l.cols);
  for (let r = 0; r < l.rows; r++) {
    for (let k = 0; k < l.kp; k++) {
      const c = l.colMap ? l.colMap[k]! : k;
      if (c < 0) continue;
      const g = Math.floor(k / l.gp);
      const i = ((r >> 2) * l.ng + g) * 4 + (r & 3);
      out[r * l.cols + c] = scales[i]! * (layoutCode(weights, l.cbits, l.kp, r, k) - zeros[i]!);
    }
  }
  return out;
}
