import { f16BitsToF32, f32ToF16Bits, LowbitError } from "@lowbit/tensor";
import { readBits32, writeBits32 } from "./bitpack";
import { checkBits, columnGroups, groupCount, hasTrivialGroups, type QuantizedMatrix } from "./quantized-matrix";

/**
 * GPTQ checkpoint tensors (AutoGPTQ / GPTQModel, Hugging Face `quant_method: "gptq"`).
 *
 * - qweight int32 [in*bits/32, out]: each output column's codes along the input dimension as a
 *   little-endian bit stream (4-bit: word r holds inputs 8r..8r+7, input 8r+j at bits 4j..4j+3;
 *   3-bit: 32 inputs per 3 words, codes straddling word boundaries).
 * - qzeros int32 [groups, out*bits/32]: each group's zero points along the output dimension, same
 *   bit stream; version 1 ("gptq") stores zero - 1, version 2 ("gptq_v2") the zero itself.
 * - scales f16 [groups, out]; g_idx int32 [in] (the group of each input; act-order permutes it).
 */
export interface GptqTensors {
  qweight: Int32Array;
  qzeros: Int32Array;
  /** f16 bits. */
  scales: Uint16Array;
  gIdx: Int32Array;
}

export interface GptqPacked extends GptqTensors {
  bits: number;
  version: 1 | 2;
  inFeatures: number;
  outFeatures: number;
  groupSize: number;
  shapes: { qweight: [number, number]; qzeros: [number, number]; scales: [number, number]; gIdx: [number] };
}

export interface GptqPackOptions {
  /** 1: AutoGPTQ "gptq" (zero - 1 stored; asymmetric zero 0 cannot be stored); 2: "gptq_v2". Default 1. */
  version?: 1 | 2;
  /** Tensor name for error messages. */
  name?: string;
}

export interface GptqUnpackOptions {
  bits: number;
  inFeatures: number;
  outFeatures: number;
  version?: 1 | 2;
  /** From quantize_config.json; inferred (all zeros at 2^(bits-1)) when absent. */
  sym?: boolean;
  name?: string;
}

function checkGptqShape(bits: number, inF: number, outF: number, name: string): void {
  checkBits(bits, `GPTQ ${name}`, [2, 3, 4, 8]);
  if ((inF * bits) % 32 !== 0) {
    const need = bits === 3 ? 32 : 32 / bits;
    throw new LowbitError(
      "E_SHAPE_MISMATCH",
      `GPTQ ${name}: in_features ${inF} must be a multiple of ${need} to pack ${bits}-bit codes into int32 qweight`,
    );
  }
  if ((outF * bits) % 32 !== 0) {
    const need = bits === 3 ? 32 : 32 / bits;
    throw new LowbitError(
      "E_SHAPE_MISMATCH",
      `GPTQ ${name}: out_features ${outF} must be a multiple of ${need} to pack ${bits}-bit zero points into int32 qzeros`,
    );
  }
}

/** Packs a QuantizedMatrix into GPTQ v1 or v2 tensors (scales rounded to f16). */
export function packGptq(qm: QuantizedMatrix, options: GptqPackOptions = {}): GptqPacked {
  const version = options.version ?? 1;
  const name = options.name ?? "weight";
  const { bits, rows: outF, cols: inF, q } = qm;
  checkGptqShape(bits, inF, outF, name);
  const ng = groupCount(qm);
  const maxq = (1 << bits) - 1;
  const qwRows = (inF * bits) / 32;
  const qweight = new Int32Array(qwRows * outF);
  // column o's stream lives in words qweight[w*out + o]; build it in a scratch column
  const col = new Int32Array(qwRows);
  for (let o = 0; o < outF; o++) {
    col.fill(0);
    const base = o * inF;
    for (let i = 0; i < inF; i++) writeBits32(col, i * bits, q[base + i]!, bits);
    for (let w = 0; w < qwRows; w++) qweight[w * outF + o] = col[w]!;
  }
  const qzCols = (outF * bits) / 32;
  const qzeros = new Int32Array(ng * qzCols);
  const scales = new Uint16Array(ng * outF);
  for (let g = 0; g < ng; g++) {
    const zrow = qzeros.subarray(g * qzCols, (g + 1) * qzCols);
    for (let o = 0; o < outF; o++) {
      const z = qm.zeros[o * ng + g]!;
      if (!(Number.isInteger(z) && z >= 0 && z <= maxq)) {
        throw new LowbitError(
          "E_INVALID_ARGUMENT",
          `GPTQ ${name}: zero point ${z} (row ${o}, group ${g}) is not an integer in 0..${maxq}`,
        );
      }
      if (version === 1 && z === 0) {
        throw new LowbitError(
          "E_UNSUPPORTED",
          `GPTQ v1 ${name}: asymmetric zero point 0 (row ${o}, group ${g}) cannot be stored: v1 qzeros hold zero - 1, ` +
            `so 0 wraps to ${maxq} and would decode as ${maxq + 1}. Write checkpoint_format "gptq_v2" (version: 2) instead`,
        );
      }
      writeBits32(zrow, o * bits, version === 1 ? z - 1 : z, bits);
      const s = qm.scales[o * ng + g]!;
      const h = f32ToF16Bits(s);
      if ((h & 0x7c00) === 0x7c00) {
        throw new LowbitError(
          "E_NON_FINITE",
          `GPTQ ${name}: scale ${s} (row ${o}, group ${g}) is not finite in f16 (largest is 65504)`,
        );
      }
      scales[g * outF + o] = h;
    }
  }
  const gIdx = Int32Array.from(columnGroups(qm));
  return {
    bits,
    version,
    inFeatures: inF,
    outFeatures: outF,
    groupSize: qm.groupSize,
    qweight,
    qzeros,
    scales,
    gIdx,
    shapes: { qweight: [qwRows, outF], qzeros: [ng, qzCols], scales: [ng, outF], gIdx: [inF] },
  };
}

