import { LowbitError } from "@lowbit/tensor";

/**
 * The lingua franca of weight quantization in lowbit: a weight matrix [rows = out, cols = in]
 * quantized in groups along the input dimension, with unpacked integer codes.
 *
 * value[r, c] = scales[r, g] * (q[r, c] - zeros[r, g]) with g = gIdx ? gIdx[c] : floor(c / groupSize).
 */
export interface QuantizedMatrix {
  /** Bits per code, 2..8. */
  bits: number;
  /** Input columns per group (== cols for per-channel). Always divides cols. */
  groupSize: number;
  /** Output features. */
  rows: number;
  /** Input features. */
  cols: number;
  /** Symmetric (zero = 2^(bits-1), as GPTQ's (maxq+1)/2) or asymmetric. */
  sym: boolean;
  /** Codes 0..2^bits-1, unpacked, row-major [rows, cols]. */
  q: Uint8Array;
  /** Row-major [rows, nGroups]. */
  scales: Float32Array;
  /** Row-major [rows, nGroups]; integer-valued for RTN/GPTQ/AWQ. */
  zeros: Float32Array;
  /** Optional [cols]: the group of each input column (GPTQ act-order). */
  gIdx?: Int32Array;
}

/** Number of groups per row. */
export function groupCount(qm: Pick<QuantizedMatrix, "cols" | "groupSize">): number {
  return qm.cols / qm.groupSize;
}

/** Largest code at `bits`: 2^bits - 1. */
export function maxCode(bits: number): number {
  return (1 << bits) - 1;
}

/** Checks bits in 2..8 (or the listed set) and names the caller. */
export function checkBits(bits: number, where: string, allowed: readonly number[] = [2, 3, 4, 5, 6, 7, 8]): void {
  if (!Number.isInteger(bits) || !allowed.includes(bits)) {
    throw new LowbitError("E_INVALID_ARGUMENT", `${where}: bits must be one of ${allowed.join(", ")}, got ${bits}`);
  }
}

/** The group of every column: gIdx when present, else c / groupSize. */
export function columnGroups(qm: QuantizedMatrix): Int32Array {
  if (qm.gIdx) return qm.gIdx;
  const g = new Int32Array(qm.cols);
  for (let c = 0; c < qm.cols; c++) g[c] = Math.floor(c / qm.groupSize);
  return g;
}

/** True when gIdx is absent or equal to the trivial c / groupSize mapping. */
export function hasTrivialGroups(qm: QuantizedMatrix): boolean {
  const gi = qm.gIdx;
  if (!gi) return true;
  for (let c = 0; c < qm.cols; c++) if (gi[c] !== Math.floor(c / qm.groupSize)) return false;
  return true;
}

/**
 * Validates shapes and code ranges; throws LowbitError naming `name` and the bad field.
 * Cost is O(rows*cols) (it checks every code is < 2^bits).
 */
export function validateQuantizedMatrix(qm: QuantizedMatrix, name = "quantized matrix"): void {
  checkBits(qm.bits, name);
  const { rows, cols, groupSize } = qm;
  if (!(Number.isInteger(rows) && rows > 0 && Number.isInteger(cols) && cols > 0)) {
    throw new LowbitError("E_SHAPE_MISMATCH", `${name}: rows and cols must be positive integers, got ${rows}x${cols}`);
  }
  if (!(Number.isInteger(groupSize) && groupSize > 0 && cols % groupSize === 0)) {
    throw new LowbitError(
      "E_SHAPE_MISMATCH",
      `${name}: groupSize ${groupSize} must be a positive divisor of cols ${cols}`,
    );
  }
  const ng = cols / groupSize;
  if (qm.q.length !== rows * cols) {
    throw new LowbitError("E_SHAPE_MISMATCH", `${name}: q has ${qm.q.length} codes, expected ${rows}*${cols}`);
  }
  if (qm.scales.length !== rows * ng || qm.zeros.length !== rows * ng) {
    throw new LowbitError(
      "E_SHAPE_MISMATCH",
      `${name}: scales/zeros have ${qm.scales.length}/${qm.zeros.length} entries, expected ${rows}*${ng}`,
    );
  }
  if (qm.gIdx) {
    if (qm.gIdx.length !== cols) {
      throw new LowbitError("E_SHAPE_MISMATCH", `${name}: gIdx has ${qm.gIdx.length} entries, expected ${cols}`);
    }
    for (let c = 0; c < cols; c++) {
      const g = qm.gIdx[c]!;
      if (!(g >= 0 && g < ng)) {
        throw new LowbitError("E_INVALID_ARGUMENT", `${name}: gIdx[${c}] = ${g} is outside 0..${ng - 1}`);
      }
    }
  }
  const maxq = maxCode(qm.bits);
  for (let i = 0; i < qm.q.length; i++) {
    if (qm.q[i]! > maxq) {
      throw new LowbitError(
        "E_INVALID_ARGUMENT",
        `${name}: code q[${i}] = ${qm.q[i]} exceeds ${maxq}, the largest ${qm.bits}-bit code`,
      );
    }
  }
}

/** value = scale * (q - zero), row-major [rows, cols] f32. */
export function dequantizeMatrix(qm: QuantizedMatrix): Float32Array {
  const { rows, cols, q, scales, zeros } = qm;
  const ng = groupCount(qm);
  const groups = columnGroups(qm);
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    const gbase = r * ng;
    for (let c = 0; c < cols; c++) {
      const g = gbase + groups[c]!;
      out[base + c] = scales[g]! * (q[base + c]! - zeros[g]!);
    }
  }
  return out;
}
