import {
  f16BitsToF32,
  f32ToF16Bits,
  getEngine,
  getKernelBackend,
  hasWasmSimd,
  type KernelBuffer,
  type Linear,
  LowbitError,
} from "@lowbit/tensor";
import { dequantizeQ4_0Ref } from "./codec-gguf";
import { INT4_KERNEL_MODULE, threadParts } from "./kernels/kernels";
import { nonFiniteInput, runTiles, tiledOutput } from "./tiled-calls";

const QK = 32;
const BLOCK_BYTES = 18;

export interface Q4_0TiledLinearOptions {
  /** Optional bias [rows]. */
  bias?: Float32Array;
  /** Tensor name for error messages. */
  name?: string;
  /** Shown in reports; defaults to "q4_0" (as Q8_0Linear, whose activations are Q8_0 too, is "q8_0"). */
  kind?: string;
}

let simd: boolean | undefined;
/** The WebAssembly SIMD kernels run (else the reference twins). Shared with Q6_KTiledLinear. */
export function useWasm(): boolean {
  if (getKernelBackend() !== "wasm") return false;
  simd ??= hasWasmSimd();
  return simd;
}

/** C roundf: half away from zero. */
function roundAway(v: number): number {
  return v < 0 ? -Math.round(-v) : Math.round(v);
}

export interface Q4Exports {
  q4_0_quant_act(x: number, xa: number, ad: number, ks: number, nb: number): number;
  q4_0_quant_act8(x: number, xq: number, ad: number, nb: number): number;
}

/**
 * An input [m, k] quantized for the kernels (q4_0_quant_act's three outputs or q4_0_quant_act8's
 * two, as bytes), kept in a caller's `shared` memo so the next Q4_0TiledLinear over the same input
 * copies it in instead of quantizing again.
 */
export interface WasmActs {
  x: Float32Array;
  m: number;
  k: number;
  codes: Uint8Array;
  scales: Uint8Array;
  sums: Uint8Array;
}

/** The reference twin's quantized input: codes [m, k] and f16-rounded block scales [m, k / 32]. */
export interface RefActs {
  x: Float32Array;
  m: number;
  k: number;
  aq: Int32Array;
  ad: Float32Array;
}

const WASM_ACTS = "int4/q4_0-acts";
/** The memo key of q4_0_quant_act8's output (Q6_KTiledLinear reads the same). */
export const WASM_ACTS8 = "int4/q4_0-acts-i8";

/**
 * Tokens from which a call expands each weight tile to int8 once (q4_0_gemm_x8) instead of taking
 * the nibble fields apart for every token pair (q4_0_gemm). Same outputs either way.
 */
export const X8_MIN_TOKENS = 6;
export const REF_ACTS = "int4/q4_0-acts-ref";

/** The memo's entry under `key` when it was made from this x, m and k. */
export function sharedActs<T extends { x: Float32Array; m: number; k: number }>(
  shared: Map<string, unknown> | undefined,
  key: string,
  x: Float32Array,
  m: number,
  k: number,
): T | undefined {
  const e = shared?.get(key) as T | undefined;
  return e && e.x === x && e.m === m && e.k === k ? e : undefined;
}

/**
 * A linear layer over GGUF Q4_0 bytes (weight [rows, cols], cols a multiple of 32) that multiplies
 * as llama.cpp's CPU backend does: activations quantized per token and 32-value block to Q8_0
 * (d = amax / 127 rounded through f16, q = roundf(x / d)), then per block the integer
 * sum (e - 8) * q times f32(d_w * d_a), summed block by block in f32 (vec_dot_q4_0_q8_0).
 *
 * In kernel memory the weights stay 4-bit: rows in tiles of 4 (zero rows pad the last tile),
 * codes [n4][nb][4][16 bytes] in the file's nibble order and the scales as f32 [n4][nb][4]: 20
 * bytes per 32 weights (the file holds 18), each tile's codes and scales sequential. The WebAssembly
 * kernel works on the packed bytes with the fixed zero 8 folded into a per-block activation sum;
 * a plain TypeScript reference twin gives the same bits. Kernel threads split the tiles, one
 * dispatch per call, bit-identical to one thread.
 */
