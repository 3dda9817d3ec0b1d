import { dequantizeMatrix, quantizeRTN } from "@lowbit/int4";
import { LowbitError } from "@lowbit/tensor";
import { convertMlp, type QuantizedLinearFactory } from "../convert/quantized-mlp";
import { type ClassifierBatch, MlpClassifier } from "../nn/mlp";
import { AdamW } from "../optim/optimizers";
import { cosineLr, epochOrder } from "../optim/schedule";
import type { WeightQuantConfig } from "../quant/quantizers";
import { type Dataset, Trainer, type TrainProgress } from "../train/trainer";

/** A labelled table of features (row-major) for a classifier. */
export interface LabelledData {
  x: Float32Array;
  labels: Int32Array;
  features: number;
}

/**
 * Parses the UCI optdigits CSV (as shipped with scikit-learn: 64 pixel values 0..16 then the
 * label, no header). Pixels are scaled to [0, 1].
 */
export function parseDigitsCsv(text: string, source = "digits.csv"): LabelledData {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== "");
  const x = new Float32Array(lines.length * 64);
  const labels = new Int32Array(lines.length);
  lines.forEach((line, i) => {
    const cells = line.split(",");
    if (cells.length !== 65) {
      throw new LowbitError("E_FORMAT", `${source}: line ${i + 1} has ${cells.length} fields, expected 64 pixels and a label`);
    }
    for (let j = 0; j < 64; j++) {
      const v = Number(cells[j]);
      if (!(Number.isInteger(v) && v >= 0 && v <= 16)) {
        throw new LowbitError("E_FORMAT", `${source}: line ${i + 1}, pixel ${j}: expected an integer 0..16, got "${cells[j]}"`);
      }
      x[i * 64 + j] = v / 16;
    }
    const label = Number(cells[64]);
    if (!(Number.isInteger(label) && label >= 0 && label <= 9)) {
      throw new LowbitError("E_FORMAT", `${source}: line ${i + 1}: label must be 0..9, got "${cells[64]}"`);
    }
    labels[i] = label;
  });
  return { x, labels, features: 64 };
}

/** Rows picked by index. */
export function subset(data: LabelledData, idx: ArrayLike<number>): LabelledData {
  const f = data.features;
  const x = new Float32Array(idx.length * f);
  const labels = new Int32Array(idx.length);
  for (let i = 0; i < idx.length; i++) {
    const e = idx[i]!;
    x.set(data.x.subarray(e * f, e * f + f), i * f);
    labels[i] = data.labels[e]!;
  }
  return { x, labels, features: f };
}

/** A seeded random split: the first round(n * testFraction) rows of a seeded permutation are the test set. */
export function splitData(data: LabelledData, testFraction: number, seed: number): { train: LabelledData; test: LabelledData } {
  const n = data.labels.length;
  const order = epochOrder(n, seed, 0);
  const nTest = Math.round(n * testFraction);
  return { test: subset(data, order.subarray(0, nTest)), train: subset(data, order.subarray(nTest)) };
}

export function classifierDataset(data: LabelledData): Dataset<ClassifierBatch> {
  return { size: data.labels.length, batch: (idx) => subset(data, idx) };
}

export interface DigitsExperimentOptions {
  /** Hidden layer sizes. Default [64]. */
  hidden?: number[];
  seed?: number;
  fpEpochs?: number;
  qatEpochs?: number;
  batchSize?: number;
  fpLr?: number;
  qatLr?: number;
  /** Weight bit widths to compare. Default [4, 2]. */
  bits?: number[];
  /** Weight quantizer layout (shared by RTN and QAT). Default per channel, symmetric. */
  granularity?: WeightQuantConfig["granularity"];
  groupSize?: number;
  sym?: boolean;
  /** Builds the deployed linear of each converted layer. */
  makeLinear: QuantizedLinearFactory;
  onProgress?: (phase: string, p: TrainProgress) => void;
}

export interface DigitsBitsResult {
  bits: number;
  /** Accuracy with round-to-nearest post-training quantization of the FP weights. */
  rtn: number;
  /** Accuracy of the QAT model's fake-quantized forward pass. */
  qatFake: number;
  /** Accuracy of the QAT model converted to real quantized layers. */
  qat: number;
  /** (qat - rtn) / (fp - rtn): the share of what RTN lost that QAT recovered. */
  recovered: number;
  qatMs: number;
}

export interface DigitsResult {
  trainRows: number;
  testRows: number;
  fp: number;
  fpMs: number;
  results: DigitsBitsResult[];
}

