import { f16BitsToF32, f32ToF16Bits, LowbitError, registerDType } from "@lowbit/tensor";
import { roundHalfEven } from "./group-params";
import type { QuantizedMatrix } from "./quantized-matrix";
import { assertFinite } from "./rtn";

/**
 * GGUF Q4_K: super-blocks of 256 values in 144 bytes {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]}.
 * Eight sub-blocks of 32 values each have a 6-bit scale sc and a 6-bit min m (packed in `scales`);
 * value = d*sc * q - dmin*m with 4-bit q. qs holds, for each 64 values, byte l = q[l] | q[l+32] << 4.
 *
 * quantizeQ4_KRef is llama.cpp's quantize_row_q4_K_ref (make_qkx2_quants with weights
 * av_x + |x|, 20 steps of the scale search), computed in f32 like ggml so the bytes agree exactly.
 */

const QK_K = 32 * 8;
const BLOCK_BYTES = 144;
const f = Math.fround;

/** ggml's nearest_int: adds 1.5 * 2^23 in f32, i.e. round half to even. */
function nearestInt(x: number): number {
  return roundHalfEven(f(x));
}

/** Registers "q4_k" (256 values / 144 bytes) in @lowbit/tensor's dtype table (idempotent). */
export function registerQ4KDType(): void {
  registerDType({ name: "q4_k", blockSize: QK_K, blockBytes: BLOCK_BYTES, kind: "packed" });
}

