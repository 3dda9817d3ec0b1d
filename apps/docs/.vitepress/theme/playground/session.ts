/**
 * What the playground does with a model, in plain TypeScript over the lowbit packages (no DOM): build
 * the FP model and a copy, quantize the copy with RTN, GPTQ or AWQ through the sequential calibration
 * driver, run it on packed int-n weights (Int4Linear, the WebAssembly kernels), and measure size,
 * perplexity/KL/top-1 on held-out text, per-linear output error and weight histograms; generate text.
 */
import { awqPlugin } from "@lowbit/awq";
import { DequantizedLinear, type LayerPlugin, type QuantizeReport, quantizeModel, rtnPlugin, sampleWindows } from "@lowbit/calibration";
import { gptqPlugin } from "@lowbit/gptq";
import { Int4Linear, type QuantizedMatrix, dequantizeMatrix } from "@lowbit/int4";
import {
  type EvalResult,
  LINEAR_NAMES,
  type LinearName,
  type LlamaConfig,
  type LlamaModel,
  type TensorSource,
  type Tokenizer,
  buildModel,
  encodeDocuments,
  evaluate,
  generate,
} from "@lowbit/runtime";

export type Method = "rtn" | "gptq" | "awq";

export interface QuantSettings {
  method: Method;
  /** 2, 3, 4 or 8. */
  bits: number;
  /** Group size, or -1 for one group per output channel. */
  groupSize: number;
  sym: boolean;
  /** Calibration windows and their length (GPTQ, AWQ). */
  calibWindows: number;
  seqLen: number;
  /** Seed of the calibration window sampler. */
  seed: number;
}

export const DEFAULT_SETTINGS: QuantSettings = { method: "rtn", bits: 4, groupSize: 32, sym: false, calibWindows: 16, seqLen: 64, seed: 0 };

/** A model ready to quantize: how to build it, its tokenizer, and text to calibrate and evaluate on. */
export interface ModelInput {
  name: string;
  config: LlamaConfig;
  /** Called twice (FP model and the copy to quantize). */
  source: () => TensorSource;
  tokenizer: Tokenizer;
  calibDocs: string[];
  evalDocs: string[];
  /** Bytes of the file(s) it came from, when loaded from files. */
  fileBytes?: number;
  /** Evaluate on at most this many tokens of evalDocs (default 4096: keeps the page quick). */
  maxEvalTokens?: number;
  /** A prompt that suits the model's text. */
  prompt?: string;
}

/** Tokens of held-out text the playground evaluates on unless a model says otherwise. */
export const DEFAULT_EVAL_TOKENS = 4096;

/** AWQ search grid used by the playground (the CLI and the package default to 20 points and 512 clip tokens). */
export const AWQ_BROWSER_GRID = { nGrid: 10, clipGrid: 10, clipTokens: 256 } as const;

/** The plug-in for a method and settings. */
export function pluginFor(s: QuantSettings): LayerPlugin {
  const weight = { bits: s.bits, groupSize: s.groupSize, sym: s.sym };
  switch (s.method) {
    case "rtn":
      return rtnPlugin(weight);
    case "gptq":
      return gptqPlugin(weight);
    case "awq":
      // AWQ's searches on a coarser grid than its defaults (20 points), to keep the page responsive
      return awqPlugin({ ...weight, ...AWQ_BROWSER_GRID });
  }
}

/**
 * Replaces every fake-quantized linear by an Int4Linear over the same codes (packed weights, WASM
 * SIMD kernels). Returns the quantized matrices by "layer:name".
 */
export function packQuantizedLinears(model: LlamaModel): Map<string, QuantizedMatrix> {
  const out = new Map<string, QuantizedMatrix>();
  for (let i = 0; i < model.nLayers; i++) {
    for (const name of LINEAR_NAMES) {
      const lin = model.getLinear(i, name);
      if (lin instanceof DequantizedLinear) {
        out.set(`${i}:${name}`, lin.qm);
        model.setLinear(i, name, new Int4Linear(lin.qm, { name: `blk.${i}.${name}`, ...(lin.bias ? { bias: lin.bias } : {}) }));
      }
    }
  }
  return out;
}

