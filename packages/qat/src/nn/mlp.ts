import { LowbitError, Rng } from "@lowbit/tensor";
import { relu } from "../autograd/ops-elementwise";
import { crossEntropy } from "../autograd/ops-loss";
import { noGrad, Variable } from "../autograd/variable";
import type { ActQuantConfig, WeightQuantConfig } from "../quant/quantizers";
import { QatLinear } from "./qat-linear";
import type { TrainableModel } from "../train/trainer";

/** A batch for a classifier: rows of features and their integer labels. */
export interface ClassifierBatch {
  x: Float32Array;
  labels: Int32Array;
}

/**
 * A multi-layer perceptron classifier: Linear -> ReLU -> ... -> Linear, trained with softmax
 * cross-entropy. Layer i is named "fc{i}".
 */
export class MlpClassifier implements TrainableModel<ClassifierBatch> {
  readonly layers: QatLinear[];

  constructor(
    readonly sizes: readonly number[],
    seed = 0,
  ) {
    if (sizes.length < 2 || sizes.some((s) => !(Number.isInteger(s) && s > 0))) {
      throw new LowbitError("E_INVALID_ARGUMENT", `MlpClassifier: sizes must be >= 2 positive integers, got [${sizes.join(", ")}]`);
    }
    const rng = new Rng(seed);
    this.layers = [];
    for (let i = 0; i + 1 < sizes.length; i++) {
      this.layers.push(new QatLinear(`fc${i}`, sizes[i]!, sizes[i + 1]!, { rng }));
    }
  }

  get inFeatures(): number {
    return this.sizes[0]!;
  }

  get classes(): number {
    return this.sizes[this.sizes.length - 1]!;
  }

  /** Attaches fake quantizers to every layer (weights; inputs when given). */
  quantize(weight?: WeightQuantConfig, input?: ActQuantConfig): this {
    for (const l of this.layers) l.quantize(weight, input);
    return this;
  }

  /** Logits [rows, classes]. */
  forward(x: Variable): Variable {
    let h = x;
    this.layers.forEach((l, i) => {
      h = l.forward(h);
      if (i + 1 < this.layers.length) h = relu(h);
    });
    return h;
  }

  loss(batch: ClassifierBatch): Variable {
    const rows = batch.labels.length;
    return crossEntropy(this.forward(Variable.constant(batch.x, [rows, this.inFeatures])), batch.labels);
  }

  /** Fraction of rows whose arg-max logit is the label. */
  accuracy(x: Float32Array, labels: Int32Array): number {
    const logits = noGrad(() => this.forward(Variable.constant(x, [labels.length, this.inFeatures]))).value;
    return accuracyFromLogits(logits, labels, this.classes);
  }

  parameters(): Variable[] {
    return this.layers.flatMap((l) => [...l.parameters(), ...l.quantizerParameters()]);
  }

  state(): Record<string, unknown> {
    return Object.fromEntries(this.layers.map((l) => [l.name, l.state()]));
  }

  loadState(s: Record<string, unknown>): void {
    for (const l of this.layers) {
      const st = s[l.name];
      if (st) l.loadState(st as Record<string, unknown>);
    }
  }
}

/** Fraction of rows whose arg-max (first on ties) equals the label. */
export function accuracyFromLogits(logits: Float32Array, labels: Int32Array, classes: number): number {
  let correct = 0;
  for (let i = 0; i < labels.length; i++) {
    let best = 0;
    for (let j = 1; j < classes; j++) if (logits[i * classes + j]! > logits[i * classes + best]!) best = j;
    if (best === labels[i]) correct++;
  }
  return labels.length > 0 ? correct / labels.length : 0;
}