/** make_qkx2_quants for n values at x[o..o+n): returns scale, writes L and theMin[0] (= -min). */
function makeQkx2(
  n: number,
  nmax: number,
  x: Float32Array,
  o: number,
  weights: Float32Array,
  L: Uint8Array,
  lo: number,
  theMin: Float32Array,
  Laux: Uint8Array,
  rmin: number,
  rdelta: number,
  nstep: number,
): number {
  let min = x[o]!;
  let max = x[o]!;
  let sumW = weights[0]!;
  let sumX = f(sumW * x[o]!);
  for (let i = 1; i < n; i++) {
    const v = x[o + i]!;
    if (v < min) min = v;
    if (v > max) max = v;
    const w = weights[i]!;
    sumW = f(sumW + w);
    sumX = f(sumX + f(w * v));
  }
  if (min > 0) min = 0;
  if (max === min) {
    for (let i = 0; i < n; i++) L[lo + i] = 0;
    theMin[0] = -min;
    return 0;
  }
  let iscale = f(nmax / f(max - min));
  let scale = f(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const l = nearestInt(f(iscale * f(x[o + i]! - min)));
    const q = Math.max(0, Math.min(nmax, l));
    L[lo + i] = q;
    let diff = f(f(f(scale * q) + min) - x[o + i]!);
    diff = f(diff * diff);
    bestError = f(bestError + f(weights[i]! * diff));
  }
  for (let is = 0; is <= nstep; is++) {
    iscale = f(f(f(rmin + f(rdelta * is)) + nmax) / f(max - min));
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      let l = nearestInt(f(iscale * f(x[o + i]! - min)));
      l = Math.max(0, Math.min(nmax, l));
      Laux[i] = l;
      const w = weights[i]!;
      const wl = f(w * l);
      sumL = f(sumL + wl);
      sumL2 = f(sumL2 + f(wl * l));
      sumXL = f(sumXL + f(wl * x[o + i]!));
    }
    const D = f(f(sumW * sumL2) - f(sumL * sumL));
    if (D > 0) {
      let thisScale = f(f(f(sumW * sumXL) - f(sumX * sumL)) / D);
      let thisMin = f(f(f(sumL2 * sumX) - f(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = f(sumXL / sumL2);
      }
      let cur = 0;
      for (let i = 0; i < n; i++) {
        let diff = f(f(f(thisScale * Laux[i]!) + thisMin) - x[o + i]!);
        diff = f(diff * diff);
        cur = f(cur + f(weights[i]! * diff));
      }
      if (cur < bestError) {
        for (let i = 0; i < n; i++) L[lo + i] = Laux[i]!;
        bestError = cur;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  theMin[0] = -min;
  return scale;
}

/** ggml get_scale_min_k4: the 6-bit scale and min of sub-block j from the 12 packed bytes at p. */
export function q4kScaleMin(b: Uint8Array, p: number, j: number): [sc: number, m: number] {
  if (j < 4) return [b[p + j]! & 63, b[p + j + 4]! & 63];
  return [(b[p + j + 4]! & 0xf) | ((b[p + j - 4]! >> 6) << 4), (b[p + j + 4]! >> 4) | ((b[p + j]! >> 6) << 4)];
}

function getF16(b: Uint8Array, o: number): number {
  return f16BitsToF32(b[o]! | (b[o + 1]! << 8));
}

function putF16(b: Uint8Array, o: number, x: number): void {
  const h = f32ToF16Bits(x);
  b[o] = h & 0xff;
  b[o + 1] = h >>> 8;
}

function checkK(n: number, where: string): number {
  if (!(Number.isInteger(n) && n >= 0 && n % QK_K === 0)) {
    throw new LowbitError("E_SHAPE_MISMATCH", `${where}: ${n} values are not a whole number of 256-value super-blocks`);
  }
  return n / QK_K;
}

/** llama.cpp quantize_row_q4_K_ref, byte for byte. x.length must be a multiple of 256. */
export function quantizeQ4_KRef(x: Float32Array, out?: Uint8Array): Uint8Array {
  const nb = checkK(x.length, "quantizeQ4_KRef");
  const y = out ?? new Uint8Array(nb * BLOCK_BYTES);
  if (y.length < nb * BLOCK_BYTES) throw new LowbitError("E_SHAPE_MISMATCH", `quantizeQ4_KRef: output has ${y.length} bytes, ${nb * BLOCK_BYTES} needed`);
  const L = new Uint8Array(QK_K);
  const Laux = new Uint8Array(32);
  const weights = new Float32Array(32);
  const mins = new Float32Array(8);
  const scales = new Float32Array(8);
  const theMin = new Float32Array(1);
  for (let i = 0; i < nb; i++) {
    const xo = i * QK_K;
    const yo = i * BLOCK_BYTES;
    y.fill(0, yo, yo + BLOCK_BYTES);
    let maxScale = 0;
    let maxMin = 0;
    for (let j = 0; j < 8; j++) {
      let sumX2 = 0;
      for (let l = 0; l < 32; l++) {
        const v = x[xo + 32 * j + l]!;
        sumX2 = f(sumX2 + f(v * v));
      }
      const avX = f(Math.sqrt(f(sumX2 / 32)));
      for (let l = 0; l < 32; l++) weights[l] = f(avX + Math.abs(x[xo + 32 * j + l]!));
      scales[j] = makeQkx2(32, 15, x, xo + 32 * j, weights, L, 32 * j, theMin, Laux, -1, f(0.1), 20);
      mins[j] = theMin[0]!;
      if (scales[j]! > maxScale) maxScale = scales[j]!;
      if (mins[j]! > maxMin) maxMin = mins[j]!;
    }
    const invScale = maxScale > 0 ? f(63 / maxScale) : 0;
    const invMin = maxMin > 0 ? f(63 / maxMin) : 0;
    const sp = yo + 4;
    for (let j = 0; j < 8; j++) {
      const ls = Math.min(63, nearestInt(f(invScale * scales[j]!)) & 0xff);
      const lm = Math.min(63, nearestInt(f(invMin * mins[j]!)) & 0xff);
      if (j < 4) {
        y[sp + j] = ls;
        y[sp + j + 4] = lm;
      } else {
        y[sp + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
        y[sp + j - 4] = y[sp + j - 4]! | ((ls >> 4) << 6);
        y[sp + j] = y[sp + j]! | ((lm >> 4) << 6);
      }
    }
    putF16(y, yo, f(maxScale / 63));
    putF16(y, yo + 2, f(maxMin / 63));
    const d0 = getF16(y, yo);
    const dmin0 = getF16(y, yo + 2);
    for (let j = 0; j < 8; j++) {
      const [sc, m] = q4kScaleMin(y, sp, j);
      const d = f(d0 * sc);
      if (!d) continue;
      const dm = f(dmin0 * m);
      for (let ii = 0; ii < 32; ii++) {
        const l = nearestInt(f(f(x[xo + 32 * j + ii]! + dm) / d));
        L[32 * j + ii] = Math.max(0, Math.min(15, l));
      }
    }
    const qo = yo + 16;
    for (let j = 0; j < QK_K; j += 64) {
      for (let l = 0; l < 32; l++) y[qo + j / 2 + l] = L[j + l]! | (L[j + l + 32]! << 4);
    }
  }
  return y;
}

/** llama.cpp dequantize_row_q4_K: value = f32(d*sc) * q - f32(dmin*m). */
export function dequantizeQ4_KRef(bytes: Uint8Array, n: number, out?: Float32Array): Float32Array {
  const nb = checkK(n, "dequantizeQ4_KRef");
  if (bytes.length < nb * BLOCK_BYTES) {
    throw new LowbitError("E_SHAPE_MISMATCH", `dequantizeQ4_KRef: ${n} values need ${nb * BLOCK_BYTES} bytes, got ${bytes.length}`);
  }
  const y = out ?? new Float32Array(n);
  for (let i = 0; i < nb; i++) {
    const o = i * BLOCK_BYTES;
    const d = getF16(bytes, o);
    const dmin = getF16(bytes, o + 2);
    for (let j = 0; j < 8; j++) {
      const [sc, m] = q4kScaleMin(bytes, o + 4, j);
      const d1 = f(d * sc);
      const m1 = f(dmin * m);
      const qo = o + 16 + (j >> 1) * 32;
      const shift = (j & 1) * 4;
      for (let l = 0; l < 32; l++) y[i * QK_K + 32 * j + l] = f(f(d1 * ((bytes[qo + l]! >> shift) & 15)) - m1);
    }
  }
  return y;
}

/** Quantizes a weight [rows, cols] to Q4_K with the reference quantizer (cols a multiple of 256). */
export function quantizeQ4_K(w: Float32Array, rows: number, cols: number, name = "weight"): Uint8Array {
  registerQ4KDType();
  if (!(cols > 0 && cols % QK_K === 0)) {
    throw new LowbitError("E_SHAPE_MISMATCH", `q4_k ${name}: row length ${cols} is not a multiple of 256 (the Q4_K super-block)`);
  }
  if (w.length !== rows * cols) throw new LowbitError("E_SHAPE_MISMATCH", `q4_k ${name}: ${w.length} values, expected ${rows}*${cols}`);
  assertFinite(w, name, cols);
  return quantizeQ4_KRef(w);
}

/**
 * Q4_K bytes -> QuantizedMatrix (bits 4, groupSize 32): sub-block scale d*sc, zero dmin*m / (d*sc)
 * (a float zero); a sub-block with d*sc = 0 becomes scale -dmin*m, zero -1, codes 0 (same values).
 */
export function q4kToQuantizedMatrix(bytes: Uint8Array, rows: number, cols: number, name = "weight"): QuantizedMatrix {
  if (!(cols > 0 && cols % QK_K === 0 && rows > 0)) {
    throw new LowbitError("E_SHAPE_MISMATCH", `q4_k ${name}: row length ${cols} is not a positive multiple of 256`);
  }
  const nb = (rows * cols) / QK_K;
  if (bytes.length !== nb * BLOCK_BYTES) {
    throw new LowbitError("E_SHAPE_MISMATCH", `q4_k ${name}: ${bytes.length} bytes, expected ${nb * BLOCK_BYTES} for ${rows}x${cols}`);
  }
  const q = new Uint8Array(rows * cols);
  const scales = new Float32Array(nb * 8);
  const zeros = new Float32Array(nb * 8);
  for (let i = 0; i < nb; i++) {
    const o = i * BLOCK_BYTES;
    const d = getF16(bytes, o);
    const dmin = getF16(bytes, o + 2);
    for (let j = 0; j < 8; j++) {
      const [sc, m] = q4kScaleMin(bytes, o + 4, j);
      const d1 = f(d * sc);
      const m1 = f(dmin * m);
      const g = i * 8 + j;
      const qo = o + 16 + (j >> 1) * 32;
      const shift = (j & 1) * 4;
      if (d1 === 0) {
        scales[g] = -m1;
        zeros[g] = -1;
        continue; // codes stay 0
      }
      scales[g] = d1;
      zeros[g] = f(m1 / d1);
      for (let l = 0; l < 32; l++) q[g * 32 + l] = (bytes[qo + l]! >> shift) & 15;
    }
  }
  return { bits: 4, groupSize: 32, rows, cols, sym: false, q, scales, zeros };
}
