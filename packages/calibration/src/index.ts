export { computeQParams, quantizeAffine, fakeQuantize, roundHalfEven } from "./qparams";
export type { QParams, QParamsOptions } from "./qparams";
export { MinMaxObserver, MovingAverageMinMaxObserver, PerChannelMinMaxObserver } from "./observers";
export type { Observer, Range } from "./observers";
export { HistogramObserver, histc } from "./histogram-observer";
export { PercentileObserver, EntropyObserver, klDivergence } from "./distribution-observers";
export {
  splitOnBlankLines,
  readTextDocuments,
  readJsonlDocuments,
  parseJsonl,
  defaultCalibrationDocuments,
  encodeDocuments,
  sampleWindows,
  consecutiveWindows,
} from "./dataset";
export type { CalibrationSet, SampleOptions, TokenEncoder } from "./dataset";
export { TRUE_SEQUENTIAL_GROUPS, linearInputKey, bitsPerWeight, defaultStepWindows } from "./plugin";
export type { LayerPlugin, LayerContext, ForwardOptions, LinearActivations, LinearRecord } from "./plugin";
export { quantizeModel, linearBias } from "./driver";
export { memTrace, memTraceEnabled } from "./mem-trace";
export type { DriverOptions, DriverProgress, QuantizeReport } from "./driver";
export { DequantizedLinear, quantizedKind } from "./quantized-linear";
export { rtnPlugin, linearQuantConfig, quantizedBackend } from "./rtn-plugin";
export type { RtnPluginOptions, WeightQuantOptions } from "./rtn-plugin";
export { StaticW8A8Linear, staticW8A8Plugin, activationQParams } from "./static-w8a8";
export type { StaticW8A8Options } from "./static-w8a8";
export { measureSensitivity } from "./sensitivity";
export type { LinearSensitivity, SensitivityOptions } from "./sensitivity";
export { chooseBits } from "./mixed-precision";
export type { BitsPlan, ChooseBitsOptions } from "./mixed-precision";
