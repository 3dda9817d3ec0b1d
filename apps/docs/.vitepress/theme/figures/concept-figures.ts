/**
 * The figures of the concept pages on granularity, AWQ, QAT, mixed precision and file formats.
 * Two sources only: lowbit's own packages run on seeded synthetic matrices (the encoders, quantizers
 * and fake quantizers the library ships, so the figures show what the code does), and the measured
 * results the benchmark harness wrote to tools/bench/results/ptq-protocol.json. Nothing is typed in.
 *
 * Run in a Node process with the source condition (concept-figures.data.ts does this at build time):
 *   node --conditions=@lowbit/source --import tsx .vitepress/theme/figures/concept-figures.ts
 * prints the figures as JSON on stdout.
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { awqPseudoQuantize, candidateScales, scaleColumns } from "@lowbit/awq";
import { GGML_TYPE_INFO, ggmlTypeInfo } from "@lowbit/formats";
import {
  dequantizeMatrix,
  dequantizeQ4_0Ref,
  dequantizeQ4_1Ref,
  dequantizeQ4_KRef,
  packAwq,
  packGptq,
  packMatMulNBits,
  quantizeGgufInt4,
  quantizeQ4_K,
  quantizeRTN,
} from "@lowbit/int4";
import { dequantizeQ8_0, quantizeQ8_0 } from "@lowbit/int8";
import { Rng } from "@lowbit/tensor";
// @lowbit/qat is not (yet) a dependency of the docs app: its source is imported by path, and its own
// imports resolve from packages/qat. Replace with "@lowbit/qat" once apps/docs depends on it.
import { Variable, backward, lsqFakeQuantize, sum } from "@lowbit/qat";

/** Lines (or points) on linear or log axes. */
export interface ConceptLinesFigure {
  kind: "lines";
  title: string;
  xLabel: string;
  yLabel: string;
  logY: boolean;
  /** Linear y axis fitted to the data instead of starting at 0. */
  fitY?: boolean;
  series: Array<{ label: string; points: Array<[number, number]>; labels?: string[] }>;
  /** A horizontal reference line (e.g. the FP32 perplexity). */
  reference?: { label: string; value: number };
  source: string;
}

/** Horizontal bars, optionally in groups. */
export interface ConceptBarsFigure {
  kind: "bars";
  title: string;
  metric: string;
  better: "lower" | "higher";
  bars: Array<{ label: string; value: number; note?: string; highlight?: boolean }>;
  /** A vertical reference line (e.g. the FP32 perplexity). */
  reference?: { label: string; value: number };
  digits: number;
  source: string;
}

export type ConceptFigure = ConceptLinesFigure | ConceptBarsFigure;

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../../../../..");
const PROTOCOL = "tools/bench/results/ptq-protocol.json";
const PROTOCOL_CMD = "pnpm --filter @lowbit/bench protocol";
const COMPUTED = "Computed by lowbit's packages when this site was built (seeded synthetic data).";

interface ProtocolRow {
  id: string;
  label: string;
  ppl: number;
  kl: number;
  top1: number;
  bitsPerWeight: number;
}

function protocolRows(): Map<string, ProtocolRow> {
  const file = path.join(root, PROTOCOL);
  const json = JSON.parse(fs.readFileSync(file, "utf8")) as { rows: ProtocolRow[] };
  return new Map(json.rows.map((r) => [r.id, r]));
}

function row(rows: Map<string, ProtocolRow>, id: string): ProtocolRow {
  const r = rows.get(id);
  if (!r) throw new Error(`${PROTOCOL} has no row "${id}" (a concept figure reads it)`);
  return r;
}