export class Q4_0TiledLinear implements Linear {
  readonly kind: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** Bytes resident in kernel memory: 20 per 32 weights (+ bias). */
  readonly storageBytes: number;
  private readonly nb: number;
  private readonly n4: number;
  private readonly buffer: KernelBuffer;
  private readonly hasBias: boolean;
  private readonly name: string;
  private disposed = false;

  constructor(bytes: Uint8Array, rows: number, cols: number, options: Q4_0TiledLinearOptions = {}) {
    this.name = options.name ?? "weight";
    if (!(Number.isInteger(rows) && rows > 0 && Number.isInteger(cols) && cols > 0)) {
      throw new LowbitError("E_SHAPE_MISMATCH", `Q4_0TiledLinear ${this.name}: shape [${rows}, ${cols}] must be positive integers`);
    }
    if (cols % QK !== 0) {
      throw new LowbitError("E_SHAPE_MISMATCH", `Q4_0TiledLinear ${this.name}: ${cols} columns are not whole Q4_0 blocks of ${QK}`);
    }
    const nb = cols / QK;
    if (bytes.length !== rows * nb * BLOCK_BYTES) {
      throw new LowbitError(
        "E_SHAPE_MISMATCH",
        `Q4_0TiledLinear ${this.name}: ${bytes.length} bytes, expected ${rows * nb * BLOCK_BYTES} for [${rows}, ${cols}] in Q4_0`,
      );
    }
    if (options.bias && options.bias.length !== rows) {
      throw new LowbitError("E_SHAPE_MISMATCH", `Q4_0TiledLinear ${this.name}: bias has ${options.bias.length} values, expected ${rows}`);
    }
    this.inFeatures = cols;
    this.outFeatures = rows;
    this.nb = nb;
    this.n4 = Math.ceil(rows / 4);
    this.hasBias = options.bias !== undefined;
    this.kind = options.kind ?? "q4_0";
    this.buffer = getEngine().buffer(this.n4 * nb * 80 + this.n4 * 16);
    const codes = this.buffer.u8(0, this.n4 * nb * 64);
    const scales = this.scales();
    for (let r = 0; r < rows; r++) {
      for (let b = 0; b < nb; b++) {
        const o = (r * nb + b) * BLOCK_BYTES;
        const d = f16BitsToF32(bytes[o]! | (bytes[o + 1]! << 8));
        if (d - d !== 0) {
          throw new LowbitError("E_NON_FINITE", `Q4_0TiledLinear ${this.name}: block ${b} of row ${r} has a non-finite scale ${d}`);
        }
        const at = ((r >> 2) * nb + b) * 4 + (r & 3);
        scales[at] = d;
        const dst = at * 16;
        for (let i = 0; i < 16; i++) codes[dst + i] = bytes[o + 2 + i]!;
      }
    }
    if (options.bias) this.buffer.f32(this.n4 * nb * 80, rows).set(options.bias);
    this.storageBytes = rows * nb * 20 + (this.hasBias ? rows * 4 : 0);
  }

  private scales(): Float32Array {
    return this.buffer.f32(this.n4 * this.nb * 64, this.n4 * this.nb * 4);
  }

  private biasValues(): Float32Array | undefined {
    return this.hasBias ? this.buffer.f32(this.n4 * this.nb * 80, this.outFeatures) : undefined;
  }

  /** The weights as GGUF Q4_0 bytes (rows of cols/32 blocks of 18 bytes). */
  toBytes(): Uint8Array {
    const { outFeatures: n, nb } = this;
    const out = new Uint8Array(n * nb * BLOCK_BYTES);
    const codes = this.buffer.u8(0, this.n4 * nb * 64);
    const scales = this.scales();
    for (let r = 0; r < n; r++) {
      for (let b = 0; b < nb; b++) {
        const o = (r * nb + b) * BLOCK_BYTES;
        const at = ((r >> 2) * nb + b) * 4 + (r & 3);
        const h = f32ToF16Bits(scales[at]!);
        out[o] = h & 255;
        out[o + 1] = h >> 8;
        out.set(codes.subarray(at * 16, at * 16 + 16), o + 2);
      }
    }
    return out;
  }

