import { dequantizeQ4_KRef, type Int4LinearOptions, Q4_KLinear, Q6_KLinear, Q6_KTiledLinear } from "@lowbit/int4";
import { f16BitsToF32, LowbitError } from "@lowbit/tensor";
import type { GgufActivations, GgufTensorType } from "./gguf-types";

/**
 * Decoders for the ggml block types llama.cpp's default quantization mixes write besides Q4_0/Q4_1/
 * Q8_0: Q5_0, Q5_1 (32-value blocks) and the k-quants Q2_K, Q3_K, Q5_K, Q6_K (256-value super-blocks),
 * plus Q4_K through @lowbit/int4. Each decoder equals libggml's dequantize_row_* bit for bit: every
 * f32 operation of the C code (products, differences, in the same order) is one Math.fround here.
 *
 * The runtime reads most of these types by decoding them to f32 at load time (no block linear), so
 * a linear stored as Q5_K/Q3_K/... costs 4 bytes per weight in memory, not its 0.33-0.75 bytes on disk;
 * an embedding keeps the file's bytes and decodes one row per lookup (blockEmbedding). Q4_K and Q6_K,
 * the two types of llama.cpp's Q4_K_M mix, stay in their precision (Q4_KLinear; Q6_KLinear: 6-bit
 * codes in bytes, one f32 scale per 16 values, about 1.3 bytes per weight, the same values exactly;
 * with quantized activations Q6_KTiledLinear, int8 codes in 4-row tiles, 1.25 bytes per weight).
 *
 * Block layouts (ggml-common.h; f16 little-endian; QK_K = 256):
 *   Q5_0  22 B: f16 d, u32 qh (5th bits), u8 qs[16]      v = (q - 16) * d
 *   Q5_1  24 B: f16 d, f16 m, u32 qh, u8 qs[16]          v = q * d + m
 *   Q2_K  84 B: u8 scales[16] (4-bit sc | 4-bit m << 4), u8 qs[64], f16 d, f16 dmin
 *                                                        v = f(d*sc) * q - f(dmin*m), q 2-bit
 *   Q3_K 110 B: u8 hmask[32], u8 qs[64], u8 scales[12] (16 6-bit scales), f16 d
 *                                                        v = f(d*(sc-32)) * (q - (hbit ? 0 : 4))
 *   Q5_K 176 B: f16 d, f16 dmin, u8 scales[12] (8 6-bit sc/m as Q4_K), u8 qh[32], u8 qs[128]
 *                                                        v = f(d*sc) * q - f(dmin*m), q 5-bit
 *   Q6_K 210 B: u8 ql[128], u8 qh[64], i8 scales[16], f16 d
 *                                                        v = f(d*sc) * (q - 32), q 6-bit
 */

const QK_K = 256;
const f = Math.fround;

const half = (b: Uint8Array, o: number): number => f16BitsToF32(b[o]! | (b[o + 1]! << 8));

/** Checks `n` values against whole blocks and the byte count; returns the block count. */
function blocks(type: string, blockSize: number, blockBytes: number, bytes: Uint8Array, n: number, name: string): number {
  if (!Number.isInteger(n) || n < 0 || n % blockSize !== 0) {
    throw new LowbitError("E_SHAPE_MISMATCH", `${name}: ${n} values are not whole ${type} blocks of ${blockSize}`);
  }
  const nb = n / blockSize;
  if (bytes.length !== nb * blockBytes) {
    throw new LowbitError("E_SHAPE_MISMATCH", `${name}: ${bytes.length} bytes, expected ${nb * blockBytes} for ${n} ${type} values (${nb} blocks of ${blockBytes} bytes)`);
  }
  return nb;
}

function output(out: Float32Array | undefined, n: number, name: string): Float32Array {
  if (!out) return new Float32Array(n);
  if (out.length < n) throw new LowbitError("E_SHAPE_MISMATCH", `${name}: output holds ${out.length} values, ${n} needed`);
  return out;
}

