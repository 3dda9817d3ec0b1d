import { f16BitsToF32, f32ToF16Bits, getEngine, type KernelBuffer, type Linear, LowbitError } from "@lowbit/tensor";
import { assertFinite, firstNonFinite, label, nonFiniteError } from "./finite";
import { checkForward } from "./gemm";
import { checkBias, checkFeatures, checkWeight } from "./int8-weights";
import { Q80_MODULE, q80Kernels, useWasm, withReusableScratch } from "./kernels";
import { Q8_0_BLOCK_BYTES, Q8_0_BLOCK_SIZE, quantizeQ8_0, registerQ8_0 } from "./q8-0";
import { columnParts, runColumns } from "./threads";

export interface Q8_0LinearOptions {
  /** Optional bias [out]. */
  bias?: Float32Array;
  /** Weight name for error messages. */
  name?: string;
  /**
   * "q8_0" (default): activations are quantized to Q8_0 blocks on the fly and multiplied in
   * integers per block, as llama.cpp's CPU backend does; "f32": f32 activations times weights
   * dequantized on the fly.
   */
  activation?: "q8_0" | "f32";
}

/**
 * An input [m, k] quantized to Q8_0 (q8_0_quantize_split's outputs: i8 codes [m, k], f32 block
 * scales [m, k / 32] rounded through f16), kept in a caller's `shared` memo so the next Q8_0Linear
 * over the same input reuses it. The reference twin's quantization gives the same values; each
 * backend keeps its own entry all the same, so a memo never mixes them.
 */
interface SharedActs {
  x: Float32Array;
  m: number;
  k: number;
  q: Int8Array;
  d: Float32Array;
}

const WASM_ACTS = "int8/q8_0-acts";
const REF_ACTS = "int8/q8_0-acts-ref";

/** The memo's entry under `key` when it was made from this x, m and k. */
function sharedActs(shared: Map<string, unknown> | undefined, key: string, x: Float32Array, m: number, k: number): SharedActs | undefined {
  const e = shared?.get(key) as SharedActs | undefined;
  return e && e.x === x && e.m === m && e.k === k ? e : undefined;
}

/**
 * Linear layer over GGUF Q8_0 weights [out, in] (in a multiple of 32): each row is in/32 blocks
 * {f16 d; int8 q[32]}. In kernel memory the rows are grouped in tiles of 4 (padded with zero rows):
 * quants i8 [n4][nb][4][32] and scales f32 [n4][nb][4], so a tile's weights and its scales are
 * each one sequential stream and the SIMD kernels read four rows' blocks at a time.
 */
export class Q8_0Linear implements Linear {
  readonly kind = "q8_0";
  private readonly buffer: KernelBuffer;
  private readonly nb: number;
  private readonly n4: number;
  private readonly hasBias: boolean;
  private readonly activation: "q8_0" | "f32";
  private readonly name: string | undefined;

