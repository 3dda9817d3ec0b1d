import { searchGroupParams } from "@lowbit/int4";
import { LowbitError } from "@lowbit/tensor";
import { isGradEnabled, Variable } from "../autograd/variable";
import {
  elementsPerParam,
  type FakeQuantParams,
  fakeQuantize,
  fitParams,
  LSQ_MIN_SCALE,
  lsqFakeQuantize,
  lsqGradScale,
  paramsFromRangeArrays,
  type QuantLayout,
} from "./fake-quantize";

/** How a weight [out, in] is fake-quantized during training. */
export interface WeightQuantConfig {
  /** 2..8. */
  bits: number;
  /** Symmetric codes (zero = 2^(bits-1)). Default true. */
  sym?: boolean;
  /** One scale for the tensor, per output channel (row), or per group of input columns. */
  granularity: "tensor" | "channel" | "group";
  /** Input columns per group (granularity "group"); must divide the input features. */
  groupSize?: number;
  /**
   * "lsq": learnable step sizes (LSQ), zeros fixed at their initial integer values (default);
   * "minmax": parameters refitted from the current weights at every forward (STE only).
   */
  mode?: "lsq" | "minmax";
  /** Initial LSQ step sizes: plain min/max, or the clipping search of @lowbit/int4 ("mse"). Default "minmax". */
  init?: "minmax" | "mse";
}

/** How an activation [tokens, features] is fake-quantized during training. */
export interface ActQuantConfig {
  /** 2..8. */
  bits: number;
  /** Default false (asymmetric, as torch.ao activations). */
  sym?: boolean;
  /** One scale for the tensor, per token (row, dynamic only) or per feature (column). */
  granularity: "tensor" | "token" | "channel";
  /**
   * "static": range from a min/max observer, frozen by `freeze()` (default);
   * "dynamic": range of each batch (no state; per-token quantization is this);
   * "lsq": learnable step sizes initialised from the observer's range at the first forward.
   */
  mode?: "static" | "dynamic" | "lsq";
  /** Observer update: plain running min/max, or torch's moving average (min += 0.01 (batch_min - min)). */
  observer?: "minmax" | "moving-average";
}

export function weightLayout(config: WeightQuantConfig, cols: number): QuantLayout {
  switch (config.granularity) {
    case "tensor":
      return { kind: "tensor" };
    case "channel":
      return { kind: "group", groupSize: cols };
    case "group": {
      const gs = config.groupSize;
      if (gs === undefined || !(Number.isInteger(gs) && gs > 0 && cols % gs === 0)) {
        throw new LowbitError(
          "E_INVALID_ARGUMENT",
          `weight quantizer: group size ${gs} must be a positive divisor of the ${cols} input features (see effectiveGroupSize in @lowbit/int4)`,
        );
      }
      return { kind: "group", groupSize: gs };
    }
  }
}

function checkBits(bits: number, where: string): void {
  if (!(Number.isInteger(bits) && bits >= 2 && bits <= 8)) {
    throw new LowbitError("E_INVALID_ARGUMENT", `${where}: bits must be an integer in 2..8, got ${bits}`);
  }
}

/** Fake quantization of one weight matrix [rows = out, cols = in]. */
export class WeightFakeQuant {
  readonly config: Required<Omit<WeightQuantConfig, "groupSize">> & { groupSize?: number };
  readonly layout: QuantLayout;
  /** LSQ step sizes (mode "lsq"), in the layout's parameter order. */
  readonly scale: Variable | null;
  /** Zero points (integer-valued; fixed in mode "lsq"). */
  zero: Float32Array;
  private initialised = false;
  /** When false, `apply` returns the weight unchanged (full-precision training). */
  enabled = true;

  constructor(
    config: WeightQuantConfig,
    readonly rows: number,
    readonly cols: number,
    name = "weight",
  ) {
    checkBits(config.bits, `weight quantizer "${name}"`);
    this.config = { sym: true, mode: "lsq", init: "minmax", ...config };
    this.layout = weightLayout(config, cols);
    const n = this.layout.kind === "group" ? rows * (cols / this.layout.groupSize) : 1;
    this.zero = new Float32Array(n);
    this.scale = this.config.mode === "lsq" ? Variable.param(new Float32Array(n), [n], `${name}.lsq_scale`) : null;
  }

