export { chooseQParams, computeQParams, resolveRange, roundHalfEven, F32_EPS } from "./qparams";
export type {
  QuantDType,
  QuantScheme,
  Granularity,
  QuantRangeOptions,
  QParamsOptions,
  QuantParams,
  ResolvedRange,
} from "./qparams";
export {
  quantize,
  quantizeRef,
  dequantize,
  dequantizeRef,
  quantizeTensor,
  quantizeDynamic,
  quantizeValue,
} from "./quantize";
export type { QuantizedValues, DynamicQuantOptions } from "./quantize";
export {
  Q8_0_BLOCK_SIZE,
  Q8_0_BLOCK_BYTES,
  registerQ8_0,
  quantizeQ8_0,
  quantizeQ8_0Ref,
  dequantizeQ8_0,
  dequantizeQ8_0Ref,
} from "./q8-0";
export type { Q8_0EncodeOptions } from "./q8-0";
export {
  gemmI8,
  gemmI8Ref,
  gemvI8,
  gemvI8Ref,
  gemmScaledI8,
  gemmScaledI8Ref,
  gemmW8F32,
  gemmW8F32Ref,
} from "./gemm";
export type { ScaledGemmOptions } from "./gemm";
export { Int8Weights, MAX_INT8_K } from "./packed";
export { quantizeWeightInt8 } from "./int8-weights";
export type { Int8WeightOptions } from "./int8-weights";
export { Int8WeightOnlyLinear } from "./weight-only-linear";
export { DynamicW8A8Linear } from "./w8a8-linear";
export type { DynamicW8A8Options } from "./w8a8-linear";
export { Q8_0Linear } from "./q8-0-linear";
export type { Q8_0LinearOptions } from "./q8-0-linear";
export { INT8_KERNEL_MODULES } from "./kernels";
