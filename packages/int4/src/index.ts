export type { QuantizedMatrix } from "./quantized-matrix";
export {
  dequantizeMatrix,
  validateQuantizedMatrix,
  groupCount,
  columnGroups,
  maxCode,
} from "./quantized-matrix";
export type { GroupParams, ClipSearchOptions } from "./group-params";
export {
  fitGroupParams,
  searchGroupParams,
  paramsFromRange,
  quantizeValue,
  roundHalfEven,
  effectiveGroupSize,
} from "./group-params";
export type { RTNOptions } from "./rtn";
export { quantizeRTN, assertFinite } from "./rtn";
export { packBits, unpackBits } from "./bitpack";
export type { GptqTensors, GptqPacked, GptqPackOptions, GptqUnpackOptions } from "./codec-gptq";
export { packGptq, unpackGptq } from "./codec-gptq";
export type { AwqTensors, AwqPacked } from "./codec-awq";
export { packAwq, unpackAwq, AWQ_ORDER } from "./codec-awq";
export type { GgufBlockFormat } from "./codec-gguf";
export {
  quantizeQ4_0Ref,
  dequantizeQ4_0Ref,
  quantizeQ4_1Ref,
  dequantizeQ4_1Ref,
  quantizeGgufInt4,
  ggufInt4ToQuantizedMatrix,
  quantizedMatrixToGgufInt4,
  registerGgufInt4DTypes,
  GGUF_INT4_FORMATS,
} from "./codec-gguf";
export type { MatMulNBitsWeights } from "./codec-matmulnbits";
export { packMatMulNBits, unpackMatMulNBits } from "./codec-matmulnbits";
export type { Int4LinearOptions } from "./int4-linear";
export { Int4Linear } from "./int4-linear";
export { INT4_KERNEL_MODULE } from "./kernels/kernels";
export { Q4_0Linear, Q4_1Linear } from "./block-linear";
export type { Q4_0TiledLinearOptions } from "./q4-0-tiled-linear";
export { Q4_0TiledLinear } from "./q4-0-tiled-linear";
export {
  quantizeQ4_KRef,
  dequantizeQ4_KRef,
  quantizeQ4_K,
  q4kToQuantizedMatrix,
  registerQ4KDType,
} from "./codec-q4k";
export { Q4_KLinear, Q6_KLinear } from "./block-linear";
export { q6kToQuantizedMatrix } from "./codec-q6k";
export type { Q6_KTiledLinearOptions } from "./q6-k-tiled-linear";
export { Q6_KTiledLinear } from "./q6-k-tiled-linear";
