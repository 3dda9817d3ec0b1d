import { LowbitError } from "@lowbit/tensor";

/**
 * Bit packing of small unsigned codes as a little-endian bit stream: code i occupies bits
 * [i*bits, (i+1)*bits) of the stream, low bits first. This is the layout of GPTQ's qweight/qzeros
 * (for 2/4/8 bits, `32/bits` codes per int32 word; for 3 bits, 32 codes in 3 words with codes 10 and
 * 21 straddling word boundaries) and of ONNX Runtime MatMulNBits' B (low nibble first).
 */

function checkPackBits(bits: number, where: string): void {
  if (!(Number.isInteger(bits) && bits >= 1 && bits <= 8)) {
    throw new LowbitError("E_INVALID_ARGUMENT", `${where}: bits must be an integer in 1..8, got ${bits}`);
  }
}

/** Writes `value` (masked to `bits`) at bit position `pos` of 32-bit words. */
export function writeBits32(words: Int32Array | Uint32Array, pos: number, value: number, bits: number): void {
  const w = pos >>> 5;
  const s = pos & 31;
  const v = value & ((1 << bits) - 1);
  words[w] = words[w]! | (v << s);
  if (s + bits > 32) words[w + 1] = words[w + 1]! | (v >>> (32 - s));
}

/** Reads `bits` bits at bit position `pos` of 32-bit words. */
export function readBits32(words: Int32Array | Uint32Array, pos: number, bits: number): number {
  const w = pos >>> 5;
  const s = pos & 31;
  let v = words[w]! >>> s;
  if (s + bits > 32) v |= words[w + 1]! << (32 - s);
  return v & ((1 << bits) - 1);
}

/** Packs codes into a byte stream, low bits first; ceil(n*bits/8) bytes. Codes must fit in `bits`. */
export function packBits(codes: ArrayLike<number>, bits: number, out?: Uint8Array): Uint8Array {
  checkPackBits(bits, "packBits");
  const n = codes.length;
  const bytes = Math.ceil((n * bits) / 8);
  const dst = out ?? new Uint8Array(bytes);
  if (dst.length < bytes) {
    throw new LowbitError("E_SHAPE_MISMATCH", `packBits: output has ${dst.length} bytes, ${bytes} needed`);
  }
  dst.fill(0, 0, bytes);
  const max = (1 << bits) - 1;
  if (bits === 4) {
    for (let i = 0; i < n; i++) {
      const c = codes[i]!;
      if (!(c >= 0 && c <= max)) throw badCode("packBits", i, c, bits);
      dst[i >> 1] = dst[i >> 1]! | (c << ((i & 1) << 2));
    }
    return dst;
  }
  for (let i = 0; i < n; i++) {
    const c = codes[i]!;
    if (!(c >= 0 && c <= max && Number.isInteger(c))) throw badCode("packBits", i, c, bits);
    const pos = i * bits;
    const b = pos >>> 3;
    const s = pos & 7;
    dst[b] = dst[b]! | ((c << s) & 0xff);
    if (s + bits > 8) dst[b + 1] = dst[b + 1]! | (c >>> (8 - s));
  }
  return dst;
}

/** Unpacks `count` codes of `bits` bits from a low-bits-first byte stream. */
export function unpackBits(bytes: Uint8Array, bits: number, count: number, out?: Uint8Array): Uint8Array {
  checkPackBits(bits, "unpackBits");
  const need = Math.ceil((count * bits) / 8);
  if (bytes.length < need) {
    throw new LowbitError("E_SHAPE_MISMATCH", `unpackBits: ${count} ${bits}-bit codes need ${need} bytes, got ${bytes.length}`);
  }
  const dst = out ?? new Uint8Array(count);
  const mask = (1 << bits) - 1;
  for (let i = 0; i < count; i++) {
    const pos = i * bits;
    const b = pos >>> 3;
    const s = pos & 7;
    let v = bytes[b]! >>> s;
    if (s + bits > 8) v |= bytes[b + 1]! << (8 - s);
    dst[i] = v & mask;
  }
  return dst;
}

export function badCode(where: string, index: number, code: number, bits: number): LowbitError {
  return new LowbitError(
    "E_INVALID_ARGUMENT",
    `${where}: code ${code} at index ${index} does not fit in ${bits} bits (0..${(1 << bits) - 1})`,
  );
}