function relRmse(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

/** Gaussian weights with a few heavy-tailed entries (as scripts/figures.ts). */
function weights(rng: Rng, rows: number, cols: number): Float32Array {
  const w = new Float32Array(rows * cols);
  rng.fillNormal(w, 0, 0.02);
  for (let i = 0; i < w.length; i++) if (rng.uniform() < 0.002) w[i]! *= 6;
  return w;
}

/** Measured perplexity by granularity at 4 bits: per channel against groups of 32, for RTN, GPTQ and AWQ. */
function granularityPpl(rows: Map<string, ProtocolRow>): ConceptBarsFigure {
  const ids = ["rtn-w4-pc", "rtn-w4-g32", "gptq-w4-pc", "gptq-w4-g32", "awq-w4-pc", "awq-w4-g32"];
  return {
    kind: "bars",
    title: "stories260K held-out perplexity at 4 bits: one scale per output row against groups of 32",
    metric: "perplexity",
    better: "lower",
    bars: ids.map((id) => {
      const r = row(rows, id);
      return { label: r.label, value: r.ppl, note: `${r.bitsPerWeight.toFixed(2)} bits/weight, top-1 ${(r.top1 * 100).toFixed(1)}%`, highlight: id.endsWith("g32") };
    }),
    reference: { label: "FP32", value: row(rows, "fp32").ppl },
    digits: 4,
    source: `Measured: ${PROTOCOL} (${PROTOCOL_CMD}).`,
  };
}

/** Relative RMS error of 4-bit RTN against the group size, with the bits each choice stores. */
function groupSizeSweep(): ConceptLinesFigure {
  const rng = new Rng(11);
  const rows = 64;
  const cols = 1024;
  const w = weights(rng, rows, cols);
  const sizes = [16, 32, 64, 128, 256, 512, 1024];
  const err = (sym: boolean) => sizes.map((g): [number, number] => [Math.log2(g), relRmse(dequantizeMatrix(quantizeRTN(w, rows, cols, { bits: 4, groupSize: g, sym })), w)]);
  return {
    kind: "lines",
    title: "Relative RMS error of 4-bit RTN on a 64×1024 matrix (Gaussian, 0.2% outliers) by group size; 1024 is one scale per row",
    xLabel: "group size (log2: 4 = 16 … 10 = 1024)",
    yLabel: "relative RMS error",
    logY: false,
    series: [
      { label: "asymmetric (scale + zero)", points: err(false) },
      { label: "symmetric (scale only)", points: err(true) },
    ],
    source: COMPUTED,
  };
}

/** AWQ's grid search on one layer: output error against the exponent r of s = mean|x|^r. */
function awqRatio(): ConceptLinesFigure {
  const rng = new Rng(12);
  const rows = 128;
  const cols = 256;
  const tokens = 512;
  const w = weights(rng, rows, cols);
  // activations: a handful of input channels are much larger than the rest (salient channels)
  const x = new Float32Array(tokens * cols);
  rng.fillNormal(x, 0, 1);
  const big = new Set<number>();
  while (big.size < 4) big.add(Math.floor(rng.uniform() * cols));
  for (let t = 0; t < tokens; t++) for (const c of big) x[t * cols + c]! *= 20;
  const xMean = new Float32Array(cols);
  for (let t = 0; t < tokens; t++) for (let c = 0; c < cols; c++) xMean[c]! += Math.abs(x[t * cols + c]!) / tokens;
  const out = (wq: Float32Array) => {
    let num = 0;
    let den = 0;
    for (let t = 0; t < tokens; t += 4) {
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
  const series = [3, 4].map((bits) => {
    const points: Array<[number, number]> = [];
    for (let i = 0; i < 20; i++) {
      const ratio = i / 20;
      const s = candidateScales(xMean, ratio);
      const ws = scaleColumns(Float32Array.from(w), cols, s);
      const deq = new Float32Array(ws.length);
      awqPseudoQuantize(ws, rows, cols, { bits, groupSize: 128 }, deq);
      for (let k = 0; k < deq.length; k++) deq[k] = deq[k]! / s[k % cols]!;
      points.push([ratio, out(deq)]);
    }
    return { label: `${bits}-bit, groups of 128`, points };
  });
  return {
    kind: "lines",
    title: "AWQ's scale search on a 128×256 layer whose inputs have 4 channels 20× larger: output error ‖XWᵀ − XŴᵀ‖/‖XWᵀ‖ for each grid ratio r (r = 0 is plain RTN)",
    xLabel: "ratio r in s = mean|x|^r",
    yLabel: "relative output error",
    logY: true,
    series,
    source: COMPUTED,
  };
}

/** Measured AWQ against RTN and GPTQ on stories260K. */
function awqPpl(rows: Map<string, ProtocolRow>): ConceptBarsFigure {
  const ids = ["rtn-w4-g32", "awq-w4-g32", "gptq-w4-g32", "awq-gptq-w4-g32", "rtn-w3-g32", "awq-w3-g32", "gptq-w3-g32"];
  return {
    kind: "bars",
    title: "stories260K held-out perplexity, groups of 32, calibration seed 0",
    metric: "perplexity",
    better: "lower",
    bars: ids.map((id) => {
      const r = row(rows, id);
      return { label: r.label, value: r.ppl, note: `KL ${r.kl.toFixed(3)}, top-1 ${(r.top1 * 100).toFixed(1)}%`, highlight: id.startsWith("awq") };
    }),
    reference: { label: "FP32", value: row(rows, "fp32").ppl },
    digits: 4,
    source: `Measured: ${PROTOCOL} (${PROTOCOL_CMD}).`,
  };
}

/** The forward pass of @lowbit/qat's LSQ fake quantizer and its two gradients, evaluated on a grid. */
function fakeQuant(): { forward: ConceptLinesFigure; grads: ConceptLinesFigure } {
  const n = 321;
  const xs = new Float32Array(n);
  for (let i = 0; i < n; i++) xs[i] = -1.6 + (3.2 * i) / (n - 1);
  // 3-bit symmetric: codes 0..7, zero 4, step 0.25 -> values -1.0 … 0.75
  const bits = 3;
  const zero = Float32Array.of(4);
  const forward: Array<[number, number]> = [];
  const dx: Array<[number, number]> = [];
  const ds: Array<[number, number]> = [];
  for (let i = 0; i < n; i++) {
    const x = Variable.param(Float32Array.of(xs[i]!), [1, 1], "x");
    const s = Variable.param(Float32Array.of(0.25), [1], "s");
    const y = lsqFakeQuantize(x, s, zero, bits, { kind: "tensor" }, 1);
    backward(sum(y));
    forward.push([xs[i]!, y.value[0]!]);
    dx.push([xs[i]!, x.grad?.[0] ?? 0]);
    ds.push([xs[i]!, s.grad?.[0] ?? 0]);
  }
  return {
    forward: {
      kind: "lines",
      title: "Fake quantization at 3 bits (step 0.25, zero point 4): the forward pass rounds to 8 levels and clamps outside [−1, 0.75]",
      xLabel: "input x",
      yLabel: "output",
      logY: false,
      series: [
        { label: "x (identity)", points: [[-1.6, -1.6], [1.6, 1.6]] },
        { label: "fake-quantized x", points: forward },
      ],
      source: "Computed by @lowbit/qat's lsqFakeQuantize and backward on a grid when this site was built.",
    },
    grads: {
      kind: "lines",
      title: "Its gradients: straight-through ∂y/∂x (1 inside the range, 0 where clamped) and LSQ's ∂y/∂s (round(x/s) − x/s inside, −4 and 3 outside)",
      xLabel: "input x",
      yLabel: "gradient",
      logY: false,
      series: [
        { label: "∂y/∂x (STE)", points: dx },
        { label: "∂y/∂s (LSQ, before the 1/√(N·Qp) scale)", points: ds },
      ],
      source: "Computed by @lowbit/qat's lsqFakeQuantize and backward on a grid when this site was built.",
    },
  };
}

/** Measured size against perplexity for every method of the protocol. */
function sizeVsPpl(rows: Map<string, ProtocolRow>): ConceptLinesFigure {
  const pick = (label: string, ids: string[]) => {
    const rs = ids.map((id) => row(rows, id)).sort((a, b) => a.bitsPerWeight - b.bitsPerWeight);
    return { label, points: rs.map((r): [number, number] => [r.bitsPerWeight, r.ppl]), labels: rs.map((r) => r.label) };
  };
  return {
    kind: "lines",
    title:
      "stories260K: perplexity against stored bits per weight (codes, scales and zeros); per channel (4.27), groups of 32 (4.59), 4/8 bits mixed by sensitivity (4.96) and 8 bits (8.70)",
    xLabel: "bits per weight",
    yLabel: "held-out perplexity",
    logY: false,
    fitY: true,
    series: [
      pick("RTN", ["rtn-w4-pc", "rtn-w4-g32", "rtn-w8-g32"]),
      pick("GPTQ", ["gptq-w4-pc", "gptq-w4-g32", "gptq-w8-g32"]),
      pick("GPTQ, 4/8 bits mixed by sensitivity", ["mixed-gptq-4-8"]),
    ],
    reference: { label: "FP32", value: row(rows, "fp32").ppl },
    source: `Measured: ${PROTOCOL} (${PROTOCOL_CMD}).`,
  };
}

/** Bits per weight and error of each storage format, from the bytes the encoders really write. */
function formatFigures(): { bits: ConceptBarsFigure; error: ConceptBarsFigure } {
  const rng = new Rng(13);
  const rows = 128;
  const cols = 1024;
  const n = rows * cols;
  const w = weights(rng, rows, cols);
  const entries: Array<{ label: string; bytes: number; deq: Float32Array | undefined; note: string }> = [];
  const ggml = (name: string) => ggmlTypeInfo(name);
  const f16 = ggml("F16");
  entries.push({ label: "F32", bytes: n * ggml("F32").typeSize, deq: undefined, note: "GGUF / safetensors" });
  entries.push({ label: "F16", bytes: (n / f16.blockSize) * f16.typeSize, deq: undefined, note: "GGUF / safetensors" });
  const q80 = quantizeQ8_0(w);
  entries.push({ label: "Q8_0", bytes: q80.byteLength, deq: dequantizeQ8_0(q80, n), note: "GGUF, 32 per block, f16 scale" });
  const q40 = quantizeGgufInt4("q4_0", w, rows, cols);
  entries.push({ label: "Q4_0", bytes: q40.byteLength, deq: dequantizeQ4_0Ref(q40, n), note: "GGUF, 32 per block, f16 scale" });
  const q41 = quantizeGgufInt4("q4_1", w, rows, cols);
  entries.push({ label: "Q4_1", bytes: q41.byteLength, deq: dequantizeQ4_1Ref(q41, n), note: "GGUF, 32 per block, f16 scale + min" });
  const q4k = quantizeQ4_K(w, rows, cols);
  entries.push({ label: "Q4_K", bytes: q4k.byteLength, deq: dequantizeQ4_KRef(q4k, n), note: "GGUF, 256 per super-block, 6-bit sub-scales" });
  const g128 = quantizeRTN(w, rows, cols, { bits: 4, groupSize: 128, sym: false });
  const gp = packGptq(g128, { version: 2 });
  entries.push({
    label: "GPTQ 4-bit g128",
    bytes: gp.qweight.byteLength + gp.qzeros.byteLength + gp.scales.byteLength + gp.gIdx.byteLength,
    deq: dequantizeMatrix(g128),
    note: "safetensors: qweight, qzeros, f16 scales, g_idx",
  });
  const ap = packAwq(g128);
  entries.push({ label: "AWQ 4-bit g128", bytes: ap.qweight.byteLength + ap.qzeros.byteLength + ap.scales.byteLength, deq: dequantizeMatrix(g128), note: "safetensors: qweight, qzeros, f16 scales" });
  const g32 = quantizeRTN(w, rows, cols, { bits: 4, groupSize: 32, sym: false });
  const mm = packMatMulNBits(g32, { zeroPoints: true });
  entries.push({
    label: "MatMulNBits 4-bit b32",
    bytes: mm.B.byteLength + mm.scales.byteLength + (mm.zeroPoints?.byteLength ?? 0),
    deq: dequantizeMatrix(g32),
    note: "ONNX Runtime: f32 scales, packed zero points",
  });
  if (!GGML_TYPE_INFO.size) throw new Error("no ggml types");
  return {
    bits: {
      kind: "bars",
      title: `Bits per weight of a ${rows}×${cols} matrix in each format, from the bytes lowbit's encoders wrote`,
      metric: "bits per weight",
      better: "lower",
      bars: entries.map((e) => ({ label: e.label, value: (e.bytes * 8) / n, note: e.note, highlight: e.label.includes("4") })),
      digits: 3,
      source: COMPUTED,
    },
    error: {
      kind: "bars",
      title: `Relative RMS error after encoding and decoding the same ${rows}×${cols} matrix (Gaussian, 0.2% outliers; GPTQ/AWQ/MatMulNBits codes from RTN)`,
      metric: "relative RMS error",
      better: "lower",
      bars: entries
        .filter((e) => e.deq !== undefined)
        .map((e) => ({ label: e.label, value: relRmse(e.deq!, w), note: e.note, highlight: e.label.includes("4") })),
      digits: 4,
      source: COMPUTED,
    },
  };
}

/** Every figure of these pages, by id. */
export function computeConceptFigures(): Record<string, ConceptFigure> {
  const rows = protocolRows();
  const fq = fakeQuant();
  const fmt = formatFigures();
  return {
    "granularity-ppl": granularityPpl(rows),
    "group-size-sweep": groupSizeSweep(),
    "awq-ratio": awqRatio(),
    "awq-ppl": awqPpl(rows),
    "fake-quant-forward": fq.forward,
    "fake-quant-grads": fq.grads,
    "size-vs-ppl": sizeVsPpl(rows),
    "format-bits": fmt.bits,
    "format-error": fmt.error,
  };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.stdout.write(`${JSON.stringify(computeConceptFigures())}\n`);
}
