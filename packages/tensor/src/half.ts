/**
 * IEEE 754 binary16 (f16) and bfloat16 (bf16) codecs.
 *
 * Encoding rounds to nearest, ties to even; values beyond the largest finite half round to
 * infinity exactly where IEEE says (f16: |x| >= 65520; bf16: |x| >= 2^128 - 2^119); subnormals are
 * produced and decoded exactly; NaN stays NaN (quieted, keeping the top payload bits); the sign of
 * zero is kept. The scalar functions take a JS number and first round it to f32 (`Math.fround`),
 * so they agree bit for bit with the array codecs on Float32Array input.
 */

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** Rounds the f32 with bits `b` to f16 bits. */
function f32BitsToF16Bits(b: number): number {
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13);
  if (exp >= 143) return sign | 0x7c00; // >= 2^16: beyond rounding range
  if (exp >= 113) {
    // normal half: e in 1..30; rounding may carry into the exponent (and up to infinity)
    let h = ((exp - 112) << 10) | (mant >>> 13);
    const rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && (h & 1) !== 0)) h++;
    return sign | h;
  }
  if (exp < 102) return sign; // < 2^-25: rounds to zero (2^-25 itself is a tie to 0)
  // subnormal half: m = round(sig * 2^(exp - 126)), shift in 14..24
  const sig = mant | 0x800000;
  const shift = 126 - exp;
  let m = sig >>> shift;
  const rem = sig & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rem > half || (rem === half && (m & 1) !== 0)) m++;
  return sign | m; // a carry to 0x400 is the smallest normal, as it should be
}

/** f16 bits -> f32 bits (exact). */
function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0;
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
  if (mant === 0) return sign >>> 0;
  // subnormal: normalise
  let e = 113;
  let m = mant;
  while ((m & 0x400) === 0) {
    m <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((m & 0x3ff) << 13)) >>> 0;
}

let decodeTable: Uint32Array | undefined;
function f16Table(): Uint32Array {
  if (!decodeTable) {
    decodeTable = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) decodeTable[h] = f16BitsToF32Bits(h);
  }
  return decodeTable;
}

/** Rounds `x` (first to f32, then) to the nearest f16; returns its 16 bits. */
export function f32ToF16Bits(x: number): number {
  scratchF32[0] = x;
  return f32BitsToF16Bits(scratchU32[0]!);
}

/** The value of the f16 with bits `h` (exact). */
export function f16BitsToF32(h: number): number {
  scratchU32[0] = f16BitsToF32Bits(h & 0xffff);
  return scratchF32[0]!;
}

/** Encodes f32 values as f16 bits (round to nearest even). */
export function encodeF16(src: Float32Array, out: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < bits.length; i++) out[i] = f32BitsToF16Bits(bits[i]!);
  return out;
}

/** Decodes f16 bits to f32 (exact; NaN payloads kept). */
export function decodeF16(src: Uint16Array, out: Float32Array = new Float32Array(src.length)): Float32Array {
  const table = f16Table();
  const dst = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < src.length; i++) dst[i] = table[src[i]!]!;
  return out;
}

/** Rounds the f32 with bits `b` to bf16 bits. */
function f32BitsToBf16Bits(b: number): number {
  if ((b & 0x7fffffff) > 0x7f800000) return ((b >>> 16) | 0x40) & 0xffff; // NaN: quiet, keep payload top
  // round to nearest even on the low 16 bits; a carry rolls into the exponent (and to infinity)
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Rounds `x` (first to f32, then) to the nearest bf16; returns its 16 bits. */
export function f32ToBf16Bits(x: number): number {
  scratchF32[0] = x;
  return f32BitsToBf16Bits(scratchU32[0]!);
}

/** The value of the bf16 with bits `h` (exact). */
export function bf16BitsToF32(h: number): number {
  scratchU32[0] = (h & 0xffff) << 16;
  return scratchF32[0]!;
}

/** Encodes f32 values as bf16 bits (round to nearest even). */
export function encodeBf16(src: Float32Array, out: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < bits.length; i++) out[i] = f32BitsToBf16Bits(bits[i]!);
  return out;
}

/** Decodes bf16 bits to f32 (exact). */
export function decodeBf16(src: Uint16Array, out: Float32Array = new Float32Array(src.length)): Float32Array {
  const dst = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < src.length; i++) dst[i] = src[i]! << 16;
  return out;
}
