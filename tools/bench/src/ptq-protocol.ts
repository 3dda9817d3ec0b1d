/**
 * The post-training quantization measuring protocol of issue 5, on stories260K:
 *
 * - tinystories-valid.txt split into stories on blank lines; the first half (floor(n/2)) is
 *   calibration text, the rest evaluation text; each story encoded with BOS and concatenated.
 * - Evaluation: the first 100,000 tokens of the evaluation stream in non-overlapping 256-token
 *   windows (partial last one dropped), token 0 of each set to BOS, a fresh context per window,
 *   the 255 next-token predictions scored. Perplexity = exp(mean NLL); KL(FP || quantized) per
 *   scored position, averaged; top-1 agreement with the FP argmax.
 * - Calibration: 64 windows of 256 tokens at seeded offsets (seed 0) in the calibration stream,
 *   token 0 set to BOS. Embedding, classifier and norms stay FP32; the 172-wide down projection
 *   takes the smallest divisor of 172 at least the requested group size (43 for 32).
 *
 * Prints the table (perplexity / KL / top-1, bits per weight, quantization time) next to the
 * reference values of the issue and writes tools/bench/results/ptq-protocol.json.
 *
 * Usage: pnpm --filter @lowbit/bench protocol [--jobs N] [--only id,id] [--eval-windows N]
 *          [--sweep N] [--seed S] [--sampler lowbit|python|torch|numpy] [--out file.json]
 * Configurations run in N child processes (default 2); each loads the FP reference log-probs.
 * The calibration-dependent rows with reference values are rerun over seeds S..S+N-1 (default
 * 5 seeds) and reported as mean [min, max]: the reference's own calibration draw is unknown, and
 * on this small model the draw alone moves GPTQ/AWQ perplexities by about 1-3%.
 */
import { fork } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { awqPlugin } from "@lowbit/awq";
import {
  type CalibrationSet,
  chooseBits,
  consecutiveWindows,
  encodeDocuments,
  HistogramObserver,
  type LayerPlugin,
  type LinearRecord,
  MinMaxObserver,
  measureSensitivity,
  DequantizedLinear,
  quantizeModel,
  rtnPlugin,
  sampleWindows,
  splitOnBlankLines,
  staticW8A8Plugin,
} from "@lowbit/calibration";
import { gptqPlugin } from "@lowbit/gptq";
import { effectiveGroupSize } from "@lowbit/int4";
import { LINEAR_NAMES, Llama2cTokenizer, type LlamaModel, loadLlama2c } from "@lowbit/runtime";
import { dataFile } from "@lowbit/testing";

const SEQ = 256;
const EVAL_TOKENS = 100_000;
const CALIB_WINDOWS = 64;
const SEED = 0;
const BOS = 1;
const BATCH = 16;

interface Reference {
  ppl: number;
  kl?: number;
  top1?: number;
  what: string;
}

interface RunConfig {
  id: string;
  label: string;
  make?: (model: LlamaModel, calib: CalibrationSet) => Promise<LayerPlugin>;
  reference?: Reference;
  /** Depends on the calibration windows (GPTQ, AWQ): rerun over several seeds with --sweep. */
  calibrated?: boolean;
}

/**
 * llama.cpp's Q8_0 rule on groups (d = amax / 127, q = round(x / d) in -127..127) with the
 * protocol's group sizes (32, or 43 on the 172-wide down projection, which Q8_0 blocks cannot
 * take), held as a QuantizedMatrix (codes + 128, zero 128) and evaluated dequantized.
 */
