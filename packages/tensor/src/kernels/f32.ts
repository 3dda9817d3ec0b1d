import { getEngine, getKernelBackend, type KernelEngine } from "../engine/engine";
import { type KernelPart, activeKernelThreads, runKernelParts } from "../engine/threads";
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
  pack_bytes(n: number, k: number): number;
  dot_f32(a: number, b: number, n: number): number;
  sum_f32(p: number, n: number, streams: number): number;
  gemv_f32(w: number, x: number, y: number, bias: number, k: number, r0: number, r1: number): void;
  sub_outer_f32(w: number, ldw: number, x: number, y: number, n: number, r0: number, r1: number): void;
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

/** Multiply-adds below which a kernel call is not worth a thread (about 0.1 ms of work). */
const MIN_MACS_PER_THREAD = 1 << 18;

/** How many parts (threads) a call of `macs` multiply-adds over `units` splittable units uses. @internal */
export function threadParts(macs: number, units: number): number {
  const t = activeKernelThreads();
  if (t <= 1) return 1;
  return Math.max(1, Math.min(t, units, Math.floor(macs / MIN_MACS_PER_THREAD)));
}

/** Boundaries [b0 = 0, ..., b_parts = total] of `parts` near-equal ranges, inner ones multiples of `align`. @internal */
export function splitRange(total: number, parts: number, align: number): number[] {
  const units = Math.ceil(total / align);
  const out = [0];
  for (let i = 1; i < parts; i++) out.push(Math.min(total, Math.round((i * units) / parts) * align));
  out.push(total);
  return out;
}

function run(parts: KernelPart[]): void {
  runKernelParts(parts.filter((p) => p.args.length > 0));
}

/**
 * y = W x (+ bias) over rows [0, n), split by rows (multiples of 4; gemv_f32 gives every row the
 * same arithmetic whatever the split) across the kernel threads. @internal
 */
export function gemvThreaded(engine: KernelEngine, pw: number, px: number, py: number, pb: number, n: number, k: number): void {
  const parts = threadParts(n * k, Math.ceil(n / 4));
  if (parts === 1) {
    f32Kernels(engine).gemv_f32(pw, px, py, pb, k, 0, n);
    return;
  }
  const b = splitRange(n, parts, 4);
  run(
    b.slice(0, -1).map((r0, i) => ({
      module: f32Module,
      fn: "gemv_f32",
      args: r0 < b[i + 1]! ? [pw, px, py, pb, k, r0, b[i + 1]!] : [],
    })),
  );
}

/**
 * matmul_abt_f32 / matmul_ab_f32 over the whole of C [m, n], split across `parts` threads by
 * columns (multiples of 8: each thread packs only its own panels of B) or, when n is narrow, by
 * rows (multiples of 4). `pack` holds parts * pack_bytes(n, k): each part packs B's panels for its
 * own columns into its own scratch. Every element of C sees the same arithmetic as on one thread.
 * @internal
 */
export function gemmThreaded(
  engine: KernelEngine,
  layout: "abt" | "ab",
  pa: number,
  pb: number,
  pc: number,
  pbias: number,
  m: number,
  n: number,
  k: number,
  pack: number,
  parts: number,
): void {
  const kx = f32Kernels(engine);
  if (parts === 1) {
    if (layout === "abt") kx.matmul_abt_f32(pa, pb, pc, pbias, n, k, 0, m, 0, n, pack);
    else kx.matmul_ab_f32(pa, pb, pc, n, k, 0, m, 0, n, pack);
    return;
  }
  const packBytes = kx.pack_bytes(n, k);
  const byCols = Math.ceil(n / 8) >= parts;
  const b = byCols ? splitRange(n, parts, 8) : splitRange(m, parts, 4);
  run(
    b.slice(0, -1).map((lo, i) => {
      const hi = b[i + 1]!;
      const [i0, i1, j0, j1] = byCols ? [0, m, lo, hi] : [lo, hi, 0, n];
      const pk = pack + i * packBytes;
      const args =
        layout === "abt" ? [pa, pb, pc, pbias, n, k, i0, i1, j0, j1, pk] : [pa, pb, pc, n, k, i0, i1, j0, j1, pk];
      return { module: f32Module, fn: layout === "abt" ? "matmul_abt_f32" : "matmul_ab_f32", args: lo < hi ? args : [] };
    }),
  );
}