/** Unpacks GPTQ v1/v2 tensors into a QuantizedMatrix (gIdx kept only when it is not the trivial i / groupSize). */
export function unpackGptq(
  t: { qweight: Int32Array; qzeros: Int32Array; scales: Uint16Array | Float32Array; gIdx?: Int32Array },
  options: GptqUnpackOptions,
): QuantizedMatrix {
  const { bits, inFeatures: inF, outFeatures: outF } = options;
  const version = options.version ?? 1;
  const name = options.name ?? "weight";
  checkGptqShape(bits, inF, outF, name);
  const qwRows = (inF * bits) / 32;
  const qzCols = (outF * bits) / 32;
  if (t.qweight.length !== qwRows * outF) {
    throw new LowbitError("E_SHAPE_MISMATCH", `GPTQ ${name}: qweight has ${t.qweight.length} words, expected ${qwRows}x${outF}`);
  }
  const ng = t.scales.length / outF;
  if (!Number.isInteger(ng) || ng < 1) {
    throw new LowbitError("E_SHAPE_MISMATCH", `GPTQ ${name}: scales has ${t.scales.length} entries, not a multiple of out_features ${outF}`);
  }
  if (t.qzeros.length !== ng * qzCols) {
    throw new LowbitError("E_SHAPE_MISMATCH", `GPTQ ${name}: qzeros has ${t.qzeros.length} words, expected ${ng}x${qzCols}`);
  }
  if (inF % ng !== 0) {
    throw new LowbitError(
      "E_SHAPE_MISMATCH",
      `GPTQ ${name}: ${ng} groups do not divide in_features ${inF} (a partial last group is not supported)`,
    );
  }
  const groupSize = inF / ng;
  const q = new Uint8Array(outF * inF);
  const col = new Int32Array(qwRows);
  for (let o = 0; o < outF; o++) {
    for (let w = 0; w < qwRows; w++) col[w] = t.qweight[w * outF + o]!;
    const base = o * inF;
    for (let i = 0; i < inF; i++) q[base + i] = readBits32(col, i * bits, bits);
  }
  const scales = new Float32Array(outF * ng);
  const zeros = new Float32Array(outF * ng);
  const half = 1 << (bits - 1);
  let allMid = true;
  for (let g = 0; g < ng; g++) {
    const zrow = t.qzeros.subarray(g * qzCols, (g + 1) * qzCols);
    for (let o = 0; o < outF; o++) {
      const stored = readBits32(zrow, o * bits, bits);
      const z = version === 1 ? stored + 1 : stored;
      zeros[o * ng + g] = z;
      if (z !== half) allMid = false;
      const s = t.scales[g * outF + o]!;
      scales[o * ng + g] = t.scales instanceof Uint16Array ? f16BitsToF32(s) : s;
    }
  }
  const qm: QuantizedMatrix = { bits, groupSize, rows: outF, cols: inF, sym: options.sym ?? allMid, q, scales, zeros };
  if (t.gIdx) {
    if (t.gIdx.length !== inF) {
      throw new LowbitError("E_SHAPE_MISMATCH", `GPTQ ${name}: g_idx has ${t.gIdx.length} entries, expected ${inF}`);
    }
    for (let i = 0; i < inF; i++) {
      const g = t.gIdx[i]!;
      if (!(g >= 0 && g < ng)) {
        throw new LowbitError("E_FORMAT", `GPTQ ${name}: g_idx[${i}] = ${g} is outside 0..${ng - 1}`);
      }
    }
    qm.gIdx = Int32Array.from(t.gIdx);
    if (hasTrivialGroups(qm)) delete qm.gIdx;
  }
  return qm;
}
