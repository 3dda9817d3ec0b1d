import { LowbitError } from "@lowbit/tensor";
import type { Variable } from "../autograd/variable";

/** Parameters sharing options. */
export interface ParamGroup {
  params: Variable[];
  /** Decoupled (AdamW) or L2 (SGD) weight decay. Default: the optimizer's. */
  weightDecay?: number;
  /** Multiplies the optimizer's learning rate for this group (e.g. LSQ step sizes). Default 1. */
  lrScale?: number;
}

/** Serializable optimizer state: the step count and named per-parameter buffers. */
export interface OptimizerState {
  kind: string;
  step: number;
  /** buffers[name][i] is the buffer of the i-th parameter (in `params` order), or null before use. */
  buffers: Record<string, Array<Float32Array | null>>;
}

/** What every optimizer provides: a step at the current `lr`, zeroing, and state for checkpoints. */
export interface Optimizer {
  /** Learning rate of the next step (a schedule sets it before each step). */
  lr: number;
  readonly params: readonly Variable[];
  /** Updates every parameter that has a gradient. */
  step(): void;
  zeroGrad(): void;
  state(): OptimizerState;
  loadState(state: OptimizerState): void;
}

interface Resolved {
  param: Variable;
  weightDecay: number;
  lrScale: number;
}

function resolveGroups(groups: Array<ParamGroup | Variable>, defaultDecay: number, who: string): Resolved[] {
  const out: Resolved[] = [];
  const seen = new Set<Variable>();
  const add = (param: Variable, weightDecay: number, lrScale: number) => {
    if (!param.requiresGrad) {
      throw new LowbitError("E_INVALID_ARGUMENT", `${who}: parameter "${param.name ?? "?"}" does not require a gradient`);
    }
    if (seen.has(param)) {
      throw new LowbitError("E_INVALID_ARGUMENT", `${who}: parameter "${param.name ?? "?"}" is listed twice`);
    }
    seen.add(param);
    out.push({ param, weightDecay, lrScale });
  };
  for (const g of groups) {
    if ("params" in g) for (const p of g.params) add(p, g.weightDecay ?? defaultDecay, g.lrScale ?? 1);
    else add(g, defaultDecay, 1);
  }
  return out;
}

abstract class BaseOptimizer implements Optimizer {
  lr: number;
  protected readonly entries: Resolved[];
  protected steps = 0;
  protected buffers: Record<string, Array<Float32Array | null>> = {};

  constructor(
    protected readonly kind: string,
    groups: Array<ParamGroup | Variable>,
    lr: number,
    weightDecay: number,
    bufferNames: string[],
  ) {
    if (!(lr >= 0 && Number.isFinite(lr))) throw new LowbitError("E_INVALID_ARGUMENT", `${kind}: lr must be >= 0, got ${lr}`);
    this.lr = lr;
    this.entries = resolveGroups(groups, weightDecay, kind);
    for (const name of bufferNames) this.buffers[name] = this.entries.map(() => null);
  }

  get params(): readonly Variable[] {
    return this.entries.map((e) => e.param);
  }

  zeroGrad(): void {
    for (const e of this.entries) e.param.zeroGrad();
  }

  protected buffer(name: string, i: number): Float32Array {
    const list = this.buffers[name]!;
    let b = list[i];
    if (!b) {
      b = new Float32Array(this.entries[i]!.param.size);
      list[i] = b;
    }
    return b;
  }

  abstract step(): void;

  state(): OptimizerState {
    const buffers: OptimizerState["buffers"] = {};
    for (const [k, list] of Object.entries(this.buffers)) buffers[k] = list.map((b) => (b ? b.slice() : null));
    return { kind: this.kind, step: this.steps, buffers };
  }

