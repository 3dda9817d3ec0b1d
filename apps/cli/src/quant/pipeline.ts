import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import {
  type CalibrationSet,
  chooseBits,
  defaultCalibrationDocuments,
  encodeDocuments,
  measureSensitivity,
  memTrace,
  type QuantizeReport,
  quantizeModel,
  readJsonlDocuments,
  readTextDocuments,
  sampleWindows,
} from "@lowbit/calibration";
import type { QuantizedMatrix } from "@lowbit/int4";
import { buildModel, LINEAR_NAMES, type LinearName, type LlamaConfig, type LlamaModel, type TensorSource, type Tokenizer } from "@lowbit/runtime";
import { f16BitsToF32, f32ToF16Bits, isLowbitError, LowbitError } from "@lowbit/tensor";
import type { OutputFormat } from "../export/write-output";
import { type OpenedModel, openModel, openTokenizer } from "../model/open";
import { resolveModel } from "../model/resolve";
import type { Io } from "../ui/io";
import { Progress } from "../ui/progress";
import { VERSION } from "../version";
import { collectModel } from "./collect";
import { compactLayer } from "./compact";
import { deferHeads } from "./deferred-heads";
import { mixedBitsFor, parseMixedRules } from "./mixed";
import { paddedIntermediate, padIntermediate } from "./pad";
import { makePlugin, type PluginSettings } from "./plugins";
import { DeferredFloat, DeferredMatrix, type FloatTensor, type QuantizedModel, roundScalesToF16 } from "./qmodel";
import { fingerprint, ResumeStore } from "./resume";
import { type LayerStats, ValueSample, withStats } from "./stats";

export interface QuantizeSettings extends PluginSettings {
  model: string;
  tokenizer?: string;
  /** Calibration text files (.txt split on blank lines, .jsonl with a "text" field); none: the built-in text. */
  calib: string[];
  /** Calibration documents given directly (used instead of `calib` files when set). */
  calibDocs?: string[];
  samples: number;
  /** Window length; default min(512, context length). */
  seqLen?: number;
  mixed?: string;
  budgetBpw?: number;
  /** Output format (decides padding and scale rounding); undefined: in memory only. */
  format?: OutputFormat;
  out?: string;
  resume: boolean;
  /** Windows per driver chunk. */
  batchWindows?: number;
}

export interface Prepared {
  opened: OpenedModel;
  config: LlamaConfig;
  source: TensorSource;
  tokenizer: Tokenizer;
  padding?: QuantizedModel["padding"];
  notes: string[];
}

/** Opens the model to quantize, padding the feed-forward width when a packed format needs it. */
export async function prepare(s: QuantizeSettings): Promise<Prepared> {
  const resolved = await resolveModel(s.model, { tokenizer: s.tokenizer });
  if (resolved.kind === "lowbit" || resolved.kind === "gptq" || resolved.kind === "awq") {
    throw new LowbitError(
      "E_UNSUPPORTED",
      `${s.model} is already quantized (${resolved.kind}); quantize the original float model, or use lowbit convert to change its format.`,
    );
  }
  const opened = await openModel(resolved);
  // the caller closes the model once it has a Prepared; until then (a bad tokenizer, a shape the
  // padding refuses) it is ours to close
  try {
    const tokenizer = await openTokenizer(opened);
    let { config, source } = opened;
    const notes: string[] = [];
    let padding: QuantizedModel["padding"];
    if (s.format === "gptq" || s.format === "awq") {
      const padded = paddedIntermediate(config, s.bits, s.groupSize, s.format);
      if (padded !== config.hiddenDim) {
        padding = { intermediateSize: { original: config.hiddenDim, padded } };
        notes.push(
          `padded the feed-forward width ${config.hiddenDim} -> ${padded} with zeros for ${s.format.toUpperCase()} packing and group size ${s.groupSize} (the function is unchanged; recorded in config.json)`,
        );
        ({ config, source } = padIntermediate(config, source, padded));
      }
    }
    return { opened, config, source, tokenizer, padding, notes };
  } catch (e) {
    // the tokenizer's or the padding's error is the one to report, not a failure to close
    await opened.close().catch(() => {});
    throw e;
  }
}

