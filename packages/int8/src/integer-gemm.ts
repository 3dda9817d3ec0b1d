import { GEMM_MODULE, gemmKernels, withScratch } from "./kernels";
import { columnParts, runColumns } from "./threads";

/**
 * Activation rows from which the integer GEMM takes the Winograd kernel (gemm_wino). Below, the
 * call is a GEMV or close to one and the plain kernel streams the weights as fast.
 */
export const WINO_MIN_ROWS = 16;

/** How the integer GEMM computes m x n x kp (the kernel runGemmI16I8 takes). */
export function integerGemmPath(m: number): "plain" | "winograd" {
  return m < WINO_MIN_ROWS ? "plain" : "winograd";
}

/**
 * C = A16 . B^T on kernel memory with gemm_i16_i8's modes and epilogue arguments: a16 i16 [m, kp]
 * holding int8 or uint8 values only (the Winograd kernel adds activations and weights in 16-bit
 * lanes, exact for those ranges and not for wider values), b i8 [n, kp]. Integer sums are exact, so both kernels give the same
 * outputs bit for bit. Split by output columns over the kernel threads. `path` forces one (tests
 * and benchmarks).
 */
export function runGemmI16I8(
  a16: number, b: number, c: number, m: number, n: number, kp: number, mode: number,
  aScale: number, aZero: number, wScale: number, wSum: number, bias: number,
  path: "plain" | "winograd" = integerGemmPath(m),
): void {
  const macs = m * n * kp;
  if (path === "plain") {
    runColumns(GEMM_MODULE, "gemm_i16_i8", n, macs, (j0, j1) => [a16, b, c, m, n, kp, mode, aScale, aZero, wScale, wSum, bias, j0, j1]);
    return;
  }
  const pairs = (m + 1) >> 1;
  // each part's 4-byte scratch on a cache line of its own
  withScratch([pairs * kp * 4, pairs * 8, columnParts(macs, n) * 64], ([ap, rowc, scratch]) => {
    gemmKernels().wino_pack_a(a16, ap!, m, kp, rowc!);
    runColumns(GEMM_MODULE, "gemm_wino", n, macs, (j0, j1, part) => [
      ap!, rowc!, b, c, m, n, kp, mode, aScale, aZero, wScale, wSum, bias, j0, j1, scratch! + part * 64,
    ]);
  });
}
