import { getEngine, LowbitError } from "@lowbit/tensor";
import { firstNonFinite, nonFiniteError } from "./finite";
import { quantKernels, useWasm, withScratch } from "./kernels";
import {
  chooseQParams,
  computeQParams,
  type QParamsOptions,
  type QuantParams,
  type QuantRangeOptions,
  paramsLayout,
  type ResolvedRange,
  roundHalfEven,
} from "./qparams";

/** Quantized values: Int8Array for "int8", Uint8Array for "uint8". */
export type QuantizedValues = Int8Array | Uint8Array;

function allocFor(p: QuantParams, n: number): QuantizedValues {
  return p.dtype === "int8" ? new Int8Array(n) : new Uint8Array(n);
}

function checkOut<T extends { length: number }>(out: T | undefined, n: number, what: string): void {
  if (out && out.length < n) {
    throw new LowbitError("E_SHAPE_MISMATCH", `${what}: output holds ${out.length} values, needs ${n}`);
  }
}

function checkLength(x: { length: number }, p: QuantParams, what: string): number {
  let n = 1;
  for (const d of p.shape) n *= d;
  if (x.length !== n) {
    throw new LowbitError("E_SHAPE_MISMATCH", `${what}: params are for shape [${p.shape.join(", ")}] (${n} values), got ${x.length}`);
  }
  return n;
}

/** q = clamp(round_half_even(f32(x * f32(1 / scale))) + zeroPoint, qmin, qmax): one value. */
export function quantizeValue(x: number, invScale: number, zeroPoint: number, qmin: number, qmax: number): number {
  const q = roundHalfEven(Math.fround(x * invScale)) + zeroPoint;
  return Math.max(qmin, Math.min(q, qmax));
}

/** Reference quantization of x with the given parameters (torch quantize_per_* semantics). */
export function quantizeRef(x: Float32Array, p: QuantParams, out?: QuantizedValues): QuantizedValues {
  const n = checkLength(x, p, "quantize");
  checkOut(out, n, "quantize");
  const bad = firstNonFinite(x);
  if (bad >= 0) throw nonFiniteError(x, bad, undefined);
  const q = out ?? allocFor(p, n);
  const { outer, channels, inner } = paramsLayout(p);
  let off = 0;
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      const inv = Math.fround(1 / p.scale[c]!);
      const zp = p.zeroPoint[c]!;
      for (let i = 0; i < inner; i++) q[off + i] = quantizeValue(x[off + i]!, inv, zp, p.qmin, p.qmax);
      off += inner;
    }
  }
  return q;
}

/** Reference dequantization: (q - zeroPoint) * scale in f32. */
export function dequantizeRef(q: QuantizedValues, p: QuantParams, out?: Float32Array): Float32Array {
  const n = checkLength(q, p, "dequantize");
  checkOut(out, n, "dequantize");
  const y = out ?? new Float32Array(n);
  const { outer, channels, inner } = paramsLayout(p);
  let off = 0;
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      const s = p.scale[c]!;
      const zp = p.zeroPoint[c]!;
      for (let i = 0; i < inner; i++) y[off + i] = (q[off + i]! - zp) * s;
      off += inner;
    }
  }
  return y;
}

/** Quantizes x with the given parameters: WebAssembly SIMD fast path, same result as quantizeRef. */
export function quantize(x: Float32Array, p: QuantParams, out?: QuantizedValues): QuantizedValues {
  if (!useWasm()) return quantizeRef(x, p, out);
  const n = checkLength(x, p, "quantize");
  checkOut(out, n, "quantize");
  const i = firstNonFinite(x);
  if (i >= 0) throw nonFiniteError(x, i, undefined);
  const q = out ?? allocFor(p, n);
  if (n === 0) return q;
  const { outer, channels, inner } = paramsLayout(p);
  const unsigned = p.dtype === "uint8" ? 1 : 0;
  withScratch([n * 4, n, channels * 4, channels * 4], ([xp, qp, ip, zp]) => {
    const e = getEngine();
    e.f32(xp!, n).set(x);
    const inv = e.f32(ip!, channels);
    const zpf = e.f32(zp!, channels);
    for (let c = 0; c < channels; c++) {
      inv[c] = 1 / p.scale[c]!;
      zpf[c] = p.zeroPoint[c]!;
    }
    const k = quantKernels();
    if (inner === 1) k.quantize_cols(xp!, qp!, outer, channels, ip!, zp!, p.qmin, p.qmax, unsigned);
    else k.quantize_runs(xp!, qp!, outer, channels, inner, ip!, zp!, p.qmin, p.qmax, unsigned);
    q.set(unsigned ? e.u8(qp!, n) : e.i8(qp!, n));
  });
  return q;
}