/** Calibration windows from the --calib files (or the built-in text), seeded. */
export async function calibrationData(s: QuantizeSettings, tokenizer: Tokenizer, maxSeqLen: number, notes: string[]): Promise<CalibrationSet> {
  const seqLen = s.seqLen ?? Math.min(512, maxSeqLen);
  if (seqLen > maxSeqLen) {
    throw new LowbitError("E_INVALID_ARGUMENT", `--seq-len ${seqLen} exceeds the model's context length ${maxSeqLen}; give --seq-len ${maxSeqLen} or less.`);
  }
  let docs: string[] = [];
  for (const f of s.calib) {
    try {
      await stat(f);
    } catch {
      throw new LowbitError("E_FILE_NOT_FOUND", `--calib file "${f}" not found; give UTF-8 text files (documents separated by blank lines) or .jsonl with a "text" field.`);
    }
    docs.push(...(f.endsWith(".jsonl") ? await readJsonlDocuments(f) : await readTextDocuments(f)));
  }
  if (s.calibDocs) docs = s.calibDocs;
  else if (s.calib.length === 0) {
    docs = defaultCalibrationDocuments();
    notes.push("calibrating on lowbit's built-in English text; pass --calib FILE with text like your model's for better results");
  }
  // encode only as much text as the windows can use (4x their tokens): tokenizing a whole corpus is slow
  const want = 4 * s.samples * seqLen + seqLen;
  const parts: Int32Array[] = [];
  let have = 0;
  for (let i = 0; i < docs.length && have < want; i += 16) {
    const part = encodeDocuments(docs.slice(i, i + 16), tokenizer);
    parts.push(part);
    have += part.length;
  }
  const tokens = new Int32Array(have);
  let off = 0;
  for (const part of parts) {
    tokens.set(part, off);
    off += part.length;
  }
  try {
    return sampleWindows(tokens, { windows: s.samples, seqLen, seed: s.seed, bosId: tokenizer.bosId });
  } catch (e) {
    if (isLowbitError(e) && e.code === "E_CALIBRATION") {
      throw new LowbitError(
        "E_CALIBRATION",
        `the calibration text${s.calib.length ? ` (${s.calib.join(", ")})` : ""} gives ${tokens.length} tokens, too short for windows of --seq-len ${seqLen}. Give more text with --calib, or a smaller --seq-len.`,
        { cause: e },
      );
    }
    throw e;
  }
}

export interface QuantizeRun {
  model: LlamaModel;
  config: LlamaConfig;
  stats: LayerStats[];
  sample: ValueSample;
  report?: QuantizeReport;
  calib?: CalibrationSet;
  /** Seconds: calibration data and mixed-precision planning, driver, everything. */
  calibSeconds: number;
  quantSeconds: number;
  peakRssBytes: number;
  resumedAt?: number;
  bitsPlan?: Map<string, number>;
  notes: string[];
  /** The checkpoints of this run (remove them once the output is written). */
  store?: ResumeStore;
  /**
   * With a store (an output path given): every finished layer, saved there and no longer in
   * `model` (its layers are released and its classifier is not loaded); the exporters read them
   * from the store one tensor at a time.
   */
  spilled?: Array<Awaited<ReturnType<ResumeStore["deferredLayer"]>>>;
}

function peakRss(): number {
  return process.resourceUsage().maxRSS * 1024;
}

/** The fingerprint of everything that decides the output bytes (for --resume). */
async function runFingerprint(s: QuantizeSettings, p: Prepared): Promise<string> {
  const fileId = async (f: string) => {
    const st = await stat(f);
    return { path: resolve(f), size: st.size, mtime: st.mtimeMs };
  };
  return fingerprint({
    lowbit: VERSION,
    model: await fileId(p.opened.resolved.weights),
    tokenizer: p.opened.tokenizerFiles,
    calib: await Promise.all(s.calib.map(fileId)),
    settings: { ...s, out: undefined, resume: undefined, model: undefined, calib: undefined, calibDocs: s.calibDocs?.length, batchWindows: undefined },
  });
}

/**
 * Quantizes a prepared model with the calibration driver, layer by layer, checkpointing each
 * finished layer when `out` is set (so --resume can continue), with progress on stderr.
 */
