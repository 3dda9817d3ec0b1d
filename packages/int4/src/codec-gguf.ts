import { f16BitsToF32, f32ToF16Bits, LowbitError, registerDType } from "@lowbit/tensor";
import { groupCount, hasTrivialGroups, type QuantizedMatrix } from "./quantized-matrix";
import { assertFinite } from "./rtn";

/**
 * GGUF 4-bit block formats, bit-identical with llama.cpp's reference quantizers
 * (ggml-quants.c quantize_row_q4_0_ref / quantize_row_q4_1_ref). All arithmetic that ggml does in
 * f32 is rounded to f32 here (Math.fround), so the bytes agree exactly.
 *
 * Q4_0: 32 values in 18 bytes {f16 d; u8 qs[16]}; byte j holds element j (low nibble) and element
 *   j+16 (high nibble); value = (n - 8) * d. The quantizer takes the signed value m of largest
 *   magnitude (first one on ties), d = m / -8, n = min(15, trunc(x/d + 8.5)).
 * Q4_1: 32 values in 20 bytes {f16 d; f16 m; u8 qs[16]}; value = n * d + m; d = (max - min) / 15,
 *   m = min, n = min(15, trunc((x - min)/d + 0.5)).
 */

export interface GgufBlockFormat {
  readonly name: "q4_0" | "q4_1";
  readonly ggmlType: number;
  readonly blockSize: number;
  readonly blockBytes: number;
  readonly quantizeRef: (x: Float32Array, out?: Uint8Array) => Uint8Array;
  readonly dequantizeRef: (bytes: Uint8Array, n: number, out?: Float32Array) => Float32Array;
}

const QK = 32;

/** Registers "q4_0" (32 values / 18 bytes) and "q4_1" (32 / 20) in @lowbit/tensor's dtype table (idempotent). */
export function registerGgufInt4DTypes(): void {
  registerDType({ name: "q4_0", blockSize: 32, blockBytes: 18, kind: "packed" });
  registerDType({ name: "q4_1", blockSize: 32, blockBytes: 20, kind: "packed" });
}

function checkLength(n: number, where: string): number {
  if (!(Number.isInteger(n) && n >= 0 && n % QK === 0)) {
    throw new LowbitError("E_SHAPE_MISMATCH", `${where}: ${n} values are not a whole number of 32-value blocks`);
  }
  return n / QK;
}

function outBytes(out: Uint8Array | undefined, bytes: number, where: string): Uint8Array {
  if (!out) return new Uint8Array(bytes);
  if (out.length < bytes) throw new LowbitError("E_SHAPE_MISMATCH", `${where}: output has ${out.length} bytes, ${bytes} needed`);
  return out;
}

function putF16(b: Uint8Array, off: number, x: number): void {
  const h = f32ToF16Bits(x);
  b[off] = h & 0xff;
  b[off + 1] = h >>> 8;
}

function getF16(b: Uint8Array, off: number): number {
  return f16BitsToF32(b[off]! | (b[off + 1]! << 8));
}

/** C's (int8_t) conversion of a float in [0, 127]: truncation toward zero. */
function truncToNibble(t: number): number {
  return Math.min(15, Math.trunc(t));
}

/** llama.cpp quantize_row_q4_0_ref, byte for byte. x.length must be a multiple of 32. */
export function quantizeQ4_0Ref(x: Float32Array, out?: Uint8Array): Uint8Array {
  const nb = checkLength(x.length, "quantizeQ4_0Ref");
  const y = outBytes(out, nb * 18, "quantizeQ4_0Ref");
  for (let i = 0; i < nb; i++) {
    const xo = i * QK;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK; j++) {
      const v = x[xo + j]!;
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = Math.fround(max / -8);
    const id = d ? Math.fround(1 / d) : 0;
    const yo = i * 18;
    putF16(y, yo, d);
    for (let j = 0; j < QK / 2; j++) {
      const x0 = Math.fround(x[xo + j]! * id);
      const x1 = Math.fround(x[xo + QK / 2 + j]! * id);
      const n0 = truncToNibble(Math.fround(x0 + 8.5));
      const n1 = truncToNibble(Math.fround(x1 + 8.5));
      y[yo + 2 + j] = n0 | (n1 << 4);
    }
  }
  return y;
}

