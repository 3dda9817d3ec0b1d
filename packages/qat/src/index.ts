export { Variable, backward, noGrad, isGradEnabled } from "./autograd/variable";
export { add, sub, mul, scale, addRow, relu, silu, sum, mean, reshape } from "./autograd/ops-elementwise";
export { linear, matmul, embedding } from "./autograd/ops-linear";
export { rmsNorm } from "./autograd/ops-norm";
export { rope, causalAttention } from "./autograd/ops-attention";
export type { RopeOptions, AttentionOptions } from "./autograd/ops-attention";
export { crossEntropy, mseLoss } from "./autograd/ops-loss";
export { gradCheck } from "./autograd/gradcheck";
export type { GradCheckOptions, GradCheckResult } from "./autograd/gradcheck";
export {
  fakeQuantize,
  lsqFakeQuantize,
  lsqGradScale,
  lsqQp,
  fitParams,
  quantizeDequantize,
  paramIndexMap,
  paramCount,
  LSQ_MIN_SCALE,
} from "./quant/fake-quantize";
export type { QuantLayout, FakeQuantParams } from "./quant/fake-quantize";
export { WeightFakeQuant, ActFakeQuant } from "./quant/quantizers";
export type { WeightQuantConfig, ActQuantConfig } from "./quant/quantizers";
export { SGD, AdamW } from "./optim/optimizers";
export type { Optimizer, OptimizerState, ParamGroup, SgdOptions, AdamWOptions } from "./optim/optimizers";
export { cosineLr, clipGradNorm, epochOrder } from "./optim/schedule";
export type { CosineScheduleOptions } from "./optim/schedule";
export { Trainer } from "./train/trainer";
export type { TrainableModel, Dataset, TrainerOptions, TrainProgress, TrainResult } from "./train/trainer";
export { writeCheckpoint, readCheckpoint } from "./train/checkpoint";
export type { CheckpointContents } from "./train/checkpoint";
export { QatLinear } from "./nn/qat-linear";
export type { QatLinearInit } from "./nn/qat-linear";
export { MlpClassifier, accuracyFromLogits } from "./nn/mlp";
export type { ClassifierBatch } from "./nn/mlp";
export { fakeQuantToQuantizedMatrix, linearToQuantizedMatrix } from "./convert/to-quantized";
export { QuantizedMlp, convertMlp } from "./convert/quantized-mlp";
export type { QuantizedLinearFactory, QuantizedMlpLayer } from "./convert/quantized-mlp";
export { defaultQuantizedLinear } from "./convert/default-linear";
export { parseDigitsCsv, splitData, subset, classifierDataset, runDigitsExperiment } from "./examples/digits";
export type { LabelledData, DigitsExperimentOptions, DigitsResult, DigitsBitsResult } from "./examples/digits";
export { QatDecoderLayer } from "./llama/qat-decoder-layer";
export type { DecoderLayerInit, LayerQuantPlan } from "./llama/qat-decoder-layer";
export { QatLlama } from "./llama/qat-llama";
export type { TokenBatch, NamedTensors } from "./llama/qat-llama";
export { trainLayerQat, layerMse, qatPlugin } from "./llama/layer-qat";
export type { LayerQatOptions, LayerQatResult, QatPluginOptions } from "./llama/layer-qat";
