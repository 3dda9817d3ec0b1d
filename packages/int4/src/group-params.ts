import { LowbitError } from "@lowbit/tensor";
import { maxCode } from "./quantized-matrix";

/** Quantization parameters of one group: value = scale * (q - zero). */
export interface GroupParams {
  scale: number;
  zero: number;
}

/** Round half to even, as torch.round (used by the GPTQ/AWQ quantizers). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  // Math.round rounds .5 up; fix exact ties toward the even neighbour
  if (r - x === 0.5 && r % 2 !== 0) return r - 1;
  return r;
}

/** q = clamp(round(x / scale) + zero, 0, maxq), computed in f32 like torch. */
export function quantizeValue(x: number, scale: number, zero: number, maxq: number): number {
  const q = roundHalfEven(Math.fround(x / scale)) + zero;
  return q < 0 ? 0 : Math.min(q, maxq);
}

/**
 * Parameters from a range, GPTQ/torch quantizer semantics: the range is widened to include 0;
 * symmetric uses max|x| on both sides (scale = 2 max|x| / maxq) with zero = (maxq+1)/2;
 * asymmetric scale = (max - min) / maxq, zero = round(-min/scale),
 * clamped to [0, maxq]. An all-zero range becomes [-1, 1] so the scale stays finite and zero still
 * reconstructs exactly. The scale is rounded to f32 (what is stored).
 */
export function paramsFromRange(min: number, max: number, bits: number, sym: boolean): GroupParams {
  const maxq = maxCode(bits);
  let lo = Math.fround(Math.min(min, 0));
  let hi = Math.fround(Math.max(max, 0));
  if (sym) {
    // max|x| on both sides (torch.ao). GPTQ's quant.py keeps min at 0 for groups with no negative
    // value, so their upper half clips at 7/15 of the max; that quirk is not reproduced.
    hi = Math.max(-lo, hi);
    lo = -hi;
  }
  if (lo === 0 && hi === 0) {
    lo = -1;
    hi = 1;
  }
  let scale = Math.fround(Math.fround(hi - lo) / maxq);
  if (!(scale > 0) || !Number.isFinite(scale)) {
    // subnormal ranges underflow to 0 in f32: use the smallest normal f32 so every value maps to 0 or near it
    scale = scale > 0 ? scale : 1.1754943508222875e-38;
    if (!Number.isFinite(scale)) scale = 3.4028234663852886e38;
  }
  let zero: number;
  if (sym) {
    zero = (maxq + 1) / 2;
  } else {
    zero = roundHalfEven(Math.fround(-lo / scale));
    zero = zero <= 0 ? 0 : Math.min(zero, maxq); // (also turns -0 into 0)
  }
  return { scale, zero };
}

/**
 * Fits one group's parameters on values[offset .. offset+count) (min/max widened to include 0,
 * zero clamped to [0, maxq]; constant and all-zero groups give a finite scale). `shrink` (0, 1]
 * scales the range before fitting, as in GPTQ's MSE grid and AWQ's clip search.
 */
export function fitGroupParams(
  values: ArrayLike<number>,
  offset: number,
  count: number,
  bits: number,
  sym: boolean,
  shrink = 1,
): GroupParams {
  let min = 0;
  let max = 0;
  for (let i = offset; i < offset + count; i++) {
    const v = values[i]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return paramsFromRange(min * shrink, max * shrink, bits, sym);
}

/** Options of the clipping search (GPTQ's `mse` option defaults). */
export interface ClipSearchOptions {
  /** Number of grid steps over the shrink factor; shrink = 1 - i/grid. Default 100. */
  grid?: number;
  /** Largest fraction the range may shrink by. Default 0.8 (so shrink >= 0.2). */
  maxShrink?: number;
  /** Error norm p in sum |x - x'|^p. Default 2.4. */
  norm?: number;
}

/**
 * Clipping search for one group: tries shrink factors p = 1, 1 - 1/grid, ... (maxShrink*grid
 * steps), each fitting parameters on the range [p*min, p*max], and keeps the one with the smallest
 * sum |x - dequant(quant(x))|^norm (GPTQ's Quantizer mse, AWQ's clip on weights alone).
 */
export function searchGroupParams(
  values: ArrayLike<number>,
  offset: number,
  count: number,
  bits: number,
  sym: boolean,
  options: ClipSearchOptions = {},
): GroupParams {
  const grid = options.grid ?? 100;
  const maxShrink = options.maxShrink ?? 0.8;
  const norm = options.norm ?? 2.4;
  if (!(Number.isInteger(grid) && grid >= 1 && maxShrink >= 0 && maxShrink < 1 && norm > 0)) {
    throw new LowbitError(
      "E_INVALID_ARGUMENT",
      `clip search: need integer grid >= 1, 0 <= maxShrink < 1 and norm > 0, got grid ${grid}, maxShrink ${maxShrink}, norm ${norm}`,
    );
  }
  const maxq = maxCode(bits);
  let min = 0;
  let max = 0;
  for (let i = offset; i < offset + count; i++) {
    const v = values[i]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  let best = paramsFromRange(min, max, bits, sym);
  let bestErr = Number.POSITIVE_INFINITY;
  const steps = Math.max(1, Math.floor(maxShrink * grid));
  for (let s = 0; s < steps; s++) {
    const p = 1 - s / grid;
    const cand = paramsFromRange(p * min, p * max, bits, sym);
    let err = 0;
    for (let i = offset; i < offset + count; i++) {
      const x = values[i]!;
      const d = Math.abs(cand.scale * (quantizeValue(x, cand.scale, cand.zero, maxq) - cand.zero) - x);
      err += norm === 2 ? d * d : d ** norm;
    }
    if (err < bestErr) {
      bestErr = err;
      best = cand;
    }
  }
  return best;
}

/**
 * The group size actually used for `cols` input features: -1 (or anything >= cols) means one group
 * per row (per channel); otherwise the smallest divisor of cols that is >= requested. Quantizers and
 * codecs themselves only accept dividing group sizes and throw otherwise; call this first to pick a
 * valid one (e.g. 32 on cols = 172 gives 43).
 */
export function effectiveGroupSize(cols: number, requested: number): number {
  if (!(Number.isInteger(cols) && cols > 0)) {
    throw new LowbitError("E_INVALID_ARGUMENT", `effectiveGroupSize: cols must be a positive integer, got ${cols}`);
  }
  if (requested === -1) return cols;
  if (!(Number.isInteger(requested) && requested > 0)) {
    throw new LowbitError(
      "E_INVALID_ARGUMENT",
      `effectiveGroupSize: group size must be -1 (per channel) or a positive integer, got ${requested}`,
    );
  }
  if (requested >= cols) return cols;
  for (let g = requested; g < cols; g++) if (cols % g === 0) return g;
  return cols;
}

/** Resolves a requested group size that must divide cols (-1 means per channel); throws otherwise. */
export function resolveGroupSize(cols: number, requested: number, where: string): number {
  if (requested === -1 || requested === cols) return cols;
  if (!(Number.isInteger(requested) && requested > 0 && cols % requested === 0)) {
    const eff = Number.isInteger(requested) && requested > 0 ? effectiveGroupSize(cols, requested) : undefined;
    throw new LowbitError(
      "E_SHAPE_MISMATCH",
      `${where}: group size ${requested} does not divide ${cols} input columns` +
        (eff !== undefined ? ` (effectiveGroupSize(${cols}, ${requested}) = ${eff} would)` : "") +
        "; use -1 for per channel",
    );
  }
  return requested;
}
