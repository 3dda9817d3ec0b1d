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
