import { fitGroupParams, maxCode, paramsFromRange, roundHalfEven } from "@lowbit/int4";
import { LowbitError } from "@lowbit/tensor";
import { result, type Variable } from "../autograd/variable";

/**
 * Which elements of a [rows, cols] tensor share one (scale, zero):
 *  - "tensor": all of them;
 *  - "group": each row split into groups of `groupSize` columns (groupSize = cols is per row:
 *    per output channel of a weight, per token of an activation);
 *  - "column": each column (per input feature of an activation).
 * Parameter index of element (r, c): tensor 0; group r * (cols / groupSize) + floor(c / groupSize);
 * column c. The "group" layout is exactly QuantizedMatrix's scales/zeros layout.
 */
export type QuantLayout = { kind: "tensor" } | { kind: "group"; groupSize: number } | { kind: "column" };

/** Quantization parameters in a layout: value = scale * (q - zero), q in 0..2^bits-1. */
export interface FakeQuantParams {
  bits: number;
  layout: QuantLayout;
  scale: Float32Array;
  zero: Float32Array;
}

/** Number of (scale, zero) pairs a layout needs for a [rows, cols] tensor. */
export function paramCount(layout: QuantLayout, rows: number, cols: number): number {
  switch (layout.kind) {
    case "tensor":
      return 1;
    case "column":
      return cols;
    case "group":
      checkGroup(layout.groupSize, cols);
      return rows * (cols / layout.groupSize);
  }
}

/** Elements sharing one parameter (the N of LSQ's gradient scale). */
export function elementsPerParam(layout: QuantLayout, rows: number, cols: number): number {
  return layout.kind === "tensor" ? rows * cols : layout.kind === "column" ? rows : layout.groupSize;
}

function checkGroup(groupSize: number, cols: number): void {
  if (!(Number.isInteger(groupSize) && groupSize > 0 && cols % groupSize === 0)) {
    throw new LowbitError("E_SHAPE_MISMATCH", `fake quantize: group size ${groupSize} does not divide ${cols} columns`);
  }
}

/** The parameter index of every element (row-major), as an Int32Array. */
export function paramIndexMap(layout: QuantLayout, rows: number, cols: number): Int32Array {
  const map = new Int32Array(rows * cols);
  if (layout.kind === "tensor") return map;
  if (layout.kind === "column") {
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) map[r * cols + c] = c;
    return map;
  }
  const gs = layout.groupSize;
  checkGroup(gs, cols);
  const ng = cols / gs;
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) map[r * cols + c] = r * ng + Math.floor(c / gs);
  return map;
}

/**
 * Min/max parameters for `values` [rows, cols] in a layout, with @lowbit/int4's quantizer
 * semantics (range widened to include 0; symmetric zero = 2^(bits-1); finite scale for constant
 * groups). `shrink` narrows the range (clipping).
 */
export function fitParams(
  values: Float32Array,
  rows: number,
  cols: number,
  layout: QuantLayout,
  bits: number,
  sym: boolean,
  shrink = 1,
): FakeQuantParams {
  const n = paramCount(layout, rows, cols);
  const scale = new Float32Array(n);
  const zero = new Float32Array(n);
  if (layout.kind === "column") {
    const lo = new Float64Array(cols);
    const hi = new Float64Array(cols);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const v = values[r * cols + c]!;
        if (v < lo[c]!) lo[c] = v;
        if (v > hi[c]!) hi[c] = v;
      }
    }
    for (let c = 0; c < cols; c++) {
      const p = paramsFromRange(lo[c]! * shrink, hi[c]! * shrink, bits, sym);
      scale[c] = p.scale;
      zero[c] = p.zero;
    }
  } else {
    const span = layout.kind === "tensor" ? rows * cols : layout.groupSize;
    for (let i = 0; i < n; i++) {
      const p = fitGroupParams(values, i * span, span, bits, sym, shrink);
      scale[i] = p.scale;
      zero[i] = p.zero;
    }
  }
  return { bits, layout, scale, zero };
}

/** Quantize-dequantize without a graph: returns the fake-quantized copy and the integer codes. */
export function quantizeDequantize(
  values: Float32Array,
  rows: number,
  cols: number,
  params: FakeQuantParams,
): { values: Float32Array; codes: Uint8Array } {
  const map = paramIndexMap(params.layout, rows, cols);
  const maxq = maxCode(params.bits);
  const out = new Float32Array(values.length);
  const codes = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const p = map[i]!;
    const s = params.scale[p]!;
    const z = params.zero[p]!;
    const u = roundHalfEven(Math.fround(values[i]! / s)) + z;
    const q = Math.min(Math.max(u, 0), maxq);
    codes[i] = q;
    out[i] = s * (q - z);
  }
  return { values: out, codes };
}

/**
 * Fake quantization with fixed parameters and the straight-through estimator:
 * y = s * (clamp(round(x / s) + z, 0, qmax) - z); dy/dx = 1 where round(x / s) + z lies inside
 * [0, qmax] and 0 where it was clamped. The rounding (f32 division, ties to even) matches
 * @lowbit/int4's quantizeValue, so y equals dequantizeMatrix of the real codes bit for bit.
 */