  private constructor(
    bytes: Uint8Array,
    readonly outFeatures: number,
    readonly inFeatures: number,
    opts: Q8_0LinearOptions,
  ) {
    registerQ8_0();
    const n = outFeatures;
    this.nb = inFeatures / Q8_0_BLOCK_SIZE;
    this.n4 = Math.ceil(n / 4);
    this.activation = opts.activation ?? "q8_0";
    if (this.activation !== "q8_0" && this.activation !== "f32") {
      throw new LowbitError("E_INVALID_ARGUMENT", `Q8_0Linear: activation must be "q8_0" or "f32", got "${String(opts.activation)}"`);
    }
    this.name = opts.name;
    const bias = checkBias(opts.bias, n, opts.name);
    this.hasBias = bias !== undefined;
    const nb = this.nb;
    this.buffer = getEngine().buffer(this.n4 * nb * (128 + 16) + this.n4 * 16);
    const qs = this.buffer.i8(0, this.n4 * nb * 128);
    const ws = this.scales();
    const src = new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let r = 0; r < n; r++) {
      for (let b = 0; b < nb; b++) {
        const o = (r * nb + b) * Q8_0_BLOCK_BYTES;
        const d = f16BitsToF32(view.getUint16(o, true));
        if (d - d !== 0) {
          throw new LowbitError(
            "E_NON_FINITE",
            `Q8_0Linear: ${label(opts.name, "weight")} block ${b} of row ${r} has a non-finite scale ${d}`,
          );
        }
        const at = ((r >> 2) * nb + b) * 4 + (r & 3);
        ws[at] = d;
        const dst = at * Q8_0_BLOCK_SIZE;
        for (let i = 0; i < Q8_0_BLOCK_SIZE; i++) qs[dst + i] = src[o + 2 + i]!;
      }
    }
    if (bias) this.biasView()!.set(bias);
  }

  /** Quantizes an f32 weight [out, in] to Q8_0 (bit-identical to llama.cpp's reference). */
  static fromWeight(w: Float32Array, outFeatures: number, inFeatures: number, opts: Q8_0LinearOptions = {}): Q8_0Linear {
    checkWeight("Q8_0Linear", w, outFeatures, inFeatures, opts.name);
    checkInFeatures(inFeatures, opts.name);
    assertFinite(w, opts.name, inFeatures);
    return new Q8_0Linear(quantizeQ8_0(w, { name: opts.name }), outFeatures, inFeatures, opts);
  }

  /** From GGUF Q8_0 bytes: out rows of in/32 blocks of 34 bytes (a GGUF tensor with ne = [in, out]). */
  static fromBytes(bytes: Uint8Array, outFeatures: number, inFeatures: number, opts: Q8_0LinearOptions = {}): Q8_0Linear {
    checkFeatures("Q8_0Linear", outFeatures, inFeatures);
    checkInFeatures(inFeatures, opts.name);
    const want = outFeatures * (inFeatures / Q8_0_BLOCK_SIZE) * Q8_0_BLOCK_BYTES;
    if (bytes.length !== want) {
      throw new LowbitError(
        "E_SHAPE_MISMATCH",
        `Q8_0Linear: ${label(opts.name, "weight")} has ${bytes.length} bytes, expected ${want} for [${outFeatures}, ${inFeatures}] in Q8_0`,
      );
    }
    return new Q8_0Linear(bytes, outFeatures, inFeatures, opts);
  }

  /** Quants of the tiled layout, i8 [n4][nb][4][32]. */
  private quants(): Int8Array {
    return this.buffer.i8(0, this.n4 * this.nb * 128);
  }
  /** Scales of the tiled layout, f32 [n4][nb][4]. */
  private scales(): Float32Array {
    return this.buffer.f32(this.n4 * this.nb * 128, this.n4 * this.nb * 4);
  }
  private biasView(): Float32Array | undefined {
    return this.hasBias ? this.buffer.f32(this.n4 * this.nb * 144, this.outFeatures) : undefined;
  }
  private get qsPtr(): number {
    return this.buffer.ptr;
  }
  private get wsPtr(): number {
    return this.buffer.ptr + this.n4 * this.nb * 128;
  }
  private get biasPtr(): number {
    return this.hasBias ? this.buffer.ptr + this.n4 * this.nb * 144 : 0;
  }

  /** Quants in plain row order, i8 [out, in] (reference twins, export). */
  private rowQuants(): Int8Array {
    const { outFeatures: n, inFeatures: k, nb } = this;
    const q = this.quants();
    const out = new Int8Array(n * k);
    for (let r = 0; r < n; r++) {
      for (let b = 0; b < nb; b++) {
        const at = (((r >> 2) * nb + b) * 4 + (r & 3)) * Q8_0_BLOCK_SIZE;
        out.set(q.subarray(at, at + Q8_0_BLOCK_SIZE), r * k + b * Q8_0_BLOCK_SIZE);
      }
    }
    return out;
  }
  /** Scale of row r, block b. */
  private scale(ws: Float32Array, r: number, b: number): number {
    return ws[((r >> 2) * this.nb + b) * 4 + (r & 3)]!;
  }

  get storageBytes(): number {
    return this.outFeatures * this.nb * Q8_0_BLOCK_BYTES + (this.hasBias ? this.outFeatures * 4 : 0);
  }

  get bias(): Float32Array | undefined {
    return this.biasView()?.slice();
  }

  /** The weights as GGUF Q8_0 bytes (out rows of in/32 blocks). */
  toBytes(): Uint8Array {
    const { outFeatures: n, inFeatures: k, nb } = this;
    const out = new Uint8Array(n * nb * Q8_0_BLOCK_BYTES);
    const view = new DataView(out.buffer);
    const qs = this.rowQuants();
    const ws = this.scales();
    for (let r = 0; r < n; r++) {
      for (let b = 0; b < nb; b++) {
        const o = (r * nb + b) * Q8_0_BLOCK_BYTES;
        view.setUint16(o, f32ToF16Bits(this.scale(ws, r, b)), true);
        out.set(new Uint8Array(qs.buffer, qs.byteOffset + r * k + b * Q8_0_BLOCK_SIZE, Q8_0_BLOCK_SIZE), o + 2);
      }
    }
    return out;
  }

  /**
   * With `shared` (see Linear.forward) and Q8_0 activations, the first call quantizes x and leaves
   * the result in the memo; later calls with the same x and m reuse it (same bits, one
   * quantization). The f32-activation path has nothing to share and ignores it.
   */
  forward(x: Float32Array, m: number, out?: Float32Array, shared?: Map<string, unknown>): Float32Array {
    checkForward("Q8_0Linear", x, m, this.inFeatures, this.outFeatures, out);
    const y = out ?? new Float32Array(m * this.outFeatures);
    if (m === 0) return y;
    if (!useWasm()) {
      if (this.activation === "q8_0") this.forwardQ8Ref(x, m, y, shared);
      else this.forwardF32Ref(x, m, y);
      return y;
    }
    const { outFeatures: n, inFeatures: k, nb, n4 } = this;
    const k80 = q80Kernels();
    const ldy = n4 * 4;
    // threads split the tiles (runColumns over the 4 * n4 padded columns, bounds multiples of 4)
    const tiles = (j0: number, j1: number) => {
      const t0 = j0 / 4;
      return [this.qsPtr + t0 * nb * 128, this.wsPtr + t0 * nb * 16, (j1 - j0) / 4, this.hasBias ? this.biasPtr + t0 * 16 : 0] as const;
    };
    const copyOut = (yp: number) => {
      const yv = getEngine().f32(yp, m * ldy);
      if (ldy === n) y.set(yv);
      else for (let i = 0; i < m; i++) y.set(yv.subarray(i * ldy, i * ldy + n), i * n);
    };
    if (this.activation === "f32") {
      withReusableScratch([m * k * 4, m * ldy * 4], ([xp, yp]) => {
        getEngine().f32(xp!, m * k).set(x.subarray(0, m * k));
        runColumns(Q80_MODULE, "q8_0_gemm_f32", ldy, m * n * k, (j0, j1) => {
          const [w, s, nt, bias] = tiles(j0, j1);
          return [xp!, w, s, yp! + j0 * 4, m, nb, nt, ldy, bias];
        });
        copyOut(yp!);
      });
      return y;
    }
    const have = sharedActs(shared, WASM_ACTS, x, m, k);
    // one token: the widened activations, and per thread part the GEMV's block sums (nb x 64 bytes
    // for each of the four tiles it runs side by side)
    const sums = m === 1 ? nb * 256 : 0;
    const parts = m === 1 ? columnParts(n * k, ldy) : 0;
    withReusableScratch([have ? 0 : m * k * 4, m * k, m * nb * 4, m * ldy * 4, m === 1 ? k * 2 : 0, parts * sums], ([xp, qp, dp, yp, wp, sp]) => {
      const engine = getEngine();
      if (have) {
        engine.i8(qp!, m * k).set(have.q);
        engine.f32(dp!, m * nb).set(have.d);
      } else {
        engine.f32(xp!, m * k).set(x.subarray(0, m * k));
        const bad = k80.q8_0_quantize_split(xp!, qp!, dp!, m * nb);
        if (bad >= 0) throw this.inputError(x, bad * Q8_0_BLOCK_SIZE);
        if (shared) {
          const acts: SharedActs = { x, m, k, q: engine.i8(qp!, m * k).slice(), d: engine.f32(dp!, m * nb).slice() };
          shared.set(WASM_ACTS, acts);
        }
      }
      if (m === 1) {
        k80.q8_0_widen_act(qp!, wp!, nb);
        runColumns(
          Q80_MODULE,
          "q8_0_gemv_q8",
          ldy,
          n * k,
          (j0, j1, part) => {
            const [w, s, nt, bias] = tiles(j0, j1);
            return [wp!, dp!, w, s, yp! + j0 * 4, nb, nt, bias, sp! + part * sums];
          },
          parts,
        );
      } else {
        runColumns(Q80_MODULE, "q8_0_gemm_q8", ldy, m * n * k, (j0, j1) => {
          const [w, s, nt, bias] = tiles(j0, j1);
          return [qp!, dp!, w, s, yp! + j0 * 4, m, nb, nt, ldy, bias];
        });
      }
      copyOut(yp!);
    });
    return y;
  }

  private inputError(x: Float32Array, from: number): LowbitError {
    return nonFiniteError(x, Math.max(0, firstNonFinite(x, from)), this.name ? `${this.name} input` : "input", this.inFeatures);
  }

  /** Reference twin of the Q8_0 x Q8_0 path (llama.cpp ggml_vec_dot_q8_0_q8_0, scalar order). */
  private forwardQ8Ref(x: Float32Array, m: number, y: Float32Array, shared: Map<string, unknown> | undefined): void {
    const { outFeatures: n, inFeatures: k, nb } = this;
    const f = Math.fround;
    const { q: aq, d: ad } = this.quantizeRef(x, m, shared);
    const qs = this.rowQuants();
    const ws = this.scales();
    const bias = this.biasView();
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sumf = 0;
        for (let b = 0; b < nb; b++) {
          let sumi = 0;
          const a0 = i * k + b * Q8_0_BLOCK_SIZE;
          const w0 = j * k + b * Q8_0_BLOCK_SIZE;
          for (let t = 0; t < Q8_0_BLOCK_SIZE; t++) sumi += aq[a0 + t]! * qs[w0 + t]!;
          sumf = f(sumf + f(sumi * f(this.scale(ws, j, b) * ad[i * nb + b]!)));
        }
        y[i * n + j] = bias ? f(sumf + bias[j]!) : sumf;
      }
    }
  }

  /** The reference twin of q8_0_quantize_split, or the memo's copy of it. */
  private quantizeRef(x: Float32Array, m: number, shared: Map<string, unknown> | undefined): SharedActs {
    const { inFeatures: k, nb } = this;
    const have = sharedActs(shared, REF_ACTS, x, m, k);
    if (have) return have;
    const f = Math.fround;
    const bad = firstNonFinite(x, 0, m * k);
    if (bad >= 0) throw this.inputError(x, bad);
    const aq = new Int8Array(m * k);
    const ad = new Float32Array(m * nb);
    for (let blk = 0; blk < m * nb; blk++) {
      const base = blk * Q8_0_BLOCK_SIZE;
      let amax = 0;
      for (let j = 0; j < Q8_0_BLOCK_SIZE; j++) amax = Math.max(amax, Math.abs(x[base + j]!));
      const d = f(amax / 127);
      const id = d !== 0 ? f(1 / d) : 0;
      ad[blk] = f16BitsToF32(f32ToF16Bits(d));
      for (let j = 0; j < Q8_0_BLOCK_SIZE; j++) {
        const v = f(x[base + j]! * id);
        aq[base + j] = v < 0 ? -Math.round(-v) : Math.round(v);
      }
    }
    const acts: SharedActs = { x, m, k, q: aq, d: ad };
    shared?.set(REF_ACTS, acts);
    return acts;
  }

  /** Reference twin of the f32-activation path: x . dequantized W. */
  private forwardF32Ref(x: Float32Array, m: number, y: Float32Array): void {
    const { outFeatures: n, inFeatures: k } = this;
    const w = this.dequantizedWeight();
    const bias = this.biasView();
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let t = 0; t < k; t++) s += x[i * k + t]! * w[j * k + t]!;
        y[i * n + j] = bias ? Math.fround(Math.fround(s) + bias[j]!) : s;
      }
    }
  }

  dequantizedWeight(): Float32Array {
    const { outFeatures: n, inFeatures: k } = this;
    const qs = this.rowQuants();
    const ws = this.scales();
    const w = new Float32Array(n * k);
    for (let r = 0; r < n; r++) {
      for (let c = 0; c < k; c++) w[r * k + c] = qs[r * k + c]! * this.scale(ws, r, c >> 5);
    }
    return w;
  }

  dispose(): void {
    this.buffer.dispose();
  }
}

function checkInFeatures(inFeatures: number, name: string | undefined): void {
  if (inFeatures % Q8_0_BLOCK_SIZE !== 0) {
    throw new LowbitError(
      "E_SHAPE_MISMATCH",
      `Q8_0Linear: ${label(name, "weight")} has inFeatures ${inFeatures}, not a multiple of the Q8_0 block size ${Q8_0_BLOCK_SIZE}`,
    );
  }
}
