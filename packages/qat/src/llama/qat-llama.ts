import { LINEAR_NAMES, type LlamaConfig, type LlamaModel, linearShape } from "@lowbit/runtime";
import { LowbitError, Rng } from "@lowbit/tensor";
import { embedding, linear } from "../autograd/ops-linear";
import { crossEntropy } from "../autograd/ops-loss";
import { rmsNorm } from "../autograd/ops-norm";
import { Variable } from "../autograd/variable";
import { QatLinear } from "../nn/qat-linear";
import type { ActQuantConfig } from "../quant/quantizers";
import type { TrainableModel } from "../train/trainer";
import { type DecoderLayerInit, type LayerQuantPlan, QatDecoderLayer } from "./qat-decoder-layer";

/** Token windows for language-model training: inputs and next-token targets, both [batch * seqLen]. */
export interface TokenBatch {
  tokens: Int32Array;
  targets: Int32Array;
  seqLen: number;
}

/** The f32 weights of a whole model with GGUF-style names (see @lowbit/formats' llama2.c reader). */
export type NamedTensors = Map<string, { shape: number[]; data: Float32Array }>;

/**
 * A whole LLaMA-family decoder as a trainable graph: embedding, decoder layers, final RMSNorm and
 * classifier (the embedding itself when tied), with cross-entropy on next-token targets.
 */
export class QatLlama implements TrainableModel<TokenBatch> {
  readonly embedding: Variable;
  readonly layers: QatDecoderLayer[];
  readonly outputNorm: Variable;
  /** The separate classifier, or null when it is tied to the embedding. */
  readonly output: QatLinear | null;

  constructor(
    readonly config: LlamaConfig,
    weights?: NamedTensors,
    seed = 0,
    initStd = 0.02,
  ) {
    const { dim, vocabSize, nLayers } = config;
    const rng = new Rng(seed);
    const get = (name: string, n: number): Float32Array | undefined => {
      if (!weights) return undefined;
      const t = weights.get(name);
      if (!t) throw new LowbitError("E_MISSING_TENSOR", `QatLlama: tensor "${name}" is missing`);
      if (t.data.length !== n) {
        throw new LowbitError("E_SHAPE_MISMATCH", `QatLlama: tensor "${name}" has ${t.data.length} values, expected ${n}`);
      }
      return t.data;
    };
    const emb = get("token_embd.weight", vocabSize * dim) ?? rng.fillNormal(new Float32Array(vocabSize * dim), 0, initStd);
    this.embedding = Variable.param(emb.slice(), [vocabSize, dim], "token_embd.weight");
    this.layers = [];
    for (let i = 0; i < nLayers; i++) {
      let init: DecoderLayerInit | undefined;
      if (weights) {
        const linears = {} as DecoderLayerInit["linears"];
        for (const n of LINEAR_NAMES) {
          const [o, k] = linearShape(config, n);
          linears[n] = get(`blk.${i}.${n}.weight`, o * k)!;
        }
        init = { attnNorm: get(`blk.${i}.attn_norm.weight`, dim)!, ffnNorm: get(`blk.${i}.ffn_norm.weight`, dim)!, linears };
      }
      this.layers.push(new QatDecoderLayer(config, i, init, rng, initStd));
    }
    this.outputNorm = Variable.param((get("output_norm.weight", dim) ?? new Float32Array(dim).fill(1)).slice(), [dim], "output_norm.weight");
    if (config.tiedEmbeddings) {
      this.output = null;
    } else {
      const w = get("output.weight", vocabSize * dim) ?? rng.fillNormal(new Float32Array(vocabSize * dim), 0, initStd);
      this.output = new QatLinear("output", dim, vocabSize, { weight: w, hasBias: false });
    }
  }