function copyWeights(from: MlpClassifier, to: MlpClassifier): void {
  from.layers.forEach((l, i) => {
    const t = to.layers[i]!;
    t.weight.value.set(l.weight.value);
    if (l.bias && t.bias) t.bias.value.set(l.bias.value);
  });
}

/**
 * The digits experiment: train an FP MLP, quantize it post-training with RTN at each bit width,
 * then fine-tune it with QAT (LSQ weights) at the same widths and convert it to real quantized
 * layers. Accuracies are on the held-out test split.
 */
export async function runDigitsExperiment(
  train: LabelledData,
  test: LabelledData,
  options: DigitsExperimentOptions,
): Promise<DigitsResult> {
  const seed = options.seed ?? 0;
  const sizes = [train.features, ...(options.hidden ?? [64]), 10];
  const batchSize = options.batchSize ?? 32;
  const granularity = options.granularity ?? "channel";
  const sym = options.sym ?? true;
  const data = classifierDataset(train);

  const fp = new MlpClassifier(sizes, seed);
  const fpEpochs = options.fpEpochs ?? 60;
  const t0 = Date.now();
  const fpTrainer = new Trainer({
    model: fp,
    optimizer: new AdamW(fp.parameters(), { lr: options.fpLr ?? 3e-3, weightDecay: 1e-4 }),
    data,
    batchSize,
    epochs: fpEpochs,
    seed,
    lr: (s) => cosineLr(s, { lr: options.fpLr ?? 3e-3, totalSteps: fpEpochs * Math.ceil(data.size / batchSize), warmupSteps: 20 }),
    onProgress: options.onProgress ? (p) => options.onProgress!("fp", p) : undefined,
  });
  await fpTrainer.run();
  const fpMs = Date.now() - t0;
  const fpAcc = fp.accuracy(test.x, test.labels);

  const results: DigitsBitsResult[] = [];
  for (const bits of options.bits ?? [4, 2]) {
    // RTN post-training quantization of the FP weights (int4's quantizer)
    const rtnModel = new MlpClassifier(sizes, seed);
    copyWeights(fp, rtnModel);
    for (const l of rtnModel.layers) {
      const groupSize = granularity === "group" ? options.groupSize! : -1;
      if (granularity === "tensor") {
        throw new LowbitError("E_UNSUPPORTED", "digits experiment: RTN baseline supports channel and group granularity");
      }
      const qm = quantizeRTN(l.weight.value, l.outFeatures, l.inFeatures, { bits, groupSize, sym, name: l.weight.name });
      l.weight.value.set(dequantizeMatrix(qm));
    }
    const rtn = rtnModel.accuracy(test.x, test.labels);

    // QAT: start from the FP weights, LSQ step sizes initialised from min/max
    const t1 = Date.now();
    const qat = new MlpClassifier(sizes, seed);
    copyWeights(fp, qat);
    qat.quantize({ bits, granularity, groupSize: options.groupSize, sym, mode: "lsq" });
    const weights = qat.layers.flatMap((l) => l.parameters());
    const scales = qat.layers.flatMap((l) => l.quantizerParameters());
    const qatEpochs = options.qatEpochs ?? 30;
    const qatLr = options.qatLr ?? 1e-3;
    const totalSteps = qatEpochs * Math.ceil(data.size / batchSize);
    const trainer = new Trainer({
      model: qat,
      optimizer: new AdamW([{ params: weights }, { params: scales, weightDecay: 0 }], { lr: qatLr, weightDecay: 0 }),
      data,
      batchSize,
      steps: totalSteps,
      seed: seed + bits,
      lr: (s) => cosineLr(s, { lr: qatLr, totalSteps, warmupSteps: 10 }),
      clipNorm: 5,
      onProgress: options.onProgress ? (p) => options.onProgress!(`qat-int${bits}`, p) : undefined,
    });
    await trainer.run();
    const qatFake = qat.accuracy(test.x, test.labels);
    const converted = convertMlp(qat, options.makeLinear);
    const qatAcc = converted.accuracy(test.x, test.labels);
    converted.dispose();
    const lost = fpAcc - rtn;
    results.push({
      bits,
      rtn,
      qatFake,
      qat: qatAcc,
      recovered: lost > 0 ? (qatAcc - rtn) / lost : 1,
      qatMs: Date.now() - t1,
    });
  }
  return { trainRows: train.labels.length, testRows: test.labels.length, fp: fpAcc, fpMs, results };
}
