import { getEngine, LowbitError } from "@lowbit/tensor";
import { runGemmI16I8 } from "./integer-gemm";
import { GEMM_MODULE, useWasm, withScratch } from "./kernels";
import { checkDims, checkLen, Int8Weights } from "./packed";
import type { QuantizedValues } from "./quantize";
import { runColumns } from "./threads";

/**
 * int8 GEMM / GEMV. Convention: C[m, n] = A[m, k] . B[n, k]^T, B being weights [out, in] like
 * nn.Linear. Integer products are exact (i32); the scaled variants apply per-row activation
 * scales/zero points and per-channel weight scales in a fixed f32 order shared by the reference
 * and the fast path:
 *   y = f32(acc - aZero[i] * wSum[j]) * f32(aScale[i] * wScale[j]) (+ bias[j]).
 */

// ---- exact integer GEMM -------------------------------------------------------------------------

export function gemmI8Ref(a: Int8Array, b: Int8Array, m: number, n: number, k: number, out?: Int32Array): Int32Array {
  checkDims("gemmI8", m, n, k);
  checkLen("gemmI8: a", a, m * k);
  checkLen("gemmI8: b", b, n * k);
  checkLen("gemmI8: out", out, m * n);
  const c = out ?? new Int32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += a[i * k + t]! * b[j * k + t]!;
      c[i * n + j] = s;
    }
  }
  return c;
}

/** C i32 [m, n] = A i8 [m, k] . B i8 [n, k]^T (WebAssembly SIMD; copies operands into kernel memory). */
export function gemmI8(a: Int8Array, b: Int8Array, m: number, n: number, k: number, out?: Int32Array): Int32Array {
  if (!useWasm()) return gemmI8Ref(a, b, m, n, k, out);
  checkDims("gemmI8", m, n, k);
  checkLen("gemmI8: a", a, m * k);
  checkLen("gemmI8: b", b, n * k);
  checkLen("gemmI8: out", out, m * n);
  const c = out ?? new Int32Array(m * n);
  if (m === 0 || n === 0) return c;
  const w = new Int8Weights(b, n, k);
  try {
    w.gemmI8(a, m, c);
  } finally {
    w.dispose();
  }
  return c;
}

/** y i32 [n] = W i8 [n, k] . x i8 [k]. */
export function gemvI8Ref(w: Int8Array, x: Int8Array, n: number, k: number, out?: Int32Array): Int32Array {
  return gemmI8Ref(x, w, 1, n, k, out);
}

export function gemvI8(w: Int8Array, x: Int8Array, n: number, k: number, out?: Int32Array): Int32Array {
  return gemmI8(x, w, 1, n, k, out);
}

// ---- scaled W8A8 GEMM ------------------------------------------------------------------------------

export interface ScaledGemmOptions {
  bias?: Float32Array;
  out?: Float32Array;
}

/**
 * The scaled integer GEMM on resident weights, reference twin. aq holds activation values
 * (int8 or uint8, any integer array) [m, lda].
 */
export function scaledPackedRef(
  aq: ArrayLike<number>,
  lda: number,
  aScale: Float32Array,
  aZero: Int32Array,
  w: Int8Weights,
  m: number,
  out: Float32Array,
): void {
  const { n, k, kp } = w;
  const q = w.q();
  const ws = w.scale();
  const sums = w.wsum();
  const bias = w.bias();
  const f = Math.fround;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let t = 0; t < k; t++) acc += aq[i * lda + t]! * q[j * kp + t]!;
      const corr = (acc - aZero[i]! * sums[j]!) | 0;
      let y = f(f(corr) * f(aScale[i]! * ws[j]!));
      if (bias) y = f(y + bias[j]!);
      out[i * n + j] = y;
    }
  }
}

/**
 * The scaled integer GEMM on resident weights, fast path: a16 i16 [m, kp] in kernel memory. Split
 * by output columns over the kernel threads when they are on (bit-identical to one thread).
 */
export function scaledPackedWasm(a16: number, aScale: number, aZero: number, w: Int8Weights, m: number, outPtr: number): void {
  runGemmI16I8(a16, w.qPtr, outPtr, m, w.n, w.kp, 1, aScale, aZero, w.scalePtr, w.sumPtr, w.biasPtr);
}

