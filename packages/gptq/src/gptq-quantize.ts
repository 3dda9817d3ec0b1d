import { getEngine, LowbitError, matmulAB, subOuterF32 } from "@lowbit/tensor";
import {
  type ClipSearchOptions,
  effectiveGroupSize,
  type GroupParams,
  maxCode,
  paramsFromRange,
  type QuantizedMatrix,
  quantizeValue,
  searchGroupParams,
} from "@lowbit/int4";
import { type DampOptions, dampedInverseHessian } from "./inverse-hessian";

export interface GptqOptions extends DampOptions {
  /** Bits per weight: 2, 3, 4 or 8 (5..7 work as well). */
  bits: number;
  /** Input columns per group; -1 (or cols) for one group per row. Must divide cols (see effectiveGroupSize). */
  groupSize: number;
  /** Symmetric (zero = 2^(bits-1)) or asymmetric (zero = round(-min/scale)). */
  sym: boolean;
  /** Quantize columns in order of decreasing diag(H) (desc_act); gIdx records each input's group. */
  actOrder?: boolean;
  /** Fit every group's quantizer before any update, in natural column order (static_groups). */
  staticGroups?: boolean;
  /** Columns per lazy batch. Default 128. */
  blockSize?: number;
  /** The quantizer's MSE grid over shrink factors (quant.py `mse`); off by default as in gptq.py. */
  mse?: boolean | ClipSearchOptions;
  /**
   * Which weights a group's quantizer is fitted on when its first column is reached.
   * "reference" (default): as gptq.py, the columns as updated by the previous lazy batches (updates
   * inside the current batch are not yet written back). "updated": the fully error-updated columns.
   */
  groupFit?: "reference" | "updated";
}

export interface GptqResult {
  /** The quantized weight in the original column order (gIdx set for act-order with groups). */
  qm: QuantizedMatrix;
  /** gptq.py's printed `error`: sum over weights of (w - q)^2 / Hinv[i,i]^2 / 2. */
  loss: number;
  /** The percdamp used (raised from the requested one when Cholesky failed). */
  percdamp: number;
  /** Absolute dampening added to diag(H). */
  damp: number;
  /** Cholesky failures that raised the dampening (GPTQModel's automatic increase). */
  dampRetries: number;
  /** Inputs whose Hessian diagonal was 0 (their weights are zeroed, as in the reference). */
  deadColumns: number;
  /** The column order used (act-order), or undefined. */
  perm?: Int32Array;
}

function checkOptions(rows: number, cols: number, o: GptqOptions, name: string): number {
  if (!(Number.isInteger(o.bits) && o.bits >= 2 && o.bits <= 8)) {
    throw new LowbitError("E_INVALID_ARGUMENT", `GPTQ(${name}): bits must be 2..8 (2, 3, 4 or 8), got ${o.bits}`);
  }
  if (!(Number.isInteger(rows) && rows > 0 && Number.isInteger(cols) && cols > 0)) {
    throw new LowbitError("E_SHAPE_MISMATCH", `GPTQ(${name}): rows and cols must be positive integers, got ${rows}x${cols}`);
  }
  const g = o.groupSize === -1 ? cols : o.groupSize;
  if (!(Number.isInteger(g) && g > 0 && g <= cols && cols % g === 0)) {
    const hint =
      Number.isInteger(g) && g > 0 ? ` (effectiveGroupSize(${cols}, ${g}) = ${effectiveGroupSize(cols, g)} would)` : "";
    throw new LowbitError(
      "E_SHAPE_MISMATCH",
      `GPTQ(${name}): group size ${o.groupSize} must be -1 or a divisor of ${cols} input columns${hint}`,
    );
  }
  const bs = o.blockSize ?? 128;
  if (!(Number.isInteger(bs) && bs > 0)) {
    throw new LowbitError("E_INVALID_ARGUMENT", `GPTQ(${name}): blockSize must be a positive integer, got ${bs}`);
  }
  return g;
}

