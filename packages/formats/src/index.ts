export { readLlama2cCheckpoint, parseLlama2cCheckpoint, readLlama2cTokenizer, parseLlama2cTokenizer } from "./llama2c";
export type { Llama2cCheckpoint, Llama2cConfig, Llama2cTensor, Llama2cTokenizer } from "./llama2c";
export {
  encodeLlama2cCheckpoint,
  writeLlama2cCheckpoint,
  encodeLlama2cTokenizer,
  writeLlama2cTokenizer,
} from "./llama2c-write";
export type { Llama2cTensorInput, Llama2cTokenizerInput, Llama2cWriteOptions } from "./llama2c-write";
export { openSafetensors, parseSafetensors, writeSafetensors, SafetensorsFile } from "./safetensors";
export type { SafetensorsSource, SafetensorsTensorInput } from "./safetensors";
export { SAFETENSORS_DTYPES, parseSafetensorsHeader } from "./safetensors-header";
export type { SafetensorsDType, SafetensorsTensorInfo } from "./safetensors-header";
export { openSafetensorsModel, writeShardedSafetensors, SafetensorsModel } from "./safetensors-sharded";
export type { SafetensorsModelTensorInfo, ShardedWriteOptions, ShardedWriteResult } from "./safetensors-sharded";
export { GGML_TYPE, GGML_TYPE_INFO, ggmlTypeInfo, ggmlTensorBytes } from "./ggml-types";
export type { GgmlTypeInfo, GgmlTypeName } from "./ggml-types";
export { readGguf, parseGguf, GgufFile, parseGgufHeader, GGUF_DEFAULT_ALIGNMENT } from "./gguf-read";
export type { GgufHeader, GgufTensorInfo } from "./gguf-read";
export { writeGguf, encodeGgufHeader, GgufMetadataBuilder } from "./gguf-write";
export type { GgufTensorInput, GgufWriteInput } from "./gguf-write";
export type { GgufValue, GgufValueType, GgufArrayValue, GgufArrayItems, GgufMetadataEntry } from "./gguf-values";
export { llama2cToGguf, llamaGgufMetadata, ggufDimsFromShape, shapeFromGgufDims, LLAMA_TOKEN_TYPE } from "./gguf-llama";
export type { LlamaGgufOptions } from "./gguf-llama";
export { parseHfConfig, SUPPORTED_ARCHITECTURES } from "./hf-config";
export type { HfLlamaConfig, HfArchitecture } from "./hf-config";