function q8_0StylePlugin(group: number): LayerPlugin {
  return {
    name: "q8_0-style",
    needsActivations: false,
    quantizeLayer(ctx) {
      for (const name of LINEAR_NAMES) {
        const l = ctx.model.getLinear(ctx.layer, name);
        const rows = l.outFeatures;
        const cols = l.inFeatures;
        const g = effectiveGroupSize(cols, group);
        const wt = ctx.weight(name);
        const ng = cols / g;
        const q = new Uint8Array(rows * cols);
        const scales = new Float32Array(rows * ng);
        const zeros = new Float32Array(rows * ng).fill(128);
        for (let r = 0; r < rows; r++) {
          for (let b = 0; b < ng; b++) {
            const o = r * cols + b * g;
            let amax = 0;
            for (let i = 0; i < g; i++) amax = Math.max(amax, Math.abs(wt[o + i]!));
            const d = Math.fround(amax / 127);
            scales[r * ng + b] = d;
            for (let i = 0; i < g; i++) {
              const x = d === 0 ? 0 : wt[o + i]! / d;
              q[o + i] = Math.sign(x) * Math.round(Math.abs(x)) + 128; // roundf: half away from zero
            }
          }
        }
        ctx.setLinear(name, new DequantizedLinear({ bits: 8, groupSize: g, rows, cols, sym: true, q, scales, zeros }));
        ctx.record({ name, kind: "q8_0-style", bits: 8, groupSize: g, rows, cols, bitsPerWeight: 8 + 16 / g });
      }
    },
  };
}

export interface RowResult {
  id: string;
  label: string;
  ppl: number;
  kl: number;
  top1: number;
  bitsPerWeight: number;
  quantSeconds: number;
  evalSeconds: number;
  peakRssMB?: number;
  reference?: Reference;
  notes?: string[];
  /** The same configuration over calibration seeds 0..n-1 (lowbit sampler), when swept. */
  sweep?: { seeds: number[]; ppl: number[]; kl: number[]; top1: number[]; pplMean: number; pplMin: number; pplMax: number };
}

// ---- configurations ----

const w = (bits: number, groupSize: number, extra: object = {}) => ({ bits, groupSize, sym: false, ...extra });
/** GPTQ as IST-DASLab llama.py runs by default (no --true-sequential), as the reference numbers were made. */
const gptq = (bits: number, groupSize: number, extra: object = {}) =>
  gptqPlugin({ ...w(bits, groupSize), trueSequential: false, ...extra });

