import { getEngine, getKernelBackend, type KernelEngine } from "../engine/engine";
import { LowbitError } from "../errors";
import { wasmBase64 } from "../wasm/f32.generated";
import { gemvRef, matmulABRef, matmulABtRef } from "./f32-ref";

/**
 * f32 GEMM/GEMV. The WebAssembly SIMD path copies plain Float32Array inputs into the engine's
 * scratch memory (inputs that already are views of kernel memory, e.g. `KernelBuffer.f32()`, are
 * used in place), runs the kernel and copies the result out. `setKernelBackend("ref")` routes every
 * call to the reference twins in f32-ref.ts.
 */

/** The raw kernel exports (pointers are byte offsets into kernel memory). @internal */
export interface F32Kernels {
  pack_bytes(): number;
  dot_f32(a: number, b: number, n: number): number;
  sum_f32(p: number, n: number, streams: number): number;
  gemv_f32(w: number, x: number, y: number, bias: number, k: number, r0: number, r1: number): void;
  matmul_abt_f32(
    a: number,
    b: number,
    c: number,
    bias: number,
    n: number,
    k: number,
    i0: number,
    i1: number,
    j0: number,
    j1: number,
    pack: number,
  ): void;
  matmul_ab_f32(
    a: number,
    b: number,
    c: number,
    n: number,
    k: number,
    i0: number,
    i1: number,
    j0: number,
    j1: number,
    pack: number,
  ): void;
}

export const f32Module = { name: "tensor/f32", base64: wasmBase64 } as const;

/** @internal */
export function f32Kernels(engine: KernelEngine = getEngine()): F32Kernels {
  return engine.exports<F32Kernels>(f32Module);
}

/** @internal */
export function checkDims(what: string, dims: Record<string, number>): void {
  for (const [name, v] of Object.entries(dims)) {
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new LowbitError("E_INVALID_ARGUMENT", `${what}: ${name} must be a non-negative integer, got ${v}`);
    }
  }
}

/** @internal */
export function checkLength(what: string, name: string, arr: ArrayLike<number>, want: number, shape: string): void {
  if (arr.length !== want) {
    throw new LowbitError("E_SHAPE_MISMATCH", `${what}: ${name} must hold ${shape} = ${want} values, got ${arr.length}`);
  }
}

const align16 = (x: number) => (x + 15) & ~15;

/**
 * Places the inputs in kernel memory: each either used in place (already a kernel-memory view) or
 * copied into one scratch region, which also holds `outFloats` floats for the result and then
 * `extraBytes` of work space. Returns the pointers: inputs..., output, work space.
 * @internal
 */
export function stage(engine: KernelEngine, inputs: Float32Array[], outFloats: number, extraBytes = 0): number[] {
  const offsets = inputs.map((x) => engine.offsetOf(x));
  let bytes = align16(outFloats * 4) + align16(extraBytes);
  for (let i = 0; i < inputs.length; i++) if (offsets[i]! < 0) bytes += align16(inputs[i]!.length * 4);
  let p = engine.scratch(bytes);
  const ptrs: number[] = [];
  for (let i = 0; i < inputs.length; i++) {
    const x = inputs[i]!;
    if (offsets[i]! >= 0) {
      ptrs.push(offsets[i]!);
    } else {
      engine.f32(p, x.length).set(x);
      ptrs.push(p);
      p += align16(x.length * 4);
    }
  }
  ptrs.push(p);
  ptrs.push(p + align16(outFloats * 4));
  return ptrs;
}

