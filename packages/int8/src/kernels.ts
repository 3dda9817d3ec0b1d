import { getEngine, getKernelBackend, hasWasmSimd, type KernelModule } from "@lowbit/tensor";
import { wasmBase64 as gemmBase64 } from "./wasm/gemm-i8.generated";
import { wasmBase64 as q80Base64 } from "./wasm/q8-0.generated";
import { wasmBase64 as quantBase64 } from "./wasm/quant-i8.generated";

/** The compiled kernel modules of @lowbit/int8 (register them with `engine.ready()` in browsers). */
export const INT8_KERNEL_MODULES: readonly KernelModule[] = [
  { name: "int8/gemm-i8", base64: gemmBase64 },
  { name: "int8/quant-i8", base64: quantBase64 },
  { name: "int8/q8-0", base64: q80Base64 },
];

export interface GemmKernels {
  gemm_i16_i8(
    a: number, b: number, c: number, m: number, n: number, kp: number, mode: number,
    aScale: number, aZero: number, wScale: number, wSum: number, bias: number, j0: number, j1: number,
  ): void;
  gemm_f32_i8(x: number, b: number, y: number, m: number, n: number, kp: number, wScale: number, bias: number, j0: number, j1: number): void;
  widen_i8_i16(src: number, dst: number, rows: number, k: number, kp: number, unsigned: number): void;
  wino_pack_a(a: number, d: number, m: number, kp: number, rowc: number): void;
  gemm_wino(
    ap: number, rowc: number, b: number, c: number, m: number, n: number, kp: number, mode: number,
    aScale: number, aZero: number, wScale: number, wSum: number, bias: number, j0: number, j1: number, scratch: number,
  ): void;
}

export interface QuantKernels {
  minmax_rows(x: number, rows: number, k: number, out: number): void;
  quantize_rows_i16(x: number, q: number, rows: number, k: number, kp: number, inv: number, zp: number, qmin: number, qmax: number): void;
  quantize_runs(x: number, q: number, outer: number, c: number, inner: number, inv: number, zp: number, qmin: number, qmax: number, unsigned: number): void;
  quantize_cols(x: number, q: number, rows: number, cols: number, inv: number, zp: number, qmin: number, qmax: number, unsigned: number): void;
  dequantize_runs(q: number, y: number, outer: number, c: number, inner: number, scale: number, zp: number, unsigned: number): void;
  dequantize_cols(q: number, y: number, rows: number, cols: number, scale: number, zp: number, unsigned: number): void;
}

export interface Q80Kernels {
  q8_0_quantize(x: number, dst: number, nb: number): number;
  q8_0_quantize_split(x: number, qs: number, df: number, nb: number): number;
  q8_0_dequantize(src: number, y: number, nb: number): void;
  q8_0_widen_act(qs: number, xw: number, nb: number): void;
  q8_0_gemv_q8(xw: number, ad: number, wq: number, ws: number, y: number, nb: number, n4: number, bias: number, tmp: number): void;
  q8_0_gemm_q8(a: number, ad: number, wq: number, ws: number, y: number, m: number, nb: number, n4: number, ldy: number, bias: number): void;
  q8_0_gemm_f32(x: number, wq: number, ws: number, y: number, m: number, nb: number, n4: number, ldy: number, bias: number): void;
}

export const GEMM_MODULE = INT8_KERNEL_MODULES[0]!;
export const Q80_MODULE = INT8_KERNEL_MODULES[2]!;

export function gemmKernels(): GemmKernels {
  return getEngine().exports<GemmKernels>(INT8_KERNEL_MODULES[0]!);
}

export function quantKernels(): QuantKernels {
  return getEngine().exports<QuantKernels>(INT8_KERNEL_MODULES[1]!);
}

export function q80Kernels(): Q80Kernels {
  return getEngine().exports<Q80Kernels>(INT8_KERNEL_MODULES[2]!);
}

let simd: boolean | undefined;
let warned = false;

/**
 * True when the fast path should run: the backend is "wasm" and the host has WebAssembly SIMD.
 * Without SIMD it falls back to the reference twins and says so once.
 */
export function useWasm(): boolean {
  if (getKernelBackend() !== "wasm") return false;
  simd ??= hasWasmSimd();
  if (!simd && !warned) {
    warned = true;
    console.warn("@lowbit/int8: WebAssembly SIMD is not available here; fell back from the wasm backend to the reference kernels");
  }
  return simd;
}

/** Rounds k up to the padded row length of the integer kernels (a multiple of 16). */
export function padK(k: number): number {
  return Math.ceil(k / 16) * 16;
}

/**
 * Allocates scratch regions in kernel memory (byte sizes), runs `fn` with their pointers and
 * frees them. Views on kernel memory must be made inside `fn`, after the allocation.
 */
export function withScratch<T>(sizes: readonly number[], fn: (ptrs: number[]) => T): T {
  const engine = getEngine();
  const ptrs: number[] = [];
  try {
    for (const s of sizes) ptrs.push(engine.alloc(Math.max(s, 16)));
    return fn(ptrs);
  } finally {
    for (const p of ptrs) engine.free(p);
  }
}

/**
 * Like withScratch, but lays the regions out (64-byte aligned) in the engine's reusable scratch
 * region instead of allocating and freeing each: for per-token calls, where the allocator's work
 * shows. Valid only inside `fn` (the next scratch() by any kernel reuses the memory).
 */
export function withReusableScratch<T>(sizes: readonly number[], fn: (ptrs: number[]) => T): T {
  const offsets: number[] = [];
  let total = 0;
  for (const s of sizes) {
    offsets.push(total);
    total += Math.ceil(Math.max(s, 16) / 64) * 64;
  }
  const base = getEngine().scratch(total + 64);
  const start = Math.ceil(base / 64) * 64;
  return fn(offsets.map((o) => start + o));
}