const CONFIGS: RunConfig[] = [
  { id: "fp32", label: "FP32", reference: { ppl: 7.4561, kl: 0, top1: 1, what: "FP32" } },
  {
    id: "q8_0",
    label: "Q8_0-style int8 (d = amax/127, g32; g43 on 172)",
    make: async () => q8_0StylePlugin(32),
    reference: { ppl: 7.4602, kl: 0.00044, top1: 0.989, what: "Q8_0-style int8 (group 32)" },
  },
  {
    id: "rtn-w8-g32",
    label: "RTN w8 g32 sym",
    make: async () => rtnPlugin(w(8, 32, { sym: true })),
    reference: { ppl: 7.4602, kl: 0.00044, top1: 0.989, what: "Q8_0-style int8 (group 32)" },
  },
  { id: "gptq-w8-g32", label: "GPTQ w8 g32 sym", make: async () => gptq(8, 32, { sym: true }) },
  {
    id: "w8a8-minmax",
    label: "static W8A8, min/max observer",
    make: async () => staticW8A8Plugin({ observer: () => new MinMaxObserver() }),
  },
  {
    id: "w8a8-mse",
    label: "static W8A8, histogram (MSE) observer",
    make: async () => staticW8A8Plugin({ observer: () => new HistogramObserver() }),
  },
  {
    id: "rtn-w4-g32",
    label: "RTN w4 g32 asym",
    make: async () => rtnPlugin(w(4, 32)),
    reference: { ppl: 8.1032, kl: 0.1168, top1: 0.828, what: "RTN w4 g32 asymmetric" },
  },
  {
    id: "rtn-w4-pc",
    label: "RTN w4 per-channel asym",
    make: async () => rtnPlugin(w(4, -1)),
    reference: { ppl: 8.2344, kl: 0.1494, top1: 0.801, what: "RTN w4 per-channel asymmetric" },
  },
  {
    id: "gptq-w4-g32",
    calibrated: true,
    label: "GPTQ w4 g32",
    make: async () => gptq(4, 32),
    reference: { ppl: 7.8678, kl: 0.0791, top1: 0.857, what: "GPTQ w4 g32" },
  },
  {
    id: "gptq-w4-g32-act",
    calibrated: true,
    label: "GPTQ w4 g32 act-order",
    make: async () => gptq(4, 32, { actOrder: true }),
    reference: { ppl: 7.8898, kl: 0.0733, top1: 0.863, what: "GPTQ w4 g32 act-order" },
  },
  {
    id: "gptq-w4-pc",
    calibrated: true,
    label: "GPTQ w4 per-channel",
    make: async () => gptq(4, -1),
    reference: { ppl: 8.1053, kl: 0.1082, top1: 0.832, what: "GPTQ w4 per-channel" },
  },
  { id: "gptq-w4-pc-act", label: "GPTQ w4 per-channel act-order", make: async () => gptq(4, -1, { actOrder: true }) },
  {
    id: "awq-w4-g32",
    calibrated: true,
    label: "AWQ w4 g32",
    make: async () => awqPlugin(w(4, 32)),
    reference: { ppl: 8.1195, kl: 0.0938, top1: 0.843, what: "AWQ w4 g32" },
  },
  { id: "awq-w4-pc", label: "AWQ w4 per-channel", make: async () => awqPlugin(w(4, -1)) },
  {
    id: "gptq-w4-g32-true-seq",
    label: "GPTQ w4 g32 true-sequential",
    make: async () => gptqPlugin({ ...w(4, 32), trueSequential: true }),
  },
  {
    id: "gptq-w4-g32-updated",
    label: "GPTQ w4 g32, groups fit on updated weights",
    make: async () => gptq(4, 32, { groupFit: "updated" }),
  },
  {
    id: "gptq-w4-g32-mse",
    label: "GPTQ w4 g32 + MSE quantizer grid (quant.py mse)",
    calibrated: true,
    make: async () => gptq(4, 32, { mse: true }),
  },
  {
    id: "awq-gptq-w4-g32",
    label: "AWQ scales + clip, then GPTQ w4 g32",
    make: async () => awqPlugin(w(4, 32, { quantize: gptq(4, 32) })),
  },
  {
    id: "awq-noclip-gptq-w4-g32",
    label: "AWQ scales (no clip), then GPTQ w4 g32",
    make: async () => awqPlugin(w(4, 32, { clip: false, quantize: gptq(4, 32) })),
  },
  {
    id: "rtn-w3-g32",
    label: "RTN w3 g32 asym",
    make: async () => rtnPlugin(w(3, 32)),
    reference: { ppl: 14.636, kl: 0.72, top1: 0.576, what: "RTN w3 g32" },
  },
  { id: "gptq-w3-g32", label: "GPTQ w3 g32", make: async () => gptq(3, 32) },
  {
    id: "gptq-w3-g32-act-static",
    label: "GPTQ w3 g32 act-order, static groups",
    make: async () => gptq(3, 32, { actOrder: true, staticGroups: true }),
  },
  {
    id: "gptq-w3-g32-act",
    calibrated: true,
    label: "GPTQ w3 g32 act-order",
    make: async () => gptq(3, 32, { actOrder: true }),
    reference: { ppl: 10.862, kl: 0.415, top1: 0.675, what: "GPTQ w3 g32 act-order" },
  },
  {
    id: "awq-w3-g32",
    calibrated: true,
    label: "AWQ w3 g32",
    make: async () => awqPlugin(w(3, 32)),
    reference: { ppl: 11.275, what: "AWQ w3 g32" },
  },
  {
    id: "mixed-gptq-4-8",
    label: "GPTQ g32, 4/8 bits by sensitivity @ 5.0 bits/weight",
    make: async (model, calib) => {
      const sens = await measureSensitivity(model, calib, { bits: [4, 8], groupSize: 32, windows: 8 });
      const plan = chooseBits(sens, { budget: 5.0, groupSize: 32 });
      return gptq(4, 32, { bitsFor: plan.bitsFor });
    },
  },
];

// ---- calibration windows ----

/**
 * CPython's `random` (MT19937 seeded by init_by_array, randint through getrandbits rejection), so
 * `--sampler python` draws the offsets GPTQ's datautils draw: `random.seed(seed)`, then per window
 * `i = random.randint(0, len - seqlen - 1)`.
 */
class PyRandom {
  private readonly mt = new Uint32Array(624);
  private mti = 624;