/** Parts for a GEMM of C [m, n] with inner size k. @internal */
export function gemmParts(m: number, n: number, k: number): number {
  return threadParts(m * n * k, Math.max(Math.ceil(n / 8), Math.ceil(m / 4)));
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
    gemvThreaded(engine, pb, pa, pc, 0, n, k);
    out.set(engine.f32(pc, n));
    return out;
  }
  const parts = gemmParts(m, n, k);
  const [pa, pb, pc, pw] = stage(engine, [a, b], m * n, parts * kx.pack_bytes(n, k)) as [number, number, number, number];
  gemmThreaded(engine, "abt", pa, pb, pc, 0, m, n, k, pw, parts);
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
  const parts = gemmParts(m, n, k);
  const [pa, pb, pc, pw] = stage(engine, [a, b], m * n, parts * kx.pack_bytes(n, k)) as [number, number, number, number];
  gemmThreaded(engine, "ab", pa, pb, pc, 0, m, n, k, pw, parts);
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
  gemvThreaded(engine, pw, px, py, 0, n, k);
  out.set(engine.f32(py, n));
  return out;
}

/**
 * The rank-1 update W[r, j] -= x[r] * y[j] for r < rows, j < n, in place: `w` holds rows of
 * stride `ldw` floats (row r's first n values updated). Each product is rounded to f32, then the
 * difference: the same values as `w[r * ldw + j] -= Math.fround(x[r] * y[j])` on a Float32Array.
 * A kernel-memory view (`KernelBuffer.f32()`) is updated in place, with no copies; a plain array
 * is copied in and back. When w, x and y are all kernel-memory views nothing is allocated, so
 * views taken before the call stay valid; otherwise copying x or y in may grow kernel memory, and
 * views taken before the call (w's included) must be taken afresh to read the result. Calls of 2^18 or more multiply-adds split their rows across the kernel
 * threads (setKernelThreads).
 */
export function subOuterF32(w: Float32Array, ldw: number, rows: number, x: Float32Array, y: Float32Array, n: number): void {
  checkDims("subOuterF32", { ldw, rows, n });
  if (n > ldw) throw new LowbitError("E_INVALID_ARGUMENT", `subOuterF32: n = ${n} exceeds the row stride ldw = ${ldw}`);
  if (rows === 0 || n === 0) return;
  const wLen = (rows - 1) * ldw + n;
  for (const [name, arr, want] of [["w", w, wLen], ["x", x, rows], ["y", y, n]] as const) {
    if (arr.length < want) {
      throw new LowbitError("E_SHAPE_MISMATCH", `subOuterF32: ${name} must hold at least ${want} values for rows = ${rows}, n = ${n}, ldw = ${ldw}, got ${arr.length}`);
    }
  }
  if (getKernelBackend() === "ref") {
    for (let r = 0; r < rows; r++) {
      const xr = x[r]!;
      const o = r * ldw;
      for (let j = 0; j < n; j++) w[o + j] = w[o + j]! - Math.fround(xr * y[j]!);
    }
    return;
  }
  const engine = getEngine();
  const ow = engine.offsetOf(w);
  const ox = engine.offsetOf(x);
  const oy = engine.offsetOf(y);
  const inPlace = ow >= 0;
  // all three in kernel memory: nothing is allocated, so the caller's views stay valid
  const [pw, px, py] =
    inPlace && ox >= 0 && oy >= 0
      ? [ow, ox, oy]
      : (stage(engine, [inPlace ? w : w.subarray(0, wLen), x.subarray(0, rows), y.subarray(0, n)], 0) as [number, number, number]);
  const parts = threadParts(rows * n, rows);
  if (parts === 1) {
    f32Kernels(engine).sub_outer_f32(pw, ldw, px, py, n, 0, rows);
  } else {
    // rows are independent: any split gives the same bits
    const b = splitRange(rows, parts, 1);
    run(b.slice(0, -1).map((r0, i) => ({ module: f32Module, fn: "sub_outer_f32", args: r0 < b[i + 1]! ? [pw, ldw, px, py, n, r0, b[i + 1]!] : [] })));
  }
  if (!inPlace) w.set(engine.f32(pw, wLen));
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
