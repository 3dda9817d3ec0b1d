import { LowbitError, Rng } from "@lowbit/tensor";
import { linear } from "../autograd/ops-linear";
import { Variable } from "../autograd/variable";
import { type ActQuantConfig, ActFakeQuant, WeightFakeQuant, type WeightQuantConfig } from "../quant/quantizers";

export interface QatLinearInit {
  /** Initial weight [out, in]; default Kaiming-uniform-like U(-1/sqrt(in), 1/sqrt(in)) from `rng`. */
  weight?: Float32Array;
  bias?: Float32Array | null;
  /** Whether to create a bias when none is given. Default true. */
  hasBias?: boolean;
  rng?: Rng;
}

/**
 * A linear layer y = x W^T + b whose weight (and optionally input) is fake-quantized in the
 * forward pass. Without quantizers it is an ordinary f32 layer, so the same model trains in full
 * precision first and gets quantizers attached for QAT (`quantize`).
 */
export class QatLinear {
  readonly weight: Variable;
  readonly bias: Variable | null;
  weightQuant: WeightFakeQuant | null = null;
  inputQuant: ActFakeQuant | null = null;

  constructor(
    readonly name: string,
    readonly inFeatures: number,
    readonly outFeatures: number,
    init: QatLinearInit = {},
  ) {
    const n = inFeatures * outFeatures;
    let w = init.weight;
    if (w) {
      if (w.length !== n) {
        throw new LowbitError("E_SHAPE_MISMATCH", `QatLinear "${name}": weight has ${w.length} values, expected ${outFeatures}x${inFeatures}`);
      }
      w = w.slice();
    } else {
      const bound = 1 / Math.sqrt(inFeatures);
      w = (init.rng ?? new Rng(0)).fillUniform(new Float32Array(n), -bound, bound);
    }
    this.weight = Variable.param(w, [outFeatures, inFeatures], `${name}.weight`);
    if (init.bias) {
      if (init.bias.length !== outFeatures) {
        throw new LowbitError("E_SHAPE_MISMATCH", `QatLinear "${name}": bias has ${init.bias.length} values, expected ${outFeatures}`);
      }
      this.bias = Variable.param(init.bias.slice(), [outFeatures], `${name}.bias`);
    } else if (init.bias === null || init.hasBias === false) {
      this.bias = null;
    } else {
      this.bias = Variable.param(new Float32Array(outFeatures), [outFeatures], `${name}.bias`);
    }
  }

  /** Attaches (or, with undefined, removes) weight and input fake quantizers. */
  quantize(weight?: WeightQuantConfig, input?: ActQuantConfig): this {
    this.weightQuant = weight ? new WeightFakeQuant(weight, this.outFeatures, this.inFeatures, `${this.name}.weight`) : null;
    this.inputQuant = input ? new ActFakeQuant(input, this.inFeatures, `${this.name}.input`) : null;
    return this;
  }

  forward(x: Variable): Variable {
    const xin = this.inputQuant ? this.inputQuant.apply(x) : x;
    const w = this.weightQuant ? this.weightQuant.apply(this.weight) : this.weight;
    return linear(xin, w, this.bias ?? undefined);
  }

  /** Weights and bias. */
  parameters(): Variable[] {
    return this.bias ? [this.weight, this.bias] : [this.weight];
  }

  /** LSQ step sizes of the attached quantizers. */
  quantizerParameters(): Variable[] {
    return [...(this.weightQuant?.parameters() ?? []), ...(this.inputQuant?.parameters() ?? [])];
  }

  /** Quantizer state that is not a parameter (zeros, observers), for checkpoints. */
  state(): Record<string, unknown> {
    return { weightQuant: this.weightQuant?.state() ?? null, inputQuant: this.inputQuant?.state() ?? null };
  }

  loadState(s: Record<string, unknown>): void {
    const wq = s.weightQuant as ReturnType<WeightFakeQuant["state"]> | null;
    const iq = s.inputQuant as ReturnType<ActFakeQuant["state"]> | null;
    if (wq && this.weightQuant) this.weightQuant.loadState(wq);
    if (iq && this.inputQuant) this.inputQuant.loadState(iq);
  }
}
