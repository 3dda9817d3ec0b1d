import { LowbitError } from "@lowbit/tensor";
import { assertFinite, label } from "./finite";

/**
 * Quantization parameters with PyTorch torch.ao semantics (observer `_calculate_qparams`):
 * the observed [min, max] is first widened to include 0; symmetric scale = max(|min|, |max|) /
 * ((qmax - qmin) / 2); affine scale = (max - min) / (qmax - qmin), zero point = qmin -
 * round(min / scale) clamped to [qmin, qmax]; scale is at least `eps` (f32 machine epsilon), so an
 * all-zero channel gets a finite scale and quantizes to exact zeros. Arithmetic is f32, rounding
 * half to even, as in torch.
 */

export type QuantDType = "int8" | "uint8";
export type QuantScheme = "symmetric" | "affine";
export type Granularity = "per-tensor" | "per-channel" | "per-group" | "per-token";

export interface QuantRangeOptions {
  /** Storage type: "int8" [-128, 127] (default) or "uint8" [0, 255]. */
  dtype?: QuantDType;
  /** "symmetric" (default; zero point 0 for int8, 128 for uint8) or "affine". */
  scheme?: QuantScheme;
  /** Drop one bit of range (torch `reduce_range`): int8 [-64, 63], uint8 [0, 127]. */
  reduceRange?: boolean;
  /** Custom range (torch `quant_min`/`quant_max`), inside the dtype's range. */
  quantMin?: number;
  quantMax?: number;
  /** Smallest scale; default f32 machine epsilon 2^-23 (torch.finfo(torch.float32).eps). */
  eps?: number;
}

export interface ResolvedRange {
  dtype: QuantDType;
  scheme: QuantScheme;
  qmin: number;
  qmax: number;
  eps: number;
  customRange: boolean;
}

export const F32_EPS = 2 ** -23;

export function resolveRange(opts: QuantRangeOptions = {}): ResolvedRange {
  const dtype = opts.dtype ?? "int8";
  const scheme = opts.scheme ?? "symmetric";
  if (dtype !== "int8" && dtype !== "uint8") {
    throw new LowbitError("E_INVALID_ARGUMENT", `quantization dtype must be "int8" or "uint8", got "${String(dtype)}"`);
  }
  if (scheme !== "symmetric" && scheme !== "affine") {
    throw new LowbitError("E_INVALID_ARGUMENT", `quantization scheme must be "symmetric" or "affine", got "${String(scheme)}"`);
  }
  const [lo, hi] = dtype === "int8" ? [-128, 127] : [0, 255];
  const custom = opts.quantMin !== undefined || opts.quantMax !== undefined;
  let qmin: number;
  let qmax: number;
  if (custom) {
    qmin = opts.quantMin ?? lo;
    qmax = opts.quantMax ?? hi;
    if (!Number.isInteger(qmin) || !Number.isInteger(qmax) || qmin < lo || qmax > hi || qmin >= qmax) {
      throw new LowbitError(
        "E_INVALID_ARGUMENT",
        `quantMin/quantMax [${qmin}, ${qmax}] must be integers with quantMin < quantMax inside ${dtype} [${lo}, ${hi}]`,
      );
    }
    if (opts.reduceRange) qmax = qmin + Math.floor((qmax - qmin) / 2);
  } else if (opts.reduceRange) {
    [qmin, qmax] = dtype === "int8" ? [-64, 63] : [0, 127];
  } else {
    [qmin, qmax] = [lo, hi];
  }
  const eps = opts.eps ?? F32_EPS;
  if (!(eps > 0 && Number.isFinite(eps))) {
    throw new LowbitError("E_INVALID_ARGUMENT", `eps must be a positive finite number, got ${eps}`);
  }
  return { dtype, scheme, qmin, qmax, eps: Math.fround(eps), customRange: custom || !!opts.reduceRange };
}

/** Round half to even (std::nearbyint, torch.round). */
export function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Scale and zero point for an observed [min, max] (torch.ao `_calculate_qparams`). */
export function chooseQParams(min: number, max: number, range: ResolvedRange): { scale: number; zeroPoint: number } {
  const f = Math.fround;
  const minNeg = Math.min(f(min), 0);
  const maxPos = Math.max(f(max), 0);
  const { qmin, qmax, eps } = range;
  if (range.scheme === "symmetric") {
    const amax = Math.max(-minNeg, maxPos);
    const scale = Math.max(f(amax / f((qmax - qmin) / 2)), eps);
    let zeroPoint = 0;
    if (range.dtype === "uint8") zeroPoint = range.customRange ? Math.floor((qmin + qmax) / 2) : 128;
    return { scale, zeroPoint };
  }
  const scale = Math.max(f(f(maxPos - minNeg) / (qmax - qmin)), eps);
  const zp = qmin - roundHalfEven(f(minNeg / scale));
  return { scale, zeroPoint: Math.min(Math.max(zp, qmin), qmax) };
}

/** Parameters of one quantized tensor at some granularity. */
export interface QuantParams {
  readonly granularity: Granularity;
  readonly shape: readonly number[];
  /** Channel axis (per-channel), otherwise -1. */
  readonly axis: number;
  /** Values per group (per-group), otherwise 0. */
  readonly groupSize: number;
  readonly dtype: QuantDType;
  readonly scheme: QuantScheme;
  readonly qmin: number;
  readonly qmax: number;
  /** One per channel / group / token (one for per-tensor), in layout order. */
  readonly scale: Float32Array;
  readonly zeroPoint: Int32Array;
}