/** Dequantizes q with the given parameters: WebAssembly SIMD fast path, same result as dequantizeRef. */
export function dequantize(q: QuantizedValues, p: QuantParams, out?: Float32Array): Float32Array {
  if (!useWasm()) return dequantizeRef(q, p, out);
  const n = checkLength(q, p, "dequantize");
  checkOut(out, n, "dequantize");
  const y = out ?? new Float32Array(n);
  if (n === 0) return y;
  const { outer, channels, inner } = paramsLayout(p);
  const unsigned = p.dtype === "uint8" ? 1 : 0;
  withScratch([n, n * 4, channels * 4, channels * 4], ([qp, yp, sp, zp]) => {
    const e = getEngine();
    e.u8(qp!, n).set(new Uint8Array(q.buffer, q.byteOffset, n));
    e.f32(sp!, channels).set(p.scale);
    e.i32(zp!, channels).set(p.zeroPoint);
    const k = quantKernels();
    if (inner === 1) k.dequantize_cols(qp!, yp!, outer, channels, sp!, zp!, unsigned);
    else k.dequantize_runs(qp!, yp!, outer, channels, inner, sp!, zp!, unsigned);
    y.set(e.f32(yp!, n));
  });
  return y;
}

/** Observes and quantizes a tensor in one call. */
export function quantizeTensor(
  x: Float32Array,
  shape: readonly number[],
  opts: QParamsOptions = {},
): { q: QuantizedValues; params: QuantParams } {
  const params = computeQParams(x, shape, opts);
  return { q: quantize(x, params), params };
}

export interface DynamicQuantOptions extends Omit<QuantRangeOptions, "eps"> {
  /** "per-token" (one scale per row, default) or "per-tensor". */
  granularity?: "per-token" | "per-tensor";
  /** Name used in error messages. */
  name?: string;
}

/**
 * Dynamic activation quantization of x [tokens, features]: parameters from this batch's min/max
 * (per token or per tensor), as torch quantize_dynamic does at run time. Default uint8 affine.
 */
export function quantizeDynamic(
  x: Float32Array,
  tokens: number,
  features: number,
  opts: DynamicQuantOptions = {},
): { q: QuantizedValues; params: QuantParams } {
  const params = computeQParams(x, [tokens, features], {
    dtype: opts.dtype ?? "uint8",
    scheme: opts.scheme ?? "affine",
    reduceRange: opts.reduceRange,
    quantMin: opts.quantMin,
    quantMax: opts.quantMax,
    granularity: opts.granularity ?? "per-token",
    name: opts.name ?? "activations",
  });
  return { q: quantize(x, params), params };
}

/**
 * Per-row activation parameters from per-row [min, max] pairs (per-tensor: one pair, repeated).
 * Shared by the reference and fast W8A8 paths so both quantize identically.
 */
export function activationParams(
  minmax: Float32Array,
  rows: number,
  perTensor: boolean,
  range: ResolvedRange,
  x: Float32Array,
  features: number,
  name: string | undefined,
): { inv: Float32Array; scale: Float32Array; zero: Int32Array } {
  const inv = new Float32Array(rows);
  const scale = new Float32Array(rows);
  const zero = new Int32Array(rows);
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  if (perTensor) {
    for (let r = 0; r < rows; r++) {
      lo = Math.min(lo, minmax[2 * r]!);
      hi = Math.max(hi, minmax[2 * r + 1]!);
    }
  }
  for (let r = 0; r < rows; r++) {
    const a = perTensor ? lo : minmax[2 * r]!;
    const b = perTensor ? hi : minmax[2 * r + 1]!;
    if (a - a !== 0 || b - b !== 0) {
      throw nonFiniteError(x, Math.max(0, firstNonFinite(x, 0, rows * features)), name ?? "activations", features);
    }
    const p = chooseQParams(a, b, range);
    scale[r] = p.scale;
    zero[r] = p.zeroPoint;
    inv[r] = 1 / p.scale;
  }
  return { inv, scale, zero };
}
