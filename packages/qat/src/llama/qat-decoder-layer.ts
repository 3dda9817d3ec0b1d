import { effectiveGroupSize, type QuantizedMatrix } from "@lowbit/int4";
import { LINEAR_NAMES, type LinearName, type LlamaConfig, type LlamaModel, linearShape } from "@lowbit/runtime";
import { LowbitError, Rng } from "@lowbit/tensor";
import { causalAttention, rope } from "../autograd/ops-attention";
import { add, mul, silu } from "../autograd/ops-elementwise";
import { rmsNorm } from "../autograd/ops-norm";
import { Variable } from "../autograd/variable";
import { linearToQuantizedMatrix } from "../convert/to-quantized";
import { QatLinear } from "../nn/qat-linear";
import type { ActQuantConfig, WeightQuantConfig } from "../quant/quantizers";

/** The f32 weights of one decoder layer (linears [out, in]). */
export interface DecoderLayerInit {
  attnNorm: Float32Array;
  ffnNorm: Float32Array;
  linears: Record<LinearName, Float32Array>;
}

/** Weight quantization for one linear, or a function choosing it per linear (undefined keeps it f32). */
export type LayerQuantPlan = WeightQuantConfig | ((name: LinearName, rows: number, cols: number) => WeightQuantConfig | undefined);

/**
 * One LLaMA decoder layer as a trainable graph: RMSNorm, q/k/v projections, RoPE, causal
 * grouped-query attention, output projection and residual; RMSNorm, SwiGLU feed-forward
 * (down(silu(gate x) * up x)) and residual, over `batch` windows of `seqLen` tokens. It computes
 * what @lowbit/runtime's LlamaModel.runLayer computes, so its outputs can be compared with the
 * runtime's and its quantized linears dropped back into the runtime model.
 */
export class QatDecoderLayer {
  readonly attnNorm: Variable;
  readonly ffnNorm: Variable;
  readonly linears: Record<LinearName, QatLinear>;

  constructor(
    readonly config: LlamaConfig,
    readonly index: number,
    init?: DecoderLayerInit,
    rng: Rng = new Rng(index),
    initStd = 0.02,
  ) {
    if (config.attnBias) {
      throw new LowbitError("E_UNSUPPORTED", "QAT decoder layer: q/k/v biases (Qwen2) are not supported yet");
    }
    const p = `blk.${index}`;
    const dim = config.dim;
    this.attnNorm = Variable.param(init ? init.attnNorm.slice() : new Float32Array(dim).fill(1), [dim], `${p}.attn_norm.weight`);
    this.ffnNorm = Variable.param(init ? init.ffnNorm.slice() : new Float32Array(dim).fill(1), [dim], `${p}.ffn_norm.weight`);
    const linears = {} as Record<LinearName, QatLinear>;
    for (const name of LINEAR_NAMES) {
      const [o, i] = linearShape(config, name);
      let w = init?.linears[name];
      if (!w) {
        // GPT-2 / llama2.c style init: residual projections scaled by 1/sqrt(2 * layers)
        const residual = name === "attn_output" || name === "ffn_down";
        const std = residual ? initStd / Math.sqrt(2 * config.nLayers) : initStd;
        w = rng.fillNormal(new Float32Array(o * i), 0, std);
      }
      linears[name] = new QatLinear(`${p}.${name}`, i, o, { weight: w, hasBias: false });
    }
    this.linears = linears;
  }

  /** A trainable copy of decoder layer i of a runtime model (dequantized weights of its linears). */
  static fromModel(model: LlamaModel, i: number): QatDecoderLayer {
    const norms = model.layerNorms(i);
    const linears = {} as Record<LinearName, Float32Array>;
    for (const name of LINEAR_NAMES) linears[name] = model.getLinear(i, name).dequantizedWeight();
    return new QatDecoderLayer(model.config, i, { attnNorm: norms.attnNorm, ffnNorm: norms.ffnNorm, linears });
  }

  /**
   * Attaches weight fake quantizers (and input quantizers when given) to the linears. A group size
   * that does not divide a linear's input features is replaced by effectiveGroupSize (e.g. 32 on
   * 172 inputs becomes 43), as the post-training quantizers do.
   */
  quantize(plan: LayerQuantPlan, input?: ActQuantConfig): this {
    for (const name of LINEAR_NAMES) {
      const l = this.linears[name];
      let cfg = typeof plan === "function" ? plan(name, l.outFeatures, l.inFeatures) : plan;
      if (cfg?.granularity === "group" && cfg.groupSize !== undefined) {
        cfg = { ...cfg, groupSize: effectiveGroupSize(l.inFeatures, cfg.groupSize) };
      }
      l.quantize(cfg, input);
    }
    return this;
  }

  /** Hidden states [batch * seqLen, dim] -> the layer's output, windows causal and independent. */
  forward(x: Variable, seqLen: number): Variable {
    const c = this.config;
    const L = this.linears;
    const ropeOptions = { seqLen, headDim: c.headDim, base: c.ropeTheta, style: c.ropeStyle };
    const h = rmsNorm(x, this.attnNorm, c.normEps);
    const q = rope(L.attn_q.forward(h), ropeOptions);
    const k = rope(L.attn_k.forward(h), ropeOptions);
    const v = L.attn_v.forward(h);
    const att = causalAttention(q, k, v, { seqLen, nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: c.headDim });
    const x2 = add(x, L.attn_output.forward(att));
    const h2 = rmsNorm(x2, this.ffnNorm, c.normEps);
    const act = mul(silu(L.ffn_gate.forward(h2)), L.ffn_up.forward(h2));
    return add(x2, L.ffn_down.forward(act));
  }

  /** Norm weights and linear weights. */
  parameters(): Variable[] {
    return [this.attnNorm, this.ffnNorm, ...LINEAR_NAMES.map((n) => this.linears[n].weight)];
  }

  /** LSQ step sizes of the attached quantizers. */
  quantizerParameters(): Variable[] {
    return LINEAR_NAMES.flatMap((n) => this.linears[n].quantizerParameters());
  }

  /** The real quantized weights of the quantized linears (f32 ones are left out). */
  toQuantized(): Partial<Record<LinearName, QuantizedMatrix>> {
    const out: Partial<Record<LinearName, QuantizedMatrix>> = {};
    for (const n of LINEAR_NAMES) if (this.linears[n].weightQuant?.enabled) out[n] = linearToQuantizedMatrix(this.linears[n]);
    return out;
  }

  state(): Record<string, unknown> {
    return Object.fromEntries(LINEAR_NAMES.map((n) => [n, this.linears[n].state()]));
  }

  loadState(s: Record<string, unknown>): void {
    for (const n of LINEAR_NAMES) {
      const st = s[n];
      if (st) this.linears[n].loadState(st as Record<string, unknown>);
    }
  }
}