export interface QParamsOptions extends QuantRangeOptions {
  granularity?: Granularity;
  /** Channel axis for per-channel (negative counts from the end); default 0 (output channels). */
  axis?: number;
  /** Group size for per-group (groups along the last axis; must divide it). */
  groupSize?: number;
  /** Tensor name for error messages. */
  name?: string;
}

/**
 * How parameters map onto values: `outer * channels * inner` values, each contiguous run of
 * `inner` values using the parameters of its channel.
 */
export interface RunLayout {
  outer: number;
  channels: number;
  inner: number;
}

function prod(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

export function checkShape(shape: readonly number[], length: number, name?: string): number {
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new LowbitError("E_SHAPE_MISMATCH", `${label(name)}: shape [${shape.join(", ")}] has an invalid dimension ${d}`);
    }
  }
  const n = prod(shape);
  if (n !== length) {
    throw new LowbitError(
      "E_SHAPE_MISMATCH",
      `${label(name)}: shape [${shape.join(", ")}] needs ${n} values, got ${length}`,
    );
  }
  return n;
}

/** Resolves granularity options against a shape into the run layout. */
export function layoutFor(
  shape: readonly number[],
  granularity: Granularity,
  axisOpt: number | undefined,
  groupSizeOpt: number | undefined,
  name?: string,
): { layout: RunLayout; axis: number; groupSize: number } {
  const numel = prod(shape);
  const last = shape.length > 0 ? shape[shape.length - 1]! : 1;
  switch (granularity) {
    case "per-tensor":
      return { layout: { outer: 1, channels: 1, inner: numel }, axis: -1, groupSize: 0 };
    case "per-channel": {
      const rank = shape.length;
      const a = axisOpt ?? 0;
      const axis = a < 0 ? a + rank : a;
      if (!Number.isInteger(a) || axis < 0 || axis >= rank) {
        throw new LowbitError("E_INVALID_ARGUMENT", `${label(name)}: axis ${a} is out of range for shape [${shape.join(", ")}]`);
      }
      return {
        layout: { outer: prod(shape.slice(0, axis)), channels: shape[axis]!, inner: prod(shape.slice(axis + 1)) },
        axis,
        groupSize: 0,
      };
    }
    case "per-group": {
      const g = groupSizeOpt ?? 0;
      if (!Number.isInteger(g) || g <= 0 || last % g !== 0) {
        throw new LowbitError(
          "E_INVALID_ARGUMENT",
          `${label(name)}: group size ${g} must be a positive divisor of the last dimension ${last}`,
        );
      }
      return { layout: { outer: 1, channels: numel / g, inner: g }, axis: -1, groupSize: g };
    }
    case "per-token": {
      if (shape.length < 1 || last === 0) {
        throw new LowbitError("E_INVALID_ARGUMENT", `${label(name)}: per-token needs a [tokens, features] shape`);
      }
      return { layout: { outer: 1, channels: numel / last, inner: last }, axis: -1, groupSize: 0 };
    }
    default:
      throw new LowbitError("E_INVALID_ARGUMENT", `unknown granularity "${String(granularity)}"`);
  }
}

export function paramsLayout(p: QuantParams): RunLayout {
  return layoutFor(p.shape, p.granularity, p.axis, p.groupSize).layout;
}

/**
 * Observes x (min/max per channel, group, token or the whole tensor) and returns its parameters.
 * Throws E_NON_FINITE (naming `name` and the first bad index) on NaN or infinity.
 */
export function computeQParams(x: Float32Array, shape: readonly number[], opts: QParamsOptions = {}): QuantParams {
  const range = resolveRange(opts);
  const granularity = opts.granularity ?? "per-tensor";
  checkShape(shape, x.length, opts.name);
  const { layout, axis, groupSize } = layoutFor(shape, granularity, opts.axis, opts.groupSize, opts.name);
  assertFinite(x, opts.name, shape.length >= 2 ? shape[shape.length - 1] : undefined);
  const { outer, channels, inner } = layout;
  const mins = new Float32Array(channels).fill(Number.POSITIVE_INFINITY);
  const maxs = new Float32Array(channels).fill(Number.NEGATIVE_INFINITY);
  let off = 0;
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      let lo = mins[c]!;
      let hi = maxs[c]!;
      for (let i = 0; i < inner; i++) {
        const v = x[off + i]!;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      mins[c] = lo;
      maxs[c] = hi;
      off += inner;
    }
  }
  const scale = new Float32Array(channels);
  const zeroPoint = new Int32Array(channels);
  for (let c = 0; c < channels; c++) {
    // an empty channel (no values) behaves as all zeros
    const lo = mins[c]! === Number.POSITIVE_INFINITY ? 0 : mins[c]!;
    const hi = maxs[c]! === Number.NEGATIVE_INFINITY ? 0 : maxs[c]!;
    const p = chooseQParams(lo, hi, range);
    scale[c] = p.scale;
    zeroPoint[c] = p.zeroPoint;
  }
  return {
    granularity,
    shape: [...shape],
    axis,
    groupSize,
    dtype: range.dtype,
    scheme: range.scheme,
    qmin: range.qmin,
    qmax: range.qmax,
    scale,
    zeroPoint,
  };
}