  /** MT19937 as torch.manual_seed / numpy's legacy seed(int) start it: init_genrand(seed). */
  static fromInitGenrand(seed: number): PyRandom {
    const r = new PyRandom(0);
    r.initGenrand(seed >>> 0);
    return r;
  }

  constructor(seed: number) {
    const key: number[] = [];
    let s = Math.abs(Math.trunc(seed));
    do {
      key.push(s % 2 ** 32);
      s = Math.floor(s / 2 ** 32);
    } while (s > 0);
    this.initGenrand(19650218);
    const mt = this.mt;
    let i = 1;
    let j = 0;
    for (let k = Math.max(624, key.length); k > 0; k--) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      mt[i] = ((mt[i]! ^ Math.imul(prev, 1664525)) + key[j]! + j) >>> 0;
      i++;
      j++;
      if (i >= 624) {
        mt[0] = mt[623]!;
        i = 1;
      }
      if (j >= key.length) j = 0;
    }
    for (let k = 623; k > 0; k--) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      mt[i] = ((mt[i]! ^ Math.imul(prev, 1566083941)) - i) >>> 0;
      i++;
      if (i >= 624) {
        mt[0] = mt[623]!;
        i = 1;
      }
    }
    mt[0] = 0x80000000;
  }

  initGenrand(s: number): void {
    const mt = this.mt;
    mt[0] = s >>> 0;
    for (let i = 1; i < 624; i++) mt[i] = (Math.imul(1812433253, mt[i - 1]! ^ (mt[i - 1]! >>> 30)) + i) >>> 0;
    this.mti = 624;
  }

  nextU32(): number {
    const mt = this.mt;
    if (this.mti >= 624) {
      for (let k = 0; k < 624; k++) {
        const y = (mt[k]! & 0x80000000) | (mt[(k + 1) % 624]! & 0x7fffffff);
        mt[k] = mt[(k + 397) % 624]! ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
      }
      this.mti = 0;
    }
    let y = mt[this.mti++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** random.randint(a, b) for b - a < 2^32. */
  randint(a: number, b: number): number {
    const n = b - a + 1;
    const k = Math.floor(Math.log2(n)) + 1;
    let r: number;
    do r = this.nextU32() >>> (32 - k);
    while (r >= n);
    return a + r;
  }
}

/**
 * The protocol's calibration windows: lowbit's seeded sampler (default), or the offsets other
 * tools would draw in [0, len - seqLen): "python" (random.seed + random.randint, GPTQ's
 * datautils), "torch" (torch.manual_seed + torch.randint: 32-bit draw % range), "numpy"
 * (np.random.seed + legacy randint: masked rejection).
 */
function calibrationWindows(stream: Int32Array, sampler: string, seed: number): CalibrationSet {
  if (sampler === "lowbit") return sampleWindows(stream, { windows: CALIB_WINDOWS, seqLen: SEQ, seed, bosId: BOS });
  const range = stream.length - SEQ;
  let draw: () => number;
  if (sampler === "python") {
    const rnd = new PyRandom(seed);
    draw = () => rnd.randint(0, range - 1);
  } else if (sampler === "torch") {
    const rnd = PyRandom.fromInitGenrand(seed);
    draw = () => rnd.nextU32() % range;
  } else if (sampler === "numpy") {
    const rnd = PyRandom.fromInitGenrand(seed);
    let mask = range - 1;
    for (let s = 1; s < 32; s *= 2) mask |= mask >>> s;
    draw = () => {
      let v: number;
      do v = (rnd.nextU32() & mask) >>> 0;
      while (v > range - 1);
      return v;
    };
  } else {
    throw new Error(`unknown sampler "${sampler}" (lowbit, python, torch, numpy)`);
  }
  const tokens = new Int32Array(CALIB_WINDOWS * SEQ);
  const offsets = new Int32Array(CALIB_WINDOWS);
  for (let w = 0; w < CALIB_WINDOWS; w++) {
    const off = draw();
    offsets[w] = off;
    tokens.set(stream.subarray(off, off + SEQ), w * SEQ);
    tokens[w * SEQ] = BOS;
  }
  return { tokens, windows: CALIB_WINDOWS, seqLen: SEQ, offsets, tokensUsed: CALIB_WINDOWS * SEQ, distinctTokens: CALIB_WINDOWS * SEQ, streamTokens: stream.length, seed };
}

// ---- data and evaluation ----

interface Streams {
  calib: Int32Array;
  evalStream: Int32Array;
  stories: number;
}

async function buildStreams(): Promise<Streams> {
  const tok = await Llama2cTokenizer.fromFile(dataFile("stories260K", "tok512.bin"));
  const stories = splitOnBlankLines(fs.readFileSync(dataFile("text", "tinystories-valid.txt"), "utf8"));
  const half = Math.floor(stories.length / 2);
  return {
    calib: encodeDocuments(stories.slice(0, half), tok),
    evalStream: encodeDocuments(stories.slice(half), tok),
    stories: stories.length,
  };
}

const loadModel = () => loadLlama2c(dataFile("stories260K", "stories260K.bin"));

/** Log-softmax of the 255 scored positions of each window, [windows * 255 * vocab] f32, and FP argmax. */
interface Reference32 {
  logp: Float32Array;
  argmax: Int32Array;
}

/** Runs the model over the evaluation windows; `onWindowBatch` gets logits [b * SEQ, vocab]. */
function forEachLogits(model: LlamaModel, ev: CalibrationSet, fn: (w0: number, b: number, logits: Float32Array) => void): void {
  for (let w0 = 0; w0 < ev.windows; w0 += BATCH) {
    const b = Math.min(BATCH, ev.windows - w0);
    let h = model.embed(ev.tokens.subarray(w0 * SEQ, (w0 + b) * SEQ));
    for (let i = 0; i < model.nLayers; i++) h = model.runLayer(i, h, b, SEQ);
    fn(w0, b, model.head(h, b * SEQ));
  }
}

function logSoftmax(logits: Float32Array, o: number, V: number, out: Float64Array): void {
  let max = Number.NEGATIVE_INFINITY;
  for (let v = 0; v < V; v++) max = Math.max(max, logits[o + v]!);
  let s = 0;
  for (let v = 0; v < V; v++) s += Math.exp(logits[o + v]! - max);
  const lse = max + Math.log(s);
  for (let v = 0; v < V; v++) out[v] = logits[o + v]! - lse;
}

function fpReference(model: LlamaModel, ev: CalibrationSet): Reference32 & { ppl: number } {
  const V = model.config.vocabSize;
  const P = SEQ - 1;
  const logp = new Float32Array(ev.windows * P * V);
  const argmax = new Int32Array(ev.windows * P);
  const lp = new Float64Array(V);
  let nll = 0;
  forEachLogits(model, ev, (w0, b, logits) => {
    for (let j = 0; j < b; j++) {
      for (let t = 0; t < P; t++) {
        logSoftmax(logits, (j * SEQ + t) * V, V, lp);
        const pos = (w0 + j) * P + t;
        logp.set(lp, pos * V);
        let best = 0;
        for (let v = 1; v < V; v++) if (lp[v]! > lp[best]!) best = v;
        argmax[pos] = best;
        nll -= lp[ev.tokens[(w0 + j) * SEQ + t + 1]!]!;
      }
    }
  });
  return { logp, argmax, ppl: Math.exp(nll / (ev.windows * P)) };
}

function evaluate(model: LlamaModel, ev: CalibrationSet, ref: Reference32): { ppl: number; kl: number; top1: number } {
  const V = model.config.vocabSize;
  const P = SEQ - 1;
  const lp = new Float64Array(V);
  let nll = 0;
  let kl = 0;
  let agree = 0;
  forEachLogits(model, ev, (w0, b, logits) => {
    for (let j = 0; j < b; j++) {
      for (let t = 0; t < P; t++) {
        logSoftmax(logits, (j * SEQ + t) * V, V, lp);
        const pos = (w0 + j) * P + t;
        const ro = pos * V;
        let best = 0;
        let k = 0;
        for (let v = 0; v < V; v++) {
          if (lp[v]! > lp[best]!) best = v;
          const f = ref.logp[ro + v]!;
          k += Math.exp(f) * (f - lp[v]!);
        }
        kl += k;
        if (best === ref.argmax[pos]) agree++;
        nll -= lp[ev.tokens[(w0 + j) * SEQ + t + 1]!]!;
      }
    }
  });
  const n = ev.windows * P;
  return { ppl: Math.exp(nll / n), kl: kl / n, top1: agree / n };
}

/** Weighted mean storage bits per weight of the decoder linears: from the plug-in's records, else backend sizes. */
function modelBitsPerWeight(model: LlamaModel, records?: readonly LinearRecord[]): number {
  if (records && records.length > 0) {
    let bits = 0;
    let params = 0;
    for (const r of records) {
      bits += r.bitsPerWeight * r.rows * r.cols;
      params += r.rows * r.cols;
    }
    return bits / params;
  }
  let bits = 0;
  let params = 0;
  for (let i = 0; i < model.nLayers; i++) {
    for (const n of LINEAR_NAMES) {
      const l = model.getLinear(i, n);
      bits += l.storageBytes * 8;
      params += l.inFeatures * l.outFeatures;
    }
  }
  return bits / params;
}

// ---- child process: one configuration at a time ----

interface Shared {
  sampler: string;
  seed: number;
  calib: number[];
  evalTokens: number[];
  evalWindows: number;
  vocab: number;
  refPath: string;
}

async function runConfig(cfg: RunConfig, shared: Shared, ref: Reference32, seed: number): Promise<RowResult> {
  const model = await loadModel();
  const calib = calibrationWindows(Int32Array.from(shared.calib), shared.sampler, seed);
  const ev = consecutiveWindows(Int32Array.from(shared.evalTokens), SEQ, shared.evalWindows * SEQ, BOS);
  const notes: string[] = [];
  let peak: number | undefined;
  let records: LinearRecord[] | undefined;
  const t0 = performance.now();
  const plugin = cfg.make ? await cfg.make(model, calib) : undefined;
  if (plugin) {
    const rep = await quantizeModel(model, calib, plugin, { log: (m) => notes.push(m) });
    peak = rep.peakRssBytes;
    records = rep.records;
  }
  const quantSeconds = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  const m = evaluate(model, ev, ref);
  const row: RowResult = {
    id: cfg.id,
    label: cfg.label,
    ...m,
    bitsPerWeight: cfg.id === "fp32" ? 32 : modelBitsPerWeight(model, records),
    quantSeconds,
    evalSeconds: (performance.now() - t1) / 1000,
  };
  if (peak !== undefined) row.peakRssMB = peak / 2 ** 20;
  if (cfg.reference) row.reference = cfg.reference;
  if (notes.length > 0) row.notes = notes.filter((n) => /dampening|dead/.test(n));
  model.dispose();
  return row;
}

function readReference(refPath: string, windows: number, vocab: number): Reference32 {
  const buf = fs.readFileSync(refPath);
  const P = SEQ - 1;
  const n = windows * P;
  const argmax = new Int32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + n * 4));
  const logp = new Float32Array(buf.buffer.slice(buf.byteOffset + n * 4, buf.byteOffset + n * 4 + n * vocab * 4));
  return { argmax, logp };
}

