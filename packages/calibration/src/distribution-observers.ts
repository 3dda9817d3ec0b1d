import { LowbitError } from "@lowbit/tensor";
import { finiteMinMax, noDataError, type Observer, type Range } from "./observers";
import { computeQParams, type QParams, type QParamsOptions } from "./qparams";

/**
 * A histogram over [-threshold, threshold] with a fixed bin width once started: when new data
 * exceeds the threshold, bins are added on both sides (ONNX Runtime's `merge_histogram`), so old
 * counts never need re-binning. Shared by the percentile and entropy observers.
 */
export class SymmetricHistogram {
  counts: Float64Array;
  threshold = 0;
  min = Number.POSITIVE_INFINITY;
  max = Number.NEGATIVE_INFINITY;

  constructor(readonly initialBins: number) {
    if (!(Number.isInteger(initialBins) && initialBins >= 2 && initialBins % 2 === 0)) {
      throw new LowbitError("E_INVALID_ARGUMENT", `histogram bins must be an even integer >= 2, got ${initialBins}`);
    }
    this.counts = new Float64Array(initialBins);
  }

  get bins(): number {
    return this.counts.length;
  }

  get empty(): boolean {
    return !(this.min <= this.max);
  }

  /** Left edge of bin i (edges run from -threshold to threshold). */
  edge(i: number): number {
    return -this.threshold + (2 * this.threshold * i) / this.bins;
  }

  add(x: ArrayLike<number>): void {
    const r = finiteMinMax(x);
    if (!r) return;
    const t = Math.max(Math.abs(r.min), Math.abs(r.max));
    this.min = Math.min(this.min, r.min);
    this.max = Math.max(this.max, r.max);
    if (t > this.threshold) {
      if (this.threshold === 0) {
        this.threshold = t;
      } else {
        const stride = (2 * this.threshold) / this.bins;
        const half = Math.floor((t - this.threshold) / stride) + 1;
        const grown = new Float64Array(this.bins + 2 * half);
        grown.set(this.counts, half);
        this.counts = grown;
        this.threshold = this.threshold + half * stride;
      }
    }
    const n = this.bins;
    const lo = -this.threshold;
    const width = 2 * this.threshold;
    if (width === 0) {
      // all zeros so far: they sit in the middle bin
      this.counts[n / 2] = this.counts[n / 2]! + x.length;
      return;
    }
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      if (!Number.isFinite(v)) continue;
      let b = Math.floor(((v - lo) / width) * n);
      if (b >= n) b = n - 1;
      if (b < 0) b = 0;
      this.counts[b] = this.counts[b]! + 1;
    }
  }
}

/**
 * Percentile calibration (ONNX Runtime PercentileCalibrater): the range that keeps `percentile`
 * percent of the observed values. Symmetric: the |x| percentile on both sides; otherwise
 * (100 - p)/2 percent is cut from each tail.
 */
export class PercentileObserver implements Observer {
  readonly kind = "percentile";
  readonly percentile: number;
  readonly symmetric: boolean;
  private readonly hist: SymmetricHistogram;

  constructor(options: { percentile?: number; bins?: number; symmetric?: boolean } = {}) {
    this.percentile = options.percentile ?? 99.999;
    this.symmetric = options.symmetric ?? true;
    if (!(this.percentile > 0 && this.percentile <= 100)) {
      throw new LowbitError("E_INVALID_ARGUMENT", `PercentileObserver: percentile must be in (0, 100], got ${this.percentile}`);
    }
    this.hist = new SymmetricHistogram(options.bins ?? 2048);
  }

  observe(x: ArrayLike<number>): void {
    this.hist.add(x);
  }

  range(): Range {
    const h = this.hist;
    if (h.empty) throw noDataError(this.kind);
    const n = h.bins;
    const total = h.counts.reduce((a, b) => a + b, 0);
    if (this.symmetric) {
      // fold onto |x|: bins n/2 + k and n/2 - 1 - k cover the same |x| interval
      const half = n / 2;
      const target = (this.percentile / 100) * total;
      let acc = 0;
      let k = 0;
      for (; k < half; k++) {
        acc += h.counts[half + k]! + h.counts[half - 1 - k]!;
        if (acc >= target) break;
      }
      const t = Math.min(h.edge(half + Math.min(k, half - 1) + 1), Math.max(-h.min, h.max));
      return { min: -t, max: t };
    }
    const cut = ((100 - this.percentile) / 200) * total;
    let acc = 0;
    let lo = 0;
    for (; lo < n - 1; lo++) {
      if (acc + h.counts[lo]! > cut) break;
      acc += h.counts[lo]!;
    }
    acc = 0;
    let hi = n - 1;
    for (; hi > 0; hi--) {
      if (acc + h.counts[hi]! > cut) break;
      acc += h.counts[hi]!;
    }
    return { min: Math.max(h.edge(lo), h.min), max: Math.min(h.edge(hi + 1), h.max) };
  }

