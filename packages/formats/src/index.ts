export { readLlama2cCheckpoint, readLlama2cTokenizer, parseLlama2cTokenizer } from "./llama2c";
export type { Llama2cCheckpoint, Llama2cConfig, Llama2cTensor, Llama2cTokenizer } from "./llama2c";
export { openSafetensors, writeSafetensors, SafetensorsFile } from "./safetensors";
export type { SafetensorsSource, SafetensorsTensorInput } from "./safetensors";
export { SAFETENSORS_DTYPES, parseSafetensorsHeader } from "./safetensors-header";
export type { SafetensorsDType, SafetensorsTensorInfo } from "./safetensors-header";
export { openSafetensorsModel, writeShardedSafetensors, SafetensorsModel } from "./safetensors-sharded";
export type { SafetensorsModelTensorInfo, ShardedWriteOptions, ShardedWriteResult } from "./safetensors-sharded";
