import { getEngine, getKernelBackend } from "../engine/engine";
import { activeKernelThreads, preloadKernelModule } from "../engine/threads";
import { f64Kernels, f64Module, type SubABt, subABtJs, wasmSubABtThreaded } from "./blas-f64";

/**
 * Where a factorisation runs. With the "wasm" backend the n x n matrix (and any scratch) is copied
 * into one block of kernel memory, so the heavy C -= A·B^T steps run as WebAssembly SIMD on it in
 * place while the light steps stay in JS on views of the same memory; the result is copied out.
 * That costs one extra n x n (kernel memory is reused afterwards, never returned to the OS).
 * With the "ref" backend, or for small n, everything runs in JS on ordinary arrays. With kernel
 * threads the heavy steps are split across them (wasmSubABtThreaded), bit-identical to one thread.
 */
export interface Workspace {
  /** The n x n working matrix. */
  readonly x: Float64Array;
  /** Scratch of the requested length. */
  readonly tmp: Float64Array;
  readonly sub: SubABt;
  /** True when x is a copy in kernel memory (results must be copied out). */
  readonly inKernel: boolean;
  dispose(): void;
}

/** Below this size the copies cost more than WASM saves. */
const WASM_MIN_N = 48;

/**
 * A workspace for an n x n problem. In JS mode `reuse` (if given) becomes `x`, so in-place calls
 * allocate nothing; otherwise x is a fresh zeroed array.
 */
export function workspace(n: number, tmpLength: number, reuse?: Float64Array): Workspace {
  if (getKernelBackend() === "ref" || n < WASM_MIN_N) {
    return {
      x: reuse ?? new Float64Array(n * n),
      tmp: new Float64Array(tmpLength),
      sub: subABtJs,
      inKernel: false,
      dispose() {},
    };
  }
  const engine = getEngine();
  const packBytes = f64Kernels().pack_bytes_f64();
  const threads = activeKernelThreads();
  // with kernel threads, have the workers load the f64 module now (loading allocates kernel memory)
  preloadKernelModule(f64Module);
  const packStride = Math.ceil(packBytes / 64) * 64;
  const xBytes = n * n * 8;
  const buf = engine.buffer(xBytes + tmpLength * 8 + packStride * threads, 64);
  // no kernel allocation may happen between here and dispose(): the views would detach
  const pack0 = buf.ptr + xBytes + tmpLength * 8;
  return {
    x: engine.f64(buf.ptr, n * n),
    tmp: engine.f64(buf.ptr + xBytes, tmpLength),
    // one pack per thread; with one thread this is wasmSubABt
    sub: wasmSubABtThreaded(Array.from({ length: threads }, (_, i) => pack0 + i * packStride)),
    inKernel: true,
    dispose: () => buf.dispose(),
  };
}

/**
 * Copies the workspace result to where the caller wants it: `target` (the input, for in-place
 * calls) or a fresh array; returns it. In JS mode without a copy, x itself is the result.
 */
export function finish(ws: Workspace, target?: Float64Array): Float64Array {
  let out = ws.x;
  if (target && target !== ws.x) {
    target.set(ws.x);
    out = target;
  } else if (ws.inKernel) {
    out = ws.x.slice();
  }
  ws.dispose();
  return out;
}