async function worker(): Promise<void> {
  let shared: Shared | undefined;
  let ref: Reference32 | undefined;
  process.on("message", async (msg: { type: string; shared?: Shared; id?: string; seed?: number }) => {
    if (msg.type === "init") {
      shared = msg.shared!;
      ref = readReference(shared.refPath, shared.evalWindows, shared.vocab);
      process.send!({ type: "ready" });
    } else if (msg.type === "run") {
      const cfg = CONFIGS.find((c) => c.id === msg.id)!;
      try {
        const row = await runConfig(cfg, shared!, ref!, msg.seed!);
        process.send!({ type: "result", row, seed: msg.seed });
      } catch (e) {
        process.send!({ type: "error", id: msg.id, seed: msg.seed, message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
      }
    } else if (msg.type === "exit") {
      process.exit(0);
    }
  });
}

// ---- parent: data, FP reference, scheduling, table ----

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function fmt(x: number | undefined, digits: number): string {
  return x === undefined ? "" : x.toFixed(digits);
}

function printTable(rows: RowResult[]): void {
  const head = [
    "config",
    "ppl",
    "KL",
    "top-1",
    "bits/w",
    "quant s",
    "reference ppl / KL / top-1",
    "ppl vs ref",
    "ppl over seeds: mean [min, max]",
    "mean vs ref",
  ];
  const pct = (a: number, b: number) => `${(((a - b) / b) * 100).toFixed(2)}%`;
  const lines = rows.map((r) => {
    const ref = r.reference;
    const refText = ref ? `${ref.ppl} / ${ref.kl ?? "-"} / ${ref.top1 ?? "-"}` : "";
    const delta = ref ? pct(r.ppl, ref.ppl) : "";
    const s = r.sweep;
    const sweepText = s ? `${s.pplMean.toFixed(4)} [${s.pplMin.toFixed(4)}, ${s.pplMax.toFixed(4)}] (n=${s.ppl.length})` : "";
    const kl = Math.abs(r.kl) < 5e-5 ? 0 : r.kl; // FP32 against its own f32-stored log-probs: rounding only
    return [
      r.label,
      fmt(r.ppl, 4),
      fmt(kl, 4),
      fmt(r.top1, 3),
      fmt(r.bitsPerWeight, 3),
      fmt(r.quantSeconds, 1),
      refText,
      delta,
      sweepText,
      s && ref ? pct(s.pplMean, ref.ppl) : "",
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const row = (cells: string[]) =>
    `| ${cells.map((c, i) => (i === 0 || i === 6 || i === 8 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(" | ")} |`;
  console.log(row(head));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const l of lines) console.log(row(l));
}

async function main(): Promise<void> {
  const jobs = Number(arg("--jobs") ?? Math.min(2, os.cpus().length));
  const sampler = arg("--sampler") ?? "lowbit";
  const seed = Number(arg("--seed") ?? SEED);
  const outName = arg("--out") ?? "ptq-protocol.json";
  const only = arg("--only")?.split(",");
  const selected = only ? CONFIGS.filter((c) => only.includes(c.id)) : CONFIGS;
  const t0 = performance.now();
  const streams = await buildStreams();
  const evalWindowsArg = arg("--eval-windows");
  const ev = consecutiveWindows(streams.evalStream, SEQ, EVAL_TOKENS, BOS);
  const evalWindows = evalWindowsArg ? Math.min(Number(evalWindowsArg), ev.windows) : ev.windows;
  const evUsed = consecutiveWindows(streams.evalStream, SEQ, evalWindows * SEQ, BOS);
  console.log(
    `stories: ${streams.stories} (first ${Math.floor(streams.stories / 2)} calibration); calibration stream ${streams.calib.length} tokens, ` +
      `evaluation stream ${streams.evalStream.length} tokens; eval ${evalWindows} windows x ${SEQ} (${evalWindows * (SEQ - 1)} scored), ` +
      `calibration ${CALIB_WINDOWS} x ${SEQ} seed ${seed} (${sampler} sampler)`,
  );
  const fpModel = await loadModel();
  const vocab = fpModel.config.vocabSize;
  const ref = fpReference(fpModel, evUsed);
  fpModel.dispose();
  console.log(`FP32 reference ready (ppl ${ref.ppl.toFixed(4)}) in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  const refPath = path.join(os.tmpdir(), `lowbit-ptq-ref-${process.pid}.bin`);
  const fd = fs.openSync(refPath, "w");
  fs.writeSync(fd, new Uint8Array(ref.argmax.buffer));
  fs.writeSync(fd, new Uint8Array(ref.logp.buffer));
  fs.closeSync(fd);
  const shared: Shared = {
    sampler,
    seed,
    calib: Array.from(streams.calib),
    evalTokens: Array.from(streams.evalStream.subarray(0, evalWindows * SEQ)),
    evalWindows,
    vocab,
    refPath,
  };
  const sweep = Math.max(1, Number(arg("--sweep") ?? 5));
  const queue: Array<{ id: string; seed: number }> = selected.map((c) => ({ id: c.id, seed }));
  for (let k = 1; k < sweep; k++) {
    for (const c of selected) if (c.calibrated) queue.push({ id: c.id, seed: seed + k });
  }
  const results = new Map<string, RowResult>();
  const swept = new Map<string, RowResult[]>();
  const self = fileURLToPath(import.meta.url);
  try {
    await Promise.all(
      Array.from({ length: Math.max(1, Math.min(jobs, queue.length)) }, () => {
        return new Promise<void>((resolve, reject) => {
          const child = fork(self, ["--worker"], { execArgv: process.execArgv });
          const next = () => {
            const job = queue.shift();
            if (job === undefined) {
              child.send({ type: "exit" });
              resolve();
              return;
            }
            console.log(`  running ${job.id} (seed ${job.seed}) ...`);
            child.send({ type: "run", ...job });
          };
          child.on("message", (m: { type: string; row?: RowResult; id?: string; seed?: number; message?: string }) => {
            if (m.type === "ready") next();
            else if (m.type === "result") {
              const r = m.row!;
              if (m.seed === seed) results.set(r.id, r);
              swept.set(r.id, [...(swept.get(r.id) ?? []), r]);
              console.log(
                `  ${r.id} (seed ${m.seed}): ppl ${r.ppl.toFixed(4)} KL ${r.kl.toFixed(4)} top-1 ${r.top1.toFixed(3)} ` +
                  `(${r.quantSeconds.toFixed(1)} s + eval ${r.evalSeconds.toFixed(0)} s)`,
              );
              next();
            } else if (m.type === "error") {
              console.error(`  ${m.id} failed: ${m.message}`);
              next();
            }
          });
          child.on("error", reject);
          child.on("exit", (code) => {
            if (code !== 0) reject(new Error(`worker exited with code ${code}`));
          });
          child.send({ type: "init", shared });
        });
      }),
    );
  } finally {
    fs.rmSync(refPath, { force: true });
  }
  const rows = selected.map((c) => results.get(c.id)).filter((r): r is RowResult => r !== undefined);
  for (const r of rows) {
    const runs = swept.get(r.id) ?? [];
    if (runs.length < 2) continue;
    const ppl = runs.map((x) => x.ppl);
    r.sweep = {
      seeds: runs.map((_, k) => k),
      ppl,
      kl: runs.map((x) => x.kl),
      top1: runs.map((x) => x.top1),
      pplMean: ppl.reduce((a, b) => a + b, 0) / ppl.length,
      pplMin: Math.min(...ppl),
      pplMax: Math.max(...ppl),
    };
  }
  console.log("");
  printTable(rows);
  const four = rows.filter((r) => /w4/.test(r.id));
  const best = four.reduce<RowResult | undefined>((b, r) => (!b || r.ppl < b.ppl ? r : b), undefined);
  if (best) {
    const s = best.sweep ? `, over ${best.sweep.ppl.length} calibration seeds ${best.sweep.pplMean.toFixed(4)} [${best.sweep.pplMin.toFixed(4)}, ${best.sweep.pplMax.toFixed(4)}]` : "";
    console.log(`\nbest 4-bit: ${best.label} at ${best.ppl.toFixed(4)}${s} (reference GPTQ w4 g32: 7.8678)`);
  }
  const outDir = path.resolve(path.dirname(self), "../results");
  fs.mkdirSync(outDir, { recursive: true });
  const out = path.join(outDir, outName);
  const tmp = `${out}.tmp`;
  fs.writeFileSync(
    tmp,
    `${JSON.stringify(
      {
        protocol: {
          model: "stories260K",
          text: "tinystories-valid.txt split on blank lines; first floor(n/2) stories calibration, rest evaluation",
          evalTokens: evalWindows * SEQ,
          evalWindows,
          seqLen: SEQ,
          calibrationWindows: CALIB_WINDOWS,
          seed,
          sampler,
          sweepSeeds: sweep,
          gptq: "IST-DASLab defaults: percdamp 0.01, block 128, asymmetric, no true-sequential unless named",
        },
        machine: { node: process.version, cpus: os.cpus().length, jobs },
        rows,
        totalSeconds: (performance.now() - t0) / 1000,
      },
      null,
      2,
    )}\n`,
  );
  fs.renameSync(tmp, out);
  console.log(`\nwrote ${path.relative(process.cwd(), out)} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
}

if (process.argv.includes("--worker")) await worker();
else await main();
