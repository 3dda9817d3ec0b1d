import { getEngine, type KernelBuffer, LowbitError } from "@lowbit/tensor";
import { padK } from "./kernels";

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
 * int8 weights [n, k] resident in kernel memory, rows zero-padded to kp (a multiple of 16),
 * with per-row scale (f32), row sums (i32, for activation zero points) and optional bias.
 */
export class PackedInt8 {
  readonly kp: number;
  readonly buffer: KernelBuffer;
  private readonly qBytes: number;
  readonly hasBias: boolean;

  constructor(
    q: Int8Array,
    scale: Float32Array,
    readonly n: number,
    readonly k: number,
    bias?: Float32Array,
  ) {
    checkLen("int8 weights", q, n * k);
    checkLen("weight scales", scale, n);
    checkLen("bias", bias, n);
    this.kp = padK(k);
    this.qBytes = Math.ceil((n * this.kp) / 16) * 16;
    this.hasBias = bias !== undefined;
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
    this.scale().set(scale.subarray(0, n));
    if (bias) this.bias()!.set(bias.subarray(0, n));
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

  /** Views (re-made on each call: kernel memory growth detaches old ones). */
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

  /** The weights unpadded, [n, k]. */
  unpadded(): Int8Array {
    const out = new Int8Array(this.n * this.k);
    const q = this.q();
    for (let r = 0; r < this.n; r++) out.set(q.subarray(r * this.kp, r * this.kp + this.k), r * this.k);
    return out;
  }

  dispose(): void {
    this.buffer.dispose();
  }
}
