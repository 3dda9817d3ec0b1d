export type { BuildOptions, TensorSource } from "./build";
export { buildModel, expectedTensors, memorySource, validateSource } from "./build";
export type { LinearName, LlamaConfig, LlamaConfigInput, RopeStyle } from "./config";
export { isLinearName, LINEAR_NAMES, linearShape, makeConfig, parameterCount } from "./config";
export type { EvalProgress, EvalResult, EvaluateOptions } from "./eval";
export { evaluate, evaluationWindows } from "./eval";
export { documentHalf, encodeDocuments, splitDocuments } from "./eval-data";
export type { GenerateOptions, GenerateResult, StopReason } from "./generate";
export { generate } from "./generate";
export { GGUF_KQUANT_TYPES, kQuantDecoder } from "./gguf-kquants";
export type { GgufActivations, GgufTensorType, HalfWeights } from "./gguf-types";
export { registerGgufTensorType } from "./gguf-types";
export { RUNTIME_KERNEL_MODULES } from "./kernels/modules";
export { KVCache } from "./kv-cache";
export { makeF32Linear } from "./linear-factory";
export type { ModelFormat } from "./load";
export { detectModelFormat, loadModel, loadTokenizer } from "./load";
export type { GgufLoadOptions } from "./load-gguf";
export { configFromGguf, ggufSource, loadGguf, loadGgufTokenizer, SUPPORTED_GGUF_ARCHITECTURES } from "./load-gguf";
export type { HfLoadOptions } from "./load-hf";
export { configFromHf, hfNameFromInternal, internalNameFromHf, loadHfModel, SUPPORTED_HF_ARCHITECTURES } from "./load-hf";
export { loadLlama2c } from "./load-llama2c";
export { logitStats, logitStatsRef, STATS_STRIDE } from "./logit-stats";
export type {
  CaptureEvent,
  CaptureHook,
  DecoderLayerWeights,
  EmbeddingTable,
  LayerCapture,
  LayerLoader,
  LinearCapture,
  LinearInputCapture,
  LogitsMode,
  ModelWeights,
} from "./model";
export { LlamaModel } from "./model";
export type { SamplingOptions } from "./sampler";
export { Sampler } from "./sampler";
export { HfTokenizer } from "./tokenizer/hf";
export { Llama2cTokenizer } from "./tokenizer/llama2c";
export type { DecodeOptions, EncodeOptions, StreamDecoder, Tokenizer } from "./tokenizer/types";
