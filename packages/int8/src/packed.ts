import { getEngine, type KernelBuffer, LowbitError } from "@lowbit/tensor";
import { runGemmI16I8 } from "./integer-gemm";
import { gemmKernels, padK, useWasm, withScratch } from "./kernels";

/** Largest inner dimension the i32 accumulators take without overflow (255 * 128 * K < 2^31). */
export const MAX_INT8_K = 65536;

export function checkDims(what: string, m: number, n: number, k: number): void {
  for (const [nm, v] of [
    ["m", m],
    ["n", n],
    ["k", k],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new LowbitError("E_INVALID_ARGUMENT", `${what}: ${nm} = ${v} is not a non-negative integer`);
    }
  }
  if (k > MAX_INT8_K) {
    throw new LowbitError(
      "E_UNSUPPORTED",
      `${what}: inner dimension ${k} exceeds ${MAX_INT8_K}, where int8 dot products could overflow i32`,
    );
  }
}

export function checkLen(what: string, arr: { length: number } | undefined, need: number): void {
  if (arr !== undefined && arr.length < need) {
    throw new LowbitError("E_SHAPE_MISMATCH", `${what} holds ${arr.length} values, needs ${need}`);
  }
}

/**
 * int8 weights [n, k] resident in kernel memory (rows zero-padded to a multiple of 16), with a
 * scale per row (f32), row sums (i32, used to apply activation zero points) and an optional bias.
 * The int8 linear layers are built on it; `gemmI8` exposes the exact integer GEMM on it.
 */
export class Int8Weights {
  /** Padded row length in kernel memory. */
  readonly kp: number;
  readonly buffer: KernelBuffer;
  readonly hasBias: boolean;
  private readonly qBytes: number;

  /**
   * q int8 [n, k] row-major; scale [n] (default all 1); bias [n] optional. Copies into kernel
   * memory; free with dispose().
   */
  constructor(
    q: Int8Array,
    readonly n: number,
    readonly k: number,
    opts: { scale?: Float32Array; bias?: Float32Array } = {},
  ) {
    checkDims("Int8Weights", 1, n, k);
    checkLen("int8 weights", q, n * k);
    checkLen("weight scales", opts.scale, n);
    checkLen("bias", opts.bias, n);
    this.kp = padK(k);
    this.qBytes = Math.ceil((n * this.kp) / 16) * 16;
    this.hasBias = opts.bias !== undefined;
    this.buffer = getEngine().buffer(this.qBytes + n * 12 + 16);
    const qv = this.q();
    qv.fill(0); // padding columns must be zero (reused kernel memory is not)
    const sums = this.wsum();
    for (let r = 0; r < n; r++) {
      let s = 0;
      for (let c = 0; c < k; c++) {
        const v = q[r * k + c]!;
        qv[r * this.kp + c] = v;
        s += v;
      }
      sums[r] = s;
    }
    if (opts.scale) this.scale().set(opts.scale.subarray(0, n));
    else this.scale().fill(1);
    if (opts.bias) this.bias()!.set(opts.bias.subarray(0, n));
  }

  get qPtr(): number {
    return this.buffer.ptr;
  }
  get scalePtr(): number {
    return this.buffer.ptr + this.qBytes;
  }
  get sumPtr(): number {
    return this.scalePtr + this.n * 4;
  }
  get biasPtr(): number {
    return this.hasBias ? this.sumPtr + this.n * 4 : 0;
  }

  /** Padded weights [n, kp] (a view: re-make it after any kernel allocation). */
  q(): Int8Array {
    return this.buffer.i8(0, this.n * this.kp);
  }
  scale(): Float32Array {
    return this.buffer.f32(this.qBytes, this.n);
  }
  wsum(): Int32Array {
    return this.buffer.i32(this.qBytes + this.n * 4, this.n);
  }
  bias(): Float32Array | undefined {
    return this.hasBias ? this.buffer.f32(this.qBytes + this.n * 8, this.n) : undefined;
  }

  /** The weights unpadded, [n, k] (a copy). */
  unpadded(): Int8Array {
    const out = new Int8Array(this.n * this.k);
    const q = this.q();
    for (let r = 0; r < this.n; r++) out.set(q.subarray(r * this.kp, r * this.kp + this.k), r * this.k);
    return out;
  }

  /**
   * Exact integer product C i32 [m, n] = A [m, k] . W^T, A int8 (Int8Array) or uint8
   * (Uint8Array) activations. GEMV when m = 1.
   */
  gemmI8(a: Int8Array | Uint8Array, m: number, out?: Int32Array): Int32Array {
    const { n, k, kp } = this;
    checkDims("Int8Weights.gemmI8", m, n, k);
    checkLen("Int8Weights.gemmI8: activations", a, m * k);
    checkLen("Int8Weights.gemmI8: out", out, m * n);
    const c = out ?? new Int32Array(m * n);
    if (m === 0) return c;
    if (!useWasm()) {
      const q = this.q();
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let t = 0; t < k; t++) s += a[i * k + t]! * q[j * kp + t]!;
          c[i * n + j] = s;
        }
      }
      return c;
    }
    withScratch([m * k, m * kp * 2, m * n * 4], ([a8, a16, cp]) => {
      const e = getEngine();
      e.u8(a8!, m * k).set(new Uint8Array(a.buffer, a.byteOffset, m * k));
      gemmKernels().widen_i8_i16(a8!, a16!, m, k, kp, a instanceof Uint8Array ? 1 : 0);
      runGemmI16I8(a16!, this.qPtr, cp!, m, n, kp, 0, 0, 0, 0, 0, 0);
      c.set(e.i32(cp!, m * n));
    });
    return c;
  }

  dispose(): void {
    this.buffer.dispose();
  }
}
