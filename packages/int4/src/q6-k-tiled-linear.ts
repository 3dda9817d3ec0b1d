import { getEngine, type KernelBuffer, type Linear, LowbitError } from "@lowbit/tensor";
import { q6kToQuantizedMatrix } from "./codec-q6k";
import { INT4_KERNEL_MODULE, threadParts } from "./kernels/kernels";
import { nonFiniteInput, runTiles, tiledOutput } from "./tiled-calls";
import { type Q4Exports, quantizeActsRef, sharedActs, useWasm, WASM_ACTS8, type WasmActs } from "./q4-0-tiled-linear";

const QK = 32;

export interface Q6_KTiledLinearOptions {
  /** Optional bias [rows]. */
  bias?: Float32Array;
  /** Tensor name for error messages. */
  name?: string;
  /** Shown in reports; defaults to "q6_k-a8" (the kind Q6_KLinear has with int8 activations). */
  kind?: string;
}

/**
 * A linear layer over GGUF Q6_K bytes (weight [rows, cols], cols a multiple of 256) with int8
 * activations: activations quantized per token and 32-value block as Q4_0TiledLinear's (Q8_0:
 * d = amax / 127 through f16, q = roundf(x / d)); per row and block the integer sums over the block's
 * two 16-value sub-blocks, each times its f32 scale d * sc, added, times the activation scale, summed
 * block by block in f32. llama.cpp multiplies Q6_K by Q8_K activations (one scale per 256 values);
 * these are finer.
 *
 * In kernel memory the codes are int8 (q - 32) in tiles of 4 rows, [n4][nb][4][32], and the scales
 * f32 [n4][nb][2][4]: 1.25 bytes per weight. The one-token kernel reads four tiles side by side as
 * Q8_0Linear's does; a GEMM for more tokens reuses each tile from cache. dequantizedWeight() equals
 * llama.cpp's dequantize_row_q6_K exactly, and a TypeScript reference twin gives the kernels' bits.
 * Kernel threads split the tiles, one dispatch per call, bit-identical to one thread.
 */
export class Q6_KTiledLinear implements Linear {
  readonly kind: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** Bytes resident in kernel memory: 40 per 32 weights (+ bias). */
  readonly storageBytes: number;
  private readonly nb: number;
  private readonly n4: number;
  private readonly buffer: KernelBuffer;
  private readonly hasBias: boolean;
  private readonly name: string;
  private disposed = false;

  constructor(bytes: Uint8Array, rows: number, cols: number, options: Q6_KTiledLinearOptions = {}) {
    this.name = options.name ?? "weight";
    // checks the shape and the byte count, names the tensor
    const qm = q6kToQuantizedMatrix(bytes, rows, cols, this.name);
    if (options.bias && options.bias.length !== rows) {
      throw new LowbitError("E_SHAPE_MISMATCH", `Q6_KTiledLinear ${this.name}: bias has ${options.bias.length} values, expected ${rows}`);
    }
    const nb = cols / QK;
    this.inFeatures = cols;
    this.outFeatures = rows;
    this.nb = nb;
    this.n4 = Math.ceil(rows / 4);
    this.hasBias = options.bias !== undefined;
    this.kind = options.kind ?? "q6_k-a8";
    this.buffer = getEngine().buffer(this.n4 * nb * 160 + this.n4 * 16);
    const codes = this.codes();
    const scales = this.scales();
    // kernel memory is not zeroed: the rows padding the last tile get zero codes and scales
    codes.fill(0);
    scales.fill(0);
    const perRow = cols / 16;
    for (let r = 0; r < rows; r++) {
      for (let b = 0; b < nb; b++) {
        const tile = (r >> 2) * nb + b;
        const dst = tile * 128 + (r & 3) * 32;
        const src = r * cols + b * QK;
        for (let t = 0; t < QK; t++) codes[dst + t] = qm.q[src + t]! - 32;
        scales[tile * 8 + (r & 3)] = qm.scales[r * perRow + 2 * b]!;
        scales[tile * 8 + 4 + (r & 3)] = qm.scales[r * perRow + 2 * b + 1]!;
      }
    }
    if (options.bias) this.buffer.f32(this.n4 * nb * 160, rows).set(options.bias);
    this.storageBytes = rows * nb * 40 + (this.hasBias ? rows * 4 : 0);
  }

  private codes(): Int8Array {
    const u8 = this.buffer.u8(0, this.n4 * this.nb * 128);
    return new Int8Array(u8.buffer, u8.byteOffset, u8.length);
  }

  private scales(): Float32Array {
    return this.buffer.f32(this.n4 * this.nb * 128, this.n4 * this.nb * 8);
  }

  private biasValues(): Float32Array | undefined {
    return this.hasBias ? this.buffer.f32(this.n4 * this.nb * 160, this.outFeatures) : undefined;
  }

  /** See Q4_0TiledLinear.forward: `shared` lets linears reading the same input quantize it once. */
  forward(x: Float32Array, m: number, out?: Float32Array, shared?: Map<string, unknown>): Float32Array {
    return this.run(x, m, out, useWasm() ? "wasm" : "ref", shared);
  }

