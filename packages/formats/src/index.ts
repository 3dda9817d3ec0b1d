export { readLlama2cCheckpoint, readLlama2cTokenizer, parseLlama2cTokenizer } from "./llama2c";
export type { Llama2cCheckpoint, Llama2cConfig, Llama2cTensor, Llama2cTokenizer } from "./llama2c";