/** llama.cpp dequantize_row_q4_0: value = (n - 8) * d in f32. */
export function dequantizeQ4_0Ref(bytes: Uint8Array, n: number, out?: Float32Array): Float32Array {
  const nb = checkLength(n, "dequantizeQ4_0Ref");
  if (bytes.length < nb * 18) throw new LowbitError("E_SHAPE_MISMATCH", `dequantizeQ4_0Ref: ${n} values need ${nb * 18} bytes, got ${bytes.length}`);
  const y = out ?? new Float32Array(n);
  for (let i = 0; i < nb; i++) {
    const o = i * 18;
    const d = getF16(bytes, o);
    for (let j = 0; j < QK / 2; j++) {
      const b = bytes[o + 2 + j]!;
      y[i * QK + j] = ((b & 15) - 8) * d;
      y[i * QK + j + QK / 2] = ((b >>> 4) - 8) * d;
    }
  }
  return y;
}

/** llama.cpp quantize_row_q4_1_ref, byte for byte. */
export function quantizeQ4_1Ref(x: Float32Array, out?: Uint8Array): Uint8Array {
  const nb = checkLength(x.length, "quantizeQ4_1Ref");
  const y = outBytes(out, nb * 20, "quantizeQ4_1Ref");
  for (let i = 0; i < nb; i++) {
    const xo = i * QK;
    let min = 3.4028234663852886e38;
    let max = -3.4028234663852886e38;
    for (let j = 0; j < QK; j++) {
      const v = x[xo + j]!;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const d = Math.fround(Math.fround(max - min) / 15);
    const id = d ? Math.fround(1 / d) : 0;
    const yo = i * 20;
    putF16(y, yo, d);
    putF16(y, yo + 2, min);
    for (let j = 0; j < QK / 2; j++) {
      const x0 = Math.fround(Math.fround(x[xo + j]! - min) * id);
      const x1 = Math.fround(Math.fround(x[xo + QK / 2 + j]! - min) * id);
      const n0 = truncToNibble(Math.fround(x0 + 0.5));
      const n1 = truncToNibble(Math.fround(x1 + 0.5));
      y[yo + 4 + j] = n0 | (n1 << 4);
    }
  }
  return y;
}

/** llama.cpp dequantize_row_q4_1: value = n * d + m in f32. */
export function dequantizeQ4_1Ref(bytes: Uint8Array, n: number, out?: Float32Array): Float32Array {
  const nb = checkLength(n, "dequantizeQ4_1Ref");
  if (bytes.length < nb * 20) throw new LowbitError("E_SHAPE_MISMATCH", `dequantizeQ4_1Ref: ${n} values need ${nb * 20} bytes, got ${bytes.length}`);
  const y = out ?? new Float32Array(n);
  for (let i = 0; i < nb; i++) {
    const o = i * 20;
    const d = getF16(bytes, o);
    const m = getF16(bytes, o + 2);
    for (let j = 0; j < QK / 2; j++) {
      const b = bytes[o + 4 + j]!;
      y[i * QK + j] = Math.fround(Math.fround((b & 15) * d) + m);
      y[i * QK + j + QK / 2] = Math.fround(Math.fround((b >>> 4) * d) + m);
    }
  }
  return y;
}

/** The GGUF 4-bit block formats as a table (ggml's type_traits). */
export const GGUF_INT4_FORMATS: Readonly<Record<"q4_0" | "q4_1", GgufBlockFormat>> = {
  q4_0: { name: "q4_0", ggmlType: 2, blockSize: 32, blockBytes: 18, quantizeRef: quantizeQ4_0Ref, dequantizeRef: dequantizeQ4_0Ref },
  q4_1: { name: "q4_1", ggmlType: 3, blockSize: 32, blockBytes: 20, quantizeRef: quantizeQ4_1Ref, dequantizeRef: dequantizeQ4_1Ref },
};

/**
 * Quantizes a weight matrix [rows, cols] (GGUF ne = [cols, rows]) to Q4_0 or Q4_1 bytes with the
 * llama.cpp reference quantizer; cols must be a multiple of 32.
 */
export function quantizeGgufInt4(
  format: "q4_0" | "q4_1",
  w: Float32Array,
  rows: number,
  cols: number,
  name = "weight",
): Uint8Array {
  registerGgufInt4DTypes();
  if (!(cols > 0 && cols % QK === 0)) {
    throw new LowbitError("E_SHAPE_MISMATCH", `${format} ${name}: row length ${cols} is not a multiple of 32 (the ${format} block size)`);
  }
  if (w.length !== rows * cols) throw new LowbitError("E_SHAPE_MISMATCH", `${format} ${name}: ${w.length} values, expected ${rows}*${cols}`);
  assertFinite(w, name, cols);
  return GGUF_INT4_FORMATS[format].quantizeRef(w);
}

function checkBlockBytes(format: GgufBlockFormat, bytes: Uint8Array, rows: number, cols: number, name: string): void {
  if (!(cols > 0 && cols % QK === 0 && rows > 0)) {
    throw new LowbitError("E_SHAPE_MISMATCH", `${format.name} ${name}: row length ${cols} is not a positive multiple of 32`);
  }
  const need = (rows * cols * format.blockBytes) / QK;
  if (bytes.length !== need) {
    throw new LowbitError("E_SHAPE_MISMATCH", `${format.name} ${name}: ${bytes.length} bytes, expected ${need} for ${rows}x${cols}`);
  }
}

/**
 * Q4_0/Q4_1 bytes -> QuantizedMatrix (bits 4, groupSize 32). Q4_0: scale d, zero 8 (sym). Q4_1:
 * scale d, zero -m/d (not an integer in general; a block with d = 0 decodes as scale m, zero -1,
 * codes 0, which gives the same values).
 */
export function ggufInt4ToQuantizedMatrix(
  format: "q4_0" | "q4_1",
  bytes: Uint8Array,
  rows: number,
  cols: number,
  name = "weight",
): QuantizedMatrix {
  const f = GGUF_INT4_FORMATS[format];
  checkBlockBytes(f, bytes, rows, cols, name);
  const nb = (rows * cols) / QK;
  const q = new Uint8Array(rows * cols);
  const scales = new Float32Array(nb);
  const zeros = new Float32Array(nb);
  const hdr = format === "q4_0" ? 2 : 4;
  for (let b = 0; b < nb; b++) {
    const o = b * f.blockBytes;
    const d = getF16(bytes, o);
    let zeroCodes = false;
    if (format === "q4_0") {
      scales[b] = d;
      zeros[b] = 8;
    } else {
      const m = getF16(bytes, o + 2);
      if (d === 0) {
        scales[b] = m;
        zeros[b] = -1;
        zeroCodes = true;
      } else {
        scales[b] = d;
        zeros[b] = Math.fround(-m / d);
      }
    }
    for (let j = 0; j < QK / 2; j++) {
      const byte = zeroCodes ? 0 : bytes[o + hdr + j]!;
      q[b * QK + j] = byte & 15;
      q[b * QK + j + QK / 2] = byte >>> 4;
    }
  }
  return { bits: 4, groupSize: QK, rows, cols, sym: format === "q4_0", q, scales, zeros };
}

/**
 * QuantizedMatrix -> Q4_0/Q4_1 bytes (scales rounded to f16). Q4_0 needs 4 bits, group 32 and every
 * zero at 8; Q4_1 needs 4 bits and group 32 (m = -scale * zero).
 */
export function quantizedMatrixToGgufInt4(format: "q4_0" | "q4_1", qm: QuantizedMatrix, name = "weight"): Uint8Array {
  registerGgufInt4DTypes();
  const f = GGUF_INT4_FORMATS[format];
  if (qm.bits !== 4 || qm.groupSize !== QK || !hasTrivialGroups(qm)) {
    throw new LowbitError(
      "E_UNSUPPORTED",
      `${format} ${name}: needs 4-bit codes in groups of 32 without act-order, got ${qm.bits} bits, group ${qm.groupSize}`,
    );
  }
  const nb = qm.rows * groupCount(qm);
  const out = new Uint8Array(nb * f.blockBytes);
  const hdr = format === "q4_0" ? 2 : 4;
  for (let b = 0; b < nb; b++) {
    const o = b * f.blockBytes;
    const s = qm.scales[b]!;
    const z = qm.zeros[b]!;
    if (format === "q4_0") {
      if (z !== 8) throw new LowbitError("E_UNSUPPORTED", `q4_0 ${name}: block ${b} has zero point ${z}; Q4_0 stores only zero 8 (use q4_1)`);
      putF16(out, o, s);
    } else {
      putF16(out, o, z === -1 && [...qm.q.subarray(b * QK, b * QK + QK)].every((c) => c === 0) ? 0 : s);
      putF16(out, o + 2, -s * z);
    }
    for (let j = 0; j < QK / 2; j++) {
      out[o + hdr + j] = (qm.q[b * QK + j]! & 15) | ((qm.q[b * QK + j + QK / 2]! & 15) << 4);
    }
  }
  return out;
}