export function fakeQuantize(x: Variable, params: FakeQuantParams): Variable {
  const rows = x.rows;
  const cols = x.cols;
  const map = paramIndexMap(params.layout, rows, cols);
  if (params.scale.length !== paramCount(params.layout, rows, cols)) {
    throw new LowbitError(
      "E_SHAPE_MISMATCH",
      `fakeQuantize${x.name ? ` "${x.name}"` : ""}: ${params.scale.length} scales for a [${rows}, ${cols}] tensor in layout ${params.layout.kind}`,
    );
  }
  const maxq = maxCode(params.bits);
  const xv = x.value;
  const out = new Float32Array(xv.length);
  const inside = new Uint8Array(xv.length);
  for (let i = 0; i < xv.length; i++) {
    const p = map[i]!;
    const s = params.scale[p]!;
    const z = params.zero[p]!;
    const u = roundHalfEven(Math.fround(xv[i]! / s)) + z;
    let q = u;
    if (u < 0) q = 0;
    else if (u > maxq) q = maxq;
    else inside[i] = 1;
    out[i] = s * (q - z);
  }
  return result(out, x.shape, [x], (g) => {
    const gx = x.gradBuffer();
    for (let i = 0; i < g.length; i++) if (inside[i]) gx[i]! += g[i]!;
  });
}

/** Smallest step an LSQ scale may take in the forward pass (keeps x / s finite). */
export const LSQ_MIN_SCALE = 1e-8;

/**
 * LSQ (Esser et al., "Learned Step Size Quantization"): fake quantization whose step sizes are a
 * Variable. Forward as fakeQuantize with s = max(scale, LSQ_MIN_SCALE) and fixed integer zeros.
 * Backward: dx as the straight-through estimator; for each element, d y / d s is
 * round(x/s) - x/s inside the range, -z below it and qmax - z above it (the paper's -Qn and Qp);
 * each scale's gradient is multiplied by `gradScale` (the paper's 1 / sqrt(N * Qp)).
 */
export function lsqFakeQuantize(
  x: Variable,
  scale: Variable,
  zero: Float32Array,
  bits: number,
  layout: QuantLayout,
  gradScale: number,
): Variable {
  const rows = x.rows;
  const cols = x.cols;
  const n = paramCount(layout, rows, cols);
  if (scale.size !== n || zero.length !== n) {
    throw new LowbitError(
      "E_SHAPE_MISMATCH",
      `lsqFakeQuantize${x.name ? ` "${x.name}"` : ""}: ${scale.size} scales and ${zero.length} zeros for a [${rows}, ${cols}] tensor in layout ${layout.kind} (expected ${n})`,
    );
  }
  const map = paramIndexMap(layout, rows, cols);
  const maxq = maxCode(bits);
  const xv = x.value;
  const sv = scale.value;
  const out = new Float32Array(xv.length);
  // per element: d y / d s (before gradScale), and whether x passes straight through
  const dyds = new Float32Array(xv.length);
  const inside = new Uint8Array(xv.length);
  for (let i = 0; i < xv.length; i++) {
    const p = map[i]!;
    const s = Math.max(sv[p]!, LSQ_MIN_SCALE);
    const z = zero[p]!;
    const t = Math.fround(xv[i]! / s);
    const r = roundHalfEven(t);
    const u = r + z;
    let q: number;
    if (u < 0) {
      q = 0;
      dyds[i] = -z;
    } else if (u > maxq) {
      q = maxq;
      dyds[i] = maxq - z;
    } else {
      q = u;
      inside[i] = 1;
      dyds[i] = r - xv[i]! / s;
    }
    out[i] = s * (q - z);
  }
  return result(out, x.shape, [x, scale], (g) => {
    if (x.requiresGrad) {
      const gx = x.gradBuffer();
      for (let i = 0; i < g.length; i++) if (inside[i]) gx[i]! += g[i]!;
    }
    if (scale.requiresGrad) {
      const acc = new Float64Array(n);
      for (let i = 0; i < g.length; i++) acc[map[i]!]! += g[i]! * dyds[i]!;
      const gs = scale.gradBuffer();
      for (let p = 0; p < n; p++) if (sv[p]! > LSQ_MIN_SCALE) gs[p]! += acc[p]! * gradScale;
    }
  });
}

/** LSQ's positive bound Qp: 2^(bits-1) - 1 for symmetric, 2^bits - 1 for asymmetric (unsigned) codes. */
export function lsqQp(bits: number, sym: boolean): number {
  return sym ? Math.max(1, (1 << (bits - 1)) - 1) : maxCode(bits);
}

/** LSQ's gradient scale g = 1 / sqrt(N * Qp), N the elements sharing one step size. */
export function lsqGradScale(elements: number, bits: number, sym: boolean): number {
  return 1 / Math.sqrt(elements * lsqQp(bits, sym));
}

/** Parameters from per-parameter ranges [lo[i], hi[i]] (observer output), int4 quantizer semantics. */
export function paramsFromRangeArrays(
  lo: ArrayLike<number>,
  hi: ArrayLike<number>,
  bits: number,
  sym: boolean,
  layout: QuantLayout,
): FakeQuantParams {
  const n = lo.length;
  const scale = new Float32Array(n);
  const zero = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const p = paramsFromRange(lo[i]!, hi[i]!, bits, sym);
    scale[i] = p.scale;
    zero[i] = p.zero;
  }
  return { bits, layout, scale, zero };
}