/** libggml's dequantize_row_q5_0. */
export function dequantizeQ5_0(bytes: Uint8Array, n: number, name = "Q5_0 tensor", out?: Float32Array): Float32Array {
  const nb = blocks("Q5_0", 32, 22, bytes, n, name);
  const y = output(out, n, name);
  for (let i = 0; i < nb; i++) {
    const o = i * 22;
    const d = half(bytes, o);
    const qh = (bytes[o + 2]! | (bytes[o + 3]! << 8) | (bytes[o + 4]! << 16) | (bytes[o + 5]! << 24)) >>> 0;
    for (let j = 0; j < 16; j++) {
      const q = bytes[o + 6 + j]!;
      y[i * 32 + j] = f((((q & 15) | (((qh >>> j) & 1) << 4)) - 16) * d);
      y[i * 32 + j + 16] = f((((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) - 16) * d);
    }
  }
  return y;
}

/** libggml's dequantize_row_q5_1. */
export function dequantizeQ5_1(bytes: Uint8Array, n: number, name = "Q5_1 tensor", out?: Float32Array): Float32Array {
  const nb = blocks("Q5_1", 32, 24, bytes, n, name);
  const y = output(out, n, name);
  for (let i = 0; i < nb; i++) {
    const o = i * 24;
    const d = half(bytes, o);
    const m = half(bytes, o + 2);
    const qh = (bytes[o + 4]! | (bytes[o + 5]! << 8) | (bytes[o + 6]! << 16) | (bytes[o + 7]! << 24)) >>> 0;
    for (let j = 0; j < 16; j++) {
      const q = bytes[o + 8 + j]!;
      y[i * 32 + j] = f(f(((q & 15) | (((qh >>> j) & 1) << 4)) * d) + m);
      y[i * 32 + j + 16] = f(f(((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) * d) + m);
    }
  }
  return y;
}

/** libggml's dequantize_row_q2_K. */
export function dequantizeQ2_K(bytes: Uint8Array, n: number, name = "Q2_K tensor", out?: Float32Array): Float32Array {
  const nb = blocks("Q2_K", QK_K, 84, bytes, n, name);
  const y = output(out, n, name);
  for (let i = 0; i < nb; i++) {
    const o = i * 84;
    const d = half(bytes, o + 80);
    const dmin = half(bytes, o + 82);
    let at = i * QK_K;
    let is = 0;
    for (let half128 = 0; half128 < 2; half128++) {
      const q = o + 16 + half128 * 32;
      for (let shift = 0; shift < 8; shift += 2) {
        for (let part = 0; part < 2; part++) {
          const sc = bytes[o + is++]!;
          const dl = f(d * (sc & 15));
          const ml = f(dmin * (sc >> 4));
          for (let l = 0; l < 16; l++) y[at++] = f(f(dl * ((bytes[q + part * 16 + l]! >> shift) & 3)) - ml);
        }
      }
    }
  }
  return y;
}

/** Scale `is` (0..15) of a Q3_K block: 4 low bits from bytes 0-7, 2 high bits from bytes 8-11; minus 32. */
function q3kScale(b: Uint8Array, s: number, is: number): number {
  const low = is < 8 ? b[s + is]! & 15 : b[s + is - 8]! >> 4;
  const high = (b[s + 8 + (is & 3)]! >> (2 * (is >> 2))) & 3;
  return (low | (high << 4)) - 32;
}

/** libggml's dequantize_row_q3_K. */
export function dequantizeQ3_K(bytes: Uint8Array, n: number, name = "Q3_K tensor", out?: Float32Array): Float32Array {
  const nb = blocks("Q3_K", QK_K, 110, bytes, n, name);
  const y = output(out, n, name);
  for (let i = 0; i < nb; i++) {
    const o = i * 110;
    const d = half(bytes, o + 108);
    let at = i * QK_K;
    let is = 0;
    let m = 1;
    for (let half128 = 0; half128 < 2; half128++) {
      const q = o + 32 + half128 * 32;
      for (let shift = 0; shift < 8; shift += 2) {
        for (let part = 0; part < 2; part++) {
          const dl = f(d * q3kScale(bytes, o + 96, is++));
          for (let l = 0; l < 16; l++) {
            const k = part * 16 + l;
            y[at++] = f(dl * (((bytes[q + k]! >> shift) & 3) - (bytes[o + k]! & m ? 0 : 4)));
          }
        }
        m <<= 1;
      }
    }
  }
  return y;
}

/** get_scale_min_k4: the 6-bit scale and min of sub-block j (0..7) from the 12 bytes at `s`. */
function scaleMinK4(b: Uint8Array, s: number, j: number): [number, number] {
  if (j < 4) return [b[s + j]! & 63, b[s + j + 4]! & 63];
  return [(b[s + j + 4]! & 15) | ((b[s + j - 4]! >> 6) << 4), (b[s + j + 4]! >> 4) | ((b[s + j]! >> 6) << 4)];
}

/** libggml's dequantize_row_q5_K. */
export function dequantizeQ5_K(bytes: Uint8Array, n: number, name = "Q5_K tensor", out?: Float32Array): Float32Array {
  const nb = blocks("Q5_K", QK_K, 176, bytes, n, name);
  const y = output(out, n, name);
  for (let i = 0; i < nb; i++) {
    const o = i * 176;
    const d = half(bytes, o);
    const dmin = half(bytes, o + 2);
    const qh = o + 16;
    let at = i * QK_K;
    for (let j = 0; j < 4; j++) {
      const ql = o + 48 + 32 * j;
      for (let nib = 0; nib < 2; nib++) {
        const [sc, mn] = scaleMinK4(bytes, o + 4, 2 * j + nib);
        const d1 = f(d * sc);
        const m1 = f(dmin * mn);
        const u = 1 << (2 * j + nib);
        const shift = 4 * nib;
        for (let l = 0; l < 32; l++) {
          const q = ((bytes[ql + l]! >> shift) & 15) + (bytes[qh + l]! & u ? 16 : 0);
          y[at++] = f(f(d1 * q) - m1);
        }
      }
    }
  }
  return y;
}

/** libggml's dequantize_row_q6_K. */
export function dequantizeQ6_K(bytes: Uint8Array, n: number, name = "Q6_K tensor", out?: Float32Array): Float32Array {
  const nb = blocks("Q6_K", QK_K, 210, bytes, n, name);
  const y = output(out, n, name);
  for (let i = 0; i < nb; i++) {
    const o = i * 210;
    const d = half(bytes, o + 208);
    for (let h = 0; h < 2; h++) {
      const ql = o + 64 * h;
      const qh = o + 128 + 32 * h;
      const sc = o + 192 + 8 * h;
      const yo = i * QK_K + 128 * h;
      for (let is = 0; is < 2; is++) {
        const s0 = f(d * ((bytes[sc + is]! << 24) >> 24));
        const s2 = f(d * ((bytes[sc + is + 2]! << 24) >> 24));
        const s4 = f(d * ((bytes[sc + is + 4]! << 24) >> 24));
        const s6 = f(d * ((bytes[sc + is + 6]! << 24) >> 24));
        for (let l = 16 * is; l < 16 * is + 16; l++) {
          const hb = bytes[qh + l]!;
          const a = bytes[ql + l]!;
          const b = bytes[ql + l + 32]!;
          y[yo + l] = f(s0 * (((a & 15) | ((hb & 3) << 4)) - 32));
          y[yo + l + 32] = f(s2 * (((b & 15) | (((hb >> 2) & 3) << 4)) - 32));
          y[yo + l + 64] = f(s4 * (((a >> 4) | (((hb >> 4) & 3) << 4)) - 32));
          y[yo + l + 96] = f(s6 * (((b >> 4) | (((hb >> 6) & 3) << 4)) - 32));
        }
      }
    }
  }
  return y;
}

/** Q4_K through @lowbit/int4, with the same byte-count check (and message) as the others. */
function dequantizeQ4_K(bytes: Uint8Array, n: number, name = "Q4_K tensor", out?: Float32Array): Float32Array {
  blocks("Q4_K", QK_K, 144, bytes, n, name);
  return dequantizeQ4_KRef(bytes, n, output(out, n, name));
}

type Decoder = (bytes: Uint8Array, n: number, name?: string, out?: Float32Array) => Float32Array;

/** Int4Linear options for a GGUF Q4_K or Q6_K tensor: f32 activations unless "quantized" is asked for. */
function kquantOptions(kind: "q4_k" | "q6_k", bias: Float32Array | undefined, name: string, act: GgufActivations | undefined): Int4LinearOptions {
  return act === "quantized" ? { bias, name, activations: "int8", kind: `${kind}-a8` } : { bias, name, activations: "f32", kind };
}

const entry = (id: number, name: string, blockSize: number, blockBytes: number, decode: Decoder): GgufTensorType => ({
  id,
  name,
  blockSize,
  blockBytes,
  toF32: (bytes, n) => decode(bytes, n, `${name} tensor`),
});

/**
 * The k-quant and 5-bit ggml types as GgufTensorType entries for the runtime's type table (ids as in
 * ggml.h). Q4_K and Q6_K have linears (Q4_KLinear, Q6_KLinear); the others decode to f32 at load.
 */
export const GGUF_KQUANT_TYPES: readonly GgufTensorType[] = [
  entry(6, "Q5_0", 32, 22, dequantizeQ5_0),
  entry(7, "Q5_1", 32, 24, dequantizeQ5_1),
  entry(10, "Q2_K", QK_K, 84, dequantizeQ2_K),
  entry(11, "Q3_K", QK_K, 110, dequantizeQ3_K),
  {
    ...entry(12, "Q4_K", QK_K, 144, dequantizeQ4_K),
    linear: (bytes, out, inp, bias, name, act) => new Q4_KLinear(bytes, out, inp, kquantOptions("q4_k", bias, name, act)),
  },
  entry(13, "Q5_K", QK_K, 176, dequantizeQ5_K),
  {
    ...entry(14, "Q6_K", QK_K, 210, dequantizeQ6_K),
    // quantized activations: the int8 tile kernels (Q8_0-style activations, two scales per block);
    // f32 activations: Int4Linear's 8-bit containers with groups of 16
    linear: (bytes, out, inp, bias, name, act) =>
      act === "quantized" ? new Q6_KTiledLinear(bytes, out, inp, { bias, name }) : new Q6_KLinear(bytes, out, inp, kquantOptions("q6_k", bias, name, act)),
  },
];

const DECODERS = new Map<number, Decoder>([
  [6, dequantizeQ5_0],
  [7, dequantizeQ5_1],
  [10, dequantizeQ2_K],
  [11, dequantizeQ3_K],
  [12, dequantizeQ4_K],
  [13, dequantizeQ5_K],
  [14, dequantizeQ6_K],
]);

/**
 * The decoder for a ggml type id (6, 7, 10-14), or undefined for other types. `name` (the tensor)
 * appears in errors: a value count that is not whole blocks or a byte count that does not match.
 */
export function kQuantDecoder(type: number): ((bytes: Uint8Array, n: number, name?: string, out?: Float32Array) => Float32Array) | undefined {
  return DECODERS.get(type);
}
