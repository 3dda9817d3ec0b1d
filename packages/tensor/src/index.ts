export { LowbitError, isLowbitError, toLowbitError, assert } from "./errors";
export type { LowbitErrorCode } from "./errors";
export { registerDType, dtypeInfo, hasDType, byteSize, numel } from "./dtype";
export type { DType, DTypeInfo } from "./dtype";
export { KernelEngine, KernelBuffer, getEngine, setKernelBackend, getKernelBackend, hasWasmSimd } from "./engine/engine";
export type { KernelModule, KernelBackend } from "./engine/engine";
export { toSharedMemoryModule } from "./engine/shared-module";
export {
  setKernelThreads,
  getKernelThreads,
  kernelThreadsReady,
  kernelThreadsInfo,
  shutdownKernelThreads,
  runKernelParts,
  activeKernelThreads,
  limitKernelThreads,
} from "./engine/threads";
export type { KernelThreadsOptions, KernelPart } from "./engine/threads";
export type { Linear } from "./linear";
export { Rng } from "./rng";
export type { FloatArrayLike } from "./rng";
export {
  f32ToF16Bits,
  f16BitsToF32,
  encodeF16,
  decodeF16,
  f32ToBf16Bits,
  bf16BitsToF32,
  encodeBf16,
  decodeBf16,
} from "./half";
export { cholesky, solveLower, solveUpper, choleskySolve } from "./linalg/cholesky";
export type { InPlaceOption } from "./linalg/cholesky";
export { choleskyInverse, inverseSPD, upperCholeskyOfInverse } from "./linalg/inverse";
export { matmulABt, matmulAB, gemv, subOuterF32, sumF32, sumF32Ref, f32Module as F32_KERNEL_MODULE } from "./kernels/f32";
export { matmulABtRef, matmulABRef, gemvRef } from "./kernels/f32-ref";
export { F32Linear } from "./kernels/f32-linear";
export { HalfLinear } from "./kernels/half-linear";
export type { HalfLinearOptions } from "./kernels/half-linear";
export { halfModule as HALF_KERNEL_MODULE } from "./kernels/half-kernels";
export type { HalfFormat } from "./kernels/half-kernels";
export { matmulABtHalfRef, decodeHalfRef } from "./kernels/half-ref";
export { Tensor } from "./tensor";
export type { TensorData } from "./tensor";