/** C[m,n] = A[m,k] . B[n,k]^T — a batch through an nn.Linear weight B. Writes `out` if given. */
export function matmulABt(
  a: Float32Array,
  b: Float32Array,
  m: number,
  n: number,
  k: number,
  out: Float32Array = new Float32Array(m * n),
): Float32Array {
  checkDims("matmulABt", { m, n, k });
  checkLength("matmulABt", "a", a, m * k, `[m=${m}, k=${k}]`);
  checkLength("matmulABt", "b", b, n * k, `[n=${n}, k=${k}]`);
  checkLength("matmulABt", "out", out, m * n, `[m=${m}, n=${n}]`);
  if (getKernelBackend() === "ref") return matmulABtRef(a, b, m, n, k, out);
  if (m * n === 0) return out;
  const engine = getEngine();
  const kx = f32Kernels(engine);
  if (m === 1) {
    const [pa, pb, pc] = stage(engine, [a, b], n) as [number, number, number];
    kx.gemv_f32(pb, pa, pc, 0, k, 0, n);
    out.set(engine.f32(pc, n));
    return out;
  }
  const [pa, pb, pc, pw] = stage(engine, [a, b], m * n, kx.pack_bytes()) as [number, number, number, number];
  kx.matmul_abt_f32(pa, pb, pc, 0, n, k, 0, m, 0, n, pw);
  out.set(engine.f32(pc, m * n));
  return out;
}

/** C[m,n] = A[m,k] . B[k,n]. Writes `out` if given. */
export function matmulAB(
  a: Float32Array,
  b: Float32Array,
  m: number,
  n: number,
  k: number,
  out: Float32Array = new Float32Array(m * n),
): Float32Array {
  checkDims("matmulAB", { m, n, k });
  checkLength("matmulAB", "a", a, m * k, `[m=${m}, k=${k}]`);
  checkLength("matmulAB", "b", b, k * n, `[k=${k}, n=${n}]`);
  checkLength("matmulAB", "out", out, m * n, `[m=${m}, n=${n}]`);
  if (getKernelBackend() === "ref") return matmulABRef(a, b, m, n, k, out);
  if (m * n === 0) return out;
  const engine = getEngine();
  const kx = f32Kernels(engine);
  const [pa, pb, pc, pw] = stage(engine, [a, b], m * n, kx.pack_bytes()) as [number, number, number, number];
  kx.matmul_ab_f32(pa, pb, pc, n, k, 0, m, 0, n, pw);
  out.set(engine.f32(pc, m * n));
  return out;
}

/** y[n] = W[n,k] . x[k]. Writes `out` if given. */
export function gemv(
  w: Float32Array,
  x: Float32Array,
  n: number,
  k: number,
  out: Float32Array = new Float32Array(n),
): Float32Array {
  checkDims("gemv", { n, k });
  checkLength("gemv", "w", w, n * k, `[n=${n}, k=${k}]`);
  checkLength("gemv", "x", x, k, `[k=${k}]`);
  checkLength("gemv", "out", out, n, `[n=${n}]`);
  if (getKernelBackend() === "ref") return gemvRef(w, x, n, k, out);
  if (n === 0) return out;
  const engine = getEngine();
  const [pw, px, py] = stage(engine, [w, x], n) as [number, number, number];
  f32Kernels(engine).gemv_f32(pw, px, py, 0, k, 0, n);
  out.set(engine.f32(py, n));
  return out;
}

/**
 * The sum of x, read as `streams` (1 or 4) equal parts walked side by side. A kernel-memory view
 * (`KernelBuffer.f32()`) is read in place, so this doubles as the memory read-bandwidth probe.
 */
export function sumF32(x: Float32Array, streams: 1 | 4 = 1): number {
  if (streams !== 1 && streams !== 4) {
    throw new LowbitError("E_INVALID_ARGUMENT", `sumF32: streams must be 1 or 4, got ${streams}`);
  }
  if (getKernelBackend() === "ref") return sumF32Ref(x);
  const engine = getEngine();
  const [px] = stage(engine, [x], 0) as [number];
  return f32Kernels(engine).sum_f32(px, x.length, streams);
}

/** Reference twin of sumF32 (f64 accumulation). */
export function sumF32Ref(x: Float32Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]!;
  return s;
}