  /** A trainable copy of a runtime model (all layers must be resident). */
  static fromModel(model: LlamaModel): QatLlama {
    const c = model.config;
    const tensors: NamedTensors = new Map();
    const w = model.weights;
    tensors.set("token_embd.weight", { shape: [c.vocabSize, c.dim], data: w.embedding });
    tensors.set("output_norm.weight", { shape: [c.dim], data: w.outputNorm });
    if (!c.tiedEmbeddings) tensors.set("output.weight", { shape: [c.vocabSize, c.dim], data: w.output.dequantizedWeight() });
    for (let i = 0; i < c.nLayers; i++) {
      const norms = model.layerNorms(i);
      tensors.set(`blk.${i}.attn_norm.weight`, { shape: [c.dim], data: norms.attnNorm });
      tensors.set(`blk.${i}.ffn_norm.weight`, { shape: [c.dim], data: norms.ffnNorm });
      for (const n of LINEAR_NAMES) {
        const lin = model.getLinear(i, n);
        tensors.set(`blk.${i}.${n}.weight`, { shape: [lin.outFeatures, lin.inFeatures], data: lin.dequantizedWeight() });
      }
    }
    return new QatLlama(c, tensors);
  }

  /** Attaches fake quantizers to every decoder layer's linears (embedding and classifier stay f32). */
  quantize(plan: LayerQuantPlan, input?: ActQuantConfig): this {
    for (const l of this.layers) l.quantize(plan, input);
    return this;
  }

  /** Logits [batch * seqLen, vocab] for token windows [batch * seqLen]. */
  forward(tokens: ArrayLike<number>, seqLen: number): Variable {
    if (!(seqLen > 0 && tokens.length % seqLen === 0)) {
      throw new LowbitError("E_SHAPE_MISMATCH", `QatLlama: ${tokens.length} tokens are not whole windows of ${seqLen}`);
    }
    let h = embedding(this.embedding, tokens);
    for (const l of this.layers) h = l.forward(h, seqLen);
    const n = rmsNorm(h, this.outputNorm, this.config.normEps);
    return this.output ? this.output.forward(n) : linear(n, this.embedding);
  }

  loss(batch: TokenBatch): Variable {
    return crossEntropy(this.forward(batch.tokens, batch.seqLen), batch.targets);
  }

  parameters(): Variable[] {
    return [
      this.embedding,
      ...this.layers.flatMap((l) => [...l.parameters(), ...l.quantizerParameters()]),
      this.outputNorm,
      ...(this.output ? this.output.parameters() : []),
    ];
  }

  state(): Record<string, unknown> {
    return Object.fromEntries(this.layers.map((l) => [`blk.${l.index}`, l.state()]));
  }

  loadState(s: unknown): void {
    const st = s as Record<string, unknown>;
    for (const l of this.layers) {
      const v = st[`blk.${l.index}`];
      if (v) l.loadState(v as Record<string, unknown>);
    }
  }

  /** The f32 weights with GGUF-style names, as a llama2.c or GGUF writer wants them. */
  tensors(): NamedTensors {
    const c = this.config;
    const out: NamedTensors = new Map();
    out.set("token_embd.weight", { shape: [c.vocabSize, c.dim], data: this.embedding.value.slice() });
    for (const l of this.layers) {
      out.set(`blk.${l.index}.attn_norm.weight`, { shape: [c.dim], data: l.attnNorm.value.slice() });
      out.set(`blk.${l.index}.ffn_norm.weight`, { shape: [c.dim], data: l.ffnNorm.value.slice() });
      for (const n of LINEAR_NAMES) {
        const lin = l.linears[n];
        out.set(`blk.${l.index}.${n}.weight`, { shape: [lin.outFeatures, lin.inFeatures], data: lin.weight.value.slice() });
      }
    }
    out.set("output_norm.weight", { shape: [c.dim], data: this.outputNorm.value.slice() });
    if (this.output) out.set("output.weight", { shape: [c.vocabSize, c.dim], data: this.output.weight.value.slice() });
    return out;
  }
}
