import { getEngine, type KernelPart, LowbitError, runKernelParts } from "@lowbit/tensor";
import { INT4_KERNEL_MODULE, splitUnits } from "./kernels/kernels";

// What Q4_0TiledLinear and Q6_KTiledLinear share around their kernels: the call's checks, the
// error for a non-finite input, and running a kernel over 4-row tiles (split over the kernel
// threads) into rows of ldy floats.

/** Checks x [m, k] and out against [m, n]; the output to write (out, or a new array). `who` starts messages. */
export function tiledOutput(who: string, x: Float32Array, m: number, k: number, n: number, out: Float32Array | undefined): Float32Array {
  if (!(Number.isInteger(m) && m >= 0) || x.length < m * k) {
    throw new LowbitError("E_SHAPE_MISMATCH", `${who}: input has ${x.length} values, expected ${m} x ${k}`);
  }
  const y = out ?? new Float32Array(m * n);
  if (y.length < m * n) throw new LowbitError("E_SHAPE_MISMATCH", `${who}: output has ${y.length} values, expected ${m} x ${n}`);
  return y;
}

/** The error for the first non-finite value of x [?, k] at or after 32-value block `block`. */
export function nonFiniteInput(who: string, x: Float32Array, k: number, block: number): LowbitError {
  let i = block * 32;
  while (i < x.length && Number.isFinite(x[i]!)) i++;
  return new LowbitError("E_NON_FINITE", `${who}: input value ${x[i]} at token ${Math.floor(i / k)}, column ${i % k} is not finite`);
}

/**
 * Runs kernel `fn` over n4 tiles in `parts` thread parts (`args(t0, t1, part)` for tiles [t0, t1)),
 * then copies its output, m rows of ldy floats at py, into y [m, n].
 */
export function runTiles(
  fn: string,
  n4: number,
  parts: number,
  args: (t0: number, t1: number, part: number) => number[],
  py: number,
  m: number,
  n: number,
  y: Float32Array,
): void {
  const engine = getEngine();
  if (parts === 1) {
    engine.exports<Record<string, (...a: number[]) => void>>(INT4_KERNEL_MODULE)[fn]!(...args(0, n4, 0));
  } else {
    const b = splitUnits(n4, parts);
    const list: KernelPart[] = [];
    for (let i = 0; i < parts; i++) if (b[i]! < b[i + 1]!) list.push({ module: INT4_KERNEL_MODULE, fn, args: args(b[i]!, b[i + 1]!, i) });
    runKernelParts(list);
  }
  const ldy = n4 * 4;
  const yv = engine.f32(py, m * ldy);
  if (ldy === n) y.set(yv);
  else for (let t = 0; t < m; t++) y.set(yv.subarray(t * ldy, t * ldy + n), t * n);
}