  /**
   * With `shared` (see Linear.forward), the first call quantizes x and leaves the result in the
   * memo; later calls with the same x and m reuse it (same bits, one quantization).
   */
  forward(x: Float32Array, m: number, out?: Float32Array, shared?: Map<string, unknown>): Float32Array {
    return this.run(x, m, out, useWasm() ? "wasm" : "ref", shared);
  }

  /** Forward on an explicit backend (tests and benchmarks). */
  run(x: Float32Array, m: number, out: Float32Array | undefined, backend: "wasm" | "ref", shared?: Map<string, unknown>): Float32Array {
    if (this.disposed) throw new LowbitError("E_INVALID_ARGUMENT", `Q4_0TiledLinear ${this.name}: used after dispose()`);
    const y = tiledOutput(`Q4_0TiledLinear ${this.name}`, x, m, this.inFeatures, this.outFeatures, out);
    if (m === 0) return y;
    if (backend === "wasm") this.forwardWasm(x, m, y, shared);
    else this.forwardRef(x, m, y, shared);
    return y;
  }

  private nonFinite(x: Float32Array, block: number): LowbitError {
    return nonFiniteInput(`Q4_0TiledLinear ${this.name}`, x, this.inFeatures, block);
  }


  private forwardWasm(x: Float32Array, m: number, y: Float32Array, shared: Map<string, unknown> | undefined): void {
    const engine = getEngine();
    const { nb, n4 } = this;
    const k = this.inFeatures;
    const n = this.outFeatures;
    const ldy = n4 * 4;
    const x8 = m >= X8_MIN_TOKENS;
    const parts = threadParts(m * ldy * k, n4);
    const align = (p: number) => Math.ceil(p / 64) * 64;
    const xBytes = m * k * 4;
    // activations: q4_0_quant_act's pre-scaled i16 fields, or q4_0_quant_act8's int8 values
    const aBytes = x8 ? m * k : m * k * 2;
    const sBytes = m * nb * 4;
    // per thread part: the int8 tile expansion (x8), or the one-token GEMV's block sums (nb x 64 bytes
    // for each of the four tiles it runs side by side)
    const tileBytes = x8 ? nb * 128 : m === 1 ? nb * 256 : 0;
    const base = engine.scratch(xBytes + aBytes + 2 * sBytes + m * ldy * 4 + parts * tileBytes + 64 * (6 + parts));
    const px = align(base);
    const pa = align(px + xBytes);
    const pd = align(pa + aBytes);
    const pk = align(pd + sBytes);
    const py = align(pk + sBytes);
    const ptile = align(py + m * ldy * 4);
    const ex = engine.exports<Q4Exports & Record<string, unknown>>(INT4_KERNEL_MODULE);
    const key = x8 ? WASM_ACTS8 : WASM_ACTS;
    const have = sharedActs<WasmActs>(shared, key, x, m, k);
    if (have) {
      engine.u8(pa, aBytes).set(have.codes);
      engine.u8(pd, sBytes).set(have.scales);
      if (!x8) engine.u8(pk, sBytes).set(have.sums);
    } else {
      engine.f32(px, m * k).set(x.subarray(0, m * k));
      const bad = x8 ? ex.q4_0_quant_act8(px, pa, pd, m * nb) : ex.q4_0_quant_act(px, pa, pd, pk, m * nb);
      if (bad >= 0) throw this.nonFinite(x, bad);
      if (shared) {
        const codes = engine.u8(pa, aBytes).slice();
        const sums = x8 ? new Uint8Array(0) : engine.u8(pk, sBytes).slice();
        const acts: WasmActs = { x, m, k, codes, scales: engine.u8(pd, sBytes).slice(), sums };
        shared.set(key, acts);
      }
    }
    const w = this.buffer.ptr;
    const ws = w + n4 * nb * 64;
    const bias = this.hasBias ? ws + n4 * nb * 16 : 0;
    const fn = m === 1 ? "q4_0_gemv" : x8 ? "q4_0_gemm_x8" : "q4_0_gemm";
    const args = (t0: number, t1: number, part: number): number[] => {
      const wt = w + t0 * nb * 64;
      const st = ws + t0 * nb * 16;
      const bt = bias ? bias + t0 * 16 : 0;
      const yt = py + t0 * 16;
      if (m === 1) return [pa, pd, pk, wt, st, yt, nb, t1 - t0, bt, 15, ptile + part * align(tileBytes)];
      if (x8) return [pa, pd, wt, st, yt, m, nb, t1 - t0, ldy, bt, ptile + part * align(tileBytes)];
      return [pa, pd, pk, wt, st, yt, m, nb, t1 - t0, ldy, bt];
    };
    runTiles(fn, n4, parts, args, py, m, n, y);
  }