export async function runQuantization(s: QuantizeSettings, p: Prepared, io: Io): Promise<QuantizeRun> {
  const t0 = performance.now();
  const notes = [...p.notes];
  const needsData = s.method !== "rtn" || s.calib.length > 0 || s.calibDocs !== undefined || s.budgetBpw !== undefined;
  memTrace("quantize: model opened");
  const calib = needsData ? await calibrationData(s, p.tokenizer, p.config.maxSeqLen, notes) : undefined;
  memTrace("quantize: calibration windows sampled");
  // writing an output: finished layers go to the checkpoint store and leave memory, and the embedding
  // and classifier stay in the model file (the exporters read them from there); --budget-bpw runs the
  // whole model, so it loads them
  const spill = s.out !== undefined;
  const source = spill && s.budgetBpw === undefined ? deferHeads(p.source, p.config, calib?.tokens) : p.source;
  const model = await buildModel(p.config, source, { what: s.model, lazy: true });
  memTrace("quantize: model built (lazy)");
  let bitsFor: ((layer: number, name: LinearName) => number | undefined) | undefined;
  let bitsPlan: Map<string, number> | undefined;
  if (s.mixed !== undefined && s.budgetBpw !== undefined) {
    throw new LowbitError("E_INVALID_ARGUMENT", "--mixed and --budget-bpw both choose bits per layer; give one of them.");
  }
  if (s.mixed !== undefined) bitsFor = mixedBitsFor(parseMixedRules(s.mixed));
  if (s.budgetBpw !== undefined && calib) {
    const choices = [2, 3, 4, 8].filter((b) => b <= Math.max(8, s.bits));
    const prog = new Progress(io, "sensitivity", p.config.nLayers * 7 * choices.length, "step");
    const sens = await measureSensitivity(model, calib, { bits: choices, groupSize: s.groupSize, sym: s.sym, onProgress: (d) => prog.update(d) });
    prog.finish();
    const plan = chooseBits(sens, { budget: s.budgetBpw, groupSize: s.groupSize, choices });
    bitsFor = plan.bitsFor.bind(plan);
    bitsPlan = plan.bits;
    notes.push(`--budget-bpw ${s.budgetBpw}: planned ${plan.bitsPerWeight.toFixed(3)} bits per weight over the linears`);
  }
  const calibSeconds = (performance.now() - t0) / 1000;
  const sample = new ValueSample(50_000, s.seed);
  const stats: LayerStats[] = [];
  const inner = await makePlugin(s, bitsFor, { compact: calib === undefined });
  const plugin = withStats(inner, {
    sample,
    onLayer: (st) => {
      stats[st.layer] = st;
    },
    needsActivations: calib !== undefined,
    weightErrors: s.method !== "awq",
    // the weights the plug-in replaces are the source's: read back one at a time, not copied up front
    reference: (layer, name) => p.source.readF32(`blk.${layer}.${name}.weight`),
    // writing an output (the memory-bounded path): the float outputs measured wait in a temporary file
    spillOutputs: spill,
  });
  let store: ResumeStore | undefined;
  let start = 0;
  let startInputs: Float32Array | undefined;
  if (s.out) {
    if (s.resume && s.method === "qat") {
      throw new LowbitError("E_UNSUPPORTED", "--resume is not available for --method qat (its float target stream is not checkpointed); run it again without --resume.");
    }
    const opened = await ResumeStore.open(s.out, await runFingerprint(s, p), s.resume);
    store = opened.store;
    if (opened.discarded) notes.push("an earlier interrupted run's checkpoints were discarded (pass --resume to continue one)");
    if (s.resume && !opened.resumed) notes.push("--resume: nothing to resume, starting from layer 0");
    if (opened.resumed) {
      start = store.next;
      store.stats.forEach((st, i) => {
        stats[i] = st;
      });
      if (start < p.config.nLayers && calib) startInputs = await store.loadInputs();
      notes.push(`resumed after layer ${start - 1} (${start} of ${p.config.nLayers} layers were finished)`);
    }
  }
  const nLayers = p.config.nLayers;
  const progress = new Progress(io, `quantize ${s.method}`, nLayers - start, "layer");
  const tq = performance.now();
  let report: QuantizeReport | undefined;
  if (start < nLayers) {
    report = await quantizeModel(model, calib ?? emptyCalibration(), plugin, {
      batchWindows: s.batchWindows ?? 16,
      startLayer: start,
      ...(startInputs ? { startInputs } : {}),
      onProgress: (pr) => progress.update(pr.done, `layer ${pr.layer} done`),
      finishLayer: store
        ? async (i, m) => {
            await store.saveLayer(m, i);
            m.releaseLayer(i);
          }
        : (i, m) => compactLayer(m, i),
      log: (m) => notes.push(m),
      layerInputs: store
        ? async (i, inputs) => {
            if (i > start || !startInputs) {
              await store.saveInputs(inputs);
              await store.commit(i, stats);
            }
          }
        : undefined,
    });
    progress.finish();
    if (store) await store.commit(nLayers, stats);
  }
  const spilled = store ? await Promise.all(Array.from({ length: nLayers }, (_, i) => store.deferredLayer(i))) : undefined;
  return {
    model,
    config: p.config,
    stats,
    sample,
    report,
    calib,
    calibSeconds,
    quantSeconds: (performance.now() - tq) / 1000,
    peakRssBytes: Math.max(peakRss(), report?.peakRssBytes ?? 0),
    resumedAt: start > 0 ? start : undefined,
    bitsPlan,
    notes,
    store,
    ...(spilled ? { spilled } : {}),
  };
}

