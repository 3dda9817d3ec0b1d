import { LowbitError } from "@lowbit/tensor";
import { backward, type Variable } from "../autograd/variable";
import type { Optimizer, OptimizerState } from "../optim/optimizers";
import { clipGradNorm, epochOrder } from "../optim/schedule";
import { readCheckpoint, writeCheckpoint } from "./checkpoint";

/** A model the trainer can train: named parameters, a loss per batch, optional extra state. */
export interface TrainableModel<B> {
  /** Every trainable Variable, each with a unique name (checkpoints key on it). */
  parameters(): Variable[];
  loss(batch: B): Variable;
  /** JSON-serializable state that is not a parameter (quantizer zeros, observers). */
  state?(): unknown;
  loadState?(state: unknown): void;
}

/** Examples addressed by index; the trainer picks indices, the dataset builds the batch. */
export interface Dataset<B> {
  readonly size: number;
  batch(indices: Int32Array): B;
}

export interface TrainProgress {
  /** Optimizer steps done (1-based after the first step). */
  step: number;
  totalSteps: number;
  epoch: number;
  loss: number;
  lr: number;
  /** Global gradient norm before clipping (when clipping is on). */
  gradNorm?: number;
  elapsedMs: number;
  /** Estimated time left, from the mean step time of this run. */
  etaMs: number;
  /** Metrics, on steps where an evaluation ran. */
  eval?: Record<string, number>;
}

export interface TrainerOptions<B> {
  model: TrainableModel<B>;
  optimizer: Optimizer;
  data: Dataset<B>;
  batchSize: number;
  /** Total optimizer steps (alternatively `epochs`). */
  steps?: number;
  epochs?: number;
  /** Seed of the data order. Default 0. */
  seed?: number;
  /** Learning rate at each step (0-based), e.g. `(s) => cosineLr(s, ...)`. Default: the optimizer's lr. */
  lr?: (step: number) => number;
  /** Clip the global gradient norm to this value. */
  clipNorm?: number;
  /** Run `evaluate` every this many steps (and at the end). */
  evalEvery?: number;
  evaluate?: () => Record<string, number>;
  /** Write a checkpoint here every `checkpointEvery` steps and at the end (atomically). */
  checkpointPath?: string;
  checkpointEvery?: number;
  onProgress?: (p: TrainProgress) => void;
}

export interface TrainResult {
  steps: number;
  /** Loss of every step of the whole training (including steps before a resume). */
  losses: number[];
  evals: Array<{ step: number; metrics: Record<string, number> }>;
}

/**
 * Mini-batch training loop. Batch b of epoch e holds examples order[b*bs .. (b+1)*bs) of
 * `epochOrder(size, seed, e)`, so the data a step sees depends only on its index: a run resumed
 * from a checkpoint (parameters, optimizer state, model state, step) continues exactly as the
 * uninterrupted run would.
 */
export class Trainer<B> {
  readonly totalSteps: number;
  readonly stepsPerEpoch: number;
  private stepIndex = 0;
  private losses: number[] = [];
  private evals: TrainResult["evals"] = [];
  private readonly params: Variable[];

  constructor(private readonly options: TrainerOptions<B>) {
    const { data, batchSize } = options;
    if (!(Number.isInteger(batchSize) && batchSize > 0)) {
      throw new LowbitError("E_INVALID_ARGUMENT", `Trainer: batchSize must be a positive integer, got ${batchSize}`);
    }
    if (!(data.size > 0)) throw new LowbitError("E_INVALID_ARGUMENT", "Trainer: the dataset is empty");
    this.stepsPerEpoch = Math.ceil(data.size / batchSize);
    const total = options.steps ?? (options.epochs !== undefined ? options.epochs * this.stepsPerEpoch : undefined);
    if (!(total !== undefined && Number.isInteger(total) && total >= 0)) {
      throw new LowbitError("E_INVALID_ARGUMENT", "Trainer: give a whole number of `steps` or `epochs`");
    }
    this.totalSteps = total;
    this.params = options.model.parameters();
    const names = new Set<string>();
    for (const p of this.params) {
      if (!p.name) throw new LowbitError("E_INVALID_ARGUMENT", "Trainer: every parameter needs a name (checkpoints key on it)");
      if (names.has(p.name)) throw new LowbitError("E_INVALID_ARGUMENT", `Trainer: parameter name "${p.name}" is used twice`);
      names.add(p.name);
    }
  }

  /** Optimizer steps done so far. */
  get step(): number {
    return this.stepIndex;
  }

  /** The example indices of step `s` (0-based). */
  batchIndices(s: number): Int32Array {
    const { data, batchSize } = this.options;
    const epoch = Math.floor(s / this.stepsPerEpoch);
    const b = s % this.stepsPerEpoch;
    const order = epochOrder(data.size, this.options.seed ?? 0, epoch);
    return order.subarray(b * batchSize, Math.min(data.size, (b + 1) * batchSize));
  }