  loadState(state: OptimizerState): void {
    if (state.kind !== this.kind) {
      throw new LowbitError("E_INVALID_ARGUMENT", `${this.kind}: cannot load the state of a ${state.kind} optimizer`);
    }
    for (const [k, list] of Object.entries(state.buffers)) {
      const mine = this.buffers[k];
      if (!mine || list.length !== mine.length) {
        throw new LowbitError(
          "E_SHAPE_MISMATCH",
          `${this.kind}: state buffer "${k}" has ${list.length} entries, this optimizer has ${mine?.length ?? 0} parameters`,
        );
      }
      list.forEach((b, i) => {
        const p = this.entries[i]!.param;
        if (b && b.length !== p.size) {
          throw new LowbitError(
            "E_SHAPE_MISMATCH",
            `${this.kind}: state buffer "${k}" of parameter "${p.name ?? i}" has ${b.length} elements, expected ${p.size}`,
          );
        }
        mine[i] = b ? b.slice() : null;
      });
    }
    this.steps = state.step;
  }
}

export interface SgdOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  weightDecay?: number;
}

/** SGD with momentum, as torch.optim.SGD (L2 weight decay added to the gradient). */
export class SGD extends BaseOptimizer {
  private readonly momentum: number;
  private readonly dampening: number;
  private readonly nesterov: boolean;

  constructor(params: Array<ParamGroup | Variable>, options: SgdOptions) {
    super("sgd", params, options.lr, options.weightDecay ?? 0, ["momentum"]);
    this.momentum = options.momentum ?? 0;
    this.dampening = options.dampening ?? 0;
    this.nesterov = options.nesterov ?? false;
  }

  step(): void {
    this.steps++;
    const mu = this.momentum;
    this.entries.forEach((e, i) => {
      const g = e.param.grad;
      if (!g) return;
      const p = e.param.value;
      const lr = this.lr * e.lrScale;
      const wd = e.weightDecay;
      const fresh = this.buffers.momentum![i] === null;
      const buf = mu !== 0 ? this.buffer("momentum", i) : null;
      for (let j = 0; j < p.length; j++) {
        let d = g[j]! + wd * p[j]!;
        if (buf) {
          const b = fresh ? d : mu * buf[j]! + (1 - this.dampening) * d;
          buf[j] = b;
          d = this.nesterov ? d + mu * b : b;
        }
        p[j] = p[j]! - lr * d;
      }
    });
  }
}

export interface AdamWOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Decoupled weight decay. Default 0.01 (as torch.optim.AdamW). */
  weightDecay?: number;
}

/** AdamW (Loshchilov and Hutter), as torch.optim.AdamW: decoupled decay, bias-corrected moments. */
export class AdamW extends BaseOptimizer {
  private readonly b1: number;
  private readonly b2: number;
  private readonly eps: number;

  constructor(params: Array<ParamGroup | Variable>, options: AdamWOptions) {
    super("adamw", params, options.lr, options.weightDecay ?? 0.01, ["m", "v"]);
    this.b1 = options.beta1 ?? 0.9;
    this.b2 = options.beta2 ?? 0.999;
    this.eps = options.eps ?? 1e-8;
  }

  step(): void {
    this.steps++;
    const t = this.steps;
    const b1 = this.b1;
    const b2 = this.b2;
    const c1 = 1 - b1 ** t;
    const c2 = 1 - b2 ** t;
    this.entries.forEach((e, i) => {
      const g = e.param.grad;
      if (!g) return;
      const p = e.param.value;
      const lr = this.lr * e.lrScale;
      const decay = 1 - lr * e.weightDecay;
      const m = this.buffer("m", i);
      const v = this.buffer("v", i);
      const sc2 = Math.sqrt(c2);
      for (let j = 0; j < p.length; j++) {
        const gj = g[j]!;
        const mj = b1 * m[j]! + (1 - b1) * gj;
        const vj = b2 * v[j]! + (1 - b2) * gj * gj;
        m[j] = mj;
        v[j] = vj;
        p[j] = p[j]! * decay - (lr / c1) * (mj / (Math.sqrt(vj) / sc2 + this.eps));
      }
    });
  }
}
