import { LowbitError } from "@lowbit/tensor";
import { finiteMinMax, noDataError, type Observer, type Range } from "./observers";
import { computeQParams, type QParams, type QParamsOptions } from "./qparams";

/** torch.histc: `bins` equal bins over [min, max]; values outside are ignored, max falls in the last bin. */
export function histc(x: ArrayLike<number>, bins: number, min: number, max: number, out = new Float32Array(bins)): Float32Array {
  let lo = min;
  let hi = max;
  if (lo === hi) {
    lo -= 1;
    hi += 1;
  }
  const width = hi - lo;
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    if (!(v >= lo && v <= hi)) continue;
    let b = Math.floor(((v - lo) / width) * bins);
    if (b >= bins) b = bins - 1;
    out[b] = out[b]! + 1;
  }
  return out;
}

/**
 * The MSE observer: torch.ao HistogramObserver. Keeps a running 2048-bin histogram (re-binned onto
 * a wider range by upsampling when new data falls outside it) and chooses the clipping range that
 * minimises the L2 quantization error over the histogram (the greedy search of caffe2's
 * NormMinimization, as torch does).
 */
export class HistogramObserver implements Observer {
  readonly kind = "histogram-mse";
  readonly bins: number;
  readonly upsampleRate: number;
  private hist: Float32Array;
  private min = Number.POSITIVE_INFINITY;
  private max = Number.NEGATIVE_INFINITY;

  constructor(options: { bins?: number; upsampleRate?: number } = {}) {
    this.bins = options.bins ?? 2048;
    this.upsampleRate = options.upsampleRate ?? 128;
    if (!(Number.isInteger(this.bins) && this.bins >= 2) || !(Number.isInteger(this.upsampleRate) && this.upsampleRate >= 1)) {
      throw new LowbitError(
        "E_INVALID_ARGUMENT",
        `HistogramObserver: bins must be an integer >= 2 and upsampleRate >= 1, got ${this.bins} and ${this.upsampleRate}`,
      );
    }
    this.hist = new Float32Array(this.bins);
  }

  /** The histogram and the range it covers (for inspection and tests). */
  get histogram(): { counts: Float32Array; min: number; max: number } {
    return { counts: this.hist, min: this.min, max: this.max };
  }

  observe(x: ArrayLike<number>): void {
    const r = finiteMinMax(x);
    if (!r) return;
    const xmin = Math.fround(r.min);
    const xmax = Math.fround(r.max);
    const uninit = !(this.min <= this.max);
    if (uninit || this.min === this.max || this.max - this.min < 1e-6) {
      this.reset(x, xmin, xmax);
      return;
    }
    const cmin = Math.min(xmin, this.min);
    let cmax = Math.max(xmax, this.max);
    const span = this.max - this.min;
    const down = Math.ceil(((cmax - cmin) / span) * this.upsampleRate);
    const e = (down / this.upsampleRate) * span - (cmax - cmin);
    const startIdx = Math.round(((this.min - cmin) / span) * this.bins * this.upsampleRate);
    cmax = Math.fround(cmax + e);
    const combined = histc(x, this.bins, cmin, cmax);
    if (cmin === this.min && cmax === this.max) {
      for (let i = 0; i < this.bins; i++) combined[i] = combined[i]! + this.hist[i]!;
      this.hist = combined;
      return;
    }
    if (this.bins * down * 4 > 1e9) {
      // torch gives up combining (the dense upsampled grid would exceed 1 GB) and restarts
      this.reset(x, xmin, xmax);
      return;
    }
    // The old histogram, upsampled by `up` into fine cells placed at startIdx, summed back down by
    // `down` fine cells per new bin (torch builds the dense grid; the overlaps below are the same sums).
    const up = this.upsampleRate;
    const fineTotal = this.bins * down;
    for (let b = 0; b < this.bins; b++) {
      const count = this.hist[b]!;
      if (count === 0) continue;
      const a = startIdx + b * up;
      const end = Math.min(a + up, fineTotal);
      for (let j = Math.floor(Math.max(a, 0) / down); j * down < end; j++) {
        const overlap = Math.min(end, (j + 1) * down) - Math.max(a, j * down);
        if (overlap > 0) combined[j] = combined[j]! + (count * overlap) / up;
      }
    }
    this.hist = combined;
    this.min = cmin;
    this.max = cmax;
  }

  private reset(x: ArrayLike<number>, min: number, max: number): void {
    this.min = min;
    this.max = max;
    this.hist = histc(x, this.bins, min, max);
  }

  /** L2 error of quantizing the histogram onto `dstBins` levels spread over bins [start, end]. */
  quantizationError(start: number, end: number, dstBins: number): number {
    const binWidth = (this.max - this.min) / this.bins;
    const dstWidth = (binWidth * (end - start + 1)) / dstBins;
    if (dstWidth === 0) return 0;
    const norm = (a: number, b: number, density: number) => (density * (b * b * b - a * a * a)) / 3;
    let total = 0;
    for (let s = 0; s < this.bins; s++) {
      const density = this.hist[s]! / binWidth;
      if (density === 0) continue;
      const begin = (s - start) * binWidth;
      const endPos = begin + binWidth;
      const dBegin = Math.min(Math.max(Math.floor(begin / dstWidth), 0), dstBins - 1);
      const dEnd = Math.min(Math.max(Math.floor(endPos / dstWidth), 0), dstBins - 1);
      const beginCenter = (dBegin + 0.5) * dstWidth;
      total += norm(begin - beginCenter, dstWidth / 2, density);
      total += (dEnd - dBegin - 1) * norm(-dstWidth / 2, dstWidth / 2, density);
      const endCenter = dEnd * dstWidth + dstWidth / 2;
      total += norm(-dstWidth / 2, endPos - endCenter, density);
    }
    return total;
  }

  /** torch `_non_linear_param_search`: the [min, max] whose quantization onto 2^bits levels has least L2 error. */
  range(bits = 8): Range {
    if (!(this.min <= this.max)) throw noDataError(this.kind);
    const bins = this.bins;
    const binWidth = (this.max - this.min) / bins;
    const dstBins = 2 ** bits;
    const cSum = new Float64Array(bins);
    let acc = 0;
    for (let i = 0; i < bins; i++) {
      acc += this.hist[i]!;
      cSum[i] = acc;
    }
    const total = acc;
    const stepsize = 1e-5;
    let alpha = 0;
    let beta = 1;
    let startBin = 0;
    let endBin = bins - 1;
    let normMin = Number.POSITIVE_INFINITY;
    while (alpha < beta) {
      const nextAlpha = alpha + stepsize;
      const nextBeta = beta - stepsize;
      let l = startBin;
      let r = endBin;
      while (l < endBin && cSum[l]! < nextAlpha * total) l++;
      while (r > startBin && cSum[r]! > nextBeta * total) r--;
      let nextStart = startBin;
      let nextEnd = endBin;
      if (l - startBin > endBin - r) {
        nextStart = l;
        alpha = nextAlpha;
      } else {
        nextEnd = r;
        beta = nextBeta;
      }
      if (nextStart === startBin && nextEnd === endBin) continue;
      const norm = this.quantizationError(nextStart, nextEnd, dstBins);
      if (norm > normMin) break;
      normMin = norm;
      startBin = nextStart;
      endBin = nextEnd;
    }
    return { min: this.min + binWidth * startBin, max: this.min + binWidth * (endBin + 1) };
  }

  qparams(options: QParamsOptions = {}): QParams {
    const r = this.range(options.bits ?? 8);
    return computeQParams(r.min, r.max, options);
  }
}