  /** Sets the LSQ step sizes and zeros from `weight` (min/max or clipping search). */
  initFrom(weight: Float32Array): void {
    const p = this.fit(weight);
    this.zero = p.zero;
    if (this.scale) this.scale.value.set(p.scale);
    this.initialised = true;
  }

  private fit(weight: Float32Array): FakeQuantParams {
    const { bits, sym } = this.config;
    if (this.config.init === "mse" && this.config.mode === "lsq") {
      const layout = this.layout;
      const span = layout.kind === "tensor" ? weight.length : layout.kind === "group" ? layout.groupSize : 0;
      const n = weight.length / span;
      const scale = new Float32Array(n);
      const zero = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const p = searchGroupParams(weight, i * span, span, bits, sym);
        scale[i] = p.scale;
        zero[i] = p.zero;
      }
      return { bits, layout, scale, zero };
    }
    return fitParams(weight, this.rows, this.cols, this.layout, bits, sym);
  }

  /** The fake-quantized weight (a graph node). */
  apply(w: Variable): Variable {
    if (!this.enabled) return w;
    if (this.scale) {
      if (!this.initialised) this.initFrom(w.value);
      const g = lsqGradScale(elementsPerParam(this.layout, this.rows, this.cols), this.config.bits, this.config.sym);
      return lsqFakeQuantize(w, this.scale, this.zero, this.config.bits, this.layout, g);
    }
    return fakeQuantize(w, this.fit(w.value));
  }

  /** The parameters `apply` uses for this weight now. */
  params(weight: Float32Array): FakeQuantParams {
    if (!this.scale) return this.fit(weight);
    if (!this.initialised) this.initFrom(weight);
    const scale = new Float32Array(this.scale.size);
    for (let i = 0; i < scale.length; i++) scale[i] = Math.max(this.scale.value[i]!, LSQ_MIN_SCALE);
    return { bits: this.config.bits, layout: this.layout, scale, zero: Float32Array.from(this.zero) };
  }

  parameters(): Variable[] {
    return this.scale ? [this.scale] : [];
  }

  /** State that is not a parameter (zeros, whether initialised), for checkpoints. */
  state(): { zero: number[]; initialised: boolean } {
    return { zero: Array.from(this.zero), initialised: this.initialised };
  }

  loadState(s: { zero: number[]; initialised: boolean }): void {
    this.zero = Float32Array.from(s.zero);
    this.initialised = s.initialised;
  }
}

/** Fake quantization of an activation [tokens, features] entering a layer. */
export class ActFakeQuant {
  readonly config: Required<ActQuantConfig>;
  readonly layout: QuantLayout;
  readonly scale: Variable | null;
  zero: Float32Array;
  private lo: Float64Array | null = null;
  private hi: Float64Array | null = null;
  private frozen = false;
  private initialised = false;
  enabled = true;

  constructor(
    config: ActQuantConfig,
    readonly features: number,
    name = "input",
  ) {
    checkBits(config.bits, `activation quantizer "${name}"`);
    this.config = { sym: false, mode: "static", observer: "minmax", ...config };
    const { granularity, mode } = this.config;
    if (granularity === "token" && mode !== "dynamic") {
      throw new LowbitError(
        "E_INVALID_ARGUMENT",
        `activation quantizer "${name}": per-token granularity needs mode "dynamic" (the number of tokens varies)`,
      );
    }
    this.layout =
      granularity === "tensor"
        ? { kind: "tensor" }
        : granularity === "channel"
          ? { kind: "column" }
          : { kind: "group", groupSize: features };
    const n = granularity === "channel" ? features : 1;
    this.zero = new Float32Array(n);
    this.scale = this.config.mode === "lsq" ? Variable.param(new Float32Array(n), [n], `${name}.lsq_scale`) : null;
  }