export interface LinearError {
  layer: number;
  name: LinearName;
  /** ||y_q - y_fp|| / ||y_fp|| of the linear's output on held-out text (errors of earlier layers included). */
  relError: number;
}

export interface Histogram {
  layer: number;
  name: LinearName;
  lo: number;
  hi: number;
  /** Counts per bin of the FP weights and of the weights the quantized model computes with. */
  fp: number[];
  q: number[];
  /** Row 0, group 0: its FP weights, the values they became, and the grid they were rounded onto. */
  group?: { fp: number[]; q: number[]; grid: number[]; bits: number; size: number };
}

export interface QuantResult {
  settings: QuantSettings;
  report: QuantizeReport;
  fpBytes: number;
  qBytes: number;
  /** Bytes of the seven linears per layer only. */
  fpLinearBytes: number;
  qLinearBytes: number;
  /** Mean storage bits per quantized weight (codes + scales + zeros). */
  bitsPerWeight: number;
  eval: EvalResult;
  evalTokens: number;
  errors: LinearError[];
  quantizeMs: number;
  evalMs: number;
}

export function evalTokens(input: ModelInput, seqLen: number): number[] {
  const tokens = encodeDocuments(input.tokenizer, input.evalDocs, input.maxEvalTokens ?? DEFAULT_EVAL_TOKENS);
  return tokens.slice(0, Math.floor(tokens.length / seqLen) * seqLen);
}

/** Calibration windows are sampled from the first this-many tokens of the calibration text. */
export const CALIB_STREAM_TOKENS = 32768;

export function calibrationSet(input: ModelInput, s: QuantSettings) {
  const stream = encodeDocuments(input.tokenizer, input.calibDocs, CALIB_STREAM_TOKENS);
  return sampleWindows(stream, { windows: s.calibWindows, seqLen: s.seqLen, seed: s.seed, bosId: input.config.bosTokenId });
}

function linearBytes(model: LlamaModel): number {
  let b = 0;
  for (let i = 0; i < model.nLayers; i++) for (const n of LINEAR_NAMES) b += model.getLinear(i, n).storageBytes;
  return b;
}

/** Output error of every linear of `q` against `fp` on the first windows of the evaluation text. */
export function linearErrors(fp: LlamaModel, q: LlamaModel, tokens: readonly number[], seqLen: number, windows = 2): LinearError[] {
  const w = Math.max(1, Math.min(windows, Math.floor(tokens.length / seqLen)));
  const ids = tokens.slice(0, w * seqLen);
  const outputs = (m: LlamaModel) => {
    const got = new Map<string, Float32Array>();
    const off = m.registerHook((e) => {
      if (e.kind === "linear") got.set(`${e.layer}:${e.name}`, e.output);
    });
    try {
      let x = m.embed(ids);
      for (let i = 0; i < m.nLayers; i++) x = m.runLayer(i, x, w, seqLen);
    } finally {
      off();
    }
    return got;
  };
  const a = outputs(fp);
  const b = outputs(q);
  const out: LinearError[] = [];
  for (let layer = 0; layer < fp.nLayers; layer++) {
    for (const name of LINEAR_NAMES) {
      const ya = a.get(`${layer}:${name}`);
      const yb = b.get(`${layer}:${name}`);
      if (!ya || !yb) continue;
      let num = 0;
      let den = 0;
      for (let i = 0; i < ya.length; i++) {
        const d = yb[i]! - ya[i]!;
        num += d * d;
        den += ya[i]! * ya[i]!;
      }
      out.push({ layer, name, relError: Math.sqrt(num / Math.max(den, 1e-30)) });
    }
  }
  return out;
}

