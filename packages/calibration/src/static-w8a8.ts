import { type Linear, LowbitError } from "@lowbit/tensor";
import { Int8Weights } from "@lowbit/int8";
import { LINEAR_NAMES, type LinearName } from "@lowbit/runtime";
import { MinMaxObserver, type Observer } from "./observers";
import { type LayerContext, type LayerPlugin, linearInputKey } from "./plugin";
import { computeQParams, type QParams, quantizeAffine, roundHalfEven } from "./qparams";

/**
 * Static W8A8 linear: weights int8 per output channel, symmetric (scale = amax / 127, codes
 * -127..127); activations int8 per tensor with a scale and zero point fixed at calibration time
 * (torch.ao static quantization, ONNX Runtime QDQ). y[r,o] = sx * sw[o] * sum_k (xq[r,k] - zx) wq[o,k]
 * (+ bias), accumulated exactly in integers: the weights stay resident in kernel memory as
 * @lowbit/int8 `Int8Weights` and the product runs on its int8 GEMM; `forwardRef` is the plain
 * TypeScript twin.
 */
export class StaticW8A8Linear implements Linear {
  readonly kind = "w8a8-static";
  readonly storageBytes: number;
  readonly wq: Int8Array;
  readonly wScale: Float32Array;
  private readonly rowSum: Int32Array;
  private packed: Int8Weights | undefined;

  constructor(
    weight: Float32Array,
    readonly outFeatures: number,
    readonly inFeatures: number,
    readonly act: QParams,
    readonly bias?: Float32Array,
  ) {
    if (weight.length !== outFeatures * inFeatures) {
      throw new LowbitError(
        "E_SHAPE_MISMATCH",
        `StaticW8A8Linear: weight has ${weight.length} values, expected ${outFeatures}x${inFeatures}`,
      );
    }
    if (act.qmin < -128 || act.qmax > 127) {
      throw new LowbitError("E_INVALID_ARGUMENT", `StaticW8A8Linear: activation range ${act.qmin}..${act.qmax} is not signed int8`);
    }
    const k = inFeatures;
    this.wq = new Int8Array(outFeatures * k);
    this.wScale = new Float32Array(outFeatures);
    this.rowSum = new Int32Array(outFeatures);
    for (let o = 0; o < outFeatures; o++) {
      let amax = 0;
      for (let i = 0; i < k; i++) amax = Math.max(amax, Math.abs(weight[o * k + i]!));
      const s = amax > 0 ? Math.fround(amax / 127) : 1;
      this.wScale[o] = s;
      let sum = 0;
      for (let i = 0; i < k; i++) {
        const q = Math.max(-127, Math.min(127, roundHalfEven(Math.fround(weight[o * k + i]! / s))));
        this.wq[o * k + i] = q;
        sum += q;
      }
      this.rowSum[o] = sum;
    }
    this.storageBytes = this.wq.byteLength + this.wScale.byteLength + 8 + (bias?.byteLength ?? 0);
    this.packed = new Int8Weights(this.wq, outFeatures, inFeatures);
  }

  /** The activations' int8 codes, [m, in]. */
  quantizeInput(x: Float32Array, m: number): Int8Array {
    const k = this.inFeatures;
    if (x.length < m * k) {
      throw new LowbitError("E_SHAPE_MISMATCH", `StaticW8A8Linear: input has ${x.length} values, expected ${m}x${k}`);
    }
    const xq = new Int8Array(m * k);
    for (let i = 0; i < m * k; i++) xq[i] = quantizeAffine(x[i]!, this.act);
    return xq;
  }

  private finish(acc: ArrayLike<number>, m: number, out: Float32Array): Float32Array {
    const n = this.outFeatures;
    const { scale: sx, zeroPoint: zx } = this.act;
    for (let r = 0; r < m; r++) {
      for (let o = 0; o < n; o++) {
        const a = acc[r * n + o]! - zx * this.rowSum[o]!;
        out[r * n + o] = sx * this.wScale[o]! * a + (this.bias ? this.bias[o]! : 0);
      }
    }
    return out;
  }

