import type { KernelEngine } from "../engine/engine";
import { getEngine } from "../engine/engine";
import { runKernelParts } from "../engine/threads";
import { wasmBase64 } from "../wasm/half.generated";
import { splitRange, threadParts } from "./f32";

/**
 * Dispatch of the half-precision weight kernels (assembly/half.kernel.ts): weights as 16-bit f16
 * or bf16 bits in kernel memory, converted to f32 exactly inside the kernels, f32 accumulation.
 * Split across kernel threads like the f32 kernels (GEMV by rows in multiples of 4, GEMM by
 * columns in multiples of 8 or rows in multiples of 4), so every output sees the same arithmetic
 * on any number of threads.
 */

/** The 16-bit weight formats: IEEE binary16 and bfloat16. */
export type HalfFormat = "f16" | "bf16";

/**
 * The kernels' format codes: f16 (exact for every input), f16 with no inf/NaN present, bf16, and
 * (GEMV only) f16 with no inf/NaN times x pre-multiplied by 2^112 (prescale_x). @internal
 */
export const HALF_FMT = { f16: 0, f16Finite: 1, bf16: 2, f16Prescaled: 3 } as const;

/** The raw kernel exports (pointers are byte offsets into kernel memory). @internal */
export interface HalfKernels {
  pack_bytes(): number;
  half_to_f32(src: number, dst: number, n: number, fmt: number): void;
  prescale_x(x: number, xs: number, n: number): number;
  gemv_half(w: number, x: number, y: number, bias: number, k: number, r0: number, r1: number, fmt: number): void;
  matmul_abt_half(
    a: number,
    w: number,
    c: number,
    bias: number,
    n: number,
    k: number,
    i0: number,
    i1: number,
    j0: number,
    j1: number,
    pack: number,
    fmt: number,
  ): void;
}

/** The compiled half-weight kernel module (register it for `ready()` in browsers). */
export const halfModule = { name: "tensor/half", base64: wasmBase64 } as const;

/** @internal */
export function halfKernels(engine: KernelEngine = getEngine()): HalfKernels {
  return engine.exports<HalfKernels>(halfModule);
}

/**
 * The kernel format code for weights `bits`: f16 weights without any exponent-31 value (inf/NaN)
 * skip the kernels' inf/NaN fix-up, which is exact only when none is present. @internal
 */
export function halfFormatCode(format: HalfFormat, bits: Uint16Array): number {
  if (format === "bf16") return HALF_FMT.bf16;
  for (let i = 0; i < bits.length; i++) if ((bits[i]! & 0x7c00) === 0x7c00) return HALF_FMT.f16;
  return HALF_FMT.f16Finite;
}

/** y = W x (+ bias) over rows [0, n), W [n, k] halves, split by rows (multiples of 4). @internal */
export function gemvHalfThreaded(
  engine: KernelEngine,
  pw: number,
  px: number,
  py: number,
  pb: number,
  n: number,
  k: number,
  fmt: number,
): void {
  const parts = threadParts(n * k, Math.ceil(n / 4));
  if (parts === 1) {
    halfKernels(engine).gemv_half(pw, px, py, pb, k, 0, n, fmt);
    return;
  }
  const b = splitRange(n, parts, 4);
  runKernelParts(
    b
      .slice(0, -1)
      .map((r0, i) => ({ module: halfModule, fn: "gemv_half", args: [pw, px, py, pb, k, r0, b[i + 1]!, fmt] }))
      .filter((p) => p.args[5]! < p.args[6]!),
  );
}

/**
 * C [m, n] = A [m, k] . W [n, k]^T (+ bias) with W in halves, split across `parts` threads by
 * columns (multiples of 8: each thread packs only its own panels) or, when n is narrow, by rows
 * (multiples of 4). `pack` holds parts * pack_bytes(). @internal
 */
export function gemmHalfThreaded(
  engine: KernelEngine,
  pa: number,
  pw: number,
  pc: number,
  pbias: number,
  m: number,
  n: number,
  k: number,
  fmt: number,
  pack: number,
  parts: number,
): void {
  const kx = halfKernels(engine);
  if (parts === 1) {
    kx.matmul_abt_half(pa, pw, pc, pbias, n, k, 0, m, 0, n, pack, fmt);
    return;
  }
  const packBytes = kx.pack_bytes();
  const byCols = Math.ceil(n / 8) >= parts;
  const b = byCols ? splitRange(n, parts, 8) : splitRange(m, parts, 4);
  runKernelParts(
    b
      .slice(0, -1)
      .map((lo, i) => {
        const hi = b[i + 1]!;
        const [i0, i1, j0, j1] = byCols ? [0, m, lo, hi] : [lo, hi, 0, n];
        return { lo, hi, part: { module: halfModule, fn: "matmul_abt_half", args: [pa, pw, pc, pbias, n, k, i0, i1, j0, j1, pack + i * packBytes, fmt] } };
      })
      .filter((p) => p.lo < p.hi)
      .map((p) => p.part),
  );
}
