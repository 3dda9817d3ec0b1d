import { getEngine, getKernelBackend, hasWasmSimd, type KernelModule } from "@lowbit/tensor";
import { wasmBase64 as decoderBase64 } from "../wasm/decoder.generated";
import { wasmBase64 as logitsBase64 } from "../wasm/logits.generated";

/**
 * The compiled kernel modules of @lowbit/runtime (assembly/*.kernel.ts, built by `pnpm wasm
 * runtime`). Register them before `getEngine().ready()` in browsers, where large modules cannot
 * be compiled synchronously.
 */
export const RUNTIME_KERNEL_MODULES: readonly KernelModule[] = [
  { name: "runtime/decoder", base64: decoderBase64 },
  { name: "runtime/logits", base64: logitsBase64 },
];

type Ptr = number;

/** Exports of assembly/decoder.kernel.ts (pointers are byte offsets into kernel memory). */
export interface DecoderKernels {
  rmsnorm_f32(x: Ptr, w: Ptr, out: Ptr, rows: number, dim: number, eps: number): void;
  rope_f32(x: Ptr, r0: number, r1: number, stride: number, heads: number, hd: number, cf: Ptr, ss: Ptr, period: number, style: number): void;
  silu_mul_f32(g: Ptr, u: Ptr, out: Ptr, n: number): void;
  add_f32(a: Ptr, b: Ptr, out: Ptr, n: number): void;
  attention_work_bytes(n: number, hd: number): number;
  attention_f32(
    q: Ptr,
    k: Ptr,
    v: Ptr,
    out: Ptr,
    t: number,
    startPos: number,
    nHeads: number,
    nKv: number,
    hd: number,
    window: number,
    scale: number,
    work: Ptr,
    h0: number,
    h1: number,
  ): void;
}

/** Exports of assembly/logits.kernel.ts. */
export interface LogitKernels {
  stats_stride(): number;
  logit_stats(logits: Ptr, ref: Ptr, targets: Ptr, rows: number, v: number, out: Ptr): void;
}

export function decoderKernels(): DecoderKernels {
  return getEngine().exports<DecoderKernels>(RUNTIME_KERNEL_MODULES[0]!);
}

export function logitKernels(): LogitKernels {
  return getEngine().exports<LogitKernels>(RUNTIME_KERNEL_MODULES[1]!);
}

let simd: boolean | undefined;

/** True when the WebAssembly SIMD path runs: backend "wasm" on a host with SIMD (else the twins). */
export function useWasm(): boolean {
  if (getKernelBackend() !== "wasm") return false;
  simd ??= hasWasmSimd();
  return simd;
}

const align16 = (bytes: number): number => (bytes + 15) & ~15;

/**
 * Lays out regions of the given byte sizes (each 16-byte aligned) in the engine's reusable scratch
 * and returns their pointers. Valid until the next scratch() by any kernel: take it once per
 * operation, and make typed-array views only after this call (it may grow the memory).
 */
export function scratchRegions(bytes: readonly number[]): number[] {
  let total = 0;
  const offsets: number[] = [];
  for (const b of bytes) {
    offsets.push(total);
    total += align16(b);
  }
  const base = getEngine().scratch(Math.max(total, 16));
  return offsets.map((o) => base + o);
}

/** Copies `src` into kernel memory at `ptr`. */
export function put(ptr: number, src: Float32Array | Int32Array): void {
  const e = getEngine();
  if (src instanceof Int32Array) e.i32(ptr, src.length).set(src);
  else e.f32(ptr, src.length).set(src);
}

/** A fresh f32 view of kernel memory (re-made on every call: memory growth detaches old views). */
export function viewF32(ptr: number, length: number): Float32Array {
  return getEngine().f32(ptr, length);
}
