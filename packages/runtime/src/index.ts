export { makeConfig, linearShape, parameterCount, LINEAR_NAMES, isLinearName } from "./config";
export type { LlamaConfig, LlamaConfigInput, LinearName, RopeStyle } from "./config";
export { LlamaModel } from "./model";
export type {
  DecoderLayerWeights,
  ModelWeights,
  LayerLoader,
  CaptureEvent,
  CaptureHook,
  LinearCapture,
  LayerCapture,
  LogitsMode,
} from "./model";
export { KVCache } from "./kv-cache";
export { buildModel, memorySource, validateSource, expectedTensors } from "./build";
export type { TensorSource, BuildOptions } from "./build";
export { makeF32Linear } from "./linear-factory";
