import { f16BitsToF32, f32ToF16Bits, getEngine, LowbitError, registerDType } from "@lowbit/tensor";
import { firstNonFinite, label, nonFiniteError } from "./finite";
import { q80Kernels, useWasm, withScratch } from "./kernels";

/**
 * GGUF Q8_0 (ggml type 8): blocks of 32 values stored as {f16 d; int8 q[32]} in 34 bytes, with
 * d = amax / 127 and q = roundf(x * (1 / d)) (round half away from zero), bit for bit as
 * llama.cpp's quantize_row_q8_0_ref: amax, d and 1/d are f32; d is stored rounded to f16, while
 * q uses the unrounded 1/d. Decoding is q * f16(d).
 */
export const Q8_0_BLOCK_SIZE = 32;
export const Q8_0_BLOCK_BYTES = 34;

/** Registers the "q8_0" dtype (32 values in 34 bytes) in @lowbit/tensor's table; idempotent. */
export function registerQ8_0(): void {
  registerDType({ name: "q8_0", blockSize: Q8_0_BLOCK_SIZE, blockBytes: Q8_0_BLOCK_BYTES, kind: "packed" });
}

export interface Q8_0EncodeOptions {
  /** Tensor name for error messages. */
  name?: string;
  /** Destination, at least (n / 32) * 34 bytes. */
  out?: Uint8Array;
}

/** Smallest d that rounds to infinity in f16 (65504 is the largest finite half). */
const F16_OVERFLOW = 65520;

function checkCount(n: number, name: string | undefined): number {
  if (n % Q8_0_BLOCK_SIZE !== 0) {
    throw new LowbitError(
      "E_SHAPE_MISMATCH",
      `${label(name)}: Q8_0 stores blocks of ${Q8_0_BLOCK_SIZE} values, but it has ${n} values ` +
        `(${n % Q8_0_BLOCK_SIZE} left over); the row length must be a multiple of ${Q8_0_BLOCK_SIZE}`,
    );
  }
  return n / Q8_0_BLOCK_SIZE;
}

function outFor(nb: number, out: Uint8Array | undefined): Uint8Array {
  const bytes = nb * Q8_0_BLOCK_BYTES;
  if (out && out.length < bytes) {
    throw new LowbitError("E_SHAPE_MISMATCH", `Q8_0 output holds ${out.length} bytes, needs ${bytes}`);
  }
  return out ?? new Uint8Array(bytes);
}

function scaleOverflow(name: string | undefined, block: number, d: number): LowbitError {
  return new LowbitError(
    "E_INVALID_ARGUMENT",
    `${label(name)}: Q8_0 block ${block} needs scale ${d}, beyond the f16 range (65504); values this large cannot be stored as Q8_0`,
  );
}

/** C roundf: round half away from zero. */
function roundAway(v: number): number {
  return v < 0 ? -Math.round(-v) : Math.round(v);
}

/** Reference Q8_0 encoder (llama.cpp quantize_row_q8_0_ref). */
export function quantizeQ8_0Ref(x: Float32Array, opts: Q8_0EncodeOptions = {}): Uint8Array {
  registerQ8_0();
  const nb = checkCount(x.length, opts.name);
  const bad = firstNonFinite(x);
  if (bad >= 0) throw nonFiniteError(x, bad, opts.name);
  const out = outFor(nb, opts.out);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const f = Math.fround;
  for (let b = 0; b < nb; b++) {
    const base = b * Q8_0_BLOCK_SIZE;
    let amax = 0;
    for (let j = 0; j < Q8_0_BLOCK_SIZE; j++) amax = Math.max(amax, Math.abs(x[base + j]!));
    const d = f(amax / 127);
    if (d >= F16_OVERFLOW) throw scaleOverflow(opts.name, b, d);
    const id = d !== 0 ? f(1 / d) : 0;
    const o = b * Q8_0_BLOCK_BYTES;
    view.setUint16(o, f32ToF16Bits(d), true);
    for (let j = 0; j < Q8_0_BLOCK_SIZE; j++) view.setInt8(o + 2 + j, roundAway(f(x[base + j]! * id)));
  }
  return out;
}