/** Per-row quantizer fit on values[off .. off+count) (quant.py find_params, optionally with its MSE grid). */
function fit(values: ArrayLike<number>, off: number, count: number, o: GptqOptions): GroupParams {
  if (o.mse) return searchGroupParams(values, off, count, o.bits, o.sym, o.mse === true ? {} : o.mse);
  let min = 0;
  let max = 0;
  for (let i = off; i < off + count; i++) {
    const v = values[i]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return paramsFromRange(min, max, o.bits, o.sym);
}

/**
 * GPTQ for one linear layer, faithful to IST-DASLab gptq.py `fasterquant`: dead inputs, dampening
 * (with GPTQModel's automatic increase on Cholesky failure), act-order, static groups, lazy batch
 * updates, group quantizers fitted when a group's first column is reached.
 *
 * `w` is the weight [rows = out, cols = in] row-major f32 (not modified); `h` the Hessian f32
 * [cols, cols] from a HessianAccumulator (not modified).
 */
export function gptqQuantize(
  w: Float32Array,
  rows: number,
  cols: number,
  h: Float32Array,
  options: GptqOptions,
): GptqResult {
  const name = options.name ?? "weight";
  const g = checkOptions(rows, cols, options, name);
  if (w.length !== rows * cols) {
    throw new LowbitError("E_SHAPE_MISMATCH", `GPTQ(${name}): weight has ${w.length} values, expected ${rows}x${cols}`);
  }
  if (h.length !== cols * cols) {
    throw new LowbitError("E_SHAPE_MISMATCH", `GPTQ(${name}): Hessian has ${h.length} values, expected ${cols}x${cols}`);
  }
  for (let i = 0; i < w.length; i++) {
    if (!Number.isFinite(w[i]!)) {
      throw new LowbitError("E_NON_FINITE", `GPTQ(${name}): weight element ${i} (row ${Math.floor(i / cols)}) is ${w[i]}`);
    }
  }
  const bits = options.bits;
  const maxq = maxCode(bits);
  const perChannel = g === cols;
  const ng = cols / g;
  const actOrder = options.actOrder ?? false;
  const staticGroups = (options.staticGroups ?? false) && !perChannel;
  const blockSize = options.blockSize ?? 128;
  const fitUpdated = options.groupFit === "updated";

  const W = new Float32Array(w);
  // per-channel: the quantizer is fitted once on the whole rows, before dead inputs are zeroed
  const rowScale = new Float32Array(rows);
  const rowZero = new Float32Array(rows);
  if (perChannel) {
    for (let r = 0; r < rows; r++) {
      const p = fit(W, r * cols, cols, options);
      rowScale[r] = p.scale;
      rowZero[r] = p.zero;
    }
  }

  // dead inputs: H[i,i] = 1, W[:, i] = 0
  const diag = new Float64Array(cols);
  let deadColumns = 0;
  const dead = new Uint8Array(cols);
  for (let i = 0; i < cols; i++) {
    const d = h[i * cols + i]!;
    if (d === 0) {
      dead[i] = 1;
      deadColumns++;
      for (let r = 0; r < rows; r++) W[r * cols + i] = 0;
    }
    diag[i] = d === 0 ? 1 : d;
  }

  // static groups: every group fitted up front in natural order
  let staticScale: Float32Array | undefined;
  let staticZero: Float32Array | undefined;
  if (staticGroups) {
    staticScale = new Float32Array(rows * ng);
    staticZero = new Float32Array(rows * ng);
    for (let r = 0; r < rows; r++) {
      for (let gi = 0; gi < ng; gi++) {
        const p = fit(W, r * cols + gi * g, g, options);
        staticScale[r * ng + gi] = p.scale;
        staticZero[r * ng + gi] = p.zero;
      }
    }
  }

  // act-order: columns by decreasing diag(H) (ties by index, a stable order)
  let perm: Int32Array | undefined;
  if (actOrder) {
    const idx = Array.from({ length: cols }, (_, i) => i);
    idx.sort((a, b) => diag[b]! - diag[a]! || a - b);
    perm = Int32Array.from(idx);
  }
  const col = (j: number): number => (perm ? perm[j]! : j);

  // permuted, dead-fixed Hessian in f64, built afresh for each factorization attempt (in place)
  const buildHessian = (): Float64Array => {
    const hp = new Float64Array(cols * cols);
    for (let i = 0; i < cols; i++) {
      const pi = col(i);
      const ro = pi * cols;
      if (perm) for (let j = 0; j < cols; j++) hp[i * cols + j] = h[ro + perm[j]!]!;
      else for (let j = 0; j < cols; j++) hp[i * cols + j] = h[ro + j]!;
      if (dead[pi]) hp[i * cols + i] = 1;
    }
    return hp;
  };
  const inv = dampedInverseHessian(buildHessian, cols, options);
  const hinv = inv.hinv;

  // Wp: the working weight in processing order
  let Wp = W;
  if (perm) {
    Wp = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      for (let j = 0; j < cols; j++) Wp[o + j] = W[o + perm[j]!]!;
    }
  }

  const codes = new Uint8Array(rows * cols); // processing order
  const scales = new Float32Array(rows * ng);
  const zeros = new Float32Array(rows * ng);
  const curScale = new Float32Array(rows);
  const curZero = new Float32Array(rows);
  if (perChannel) {
    curScale.set(rowScale);
    curZero.set(rowZero);
    for (let r = 0; r < rows; r++) {
      scales[r] = rowScale[r]!;
      zeros[r] = rowZero[r]!;
    }
  }
  let loss = 0;
  const bs = Math.min(blockSize, cols);
  // The block being quantized, its rows of Hinv and the current column's errors live in kernel
  // memory, so each column's update of the block's later columns (a rank-1 W1 -= err hinv_row)
  // runs as one subOuterF32 over every row. Columns go left to right across all rows at once; a
  // row's values see the same operations in the same order as row by row, so the results are
  // the same bits.
  const engine = getEngine();
  const work = engine.buffer(4 * (rows * bs + bs * bs + rows));
  const Err1 = new Float32Array(rows * bs);
  const terms = new Float64Array(rows * bs);
  const hbBuf = new Float32Array(bs * Math.max(0, cols - bs));
  const updBuf = new Float32Array(rows * Math.max(0, cols - bs));
  const fitBuf = new Float32Array(g);

  try {
    for (let i1 = 0; i1 < cols; i1 += blockSize) {
      const i2 = Math.min(i1 + blockSize, cols);
      const count = i2 - i1;
      // views of the work space, taken afresh whenever kernel memory has grown since (the lazy
      // batch's matmulAB can grow it; subOuterF32 on three kernel views allocates nothing)
      let W1 = work.f32(0, rows * count);
      let hblk = work.f32(4 * rows * bs, count * count);
      let errCol = work.f32(4 * (rows * bs + bs * bs), rows);
      for (let r = 0; r < rows; r++) W1.set(Wp.subarray(r * cols + i1, r * cols + i2), r * count);
      for (let i = 0; i < count; i++) hblk.set(hinv.subarray((i1 + i) * cols + i1, (i1 + i) * cols + i2), i * count);
      for (let i = 0; i < count; i++) {
        if (W1.buffer !== engine.memory.buffer) {
          W1 = work.f32(0, rows * count);
          hblk = work.f32(4 * rows * bs, count * count);
          errCol = work.f32(4 * (rows * bs + bs * bs), rows);
        }
        const j = i1 + i;
        const d = hinv[j * cols + j]!;
        for (let r = 0; r < rows; r++) {
          const wo = r * cols;
          const bo = r * count;
          if (!perChannel) {
            if (staticGroups) {
              const gi = Math.floor(col(j) / g);
              curScale[r] = staticScale![r * ng + gi]!;
              curZero[r] = staticZero![r * ng + gi]!;
            } else if (j % g === 0) {
              let p: GroupParams;
              if (fitUpdated) {
                for (let c = 0; c < g; c++) fitBuf[c] = j + c < i2 ? W1[bo + i + c]! : Wp[wo + j + c]!;
                p = fit(fitBuf, 0, g, options);
              } else {
                p = fit(Wp, wo + j, g, options);
              }
              curScale[r] = p.scale;
              curZero[r] = p.zero;
              scales[r * ng + j / g] = p.scale;
              zeros[r * ng + j / g] = p.zero;
            }
          }
          const s = curScale[r]!;
          const z = curZero[r]!;
          const wv = W1[bo + i]!;
          const code = quantizeValue(wv, s, z, maxq);
          codes[wo + j] = code;
          const qv = Math.fround(s * (code - z));
          const diff = Math.fround(wv - qv);
          terms[bo + i] = (diff * diff) / (d * d) / 2;
          const err = Math.fround(diff / d);
          Err1[bo + i] = err;
          errCol[r] = err;
        }
        // W1[:, i+1:count] -= err (x) Hinv[j, i1+i+1 : i2]
        if (i + 1 < count) subOuterF32(W1.subarray(i + 1), count, rows, errCol, hblk.subarray(i * count + i + 1), count - i - 1);
      }
      // the loss in the order the row-by-row loop summed it
      for (let t = 0; t < rows * count; t++) loss += terms[t]!;
      // lazy batch update: W[:, i2:] -= Err1 @ Hinv[i1:i2, i2:]
      const rest = cols - i2;
      if (rest > 0) {
        const hb = hbBuf.subarray(0, count * rest);
        for (let i = 0; i < count; i++) hb.set(hinv.subarray((i1 + i) * cols + i2, (i1 + i + 1) * cols), i * rest);
        const upd = matmulAB(Err1.subarray(0, rows * count), hb, rows, rest, count, updBuf.subarray(0, rows * rest));
        for (let r = 0; r < rows; r++) {
          const wo = r * cols + i2;
          const uo = r * rest;
          for (let k = 0; k < rest; k++) Wp[wo + k] = Wp[wo + k]! - upd[uo + k]!;
        }
      }
    }

  } finally {
    work.dispose();
  }

  // back to the original column order
  const q = new Uint8Array(rows * cols);
  let gIdx: Int32Array | undefined;
  if (perm) {
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      for (let j = 0; j < cols; j++) q[o + perm[j]!] = codes[o + j]!;
    }
    if (!perChannel && !staticGroups) {
      gIdx = new Int32Array(cols);
      for (let j = 0; j < cols; j++) gIdx[perm[j]!] = Math.floor(j / g);
    }
  } else {
    q.set(codes);
  }
  if (staticGroups) {
    scales.set(staticScale!);
    zeros.set(staticZero!);
  }
  const qm: QuantizedMatrix = { bits, groupSize: g, rows, cols, sym: options.sym, q, scales, zeros };
  if (gIdx) qm.gIdx = gIdx;
  const result: GptqResult = {
    qm,
    loss,
    percdamp: inv.percdamp,
    damp: inv.damp,
    dampRetries: inv.retries,
    deadColumns,
  };
  if (perm) result.perm = perm;
  return result;
}
