import { type CaptureEvent, type LinearName, type LlamaModel, makeF32Linear } from "@lowbit/runtime";
import { type Linear, LowbitError } from "@lowbit/tensor";
import type { CalibrationSet } from "./dataset";
import { memTrace } from "./mem-trace";
import {
  defaultStepWindows,
  type ForwardOptions,
  type LayerContext,
  type LayerPlugin,
  type LinearRecord,
  linearInputKey,
} from "./plugin";

export interface DriverProgress {
  /** Layer just finished (0-based). */
  layer: number;
  nLayers: number;
  /** Layers finished so far. */
  done: number;
  elapsedMs: number;
  /** Estimated time left, from the mean time per layer so far. */
  etaMs: number;
}

export interface DriverOptions {
  /**
   * Windows per chunk: what a plug-in's capture hooks see as one batch (GPTQ adds each chunk to
   * its Hessians as one batch). Default 16.
   */
  batchWindows?: number;
  /**
   * Windows per runLayer call when the driver computes a layer's outputs (the next layer's
   * inputs): bounds the layer's temporary buffers. The outputs do not depend on it. Default:
   * windows of at most 512 rows in all, at least one (defaultStepWindows).
   */
  stepWindows?: number;
  /** Called after each layer. */
  onProgress?: (p: DriverProgress) => void;
  /** Messages from the driver and plug-ins (dampening retries, chosen ratios, ...). */
  log?: (message: string) => void;
  /** First layer to quantize (resume): the inputs of that layer must then be given. */
  startLayer?: number;
  /** Inputs of `startLayer` [windows * seqLen, dim] (from a previous run's `layerInputs` callback; not modified). */
  startInputs?: Float32Array;
  /**
   * Called with each layer's inputs before it is quantized (to checkpoint a resumable run). The
   * array is the driver's: it is overwritten with the layer's outputs once the layer is quantized
   * (copy it to keep it).
   */
  layerInputs?: (layer: number, inputs: Float32Array) => void | Promise<void>;
  /**
   * Called once layer i is quantized and the next layer's inputs are computed, before layer i + 1
   * is loaded: the driver never runs layer i again, so the caller may write it out, swap its
   * backends for compact ones (e.g. packed int4 instead of f32 over dequantized weights) or
   * release it (`model.releaseLayer(i)` on a lazily opened model). With a lazily opened model this
   * is what keeps the resident weights at about one decoder layer.
   */
  finishLayer?: (layer: number, model: LlamaModel) => void | Promise<void>;
}

export interface QuantizeReport {
  plugin: string;
  records: LinearRecord[];
  timeMs: number;
  /** Calibration tokens fed through the model (windows * seqLen). */
  tokensUsed: number;
  /** Per-layer wall time. */
  layerMs: number[];
  /** Largest resident set size seen between layers (process.memoryUsage().rss), when available. */
  peakRssBytes?: number;
}

const EMPTY = new Float32Array(0);

/** Thrown from a capture hook to end a chunk early (ForwardOptions.stopAfter); never escapes forward(). */
const STOP = Symbol("lowbit.calibration.stop");

/**
 * A linear's bias: its `bias` field when it exposes one as a Float32Array, otherwise read off the
 * backend as forward(0) (= b exactly); undefined when that is all zeros.
 */
export function linearBias(lin: Linear): Float32Array | undefined {
  const b = (lin as { bias?: unknown }).bias;
  if (b instanceof Float32Array) return b;
  const y = lin.forward(new Float32Array(lin.inFeatures), 1);
  return y.some((v) => v !== 0) ? y : undefined;
}

function rss(): number | undefined {
  const p = (globalThis as { process?: { memoryUsage?: () => { rss: number } } }).process;
  return p?.memoryUsage ? p.memoryUsage().rss : undefined;
}

class Context implements LayerContext {
  readonly records: LinearRecord[] = [];

  constructor(
    readonly model: LlamaModel,
    readonly layer: number,
    readonly inputs: Float32Array,
    readonly windows: number,
    readonly seqLen: number,
    private readonly batchWindows: number,
    private readonly logFn: (m: string) => void,
  ) {}

  get nLayers(): number {
    return this.model.nLayers;
  }

  forward(options: ForwardOptions = {}): Float32Array | undefined {
    return this.run(options);
  }