  qparams(options?: QParamsOptions): QParams {
    const r = this.range();
    return computeQParams(r.min, r.max, options);
  }
}

/** ONNX Runtime's smooth_distribution: move eps of mass onto empty bins so KL stays finite. */
function smooth(p: Float64Array, eps = 1e-4): Float64Array | undefined {
  let zeros = 0;
  for (const v of p) if (v === 0) zeros++;
  const nonzeros = p.length - zeros;
  if (nonzeros === 0) return undefined;
  const eps1 = (eps * zeros) / nonzeros;
  if (eps1 >= 1) return undefined;
  const out = new Float64Array(p.length);
  for (let i = 0; i < p.length; i++) out[i] = p[i] === 0 ? eps : p[i]! - eps1;
  return out;
}

/** KL(p || q) of two unnormalised distributions (scipy.stats.entropy semantics). */
export function klDivergence(p: ArrayLike<number>, q: ArrayLike<number>): number {
  let sp = 0;
  let sq = 0;
  for (let i = 0; i < p.length; i++) {
    sp += p[i]!;
    sq += q[i]!;
  }
  let kl = 0;
  for (let i = 0; i < p.length; i++) {
    const pi = p[i]! / sp;
    if (pi === 0) continue;
    const qi = q[i]! / sq;
    kl += qi === 0 ? Number.POSITIVE_INFINITY : pi * Math.log(pi / qi);
  }
  return kl;
}

/**
 * Entropy calibration (TensorRT / ONNX Runtime EntropyCalibrater): among symmetric thresholds,
 * the one minimising KL(P || Q) between the clipped float histogram P (outliers folded into the
 * edge bins) and its quantization Q onto `quantizedBins` levels expanded back.
 */
export class EntropyObserver implements Observer {
  readonly kind = "entropy";
  readonly quantizedBins: number;
  private readonly hist: SymmetricHistogram;

  constructor(options: { bins?: number; quantizedBins?: number } = {}) {
    this.quantizedBins = options.quantizedBins ?? 128;
    this.hist = new SymmetricHistogram(options.bins ?? 2048);
    if (!(Number.isInteger(this.quantizedBins) && this.quantizedBins >= 2 && this.quantizedBins <= this.hist.bins)) {
      throw new LowbitError(
        "E_INVALID_ARGUMENT",
        `EntropyObserver: quantizedBins must be an integer in 2..${this.hist.bins}, got ${this.quantizedBins}`,
      );
    }
  }

  observe(x: ArrayLike<number>): void {
    this.hist.add(x);
  }

  range(): Range {
    const h = this.hist;
    if (h.empty) throw noDataError(this.kind);
    const hist = h.counts;
    const n = h.bins;
    const zero = Math.floor(n / 2);
    const halfQ = Math.floor(this.quantizedBins / 2);
    const nq = this.quantizedBins;
    let best = Number.POSITIVE_INFINITY;
    let bestRange: Range = { min: h.edge(0), max: h.edge(n) };
    for (let i = halfQ; i <= zero; i++) {
      const start = zero - i;
      const end = Math.min(zero + i + 1, n);
      const len = end - start;
      const p = hist.slice(start, end);
      let left = 0;
      for (let j = 0; j < start; j++) left += hist[j]!;
      let right = 0;
      for (let j = end; j < n; j++) right += hist[j]!;
      p[0] = p[0]! + left;
      p[len - 1] = p[len - 1]! + right;
      const merged = Math.floor(len / nq);
      const qbins = new Float64Array(nq);
      for (let k = 0; k < nq; k++) {
        let s = 0;
        for (let j = k * merged; j < (k + 1) * merged; j++) s += hist[start + j]!;
        qbins[k] = s;
      }
      for (let j = nq * merged; j < len; j++) qbins[nq - 1] = qbins[nq - 1]! + hist[start + j]!;
      const q = new Float64Array(len);
      for (let k = 0; k < nq; k++) {
        const a = k * merged;
        const b = a + merged;
        let nz = 0;
        for (let j = a; j < b; j++) if (p[j] !== 0) nz++;
        // as ONNX Runtime: the share fills the whole merged span, truncated (q is an int64 array there)
        if (nz !== 0) q.fill(Math.trunc(qbins[k]! / nz), a, b);
      }
      const ps = smooth(p);
      const qs = smooth(q);
      const div = ps && qs ? klDivergence(ps, qs) : Number.POSITIVE_INFINITY;
      if (div < best) {
        best = div;
        bestRange = { min: h.edge(start), max: h.edge(end) };
      }
    }
    return { min: Math.max(bestRange.min, h.min), max: Math.min(bestRange.max, h.max) };
  }

  qparams(options?: QParamsOptions): QParams {
    const r = this.range();
    return computeQParams(r.min, r.max, options);
  }
}
