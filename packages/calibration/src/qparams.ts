import { LowbitError } from "@lowbit/tensor";

/** Affine quantization parameters: q = clamp(round(x / scale) + zeroPoint, qmin, qmax). */
export interface QParams {
  scale: number;
  zeroPoint: number;
  qmin: number;
  qmax: number;
}

export interface QParamsOptions {
  /** Bits of the integer type. Default 8. */
  bits?: number;
  /** Symmetric (zero point at 0 of a signed range) or affine. Default false. */
  sym?: boolean;
  /** Signed (qint8: -128..127) or unsigned (quint8: 0..255) integers. Default true. */
  signed?: boolean;
  /**
   * Narrow symmetric range -(2^(b-1)-1)..2^(b-1)-1 (ONNX Runtime / TensorRT, scale = amax / 127)
   * instead of torch's full range (scale = amax / 127.5). Default false.
   */
  narrow?: boolean;
  /** Smallest scale (torch: float32 eps). */
  eps?: number;
}

const F32_EPS = 1.1920928955078125e-7;

/** Round half to even, as torch.round / numpy.round. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  if (r - x === 0.5 && r % 2 !== 0) return r - 1;
  return r;
}

/**
 * Quantization parameters from a calibrated range, with torch.ao `_calculate_qparams` semantics:
 * the range is widened to include 0; symmetric: scale = max(|min|, max) / ((qmax - qmin) / 2) with the
 * zero point at the middle of the range (0 for signed); affine: scale = (max - min) / (qmax - qmin),
 * zeroPoint = qmin - round(min / scale) clamped to [qmin, qmax]; scale >= eps.
 */
export function computeQParams(min: number, max: number, options: QParamsOptions = {}): QParams {
  const bits = options.bits ?? 8;
  const sym = options.sym ?? false;
  const signed = options.signed ?? true;
  const eps = options.eps ?? F32_EPS;
  if (!(Number.isInteger(bits) && bits >= 2 && bits <= 16)) {
    throw new LowbitError("E_INVALID_ARGUMENT", `computeQParams: bits must be an integer in 2..16, got ${bits}`);
  }
  if (!(min <= max) || !Number.isFinite(min) || !Number.isFinite(max)) {
    throw new LowbitError(
      "E_CALIBRATION",
      `computeQParams: invalid range [${min}, ${max}] (observe some data first; values must be finite)`,
    );
  }
  let qmin = signed ? -(2 ** (bits - 1)) : 0;
  const qmax = signed ? 2 ** (bits - 1) - 1 : 2 ** bits - 1;
  if (sym && options.narrow && signed) qmin = -qmax;
  const lo = Math.min(min, 0);
  const hi = Math.max(max, 0);
  if (sym) {
    const amax = Math.max(-lo, hi);
    const scale = Math.max(Math.fround(amax / ((qmax - qmin) / 2)), eps);
    const zeroPoint = signed ? 0 : (qmin + qmax + 1) / 2;
    return { scale, zeroPoint, qmin, qmax };
  }
  const scale = Math.max(Math.fround((hi - lo) / (qmax - qmin)), eps);
  let zeroPoint = qmin - roundHalfEven(Math.fround(lo / scale));
  zeroPoint = Math.min(qmax, Math.max(qmin, zeroPoint));
  return { scale, zeroPoint, qmin, qmax };
}

/** q = clamp(round(x / scale) + zeroPoint, qmin, qmax). */
export function quantizeAffine(x: number, p: QParams): number {
  const q = roundHalfEven(Math.fround(x / p.scale)) + p.zeroPoint;
  return Math.min(p.qmax, Math.max(p.qmin, q));
}

/** Quantize-dequantize in place (or into `out`): x' = scale * (q - zeroPoint). */
export function fakeQuantize(x: Float32Array, p: QParams, out: Float32Array = x): Float32Array {
  for (let i = 0; i < x.length; i++) out[i] = p.scale * (quantizeAffine(x[i]!, p) - p.zeroPoint);
  return out;
}
