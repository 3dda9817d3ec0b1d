/**
 * The record of a quantize or demo run, written as JSON beside its output (`<out>.run.json`, or
 * `run.json` in the demo folder); `lowbit report` turns it into HTML. Timings live here, never in
 * the model output, so outputs stay byte-identical between runs.
 */
export interface Histogram {
  lo: number;
  hi: number;
  counts: number[];
}

export interface LayerError {
  /** GGUF-style name of the linear layer, e.g. "blk.0.attn_q". */
  name: string;
  layer: number;
  bits: number;
  groupSize: number;
  /** Relative weight error ||W - Wq||² / ||W||² (absent for AWQ, which rescales weights). */
  weightError?: number;
  /** Relative output error on calibration inputs, when the method measured it. */
  outputError?: number;
}

export interface EvalSummary {
  perplexity: number;
  /** Mean KL(FP || quantized) per token, nats. */
  kl?: number;
  /** Share of positions where the argmax token matches FP. */
  top1?: number;
  tokens: number;
  /** Forward tokens per second during evaluation. */
  tokensPerSecond?: number;
}

export interface MethodRun {
  label: string;
  method: string;
  bits: number;
  groupSize: number;
  sym: boolean;
  format?: string;
  out?: string;
  /** Bytes of the quantized model (the output on disk when written, else its storage in memory). */
  bytes: number;
  bitsPerWeight: number;
  seconds: number;
  peakRssBytes?: number;
  layers: LayerError[];
  /** Relative output error of each decoder layer on calibration windows, when measured. */
  layerOutputErrors?: Array<number | null>;
  eval?: EvalSummary;
  weightHistogram?: Histogram;
  errorHistogram?: Histogram;
}

export interface RunRecord {
  kind: "quantize" | "demo";
  version: 1;
  lowbit: string;
  createdAt: string;
  model: { path: string; format: string; parameters: number; bytes: number; note?: string };
  baseline?: { label: string; bytes: number; bitsPerWeight: number; eval?: EvalSummary };
  runs: MethodRun[];
  evalData?: { path: string; tokens: number; note?: string };
  calibData?: { path: string; samples: number; seqLen: number; note?: string };
  command?: string;
  /** Kernel threads the run used, kernel calls split across them, and why fewer than asked. */
  threads?: { threads: number; splitCalls: number; reason?: string };
}

/** A histogram of values over [lo, hi] in `bins` equal bins (values outside are clamped in). */
export function histogram(values: ArrayLike<number>, bins = 64, lo?: number, hi?: number): Histogram {
  let a = lo ?? Infinity;
  let b = hi ?? -Infinity;
  if (lo === undefined || hi === undefined) {
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (lo === undefined && v < a) a = v;
      if (hi === undefined && v > b) b = v;
    }
  }
  if (!(b > a)) {
    a = Number.isFinite(a) ? a - 0.5 : -0.5;
    b = a + 1;
  }
  const counts = new Array<number>(bins).fill(0);
  const scale = bins / (b - a);
  for (let i = 0; i < values.length; i++) {
    const k = Math.min(bins - 1, Math.max(0, Math.floor((values[i]! - a) * scale)));
    counts[k]!++;
  }
  return { lo: a, hi: b, counts };
}

/** Adds `h` into `into` (same bins). */
export function mergeHistogram(into: Histogram, h: Histogram): void {
  for (let i = 0; i < into.counts.length; i++) into.counts[i]! += h.counts[i] ?? 0;
}