  /** Reference twin: the kernel's arithmetic in plain loops (bit-identical). */
  private forwardRef(x: Float32Array, m: number, y: Float32Array, shared: Map<string, unknown> | undefined): void {
    const f = Math.fround;
    const { nb } = this;
    const n = this.outFeatures;
    const { aq, ad } = this.quantizeRef(x, m, shared);
    const codes = this.buffer.u8(0, this.n4 * nb * 64);
    const scales = this.scales();
    const bias = this.biasValues();
    for (let j = 0; j < n; j++) {
      for (let i = 0; i < m; i++) {
        let sumf = 0;
        for (let b = 0; b < nb; b++) {
          const at = ((j >> 2) * nb + b) * 4 + (j & 3);
          const a0 = (i * nb + b) * QK;
          let sumi = 0;
          for (let t = 0; t < 16; t++) {
            const byte = codes[at * 16 + t]!;
            sumi += ((byte & 15) - 8) * aq[a0 + t]! + ((byte >> 4) - 8) * aq[a0 + t + 16]!;
          }
          sumf = f(sumf + f(sumi * f(scales[at]! * ad[i * nb + b]!)));
        }
        y[i * n + j] = bias ? f(sumf + bias[j]!) : sumf;
      }
    }
  }

  /** The reference twin of q4_0_quant_act (codes and f16-rounded scales), or the memo's copy of it. */
  private quantizeRef(x: Float32Array, m: number, shared: Map<string, unknown> | undefined): RefActs {
    return quantizeActsRef(x, m, this.inFeatures, shared, (blk) => this.nonFinite(x, blk));
  }

  /** The f32 weight [rows, cols]: llama.cpp's dequantize_row_q4_0, exactly. */
  dequantizedWeight(): Float32Array {
    return dequantizeQ4_0Ref(this.toBytes(), this.outFeatures * this.inFeatures);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.buffer.dispose();
  }
}

/**
 * The reference twin of q4_0_quant_act / q4_0_quant_act8 for x [m, k] (k a multiple of 32): per
 * 32-value block d = f32(amax / 127), kept through f16, q = roundf(x * f32(1 / d)); or the memo's
 * copy. `nonFinite(block)` makes the error for a block holding a NaN or an infinity.
 */
export function quantizeActsRef(
  x: Float32Array,
  m: number,
  k: number,
  shared: Map<string, unknown> | undefined,
  nonFinite: (block: number) => LowbitError,
): RefActs {
  const f = Math.fround;
  const nb = k / QK;
  const have = sharedActs<RefActs>(shared, REF_ACTS, x, m, k);
  if (have) return have;
  const aq = new Int32Array(m * k);
  const ad = new Float32Array(m * nb);
  for (let blk = 0; blk < m * nb; blk++) {
    const o = blk * QK;
    let amax = 0;
    for (let j = 0; j < QK; j++) {
      const v = x[o + j]!;
      if (!Number.isFinite(v)) throw nonFinite(blk);
      amax = Math.max(amax, Math.abs(v));
    }
    const d = f(amax / 127);
    const id = d !== 0 ? f(1 / d) : 0;
    ad[blk] = f16BitsToF32(f32ToF16Bits(d));
    for (let j = 0; j < QK; j++) aq[o + j] = roundAway(f(x[o + j]! * id));
  }
  const acts: RefActs = { x, m, k, aq, ad };
  shared?.set(REF_ACTS, acts);
  return acts;
}