  forward(x: Float32Array, m: number, out: Float32Array = new Float32Array(m * this.outFeatures)): Float32Array {
    if (!this.packed) throw new LowbitError("E_INVALID_ARGUMENT", "StaticW8A8Linear: used after dispose()");
    const xq = this.quantizeInput(x, m);
    return this.finish(this.packed.gemmI8(xq, m), m, out);
  }

  /** Plain TypeScript twin of forward (the ground truth in tests). */
  forwardRef(x: Float32Array, m: number, out: Float32Array = new Float32Array(m * this.outFeatures)): Float32Array {
    const k = this.inFeatures;
    const n = this.outFeatures;
    const xq = this.quantizeInput(x, m);
    const acc = new Float64Array(m * n);
    for (let r = 0; r < m; r++) {
      for (let o = 0; o < n; o++) {
        let s = 0;
        for (let i = 0; i < k; i++) s += xq[r * k + i]! * this.wq[o * k + i]!;
        acc[r * n + o] = s;
      }
    }
    return this.finish(acc, m, out);
  }

  dispose(): void {
    this.packed?.dispose();
    this.packed = undefined;
  }

  dequantizedWeight(): Float32Array {
    const w = new Float32Array(this.wq.length);
    const k = this.inFeatures;
    for (let i = 0; i < w.length; i++) w[i] = this.wq[i]! * this.wScale[Math.floor(i / k)]!;
    return w;
  }
}

export interface StaticW8A8Options {
  /** Makes the activation observer of each linear input (default min/max). */
  observer?: () => Observer;
  /** Symmetric activation scales (zero point 0) instead of affine. Default false. */
  symmetricActivations?: boolean;
  /** Linears to quantize (default all seven). */
  linears?: readonly LinearName[];
}

/**
 * Static W8A8 as a driver plug-in: observes every linear input over the calibration windows of the
 * float model (torch.ao's prepare + calibrate), then converts each linear to StaticW8A8Linear with
 * the observer's activation scale.
 */
export function staticW8A8Plugin(options: StaticW8A8Options = {}): LayerPlugin {
  const make = options.observer ?? (() => new MinMaxObserver());
  const names = options.linears ?? LINEAR_NAMES;
  let kind = "minmax";
  return {
    get name() {
      return `static-w8a8-${kind}`;
    },
    propagate: "fp",
    quantizeLayer(ctx: LayerContext) {
      const observers = new Map<string, Observer>();
      for (const n of names) if (!observers.has(linearInputKey(n))) observers.set(linearInputKey(n), make());
      kind = [...observers.values()][0]?.kind ?? kind;
      const last = new Map<string, Float32Array>();
      ctx.forward({
        capture: names,
        onCapture: (a) => {
          const key = linearInputKey(a.name);
          // linears sharing an input (q, k, v; gate, up) get the same array: observe it once
          if (last.get(key) === a.input) return;
          last.set(key, a.input);
          observers.get(key)!.observe(a.input);
        },
      });
      for (const name of names) {
        const lin = ctx.model.getLinear(ctx.layer, name);
        const ob = observers.get(linearInputKey(name))!;
        const act = ob.qparams({ bits: 8, sym: options.symmetricActivations ?? false, signed: true });
        const q = new StaticW8A8Linear(ctx.weight(name), lin.outFeatures, lin.inFeatures, act, ctx.bias(name));
        ctx.setLinear(name, q);
        ctx.record({
          name,
          kind: q.kind,
          bits: 8,
          groupSize: lin.inFeatures,
          rows: lin.outFeatures,
          cols: lin.inFeatures,
          bitsPerWeight: 8 + 32 / lin.inFeatures,
          info: { observer: ob.kind, actScale: act.scale, actZeroPoint: act.zeroPoint },
        });
      }
    },
  };
}

/** Activation qparams straight from a range (for callers that calibrate elsewhere). */
export function activationQParams(min: number, max: number, sym = false): QParams {
  return computeQParams(min, max, { bits: 8, sym, signed: true });
}
