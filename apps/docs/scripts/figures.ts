/**
 * The figures of the concept pages, computed by lowbit's own packages when the site is built (so
 * they show what the code does): a weight distribution snapped to 4-bit levels, error against bits
 * and granularity, GPTQ against RTN on correlated inputs, and the ranges calibration observers pick.
 * Written to .vitepress/generated/figures.json and drawn by the LbFigure component.
 */
import { EntropyObserver, HistogramObserver, MinMaxObserver, PercentileObserver } from "@lowbit/calibration";
import { HessianAccumulator, gptqQuantize } from "@lowbit/gptq";
import { dequantizeMatrix, quantizeRTN } from "@lowbit/int4";
import { Rng } from "@lowbit/tensor";

export interface HistogramFigure {
  kind: "histogram";
  title: string;
  xLabel: string;
  /** Bin edges lo..hi and counts. */
  lo: number;
  hi: number;
  counts: number[];
  /** Spikes drawn over the bins (e.g. quantization levels and how many weights landed there). */
  stems?: { label: string; points: Array<[number, number]> };
  /** Vertical markers (e.g. ranges chosen by observers). */
  markers?: Array<{ label: string; lo: number; hi: number }>;
}

export interface LinesFigure {
  kind: "lines";
  title: string;
  xLabel: string;
  yLabel: string;
  logY: boolean;
  series: Array<{ label: string; points: Array<[number, number]> }>;
}

export type Figure = HistogramFigure | LinesFigure;

function relRmse(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

function histogram(x: ArrayLike<number>, lo: number, hi: number, bins: number): number[] {
  const c = new Array<number>(bins).fill(0);
  for (let i = 0; i < x.length; i++) {
    const b = Math.floor(((x[i]! - lo) / (hi - lo)) * bins);
    if (b >= 0 && b < bins) c[b]! += 1;
  }
  return c;
}

/** Gaussian weights with a few heavy-tailed entries, as trained matrices have. */
function weights(rng: Rng, rows: number, cols: number): Float32Array {
  const w = new Float32Array(rows * cols);
  rng.fillNormal(w, 0, 0.02);
  for (let i = 0; i < w.length; i++) if (rng.uniform() < 0.002) w[i]! *= 6;
  return w;
}

function rtnFigure(): HistogramFigure {
  const rng = new Rng(1);
  const cols = 4096;
  const w = new Float32Array(cols);
  rng.fillNormal(w, 0, 1);
  const qm = quantizeRTN(w, 1, cols, { bits: 4, groupSize: cols, sym: false });
  const back = dequantizeMatrix(qm);
  const levels = new Map<number, number>();
  for (const v of back) levels.set(v, (levels.get(v) ?? 0) + 1);
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const v of w) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
  const bins = 64;
  // stems in units of "weights per bin" so they share the bins' axis: a level collects what several bins held
  return {
    kind: "histogram",
    title: "4,096 Gaussian weights (bars) and where 4-bit RTN puts them (one scale for the row): 16 levels",
    xLabel: "weight value",
    lo,
    hi,
    counts: histogram(w, lo, hi, bins),
    stems: { label: "weights per 4-bit level", points: [...levels.entries()].sort((a, b) => a[0] - b[0]) },
  };
}

function bitsFigure(): LinesFigure {
  const rng = new Rng(2);
  const rows = 64;
  const cols = 512;
  const w = weights(rng, rows, cols);
  const series = [
    { label: "per channel", g: cols },
    { label: "groups of 128", g: 128 },
    { label: "groups of 32", g: 32 },
  ].map(({ label, g }) => ({
    label,
    points: [2, 3, 4, 5, 6, 8].map((bits): [number, number] => [bits, relRmse(dequantizeMatrix(quantizeRTN(w, rows, cols, { bits, groupSize: g, sym: false })), w)]),
  }));
  return {
    kind: "lines",
    title: "Relative RMS error of RTN on a 64×512 weight matrix (Gaussian, 0.2% outliers), by bits and granularity",
    xLabel: "bits per weight (codes)",
    yLabel: "relative RMS error",
    logY: true,
    series,
  };
}

function gptqFigure(): LinesFigure {
  const rng = new Rng(3);
  const rows = 64;
  const cols = 256;
  const tokens = 1024;
  const w = weights(rng, rows, cols);
  // correlated inputs with a few large channels, as a layer's activations are
  const z = new Float32Array(tokens * cols);
  rng.fillNormal(z, 0, 1);
  const x = new Float32Array(tokens * cols);
  for (let t = 0; t < tokens; t++) {
    let shared = 0;
    for (let c = 0; c < cols; c++) {
      shared = 0.8 * shared + z[t * cols + c]!;
      x[t * cols + c] = shared * (c % 29 === 0 ? 6 : 1);
    }
  }
  const acc = new HessianAccumulator(cols);
  acc.addBatch(x, tokens);
  const outErr = (wq: Float32Array) => {
    let num = 0;
    let den = 0;
    for (let t = 0; t < 256; t++) {
      for (let r = 0; r < rows; r++) {
        let a = 0;
        let b = 0;
        for (let c = 0; c < cols; c++) {
          a += x[t * cols + c]! * w[r * cols + c]!;
          b += x[t * cols + c]! * wq[r * cols + c]!;
        }
        num += (a - b) ** 2;
        den += a * a;
      }
    }
    return Math.sqrt(num / den);
  };
  const bitsList = [2, 3, 4, 8];
  const opts = (bits: number) => ({ bits, groupSize: 128, sym: false });
  return {
    kind: "lines",
    title: "Output error ‖XWᵀ − XŴᵀ‖ / ‖XWᵀ‖ of a 64×256 layer on correlated inputs, groups of 128",
    xLabel: "bits per weight (codes)",
    yLabel: "relative output error",
    logY: true,
    series: [
      { label: "RTN", points: bitsList.map((b): [number, number] => [b, outErr(dequantizeMatrix(quantizeRTN(w, rows, cols, opts(b))))]) },
      { label: "GPTQ", points: bitsList.map((b): [number, number] => [b, outErr(dequantizeMatrix(gptqQuantize(w, rows, cols, acc.h, opts(b)).qm))]) },
    ],
  };
}

function observersFigure(): HistogramFigure {
  const rng = new Rng(4);
  // activations: mostly Gaussian, a long tail of rare large values
  const x = new Float32Array(50_000);
  for (let i = 0; i < x.length; i++) x[i] = rng.normal() * (rng.uniform() < 0.003 ? 12 : 1);
  const observers = [
    { label: "min/max", o: new MinMaxObserver() },
    { label: "percentile 99.9%", o: new PercentileObserver({ percentile: 99.9 }) },
    { label: "MSE (histogram)", o: new HistogramObserver() },
    { label: "entropy (KL)", o: new EntropyObserver() },
  ];
  const markers = observers.map(({ label, o }) => {
    o.observe(x);
    const r = o.range();
    return { label, lo: r.min, hi: r.max };
  });
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const v of x) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
  return {
    kind: "histogram",
    title: "50,000 activations with a rare heavy tail, and the 8-bit range each observer chooses",
    xLabel: "activation value",
    lo,
    hi,
    counts: histogram(x, lo, hi, 80),
    markers,
  };
}

/** Every figure, by id. */
export function computeFigures(): Record<string, Figure> {
  return {
    "rtn-levels": rtnFigure(),
    "error-by-bits": bitsFigure(),
    "gptq-vs-rtn": gptqFigure(),
    observers: observersFigure(),
  };
}