function checkScaled(
  aq: QuantizedValues,
  aScale: Float32Array,
  aZero: Int32Array,
  wq: Int8Array,
  wScale: Float32Array,
  m: number,
  n: number,
  k: number,
  opts: ScaledGemmOptions,
): void {
  checkDims("gemmScaledI8", m, n, k);
  checkLen("gemmScaledI8: activations", aq, m * k);
  checkLen("gemmScaledI8: activation scales", aScale, m);
  checkLen("gemmScaledI8: activation zero points", aZero, m);
  checkLen("gemmScaledI8: weights", wq, n * k);
  checkLen("gemmScaledI8: weight scales", wScale, n);
  checkLen("gemmScaledI8: bias", opts.bias, n);
  checkLen("gemmScaledI8: out", opts.out, m * n);
}

/**
 * y f32 [m, n] from quantized activations aq [m, k] (int8 or uint8; per-row scale and zero point:
 * per token, or the same value in every row for per tensor) and symmetric int8 weights wq [n, k]
 * with per-channel scales: y = aScale[i] * wScale[j] * sum_t (aq[i,t] - aZero[i]) * wq[j,t] (+ bias).
 */
export function gemmScaledI8Ref(
  aq: QuantizedValues,
  aScale: Float32Array,
  aZero: Int32Array,
  wq: Int8Array,
  wScale: Float32Array,
  m: number,
  n: number,
  k: number,
  opts: ScaledGemmOptions = {},
): Float32Array {
  checkScaled(aq, aScale, aZero, wq, wScale, m, n, k, opts);
  const out = opts.out ?? new Float32Array(m * n);
  const f = Math.fround;
  for (let j = 0; j < n; j++) {
    let sum = 0;
    for (let t = 0; t < k; t++) sum += wq[j * k + t]!;
    for (let i = 0; i < m; i++) {
      let acc = 0;
      for (let t = 0; t < k; t++) acc += aq[i * k + t]! * wq[j * k + t]!;
      const corr = (acc - aZero[i]! * sum) | 0;
      let y = f(f(corr) * f(aScale[i]! * wScale[j]!));
      if (opts.bias) y = f(y + opts.bias[j]!);
      out[i * n + j] = y;
    }
  }
  return out;
}

export function gemmScaledI8(
  aq: QuantizedValues,
  aScale: Float32Array,
  aZero: Int32Array,
  wq: Int8Array,
  wScale: Float32Array,
  m: number,
  n: number,
  k: number,
  opts: ScaledGemmOptions = {},
): Float32Array {
  if (!useWasm()) return gemmScaledI8Ref(aq, aScale, aZero, wq, wScale, m, n, k, opts);
  checkScaled(aq, aScale, aZero, wq, wScale, m, n, k, opts);
  const out = opts.out ?? new Float32Array(m * n);
  if (m === 0 || n === 0) return out;
  const packed = new Int8Weights(wq, n, k, { scale: wScale, bias: opts.bias });
  try {
    const kp = packed.kp;
    withScratch([m * kp * 2, m * 4, m * 4, m * n * 4], ([a16, sp, zp, yp]) => {
      const e = getEngine();
      const av = e.u16(a16!, m * kp);
      const signed = new Int16Array(av.buffer, av.byteOffset, av.length);
      signed.fill(0);
      for (let i = 0; i < m; i++) for (let t = 0; t < k; t++) signed[i * kp + t] = aq[i * k + t]!;
      e.f32(sp!, m).set(aScale.subarray(0, m));
      e.i32(zp!, m).set(aZero.subarray(0, m));
      scaledPackedWasm(a16!, sp!, zp!, packed, m, yp!);
      out.set(e.f32(yp!, m * n));
    });
  } finally {
    packed.dispose();
  }
  return out;
}

// ---- weight-only int8 (f32 activations) ----------------------------------------------------------