/**
 * The quantized model of a run whose layers were spilled to its store, in collectModel's tensor
 * order, nothing read yet: layers from the store, the embedding and classifier from the source
 * model, `round` applied to each matrix as it is read.
 */
function spilledModel(run: QuantizeRun, source: TensorSource, round: (qm: QuantizedMatrix) => QuantizedMatrix): Pick<QuantizedModel, "floats" | "quantized"> {
  const cfg = run.config;
  const floats = new Map<string, FloatTensor>();
  const quantized = new Map<string, QuantizedMatrix>();
  const fromSource = (name: string, shape: number[]) => floats.set(name, new DeferredFloat(name, shape, () => source.readF32(name)));
  fromSource("token_embd.weight", [cfg.vocabSize, cfg.dim]);
  run.spilled!.forEach((layer, i) => {
    // the store names a layer's tensors without the "blk.N." prefix and its norms without ".weight"
    const float = (local: string, name = local) => {
      const t = layer.floats.get(local);
      if (t) floats.set(`blk.${i}.${name}`, t);
    };
    float("attn_norm", "attn_norm.weight");
    for (const name of LINEAR_NAMES) {
      const key = `blk.${i}.${name}.weight`;
      const qm = layer.quantized.get(`${name}.weight`);
      if (qm) quantized.set(key, new DeferredMatrix(key, qm, async () => round(await qm.load())));
      else float(`${name}.weight`);
      float(`${name}.bias`);
      if (name === "attn_output") float("ffn_norm", "ffn_norm.weight");
    }
  });
  floats.set("output_norm.weight", { shape: [cfg.dim], data: run.model.weights.outputNorm });
  if (!cfg.tiedEmbeddings) fromSource("output.weight", [cfg.vocabSize, cfg.dim]);
  return { floats, quantized };
}

function emptyCalibration(): CalibrationSet {
  return { tokens: new Int32Array(0), windows: 0, seqLen: 0, offsets: new Int32Array(0), tokensUsed: 0, distinctTokens: 0, streamTokens: 0, seed: 0 };
}

/**
 * The quantized model as lowbit's exporters take it. For formats that store f16 scales (GPTQ,
 * AWQ, GGUF) scales are rounded to f16 here, so what is written, what is reloaded and what the
 * report measures are the same numbers.
 */
export function toQuantizedModel(run: QuantizeRun, s: QuantizeSettings, p: Prepared): QuantizedModel {
  const roundScales = s.format === "gptq" || s.format === "awq" || s.format === "gguf";
  const round = (qm: QuantizedMatrix) => {
    if (roundScales) roundScalesToF16(qm, f32ToF16Bits, f16BitsToF32);
    return qm;
  };
  let floats: Map<string, FloatTensor>;
  let quantized: Map<string, QuantizedMatrix>;
  if (run.spilled) {
    ({ floats, quantized } = spilledModel(run, p.source, round));
  } else {
    ({ floats, quantized } = collectModel(run.model));
    for (const qm of quantized.values()) round(qm);
  }
  return {
    config: run.config,
    floats,
    quantized,
    quantization: {
      method: s.method,
      bits: s.bits,
      groupSize: s.groupSize,
      sym: s.sym,
      actOrder: s.actOrder,
      ...(s.method === "gptq" ? { dampPercent: s.damp } : {}),
      seed: s.seed,
      ...(run.calib ? { samples: run.calib.windows, seqLen: run.calib.seqLen } : {}),
      ...(s.mixed ? { mixed: s.mixed } : s.budgetBpw !== undefined ? { mixed: `budget-bpw=${s.budgetBpw}` } : {}),
    },
    ...(p.padding ? { padding: p.padding } : {}),
    tokenizer: p.opened.tokenizerFiles,
  };
}
