import { LowbitError } from "@lowbit/tensor";
import { assertFinite, label } from "./finite";
import { computeQParams } from "./qparams";
import { quantize } from "./quantize";

/** How a linear layer's f32 weight [out, in] becomes symmetric int8. */
export interface Int8WeightOptions {
  /** Weight name, used in error messages (e.g. "blk.0.attn_q.weight"). */
  name?: string;
  /** Optional bias [out]. */
  bias?: Float32Array;
  /** "per-channel" (one scale per output row, default) or "per-tensor". */
  granularity?: "per-channel" | "per-tensor";
  /** torch reduce_range for the weights ([-64, 63]). */
  reduceRange?: boolean;
  /** Custom range inside [-128, 127], e.g. -127 for a narrow symmetric range. */
  quantMin?: number;
  quantMax?: number;
}

export function checkFeatures(what: string, outFeatures: number, inFeatures: number): void {
  if (!Number.isSafeInteger(outFeatures) || outFeatures <= 0 || !Number.isSafeInteger(inFeatures) || inFeatures <= 0) {
    throw new LowbitError(
      "E_INVALID_ARGUMENT",
      `${what}: outFeatures ${outFeatures} and inFeatures ${inFeatures} must be positive integers`,
    );
  }
}

export function checkWeight(what: string, w: ArrayLike<number>, outFeatures: number, inFeatures: number, name?: string): void {
  checkFeatures(what, outFeatures, inFeatures);
  if (w.length !== outFeatures * inFeatures) {
    throw new LowbitError(
      "E_SHAPE_MISMATCH",
      `${what}: ${label(name, "weight")} holds ${w.length} values, expected [${outFeatures}, ${inFeatures}] = ${outFeatures * inFeatures}`,
    );
  }
}

/** Validates an optional bias [out] and returns a private copy. */
export function checkBias(bias: Float32Array | undefined, outFeatures: number, name?: string): Float32Array | undefined {
  if (!bias) return undefined;
  const bname = name ? `${name} (bias)` : "bias";
  if (bias.length !== outFeatures) {
    throw new LowbitError("E_SHAPE_MISMATCH", `${label(bname)} holds ${bias.length} values, expected ${outFeatures}`);
  }
  assertFinite(bias, bname);
  return bias.slice();
}

/**
 * Symmetric int8 quantization of a weight [out, in] with torch.ao semantics (per-channel:
 * scale_r = max|w_r| / 127.5 over row r, range [-128, 127]); the scale is returned per row
 * (repeated for per-tensor). Throws E_NON_FINITE naming the weight and the first bad index.
 */
export function quantizeWeightInt8(
  w: Float32Array,
  outFeatures: number,
  inFeatures: number,
  opts: Int8WeightOptions = {},
): { q: Int8Array; scale: Float32Array } {
  checkWeight("quantizeWeightInt8", w, outFeatures, inFeatures, opts.name);
  const perTensor = (opts.granularity ?? "per-channel") === "per-tensor";
  if (!perTensor && opts.granularity !== undefined && opts.granularity !== "per-channel") {
    throw new LowbitError("E_INVALID_ARGUMENT", `weight granularity must be "per-channel" or "per-tensor", got "${String(opts.granularity)}"`);
  }
  const params = computeQParams(w, [outFeatures, inFeatures], {
    dtype: "int8",
    scheme: "symmetric",
    granularity: perTensor ? "per-tensor" : "per-channel",
    axis: 0,
    reduceRange: opts.reduceRange,
    quantMin: opts.quantMin,
    quantMax: opts.quantMax,
    name: opts.name ?? "weight",
  });
  const q = quantize(w, params) as Int8Array;
  const scale = perTensor ? new Float32Array(outFeatures).fill(params.scale[0]!) : params.scale;
  return { q, scale };
}

/** Validates stored int8 weights + scales and copies them. */
export function checkStoredInt8(
  what: string,
  q: Int8Array,
  scale: Float32Array,
  outFeatures: number,
  inFeatures: number,
  name?: string,
): void {
  checkWeight(what, q, outFeatures, inFeatures, name);
  if (scale.length !== outFeatures) {
    throw new LowbitError("E_SHAPE_MISMATCH", `${what}: ${scale.length} scales for ${outFeatures} output channels`);
  }
  for (let i = 0; i < scale.length; i++) {
    const s = scale[i]!;
    if (!(s >= 0 && s - s === 0)) {
      throw new LowbitError(
        s - s === 0 ? "E_INVALID_ARGUMENT" : "E_NON_FINITE",
        `${what}: ${label(name, "weight")} scale ${i} is ${s}; scales must be finite and non-negative`,
      );
    }
  }
}
