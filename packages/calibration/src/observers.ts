import { LowbitError } from "@lowbit/tensor";
import { computeQParams, type QParams, type QParamsOptions } from "./qparams";

/** A calibrated range. */
export interface Range {
  min: number;
  max: number;
}

/**
 * Collects statistics of the values it is shown (activations during calibration) and turns them
 * into a quantization range, like torch.ao observers and ONNX Runtime calibraters.
 */
export interface Observer {
  /** Short name for reports, e.g. "minmax", "histogram-mse". */
  readonly kind: string;
  /** Updates the statistics with a batch of values. */
  observe(x: ArrayLike<number>): void;
  /** The calibrated range (throws E_CALIBRATION before any data was observed). */
  range(): Range;
  /** Quantization parameters of the calibrated range. */
  qparams(options?: QParamsOptions): QParams;
}

/** Min and max of the finite values of x; undefined when there are none. */
export function finiteMinMax(x: ArrayLike<number>): Range | undefined {
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    if (v < min && v !== Number.NEGATIVE_INFINITY) min = v;
    if (v > max && v !== Number.POSITIVE_INFINITY) max = v;
  }
  return min <= max ? { min, max } : undefined;
}

export function noDataError(kind: string): LowbitError {
  return new LowbitError("E_CALIBRATION", `${kind} observer: no data observed yet (call observe() with calibration activations first)`);
}

/** Running min and max of everything observed (torch MinMaxObserver). */
export class MinMaxObserver implements Observer {
  readonly kind: string = "minmax";
  protected min = Number.POSITIVE_INFINITY;
  protected max = Number.NEGATIVE_INFINITY;

  observe(x: ArrayLike<number>): void {
    const r = finiteMinMax(x);
    if (!r) return;
    this.min = Math.min(this.min, Math.fround(r.min));
    this.max = Math.max(this.max, Math.fround(r.max));
  }

  range(): Range {
    if (!(this.min <= this.max)) throw noDataError(this.kind);
    return { min: this.min, max: this.max };
  }

  qparams(options?: QParamsOptions): QParams {
    const r = this.range();
    return computeQParams(r.min, r.max, options);
  }
}

/**
 * Moving-average min/max (torch MovingAverageMinMaxObserver): the first batch sets the range, each
 * later one moves it by `averagingConstant` (default 0.01): min += c * (batchMin - min).
 */
export class MovingAverageMinMaxObserver extends MinMaxObserver {
  override readonly kind = "moving-average-minmax";
  readonly averagingConstant: number;

  constructor(averagingConstant = 0.01) {
    super();
    if (!(averagingConstant > 0 && averagingConstant <= 1)) {
      throw new LowbitError("E_INVALID_ARGUMENT", `MovingAverageMinMaxObserver: averagingConstant must be in (0, 1], got ${averagingConstant}`);
    }
    this.averagingConstant = averagingConstant;
  }

  override observe(x: ArrayLike<number>): void {
    const r = finiteMinMax(x);
    if (!r) return;
    if (!(this.min <= this.max)) {
      this.min = Math.fround(r.min);
      this.max = Math.fround(r.max);
      return;
    }
    const c = this.averagingConstant;
    this.min = Math.fround(this.min + c * (r.min - this.min));
    this.max = Math.fround(this.max + c * (r.max - this.max));
  }
}

/**
 * Per-channel running min/max of a 2-D tensor [rows, cols] (torch PerChannelMinMaxObserver).
 * axis 0: one range per row (weights [out, in], per output channel); axis 1: one per column
 * (activations [tokens, features], per input feature).
 */
export class PerChannelMinMaxObserver {
  readonly kind = "per-channel-minmax";
  readonly channels: number;
  readonly axis: 0 | 1;
  private readonly mins: Float32Array;
  private readonly maxs: Float32Array;
  private seen = false;

  constructor(channels: number, axis: 0 | 1 = 0) {
    if (!(Number.isInteger(channels) && channels > 0)) {
      throw new LowbitError("E_INVALID_ARGUMENT", `PerChannelMinMaxObserver: channels must be a positive integer, got ${channels}`);
    }
    this.channels = channels;
    this.axis = axis;
    this.mins = new Float32Array(channels).fill(Number.POSITIVE_INFINITY);
    this.maxs = new Float32Array(channels).fill(Number.NEGATIVE_INFINITY);
  }

  /** x is [rows, cols] row-major with rows (axis 0) or cols (axis 1) equal to `channels`. */
  observe(x: ArrayLike<number>): void {
    const C = this.channels;
    if (x.length % C !== 0) {
      throw new LowbitError(
        "E_SHAPE_MISMATCH",
        `PerChannelMinMaxObserver: ${x.length} values are not a whole number of ${C} channels`,
      );
    }
    const other = x.length / C;
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      if (!Number.isFinite(v)) continue;
      const c = this.axis === 0 ? Math.floor(i / other) : i % C;
      if (v < this.mins[c]!) this.mins[c] = v;
      if (v > this.maxs[c]!) this.maxs[c] = v;
    }
    this.seen = true;
  }

  /** Per-channel ranges; channels that saw no finite value get [0, 0]. */
  ranges(): { min: Float32Array; max: Float32Array } {
    if (!this.seen) throw noDataError(this.kind);
    const min = this.mins.map((v) => (Number.isFinite(v) ? v : 0));
    const max = this.maxs.map((v) => (Number.isFinite(v) ? v : 0));
    return { min, max };
  }

  qparams(options?: QParamsOptions): QParams[] {
    const { min, max } = this.ranges();
    return Array.from(min, (lo, c) => computeQParams(lo, max[c]!, options));
  }
}
