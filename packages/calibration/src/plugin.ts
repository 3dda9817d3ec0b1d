import type { LinearName, LlamaModel } from "@lowbit/runtime";
import type { Linear } from "@lowbit/tensor";

/**
 * One linear layer's inputs and outputs during a forward pass over a chunk of windows, or over a
 * part of a chunk when the forward runs in steps (ForwardOptions.stepWindows): the parts of a
 * chunk arrive in order, rowOffset 0 first, the last one ending at chunkRows.
 */
export interface LinearActivations {
  name: LinearName;
  /** [rows, inFeatures], rows = windows * seqLen of this chunk (part). Fresh arrays: may be kept. */
  input: Float32Array;
  /** [rows, outFeatures]; empty (length 0) when captured with ForwardOptions.inputsOnly. */
  output: Float32Array;
  rows: number;
  /** Calibration windows (sequences) in this chunk (part). */
  windows: number;
  /** Windows and rows of the whole chunk this is (part of); windows and rows when not stepped. */
  chunkWindows: number;
  chunkRows: number;
  /** Rows of the chunk before this part (0 when not stepped). */
  rowOffset: number;
}

export interface ForwardOptions {
  /** Linears whose activations `onCapture` receives (default none). */
  capture?: readonly LinearName[];
  onCapture?: (a: LinearActivations) => void;
  /** Collect and return the layer's outputs [windows * seqLen, dim]. Default false. */
  collectOutput?: boolean;
  /** Run only these windows (indices into the calibration set); default all. */
  windows?: readonly number[];
  /**
   * Run each chunk of windows through the layer this many windows at a time (default: the whole
   * chunk at once). The layer's outputs do not depend on it (each row of a layer's computation is
   * independent of the other rows); it bounds the layer's temporary buffers to one step's rows.
   * Capture events then carry parts of chunks (LinearActivations.rowOffset / chunkRows).
   */
  stepWindows?: number;
  /**
   * Stop each chunk right after this linear ran (its activations captured): e.g. "attn_output" to
   * evaluate the attention block alone. Cannot be combined with collectOutput.
   */
  stopAfter?: LinearName;
  /**
   * Capture each linear's input just before the linear runs (LinearActivations.output is then
   * empty), and with stopAfter stop the chunk there, before that linear runs: for plug-ins that
   * need only inputs (GPTQ's Hessians), so the layer is not run further than the input needed.
   */
  inputsOnly?: boolean;
}

/** What a plug-in records about each linear it quantized (collected into the driver's report). */
export interface LinearRecord {
  layer: number;
  name: LinearName;
  /** Backend kind of the replacement, e.g. "w4g32". */
  kind: string;
  bits: number;
  groupSize: number;
  rows: number;
  cols: number;
  /** Storage bits per weight including group scales and zero points. */
  bitsPerWeight: number;
  /** Plug-in specific numbers (GPTQ loss and dampening, AWQ ratio, ...). */
  info?: Record<string, number | string | boolean>;
}

/**
 * The view of one decoder layer a plug-in gets from the sequential driver: the layer's inputs for
 * every calibration window, a way to run the layer (in chunks of windows) with capture hooks on its
 * linears, and the means to replace weights.
 */
export interface LayerContext {
  readonly model: LlamaModel;
  readonly layer: number;
  readonly nLayers: number;
  /** Calibration windows and their length. */
  readonly windows: number;
  readonly seqLen: number;
  /**
   * The layer's inputs [windows * seqLen, dim] (do not modify; valid during quantizeLayer only:
   * the driver then overwrites them with the layer's outputs).
   */
  readonly inputs: Float32Array;
  /** Runs the layer as it currently is over the calibration windows. */
  forward(options?: ForwardOptions): Float32Array | undefined;
  /** Inputs of the named linears over all windows, concatenated [windows * seqLen, in] (shared inputs are one array). */
  captureInputs(names: readonly LinearName[]): Map<LinearName, Float32Array>;
  /** The f32 weight [out, in] a linear currently computes with (a copy). */
  weight(name: LinearName): Float32Array;
  /** The linear's bias, when its backend has one. */
  bias(name: LinearName): Float32Array | undefined;
  /** Replaces a linear's backend (the old one is disposed). */
  setLinear(name: LinearName, linear: Linear): void;
  /** Replaces a linear by an f32 one with this weight, and this bias (default: keep its bias; null: none). */
  setWeight(name: LinearName, weight: Float32Array, bias?: Float32Array | null): void;
  /** Records what was done to a linear for the report. */
  record(rec: Omit<LinearRecord, "layer">): void;
  log(message: string): void;
}

/**
 * A quantization method plugged into the sequential driver (RTN, GPTQ, AWQ, static W8A8).
 */
export interface LayerPlugin {
  readonly name: string;
  /**
   * What feeds the next layer: "quantized" (default) reruns the layer after quantizing it, so
   * later layers calibrate on quantized activations (GPTQ); "fp" uses the float layer's outputs
   * computed before quantizing (llm-awq, torch.ao static calibration).
   */
  readonly propagate?: "quantized" | "fp";
  /** Whether the plug-in needs calibration activations at all (RTN does not). Default true. */
  readonly needsActivations?: boolean;
  quantizeLayer(ctx: LayerContext): void | Promise<void>;
}

/** Rows per layer run that the default forward step aims at (ForwardOptions.stepWindows). */
const STEP_ROWS = 512;

/**
 * The default ForwardOptions.stepWindows for windows of `seqLen` tokens: as many windows as give
 * at most 512 rows, at least one.
 */
export function defaultStepWindows(seqLen: number): number {
  return Math.max(1, Math.floor(STEP_ROWS / Math.max(1, seqLen)));
}

/** GPTQ's true-sequential order for LLaMA: [k, v, q] -> [o] -> [up, gate] -> [down]. */
export const TRUE_SEQUENTIAL_GROUPS: readonly (readonly LinearName[])[] = [
  ["attn_k", "attn_v", "attn_q"],
  ["attn_output"],
  ["ffn_up", "ffn_gate"],
  ["ffn_down"],
];

/** Linears that read the same activation tensor share a key (their Hessians are the same). */
export function linearInputKey(name: LinearName): "attn_in" | "attn_out_in" | "ffn_in" | "ffn_down_in" {
  switch (name) {
    case "attn_q":
    case "attn_k":
    case "attn_v":
      return "attn_in";
    case "attn_output":
      return "attn_out_in";
    case "ffn_gate":
    case "ffn_up":
      return "ffn_in";
    case "ffn_down":
      return "ffn_down_in";
  }
}

/** Storage bits per weight of a group-quantized matrix: codes plus an f16 scale and a `bits`-bit zero per group. */
export function bitsPerWeight(bits: number, groupSize: number): number {
  return bits + (16 + bits) / groupSize;
}