  /** Updates the observer with a batch (static and lsq modes; no-op once frozen). */
  observe(x: Float32Array, rows: number): void {
    if (this.frozen || this.config.mode === "dynamic") return;
    const cols = this.features;
    const perColumn = this.layout.kind === "column";
    const n = perColumn ? cols : 1;
    const bl = new Float64Array(n).fill(Number.POSITIVE_INFINITY);
    const bh = new Float64Array(n).fill(Number.NEGATIVE_INFINITY);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const v = x[r * cols + c]!;
        const p = perColumn ? c : 0;
        if (v < bl[p]!) bl[p] = v;
        if (v > bh[p]!) bh[p] = v;
      }
    }
    if (!this.lo || !this.hi) {
      this.lo = bl;
      this.hi = bh;
      return;
    }
    const ema = this.config.observer === "moving-average";
    for (let p = 0; p < n; p++) {
      if (ema) {
        this.lo[p]! += 0.01 * (bl[p]! - this.lo[p]!);
        this.hi[p]! += 0.01 * (bh[p]! - this.hi[p]!);
      } else {
        if (bl[p]! < this.lo[p]!) this.lo[p] = bl[p]!;
        if (bh[p]! > this.hi[p]!) this.hi[p] = bh[p]!;
      }
    }
  }

  /**
   * Sets the observed range directly, e.g. from one of @lowbit/calibration's observers
   * (`const r = observer.range(); aq.setRange([r.min], [r.max])`; one entry per feature for
   * per-channel granularity). LSQ step sizes are initialised from it at the next forward.
   */
  setRange(lo: ArrayLike<number>, hi: ArrayLike<number>): void {
    const n = this.layout.kind === "column" ? this.features : 1;
    if (lo.length !== n || hi.length !== n) {
      throw new LowbitError("E_SHAPE_MISMATCH", `activation quantizer: setRange needs ${n} lows and highs, got ${lo.length} and ${hi.length}`);
    }
    this.lo = Float64Array.from(lo);
    this.hi = Float64Array.from(hi);
  }

  /** Stops observing: static parameters stay as they are now. */
  freeze(): void {
    this.frozen = true;
  }

  /** The static/LSQ parameters now (undefined before anything was observed). */
  params(): FakeQuantParams | undefined {
    const { bits, sym } = this.config;
    if (this.scale) {
      if (!this.initialised) return undefined;
      const scale = new Float32Array(this.scale.size);
      for (let i = 0; i < scale.length; i++) scale[i] = Math.max(this.scale.value[i]!, LSQ_MIN_SCALE);
      return { bits, layout: this.layout, scale, zero: Float32Array.from(this.zero) };
    }
    if (!this.lo || !this.hi) return undefined;
    return paramsFromRangeArrays(this.lo, this.hi, bits, sym, this.layout);
  }

  apply(x: Variable): Variable {
    if (!this.enabled) return x;
    const rows = x.rows;
    const { bits, sym, mode } = this.config;
    if (mode === "dynamic") return fakeQuantize(x, fitParams(x.value, rows, this.features, this.layout, bits, sym));
    // observe while training (graph recording on), as torch.ao's FakeQuantize does
    if (isGradEnabled() || !this.lo) this.observe(x.value, rows);
    if (this.scale) {
      if (!this.initialised) {
        const p = this.params0();
        this.scale.value.set(p.scale);
        this.zero = p.zero;
        this.initialised = true;
        this.frozen = true;
      }
      const g = lsqGradScale(elementsPerParam(this.layout, rows, this.features), bits, sym);
      return lsqFakeQuantize(x, this.scale, this.zero, bits, this.layout, g);
    }
    return fakeQuantize(x, this.params0());
  }

  private params0(): FakeQuantParams {
    return paramsFromRangeArrays(this.lo!, this.hi!, this.config.bits, this.config.sym, this.layout);
  }

  parameters(): Variable[] {
    return this.scale ? [this.scale] : [];
  }

  state(): { lo: number[] | null; hi: number[] | null; zero: number[]; frozen: boolean; initialised: boolean } {
    return {
      lo: this.lo ? Array.from(this.lo) : null,
      hi: this.hi ? Array.from(this.hi) : null,
      zero: Array.from(this.zero),
      frozen: this.frozen,
      initialised: this.initialised,
    };
  }

  loadState(s: ReturnType<ActFakeQuant["state"]>): void {
    this.lo = s.lo ? Float64Array.from(s.lo) : null;
    this.hi = s.hi ? Float64Array.from(s.hi) : null;
    this.zero = Float32Array.from(s.zero);
    this.frozen = s.frozen;
    this.initialised = s.initialised;
  }
}