  /**
   * forward(), and with `into` the outputs written there instead of a new array: `into` may be
   * the inputs themselves (each step's rows are written once the step has read them).
   */
  run(options: ForwardOptions, into?: Float32Array): Float32Array | undefined {
    const { dim } = this.model.config;
    const L = this.seqLen;
    const capture = new Set(options.capture ?? []);
    const onCapture = options.onCapture;
    const stopAfter = options.stopAfter;
    const collect = options.collectOutput || into !== undefined;
    if (stopAfter && collect) {
      throw new LowbitError("E_INVALID_ARGUMENT", "LayerContext.forward: stopAfter cannot be combined with collectOutput");
    }
    const step = options.stepWindows;
    if (step !== undefined && !(Number.isInteger(step) && step > 0)) {
      throw new LowbitError("E_INVALID_ARGUMENT", `LayerContext.forward: stepWindows must be a positive integer, got ${step}`);
    }
    if (stopAfter) capture.add(stopAfter);
    const list = options.windows ?? Array.from({ length: this.windows }, (_, i) => i);
    if (into && options.windows) {
      throw new LowbitError("E_INVALID_ARGUMENT", "LayerContext.forward: an output buffer is for all windows in order, not a window list");
    }
    const out = collect ? (into ?? new Float32Array(list.length * L * dim)) : undefined;
    if (out && out.length !== list.length * L * dim) {
      throw new LowbitError("E_SHAPE_MISMATCH", `LayerContext.forward: output buffer has ${out.length} values, expected ${list.length * L * dim}`);
    }
    let part = { windows: 0, chunkWindows: 0, rowOffset: 0 };
    const inputsOnly = options.inputsOnly ?? false;
    const hook = (e: CaptureEvent) => {
      if (e.kind === "layer" || e.kind !== (inputsOnly ? "linear-input" : "linear") || e.layer !== this.layer || !capture.has(e.name)) return;
      onCapture?.({
        name: e.name,
        input: e.input,
        output: e.kind === "linear" ? e.output : EMPTY,
        rows: e.rows,
        windows: part.windows,
        chunkWindows: part.chunkWindows,
        chunkRows: part.chunkWindows * L,
        rowOffset: part.rowOffset,
      });
      if (e.name === stopAfter) throw STOP;
    };
    const unregister = capture.size > 0 && (onCapture || stopAfter) ? this.model.registerHook(hook, { linearInputs: inputsOnly }) : undefined;
    try {
      for (let c = 0; c < list.length; c += this.batchWindows) {
        const chunk = list.slice(c, c + this.batchWindows);
        const n = step ?? chunk.length;
        for (let s = 0; s < chunk.length; s += n) {
          const ids = chunk.slice(s, s + n);
          part = { windows: ids.length, chunkWindows: chunk.length, rowOffset: s * L };
          let x: Float32Array;
          const contiguous = ids.every((w, j) => w === ids[0]! + j);
          if (contiguous) {
            x = this.inputs.subarray(ids[0]! * L * dim, (ids[0]! + ids.length) * L * dim);
          } else {
            x = new Float32Array(ids.length * L * dim);
            ids.forEach((w, j) => {
              x.set(this.inputs.subarray(w * L * dim, (w + 1) * L * dim), j * L * dim);
            });
          }
          try {
            const y = this.model.runLayer(this.layer, x, ids.length, L);
            out?.set(y, (c + s) * L * dim);
          } catch (e) {
            if (e !== STOP) throw e;
          }
        }
        memTrace(`layer ${this.layer} forward windows ${c}..${c + chunk.length - 1}${collect ? " (collect)" : ""}`);
      }
    } finally {
      unregister?.();
    }
    return out;
  }

  captureInputs(names: readonly LinearName[]): Map<LinearName, Float32Array> {
    const byKey = new Map<string, Float32Array>();
    const offsets = new Map<string, number>();
    const wanted = new Set(names);
    const keys = new Map<string, LinearName>();
    for (const n of names) if (!keys.has(linearInputKey(n))) keys.set(linearInputKey(n), n);
    const capture = [...keys.values()];
    this.forward({
      capture,
      // a few windows per layer run: the layer's temporaries stay small (the arrays kept are the same)
      stepWindows: defaultStepWindows(this.seqLen),
      onCapture: (a) => {
        const key = linearInputKey(a.name);
        let buf = byKey.get(key);
        const cols = a.input.length / a.rows;
        if (!buf) {
          buf = new Float32Array(this.windows * this.seqLen * cols);
          byKey.set(key, buf);
          offsets.set(key, 0);
        }
        const off = offsets.get(key)!;
        buf.set(a.input, off);
        offsets.set(key, off + a.input.length);
      },
    });
    const res = new Map<LinearName, Float32Array>();
    for (const n of wanted) res.set(n, byKey.get(linearInputKey(n))!);
    return res;
  }

  weight(name: LinearName): Float32Array {
    return this.model.getLinear(this.layer, name).dequantizedWeight();
  }

  bias(name: LinearName): Float32Array | undefined {
    return linearBias(this.model.getLinear(this.layer, name));
  }

  setLinear(name: LinearName, linear: Linear): void {
    const old = this.model.setLinear(this.layer, name, linear);
    if (old !== linear) old.dispose?.();
  }

  setWeight(name: LinearName, weight: Float32Array, bias?: Float32Array | null): void {
    const old = this.model.getLinear(this.layer, name);
    const b = bias === null ? undefined : (bias ?? linearBias(old));
    this.setLinear(name, makeF32Linear(weight, old.outFeatures, old.inFeatures, b));
  }

  record(rec: Omit<LinearRecord, "layer">): void {
    this.records.push({ layer: this.layer, ...rec });
  }