  /**
   * Trains until `totalSteps` (or `untilStep`, to stop early as an interruption would). Writes a
   * checkpoint at the end when a path is set.
   */
  async run(options: { untilStep?: number } = {}): Promise<TrainResult> {
    const o = this.options;
    const end = Math.min(this.totalSteps, options.untilStep ?? this.totalSteps);
    const t0 = Date.now();
    const first = this.stepIndex;
    while (this.stepIndex < end) {
      const s = this.stepIndex;
      const batch = o.data.batch(this.batchIndices(s));
      const lr = o.lr ? o.lr(s) : o.optimizer.lr;
      o.optimizer.lr = lr;
      o.optimizer.zeroGrad();
      const loss = o.model.loss(batch);
      const lossValue = loss.item();
      if (!Number.isFinite(lossValue)) {
        throw new LowbitError("E_NON_FINITE", `Trainer: loss is ${lossValue} at step ${s} (lower the learning rate or clip gradients)`);
      }
      backward(loss);
      const gradNorm = o.clipNorm !== undefined ? clipGradNorm(this.params, o.clipNorm) : undefined;
      o.optimizer.step();
      this.stepIndex = s + 1;
      this.losses.push(lossValue);
      let metrics: Record<string, number> | undefined;
      if (o.evaluate && ((o.evalEvery && this.stepIndex % o.evalEvery === 0) || this.stepIndex === this.totalSteps)) {
        metrics = o.evaluate();
        this.evals.push({ step: this.stepIndex, metrics });
      }
      if (o.checkpointPath && o.checkpointEvery && this.stepIndex % o.checkpointEvery === 0) {
        await this.saveCheckpoint(o.checkpointPath);
      }
      if (o.onProgress) {
        const elapsedMs = Date.now() - t0;
        const done = this.stepIndex - first;
        o.onProgress({
          step: this.stepIndex,
          totalSteps: this.totalSteps,
          epoch: Math.floor(s / this.stepsPerEpoch),
          loss: lossValue,
          lr,
          gradNorm,
          elapsedMs,
          etaMs: (elapsedMs / done) * (this.totalSteps - this.stepIndex),
          eval: metrics,
        });
      }
    }
    if (o.checkpointPath) await this.saveCheckpoint(o.checkpointPath);
    return { steps: this.stepIndex, losses: this.losses.slice(), evals: this.evals.slice() };
  }

  /** Writes parameters, optimizer state, model state and progress to `path` (atomically). */
  async saveCheckpoint(path: string): Promise<void> {
    const tensors = new Map<string, Float32Array>();
    for (const p of this.params) tensors.set(`param/${p.name}`, p.value);
    const opt = this.options.optimizer.state();
    const buffers: Record<string, Array<boolean>> = {};
    for (const [k, list] of Object.entries(opt.buffers)) {
      buffers[k] = list.map((b, i) => {
        if (b) tensors.set(`optim/${k}/${i}`, b);
        return b !== null;
      });
    }
    const meta = {
      kind: "lowbit-qat-trainer",
      step: this.stepIndex,
      totalSteps: this.totalSteps,
      batchSize: this.options.batchSize,
      seed: this.options.seed ?? 0,
      datasetSize: this.options.data.size,
      optimizer: { kind: opt.kind, step: opt.step, buffers },
      model: this.options.model.state ? this.options.model.state() : null,
      losses: this.losses,
      evals: this.evals,
    };
    await writeCheckpoint(path, { meta, tensors });
  }

  /**
   * Restores a checkpoint written by `saveCheckpoint` of a trainer with the same model,
   * optimizer, data and batch settings. Throws naming the first mismatch.
   */
  async resume(path: string): Promise<void> {
    const { meta, tensors } = await readCheckpoint(path);
    const m = meta as {
      kind: string;
      step: number;
      batchSize: number;
      seed: number;
      datasetSize: number;
      optimizer: { kind: string; step: number; buffers: Record<string, boolean[]> };
      model: unknown;
      losses: number[];
      evals: TrainResult["evals"];
    };
    const mismatch = (what: string): never => {
      throw new LowbitError("E_INVALID_ARGUMENT", `${path}: cannot resume: ${what}`);
    };
    if (m.kind !== "lowbit-qat-trainer") mismatch("not a trainer checkpoint");
    if (m.batchSize !== this.options.batchSize) mismatch(`batch size ${m.batchSize} != ${this.options.batchSize}`);
    if (m.seed !== (this.options.seed ?? 0)) mismatch(`seed ${m.seed} != ${this.options.seed ?? 0}`);
    if (m.datasetSize !== this.options.data.size) mismatch(`dataset size ${m.datasetSize} != ${this.options.data.size}`);
    if (m.optimizer.kind !== this.options.optimizer.state().kind) {
      mismatch(`optimizer ${m.optimizer.kind} != ${this.options.optimizer.state().kind}`);
    }
    const values: Float32Array[] = [];
    for (const p of this.params) {
      const t = tensors.get(`param/${p.name}`);
      if (!t) return mismatch(`parameter "${p.name}" is missing`);
      if (t.length !== p.size) mismatch(`parameter "${p.name}" has ${t.length} values, expected ${p.size}`);
      values.push(t);
    }
    const buffers: OptimizerState["buffers"] = {};
    for (const [k, present] of Object.entries(m.optimizer.buffers)) {
      buffers[k] = present.map((has, i) => (has ? (tensors.get(`optim/${k}/${i}`) ?? mismatch(`optimizer buffer ${k}/${i} is missing`)) : null));
    }
    // everything checked: now overwrite
    this.options.optimizer.loadState({ kind: m.optimizer.kind, step: m.optimizer.step, buffers });
    this.params.forEach((p, i) => {
      p.value.set(values[i]!);
    });
    if (m.model !== null && this.options.model.loadState) this.options.model.loadState(m.model);
    this.stepIndex = m.step;
    this.losses = m.losses.slice();
    this.evals = m.evals.slice();
  }
}