/** Weight-only reference on resident weights: y = (sum_t x[i,t] * q[j,t]) * scale[j] (+ bias). */
export function w8f32PackedRef(x: Float32Array, w: Int8Weights, m: number, out: Float32Array): void {
  const { n, k, kp } = w;
  const q = w.q();
  const ws = w.scale();
  const bias = w.bias();
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += x[i * k + t]! * q[j * kp + t]!;
      let y = Math.fround(Math.fround(s) * ws[j]!);
      if (bias) y = Math.fround(y + bias[j]!);
      out[i * n + j] = y;
    }
  }
}

/** Weight-only fast path: x f32 [m, k] copied into kernel memory (rows padded to kp). */
export function w8f32PackedWasm(x: Float32Array, w: Int8Weights, m: number, out: Float32Array): void {
  const { n, k, kp } = w;
  withScratch([m * kp * 4, m * n * 4], ([xp, yp]) => {
    const e = getEngine();
    const xv = e.f32(xp!, m * kp);
    if (kp === k) xv.set(x.subarray(0, m * k));
    else {
      xv.fill(0);
      for (let i = 0; i < m; i++) xv.set(x.subarray(i * k, i * k + k), i * kp);
    }
    runColumns(GEMM_MODULE, "gemm_f32_i8", n, m * n * kp, (j0, j1) => [xp!, w.qPtr, yp!, m, n, kp, w.scalePtr, w.biasPtr, j0, j1]);
    out.set(e.f32(yp!, m * n));
  });
}

function checkW8(x: Float32Array, wq: Int8Array, wScale: Float32Array, m: number, n: number, k: number, opts: ScaledGemmOptions): void {
  checkDims("gemmW8F32", m, n, k);
  checkLen("gemmW8F32: x", x, m * k);
  checkLen("gemmW8F32: weights", wq, n * k);
  checkLen("gemmW8F32: weight scales", wScale, n);
  checkLen("gemmW8F32: bias", opts.bias, n);
  checkLen("gemmW8F32: out", opts.out, m * n);
}

/** Weight-only int8: y f32 [m, n] = x f32 [m, k] . (wq [n, k] * wScale[n])^T (+ bias). */
export function gemmW8F32Ref(
  x: Float32Array,
  wq: Int8Array,
  wScale: Float32Array,
  m: number,
  n: number,
  k: number,
  opts: ScaledGemmOptions = {},
): Float32Array {
  checkW8(x, wq, wScale, m, n, k, opts);
  const out = opts.out ?? new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += x[i * k + t]! * wq[j * k + t]!;
      let y = Math.fround(Math.fround(s) * wScale[j]!);
      if (opts.bias) y = Math.fround(y + opts.bias[j]!);
      out[i * n + j] = y;
    }
  }
  return out;
}

export function gemmW8F32(
  x: Float32Array,
  wq: Int8Array,
  wScale: Float32Array,
  m: number,
  n: number,
  k: number,
  opts: ScaledGemmOptions = {},
): Float32Array {
  if (!useWasm()) return gemmW8F32Ref(x, wq, wScale, m, n, k, opts);
  checkW8(x, wq, wScale, m, n, k, opts);
  const out = opts.out ?? new Float32Array(m * n);
  if (m === 0 || n === 0) return out;
  const packed = new Int8Weights(wq, n, k, { scale: wScale, bias: opts.bias });
  try {
    w8f32PackedWasm(x, packed, m, out);
  } finally {
    packed.dispose();
  }
  return out;
}

/** Throws when a forward's input/output arrays are too short. */
export function checkForward(what: string, x: Float32Array, m: number, inF: number, outF: number, out?: Float32Array): void {
  if (!Number.isSafeInteger(m) || m < 0) {
    throw new LowbitError("E_INVALID_ARGUMENT", `${what}.forward: m = ${m} is not a non-negative integer`);
  }
  if (x.length < m * inF) {
    throw new LowbitError("E_SHAPE_MISMATCH", `${what}.forward: x holds ${x.length} values, needs m * inFeatures = ${m * inF}`);
  }
  if (out && out.length < m * outF) {
    throw new LowbitError("E_SHAPE_MISMATCH", `${what}.forward: out holds ${out.length} values, needs m * outFeatures = ${m * outF}`);
  }
}