  log(message: string): void {
    this.logFn(`layer ${this.layer}: ${message}`);
  }
}

/**
 * The sequential layer-by-layer driver (DESIGN.md "The data path"): embeds the calibration
 * windows, then for each decoder layer keeps its inputs for all windows, lets the plug-in run the
 * layer with capture hooks and replace weights, and computes the next layer's inputs (rerunning the
 * quantized layer, or from the float layer for plug-ins that propagate "fp"). The driver holds one
 * activation buffer of windows * seqLen * dim floats (the quantized layer's outputs are written
 * over its inputs, `stepWindows` windows at a time; "fp" plug-ins need a second one), plus one
 * layer's working set and what the plug-in keeps (GPTQ: one chunk's transposed inputs and a
 * Hessian), when the model is opened lazily (each layer read on `ensureLayer`) and finished layers
 * are made compact or released through `finishLayer`; an eagerly built model holds every float
 * layer from the start. LOWBIT_MEMTRACE=1 prints the process's memory after each phase.
 */
export async function quantizeModel(
  model: LlamaModel,
  data: CalibrationSet,
  plugin: LayerPlugin,
  options: DriverOptions = {},
): Promise<QuantizeReport> {
  const t0 = performance.now();
  const nLayers = model.nLayers;
  const { windows, seqLen } = data;
  const dim = model.config.dim;
  const batchWindows = options.batchWindows ?? 16;
  if (!(Number.isInteger(batchWindows) && batchWindows > 0)) {
    throw new LowbitError("E_INVALID_ARGUMENT", `quantizeModel: batchWindows must be a positive integer, got ${batchWindows}`);
  }
  const stepWindows = options.stepWindows ?? defaultStepWindows(seqLen);
  if (!(Number.isInteger(stepWindows) && stepWindows > 0)) {
    throw new LowbitError("E_INVALID_ARGUMENT", `quantizeModel: stepWindows must be a positive integer, got ${stepWindows}`);
  }
  if (data.tokens.length !== windows * seqLen) {
    throw new LowbitError(
      "E_SHAPE_MISMATCH",
      `quantizeModel: calibration has ${data.tokens.length} tokens, expected windows*seqLen = ${windows}*${seqLen}`,
    );
  }
  const log = options.log ?? (() => {});
  const start = options.startLayer ?? 0;
  if (!(Number.isInteger(start) && start >= 0 && start <= nLayers)) {
    throw new LowbitError("E_INVALID_ARGUMENT", `quantizeModel: startLayer ${start} outside [0, ${nLayers}]`);
  }
  const needsActs = plugin.needsActivations ?? true;
  let hidden: Float32Array;
  if (!needsActs) {
    hidden = new Float32Array(0);
  } else if (start > 0) {
    if (!options.startInputs || options.startInputs.length !== windows * seqLen * dim) {
      throw new LowbitError(
        "E_INVALID_ARGUMENT",
        `quantizeModel: resuming at layer ${start} needs startInputs of ${windows}*${seqLen}*${dim} values`,
      );
    }
    hidden = options.startInputs;
  } else {
    hidden = model.embed(data.tokens);
  }
  memTrace("embedded calibration tokens");
  const records: LinearRecord[] = [];
  const layerMs: number[] = [];
  let peak = rss() ?? 0;
  for (let i = start; i < nLayers; i++) {
    const tl = performance.now();
    await model.ensureLayer(i);
    memTrace(`layer ${i} loaded`);
    await options.layerInputs?.(i, hidden);
    const ctx = new Context(model, i, hidden, windows, seqLen, batchWindows, log);
    const fpOut = needsActs && plugin.propagate === "fp" ? ctx.forward({ collectOutput: true, stepWindows }) : undefined;
    await plugin.quantizeLayer(ctx);
    memTrace(`layer ${i} quantized`);
    peak = Math.max(peak, rss() ?? 0);
    // the quantized layer's outputs replace its inputs in place (only two activation buffers are
    // ever alive: these and a plug-in's), except for the caller's startInputs
    if (needsActs) hidden = fpOut ?? ctx.run({ collectOutput: true, stepWindows }, hidden === options.startInputs ? undefined : hidden)!;
    memTrace(`layer ${i} outputs computed`);
    records.push(...ctx.records);
    peak = Math.max(peak, rss() ?? 0);
    await options.finishLayer?.(i, model);
    memTrace(`layer ${i} finished`);
    const now = performance.now();
    layerMs.push(now - tl);
    const done = i - start + 1;
    const elapsed = now - t0;
    options.onProgress?.({ layer: i, nLayers, done, elapsedMs: elapsed, etaMs: (elapsed / done) * (nLayers - start - done) });
  }
  const report: QuantizeReport = {
    plugin: plugin.name,
    records,
    timeMs: performance.now() - t0,
    tokensUsed: data.tokensUsed,
    layerMs,
  };
  if (peak > 0) report.peakRssBytes = peak;
  return report;
}