  /** Forward on an explicit backend (tests and benchmarks). */
  run(x: Float32Array, m: number, out: Float32Array | undefined, backend: "wasm" | "ref", shared?: Map<string, unknown>): Float32Array {
    if (this.disposed) throw new LowbitError("E_INVALID_ARGUMENT", `Q6_KTiledLinear ${this.name}: used after dispose()`);
    const y = tiledOutput(`Q6_KTiledLinear ${this.name}`, x, m, this.inFeatures, this.outFeatures, out);
    if (m === 0) return y;
    if (backend === "wasm") this.forwardWasm(x, m, y, shared);
    else this.forwardRef(x, m, y, shared);
    return y;
  }

  private nonFinite(x: Float32Array, block: number): LowbitError {
    return nonFiniteInput(`Q6_KTiledLinear ${this.name}`, x, this.inFeatures, block);
  }


  private forwardWasm(x: Float32Array, m: number, y: Float32Array, shared: Map<string, unknown> | undefined): void {
    const engine = getEngine();
    const { nb, n4 } = this;
    const k = this.inFeatures;
    const n = this.outFeatures;
    const ldy = n4 * 4;
    const parts = threadParts(m * ldy * k, n4);
    const align = (p: number) => Math.ceil(p / 64) * 64;
    const xBytes = m * k * 4;
    const aBytes = m * k;
    const sBytes = m * nb * 4;
    // per thread part: the block half sums of four tiles (one token) or of one tile (GEMM)
    const sumBytes = m === 1 ? nb * 512 : nb * 128;
    const base = engine.scratch(xBytes + aBytes + sBytes + m * ldy * 4 + parts * align(sumBytes) + 64 * (5 + parts));
    const px = align(base);
    const pa = align(px + xBytes);
    const pd = align(pa + aBytes);
    const py = align(pd + sBytes);
    const psum = align(py + m * ldy * 4);
    const ex = engine.exports<Q4Exports & Record<string, unknown>>(INT4_KERNEL_MODULE);
    const have = sharedActs<WasmActs>(shared, WASM_ACTS8, x, m, k);
    if (have) {
      engine.u8(pa, aBytes).set(have.codes);
      engine.u8(pd, sBytes).set(have.scales);
    } else {
      engine.f32(px, m * k).set(x.subarray(0, m * k));
      const bad = ex.q4_0_quant_act8(px, pa, pd, m * nb);
      if (bad >= 0) throw this.nonFinite(x, bad);
      if (shared) {
        const acts: WasmActs = { x, m, k, codes: engine.u8(pa, aBytes).slice(), scales: engine.u8(pd, sBytes).slice(), sums: new Uint8Array(0) };
        shared.set(WASM_ACTS8, acts);
      }
    }
    const w = this.buffer.ptr;
    const ws = w + n4 * nb * 128;
    const bias = this.hasBias ? ws + n4 * nb * 32 : 0;
    const fn = m === 1 ? "q6_k_gemv" : "q6_k_gemm";
    const args = (t0: number, t1: number, part: number): number[] => {
      const wt = w + t0 * nb * 128;
      const st = ws + t0 * nb * 32;
      const bt = bias ? bias + t0 * 16 : 0;
      const yt = py + t0 * 16;
      const tmp = psum + part * align(sumBytes);
      return m === 1 ? [pa, pd, wt, st, yt, nb, t1 - t0, bt, tmp] : [pa, pd, wt, st, yt, m, nb, t1 - t0, ldy, bt, tmp];
    };
    runTiles(fn, n4, parts, args, py, m, n, y);
  }

  /** Reference twin: the kernels' arithmetic in plain loops (bit-identical). */
  private forwardRef(x: Float32Array, m: number, y: Float32Array, shared: Map<string, unknown> | undefined): void {
    const f = Math.fround;
    const { nb } = this;
    const n = this.outFeatures;
    const { aq, ad } = quantizeActsRef(x, m, this.inFeatures, shared, (blk) => this.nonFinite(x, blk));
    const codes = this.codes();
    const scales = this.scales();
    const bias = this.biasValues();
    for (let j = 0; j < n; j++) {
      for (let i = 0; i < m; i++) {
        let sumf = 0;
        for (let b = 0; b < nb; b++) {
          const tile = (j >> 2) * nb + b;
          const c = tile * 128 + (j & 3) * 32;
          const a0 = (i * nb + b) * QK;
          let lo = 0;
          let hi = 0;
          for (let t = 0; t < 16; t++) {
            lo += codes[c + t]! * aq[a0 + t]!;
            hi += codes[c + 16 + t]! * aq[a0 + 16 + t]!;
          }
          const tb = f(f(lo * scales[tile * 8 + (j & 3)]!) + f(hi * scales[tile * 8 + 4 + (j & 3)]!));
          sumf = f(sumf + f(tb * ad[i * nb + b]!));
        }
        y[i * n + j] = bias ? f(sumf + bias[j]!) : sumf;
      }
    }
  }

  /** The f32 weight [rows, cols]: llama.cpp's dequantize_row_q6_K, exactly (f32(scale * (q - 32))). */
  dequantizedWeight(): Float32Array {
    const f = Math.fround;
    const { nb, outFeatures: n, inFeatures: k } = this;
    const codes = this.codes();
    const scales = this.scales();
    const w = new Float32Array(n * k);
    for (let r = 0; r < n; r++) {
      for (let b = 0; b < nb; b++) {
        const tile = (r >> 2) * nb + b;
        const c = tile * 128 + (r & 3) * 32;
        for (let t = 0; t < QK; t++) w[r * k + b * QK + t] = f(scales[tile * 8 + (t >> 4) * 4 + (r & 3)]! * codes[c + t]!);
      }
    }
    return w;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.buffer.dispose();
  }
}
