export { makeConfig, linearShape, parameterCount, LINEAR_NAMES, isLinearName } from "./config";
export type { LlamaConfig, LlamaConfigInput, LinearName, RopeStyle } from "./config";
export { LlamaModel } from "./model";
export type {
  DecoderLayerWeights,
  EmbeddingTable,
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
export { loadLlama2c } from "./load-llama2c";
export { Sampler } from "./sampler";
export type { SamplingOptions } from "./sampler";
export { generate } from "./generate";
export type { GenerateOptions, GenerateResult, StopReason } from "./generate";
export { Llama2cTokenizer } from "./tokenizer/llama2c";
export { HfTokenizer } from "./tokenizer/hf";
export type { Tokenizer, EncodeOptions, DecodeOptions, StreamDecoder } from "./tokenizer/types";
export { evaluate, evaluationWindows } from "./eval";
export { logitStats, logitStatsRef, STATS_STRIDE } from "./logit-stats";
export { RUNTIME_KERNEL_MODULES } from "./kernels/modules";
export type { EvaluateOptions, EvalResult, EvalProgress } from "./eval";
export { splitDocuments, documentHalf, encodeDocuments } from "./eval-data";
export { loadHfModel, configFromHf, internalNameFromHf, hfNameFromInternal, SUPPORTED_HF_ARCHITECTURES } from "./load-hf";
export type { HfLoadOptions } from "./load-hf";
export { loadGguf, loadGgufTokenizer, configFromGguf, ggufSource, SUPPORTED_GGUF_ARCHITECTURES } from "./load-gguf";
export { registerGgufTensorType } from "./gguf-types";
export type { GgufTensorType, GgufActivations } from "./gguf-types";
export type { GgufLoadOptions } from "./load-gguf";
export { loadModel, loadTokenizer, detectModelFormat } from "./load";
export type { ModelFormat } from "./load";