/** Histogram of one linear's FP weights and of the weights the quantized model computes with. */
export function weightHistogram(fp: LlamaModel, q: LlamaModel, layer: number, name: LinearName, qm?: QuantizedMatrix, bins = 60): Histogram {
  const a = fp.getLinear(layer, name).dequantizedWeight();
  const b = q.getLinear(layer, name).dequantizedWeight();
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const arr of [a, b]) for (let i = 0; i < arr.length; i++) [lo, hi] = [Math.min(lo, arr[i]!), Math.max(hi, arr[i]!)];
  const count = (arr: Float32Array) => {
    const c = new Array<number>(bins).fill(0);
    for (let i = 0; i < arr.length; i++) c[Math.min(bins - 1, Math.floor(((arr[i]! - lo) / (hi - lo || 1)) * bins))]! += 1;
    return c;
  };
  const h: Histogram = { layer, name, lo, hi, fp: count(a), q: count(b) };
  if (qm) {
    // the first group of row 0 (act-order matrices: the columns gIdx assigns to group 0)
    const cols = Array.from({ length: qm.cols }, (_, c) => c).filter((c) => (qm.gIdx ? qm.gIdx[c] === 0 : c < qm.groupSize));
    const deq = dequantizeMatrix(qm);
    const scale = qm.scales[0]!;
    const zero = qm.zeros[0]!;
    const grid = Array.from({ length: 2 ** qm.bits }, (_, k) => scale * (k - zero));
    h.group = { fp: cols.map((c) => a[c]!), q: cols.map((c) => deq[c]!), grid, bits: qm.bits, size: cols.length };
  }
  return h;
}

export interface Progress {
  stage: string;
  fraction: number;
}

const tick = () => new Promise<void>((r) => setTimeout(r, 0));

/**
 * Builds the FP model and a quantized copy and measures them. The caller owns both models
 * (dispose them when done).
 */
export async function runQuantization(
  input: ModelInput,
  s: QuantSettings,
  onProgress: (p: Progress) => void = () => {},
): Promise<{ fp: LlamaModel; q: LlamaModel; matrices: Map<string, QuantizedMatrix>; result: QuantResult }> {
  onProgress({ stage: "building models", fraction: 0 });
  await tick();
  const fp = await buildModel(input.config, input.source(), { what: input.name });
  const q = await buildModel(input.config, input.source(), { what: input.name });
  const fpBytes = fp.storageBytes;
  const fpLinearBytes = linearBytes(fp);
  const calib = calibrationSet(input, s);
  const t0 = performance.now();
  const report = await quantizeModel(q, calib, pluginFor(s), {
    batchWindows: 8,
    onProgress: (p) => onProgress({ stage: `quantizing layer ${p.layer + 1} of ${p.nLayers}`, fraction: (0.8 * p.done) / p.nLayers }),
  });
  const matrices = packQuantizedLinears(q);
  const quantizeMs = performance.now() - t0;
  onProgress({ stage: "evaluating", fraction: 0.8 });
  await tick();
  const tokens = evalTokens(input, s.seqLen);
  const t1 = performance.now();
  const ev = evaluate(q, tokens, { windowLength: s.seqLen, reference: fp });
  const evalMs = performance.now() - t1;
  const errors = linearErrors(fp, q, tokens, s.seqLen);
  const weights = report.records.reduce((a, r) => a + r.rows * r.cols, 0);
  const bits = report.records.reduce((a, r) => a + r.bitsPerWeight * r.rows * r.cols, 0);
  onProgress({ stage: "done", fraction: 1 });
  return {
    fp,
    q,
    matrices,
    result: {
      settings: s,
      report,
      fpBytes,
      qBytes: q.storageBytes,
      fpLinearBytes,
      qLinearBytes: linearBytes(q),
      bitsPerWeight: weights ? bits / weights : 32,
      eval: ev,
      evalTokens: tokens.length,
      errors,
      quantizeMs,
      evalMs,
    },
  };
}

/** Greedy (temperature 0) or seeded sampled continuations of a prompt from both models. */
export function generatePair(
  fp: LlamaModel,
  q: LlamaModel,
  tokenizer: Tokenizer,
  prompt: string,
  options: { maxTokens: number; temperature: number; seed: number },
): { fp: string; q: string; fpTokensPerSecond: number; qTokensPerSecond: number } {
  const ids = tokenizer.encode(prompt, { bos: true });
  const run = (m: LlamaModel) => {
    const r = generate(m, ids, { maxTokens: options.maxTokens, temperature: options.temperature, topK: 40, seed: options.seed, tokenizer });
    return { text: r.text, tps: r.tokens.length / Math.max(1e-3, (r.prefillMs + r.decodeMs) / 1000) };
  };
  const a = run(fp);
  const b = run(q);
  return { fp: a.text, q: b.text, fpTokensPerSecond: a.tps, qTokensPerSecond: b.tps };
}
