import { f16BitsToF32, f32ToF16Bits, LowbitError } from "@lowbit/tensor";
import { groupCount, hasTrivialGroups, type QuantizedMatrix } from "./quantized-matrix";

/**
 * AutoAWQ "gemm" checkpoint tensors (4-bit):
 * - qweight int32 [in, out/8]: packed along the output dimension; nibble i of word [r, c] holds
 *   output column 8c + AWQ_ORDER[i] of input row r.
 * - qzeros int32 [groups, out/8]: same packing, zero points stored as is (no -1).
 * - scales f16 [groups, out].
 */
export const AWQ_ORDER: readonly number[] = [0, 2, 4, 6, 1, 3, 5, 7];

export interface AwqTensors {
  qweight: Int32Array;
  qzeros: Int32Array;
  /** f16 bits. */
  scales: Uint16Array;
}

export interface AwqPacked extends AwqTensors {
  bits: 4;
  inFeatures: number;
  outFeatures: number;
  groupSize: number;
  shapes: { qweight: [number, number]; qzeros: [number, number]; scales: [number, number] };
}

function checkAwqShape(bits: number, inF: number, outF: number, name: string): void {
  if (bits !== 4) {
    throw new LowbitError("E_UNSUPPORTED", `AWQ GEMM ${name}: only 4-bit weights can be packed, got ${bits} bits`);
  }
  if (!(outF > 0 && outF % 8 === 0 && inF > 0)) {
    throw new LowbitError(
      "E_SHAPE_MISMATCH",
      `AWQ GEMM ${name}: out_features ${outF} must be a positive multiple of 8 (8 nibbles per int32 along the output dimension)`,
    );
  }
}

/** Packs 8 codes (columns 8c..8c+7 of one row) into one AWQ word. */
function packWord(get: (j: number) => number): number {
  let w = 0;
  for (let i = 0; i < 8; i++) w |= (get(AWQ_ORDER[i]!) & 15) << (4 * i);
  return w;
}

/** Packs a QuantizedMatrix (4 bits, no act-order) into AutoAWQ GEMM tensors (scales rounded to f16). */
export function packAwq(qm: QuantizedMatrix, options: { name?: string } = {}): AwqPacked {
  const name = options.name ?? "weight";
  const { bits, rows: outF, cols: inF, q } = qm;
  checkAwqShape(bits, inF, outF, name);
  if (!hasTrivialGroups(qm)) {
    throw new LowbitError("E_UNSUPPORTED", `AWQ GEMM ${name}: act-order g_idx cannot be stored (the format has no g_idx)`);
  }
  const ng = groupCount(qm);
  const oc = outF / 8;
  const qweight = new Int32Array(inF * oc);
  for (let r = 0; r < inF; r++) {
    for (let c = 0; c < oc; c++) qweight[r * oc + c] = packWord((j) => q[(8 * c + j) * inF + r]!);
  }
  const qzeros = new Int32Array(ng * oc);
  const scales = new Uint16Array(ng * outF);
  for (let g = 0; g < ng; g++) {
    for (let o = 0; o < outF; o++) {
      const z = qm.zeros[o * ng + g]!;
      if (!(Number.isInteger(z) && z >= 0 && z <= 15)) {
        throw new LowbitError("E_INVALID_ARGUMENT", `AWQ GEMM ${name}: zero point ${z} (row ${o}, group ${g}) is not an integer in 0..15`);
      }
      const s = qm.scales[o * ng + g]!;
      const h = f32ToF16Bits(s);
      if ((h & 0x7c00) === 0x7c00) {
        throw new LowbitError("E_NON_FINITE", `AWQ GEMM ${name}: scale ${s} (row ${o}, group ${g}) is not finite in f16`);
      }
      scales[g * outF + o] = h;
    }
    for (let c = 0; c < oc; c++) qzeros[g * oc + c] = packWord((j) => qm.zeros[(8 * c + j) * ng + g]!);
  }
  return {
    bits: 4,
    inFeatures: inF,
    outFeatures: outF,
    groupSize: qm.groupSize,
    qweight,
    qzeros,
    scales,
    shapes: { qweight: [inF, oc], qzeros: [ng, oc], scales: [ng, outF] },
  };
}

/** Unpacks AutoAWQ GEMM tensors into a QuantizedMatrix (asymmetric unless every zero is 8 and `sym` says so). */
export function unpackAwq(
  t: { qweight: Int32Array; qzeros: Int32Array; scales: Uint16Array | Float32Array },
  options: { inFeatures: number; outFeatures: number; bits?: number; sym?: boolean; name?: string },
): QuantizedMatrix {
  const { inFeatures: inF, outFeatures: outF } = options;
  const name = options.name ?? "weight";
  checkAwqShape(options.bits ?? 4, inF, outF, name);
  const oc = outF / 8;
  if (t.qweight.length !== inF * oc) {
    throw new LowbitError("E_SHAPE_MISMATCH", `AWQ GEMM ${name}: qweight has ${t.qweight.length} words, expected ${inF}x${oc}`);
  }
  const ng = t.scales.length / outF;
  if (!(Number.isInteger(ng) && ng >= 1 && inF % ng === 0)) {
    throw new LowbitError(
      "E_SHAPE_MISMATCH",
      `AWQ GEMM ${name}: scales has ${t.scales.length} entries; expected groups x ${outF} with the groups dividing in_features ${inF}`,
    );
  }
  if (t.qzeros.length !== ng * oc) {
    throw new LowbitError("E_SHAPE_MISMATCH", `AWQ GEMM ${name}: qzeros has ${t.qzeros.length} words, expected ${ng}x${oc}`);
  }
  const q = new Uint8Array(outF * inF);
  for (let r = 0; r < inF; r++) {
    for (let c = 0; c < oc; c++) {
      const w = t.qweight[r * oc + c]!;
      for (let i = 0; i < 8; i++) q[(8 * c + AWQ_ORDER[i]!) * inF + r] = (w >>> (4 * i)) & 15;
    }
  }
  const scales = new Float32Array(outF * ng);
  const zeros = new Float32Array(outF * ng);
  for (let g = 0; g < ng; g++) {
    for (let c = 0; c < oc; c++) {
      const w = t.qzeros[g * oc + c]!;
      for (let i = 0; i < 8; i++) zeros[(8 * c + AWQ_ORDER[i]!) * ng + g] = (w >>> (4 * i)) & 15;
    }
    for (let o = 0; o < outF; o++) {
      const s = t.scales[g * outF + o]!;
      scales[o * ng + g] = t.scales instanceof Uint16Array ? f16BitsToF32(s) : s;
    }
  }
  return { bits: 4, groupSize: inF / ng, rows: outF, cols: inF, sym: options.sym ?? false, q, scales, zeros };
}
