export type { GgmlTypeInfo, GgmlTypeName } from "./ggml-types";
export { GGML_TYPE, GGML_TYPE_INFO, ggmlTensorBytes, ggmlTypeInfo } from "./ggml-types";
export type { LlamaGgufOptions } from "./gguf-llama";
export { ggufDimsFromShape, LLAMA_TOKEN_TYPE, llama2cToGguf, llamaGgufMetadata, shapeFromGgufDims } from "./gguf-llama";
export type { GgufHeader, GgufTensorInfo } from "./gguf-read";
export { GGUF_DEFAULT_ALIGNMENT, GgufFile, parseGguf, parseGgufHeader, readGguf } from "./gguf-read";
export type { GgufArrayItems, GgufArrayValue, GgufMetadataEntry, GgufValue, GgufValueType } from "./gguf-values";
export type { GgufStreamInput, GgufStreamTensor, GgufTensorInput, GgufWriteInput } from "./gguf-write";
export { encodeGgufHeader, GgufMetadataBuilder, writeGguf, writeGgufStream } from "./gguf-write";
export type { HfArchitecture, HfLlamaConfig } from "./hf-config";
export { parseHfConfig, SUPPORTED_ARCHITECTURES } from "./hf-config";
export type { Llama2cCheckpoint, Llama2cConfig, Llama2cTensor, Llama2cTokenizer } from "./llama2c";
export { parseLlama2cCheckpoint, parseLlama2cTokenizer, readLlama2cCheckpoint, readLlama2cTokenizer } from "./llama2c";
export type { Llama2cTensorInfo } from "./llama2c-lazy";
export { Llama2cFile, openLlama2c } from "./llama2c-lazy";
export type { Llama2cTensorInput, Llama2cTokenizerInput, Llama2cWriteOptions } from "./llama2c-write";
export {
  encodeLlama2cCheckpoint,
  encodeLlama2cTokenizer,
  writeLlama2cCheckpoint,
  writeLlama2cTokenizer,
} from "./llama2c-write";
export type { SafetensorsSource, SafetensorsTensorInput } from "./safetensors";
export { openSafetensors, parseSafetensors, SafetensorsFile, writeSafetensors } from "./safetensors";
export type { SafetensorsDType, SafetensorsTensorInfo } from "./safetensors-header";
export { parseSafetensorsHeader, SAFETENSORS_DTYPES } from "./safetensors-header";
export type { SafetensorsModelTensorInfo, ShardedWriteOptions, ShardedWriteResult } from "./safetensors-sharded";
export { openSafetensorsModel, SafetensorsModel, writeShardedSafetensors } from "./safetensors-sharded";