function blockCountOfBytes(bytes: Uint8Array, count: number | undefined): number {
  if (bytes.length % Q8_0_BLOCK_BYTES !== 0) {
    throw new LowbitError(
      "E_SHAPE_MISMATCH",
      `Q8_0 data has ${bytes.length} bytes, not a whole number of ${Q8_0_BLOCK_BYTES}-byte blocks`,
    );
  }
  const nb = bytes.length / Q8_0_BLOCK_BYTES;
  if (count !== undefined) {
    const want = checkCount(count, undefined);
    if (want > nb) {
      throw new LowbitError("E_SHAPE_MISMATCH", `Q8_0 data holds ${nb * 32} values, ${count} requested`);
    }
    return want;
  }
  return nb;
}

/** Reference Q8_0 decoder: value = q * f16(d). `count` defaults to all values in `bytes`. */
export function dequantizeQ8_0Ref(bytes: Uint8Array, count?: number, out?: Float32Array): Float32Array {
  registerQ8_0();
  const nb = blockCountOfBytes(bytes, count);
  const n = nb * Q8_0_BLOCK_SIZE;
  if (out && out.length < n) throw new LowbitError("E_SHAPE_MISMATCH", `Q8_0 decode output holds ${out.length} values, needs ${n}`);
  const y = out ?? new Float32Array(n);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let b = 0; b < nb; b++) {
    const o = b * Q8_0_BLOCK_BYTES;
    const d = f16BitsToF32(view.getUint16(o, true));
    for (let j = 0; j < Q8_0_BLOCK_SIZE; j++) y[b * Q8_0_BLOCK_SIZE + j] = view.getInt8(o + 2 + j) * d;
  }
  return y;
}

/** Q8_0 encoder, WebAssembly SIMD fast path; bytes identical to quantizeQ8_0Ref. */
export function quantizeQ8_0(x: Float32Array, opts: Q8_0EncodeOptions = {}): Uint8Array {
  if (!useWasm()) return quantizeQ8_0Ref(x, opts);
  registerQ8_0();
  const nb = checkCount(x.length, opts.name);
  const out = outFor(nb, opts.out);
  if (nb === 0) return out;
  withScratch([x.length * 4, nb * Q8_0_BLOCK_BYTES], ([xp, qp]) => {
    const e = getEngine();
    e.f32(xp!, x.length).set(x);
    const bad = q80Kernels().q8_0_quantize(xp!, qp!, nb);
    if (bad >= 0) {
      const i = firstNonFinite(x, bad * Q8_0_BLOCK_SIZE);
      throw nonFiniteError(x, i, opts.name);
    }
    const bytes = e.u8(qp!, nb * Q8_0_BLOCK_BYTES);
    for (let b = 0; b < nb; b++) {
      const h = bytes[b * 34]! | (bytes[b * 34 + 1]! << 8);
      if ((h & 0x7c00) === 0x7c00) throw scaleOverflow(opts.name, b, f16BitsToF32(h));
    }
    out.set(bytes);
  });
  return out;
}

/** Q8_0 decoder, WebAssembly SIMD fast path. */
export function dequantizeQ8_0(bytes: Uint8Array, count?: number, out?: Float32Array): Float32Array {
  if (!useWasm()) return dequantizeQ8_0Ref(bytes, count, out);
  registerQ8_0();
  const nb = blockCountOfBytes(bytes, count);
  const n = nb * Q8_0_BLOCK_SIZE;
  if (out && out.length < n) throw new LowbitError("E_SHAPE_MISMATCH", `Q8_0 decode output holds ${out.length} values, needs ${n}`);
  const y = out ?? new Float32Array(n);
  if (nb === 0) return y;
  withScratch([nb * Q8_0_BLOCK_BYTES, n * 4], ([qp, yp]) => {
    const e = getEngine();
    e.u8(qp!, nb * Q8_0_BLOCK_BYTES).set(bytes.subarray(0, nb * Q8_0_BLOCK_BYTES));
    q80Kernels().q8_0_dequantize(qp!, yp!, nb);
    y.set(e.f32(yp!, n));
  });
  return y;
}
