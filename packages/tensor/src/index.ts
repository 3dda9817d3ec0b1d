export { LowbitError, isLowbitError, toLowbitError, assert } from "./errors";
export type { LowbitErrorCode } from "./errors";
export { registerDType, dtypeInfo, hasDType, byteSize, numel } from "./dtype";
export type { DType, DTypeInfo } from "./dtype";
export { KernelEngine, KernelBuffer, getEngine, setKernelBackend, getKernelBackend, hasWasmSimd } from "./engine/engine";
export type { KernelModule, KernelBackend } from "./engine/engine";
export type { Linear } from "./linear";
