import type { LayerContext, LayerPlugin } from "@lowbit/calibration";
import { LINEAR_NAMES } from "@lowbit/runtime";
import { LowbitError } from "@lowbit/tensor";
import { mseLoss } from "../autograd/ops-loss";
import { noGrad, Variable } from "../autograd/variable";
import { defaultQuantizedLinear } from "../convert/default-linear";
import type { QuantizedLinearFactory } from "../convert/quantized-mlp";
import { AdamW } from "../optim/optimizers";
import { cosineLr } from "../optim/schedule";
import type { WeightQuantConfig } from "../quant/quantizers";
import { type TrainProgress, Trainer } from "../train/trainer";
import { QatDecoderLayer } from "./qat-decoder-layer";

/** How one decoder layer is trained to match its float outputs. */
export interface LayerQatOptions {
  /** Weight quantization of the seven linears (group sizes adjusted with effectiveGroupSize). */
  weight: WeightQuantConfig;
  /** Passes over the training windows. Default 4. */
  epochs?: number;
  /** Windows per optimizer step. Default 4. */
  batchWindows?: number;
  /** Peak learning rate of the weights (AdamW, cosine with warmup). Default 1e-4. */
  lr?: number;
  /** Peak learning rate of the LSQ step sizes. Default 1e-3. */
  scaleLr?: number;
  /** Also train the two RMSNorm weights (they stay f32 in the runtime). Default true. */
  trainNorms?: boolean;
  /** Clip the global gradient norm. Default none. */
  clipNorm?: number;
  /** Seed of the window order. Default 0. */
  seed?: number;
  onProgress?: (p: TrainProgress) => void;
}

export interface LayerQatResult {
  /** Mean squared error against the targets with the initial (min/max RTN) quantizers. */
  initialMse: number;
  /** ... after training. */
  finalMse: number;
  steps: number;
  ms: number;
}

/** Mean squared error of the layer's outputs against `targets`, over all windows in chunks. */
export function layerMse(
  layer: QatDecoderLayer,
  inputs: Float32Array,
  targets: Float32Array,
  windows: number,
  seqLen: number,
  chunk = 8,
): number {
  const dim = layer.config.dim;
  const w = seqLen * dim;
  let sum = 0;
  noGrad(() => {
    for (let c = 0; c < windows; c += chunk) {
      const n = Math.min(chunk, windows - c);
      const y = layer.forward(Variable.constant(inputs.subarray(c * w, (c + n) * w), [n * seqLen, dim]), seqLen).value;
      for (let i = 0; i < y.length; i++) sum += (y[i]! - targets[c * w + i]!) ** 2;
    }
  });
  return sum / (windows * w);
}

/**
 * Block-wise QAT of one decoder layer: fake-quantizes its linears (LSQ step sizes initialised from
 * min/max) and trains weights, step sizes and (optionally) norm weights with AdamW to minimise the
 * mean squared error between its outputs on `inputs` and `targets` (the float layer's outputs).
 * `inputs` and `targets` are [windows * seqLen, dim]. The layer is modified in place.
 */
export async function trainLayerQat(
  layer: QatDecoderLayer,
  inputs: Float32Array,
  targets: Float32Array,
  windows: number,
  seqLen: number,
  options: LayerQatOptions,
): Promise<LayerQatResult> {
  const dim = layer.config.dim;
  const w = seqLen * dim;
  if (inputs.length !== windows * w || targets.length !== windows * w) {
    throw new LowbitError(
      "E_SHAPE_MISMATCH",
      `layer QAT (layer ${layer.index}): inputs/targets have ${inputs.length}/${targets.length} values, expected ${windows}*${seqLen}*${dim}`,
    );
  }
  const t0 = performance.now();
  layer.quantize(options.weight);
  const initialMse = layerMse(layer, inputs, targets, windows, seqLen);
  const batchWindows = options.batchWindows ?? 4;
  const epochs = options.epochs ?? 4;
  const steps = epochs * Math.ceil(windows / batchWindows);
  const lr = options.lr ?? 1e-4;
  const scaleLr = options.scaleLr ?? 1e-3;
  const trainNorms = options.trainNorms ?? true;
  const weights = LINEAR_NAMES.map((n) => layer.linears[n].weight);
  const groups = [
    { params: weights },
    { params: layer.quantizerParameters(), lrScale: scaleLr / lr },
    ...(trainNorms ? [{ params: [layer.attnNorm, layer.ffnNorm] }] : []),
  ];
  const model = {
    parameters: () => groups.flatMap((g) => g.params),
    loss: (idx: Int32Array) => {
      const x = new Float32Array(idx.length * w);
      const t = new Float32Array(idx.length * w);
      idx.forEach((win, j) => {
        x.set(inputs.subarray(win * w, (win + 1) * w), j * w);
        t.set(targets.subarray(win * w, (win + 1) * w), j * w);
      });
      return mseLoss(layer.forward(Variable.constant(x, [idx.length * seqLen, dim]), seqLen), t);
    },
  };
  const trainer = new Trainer<Int32Array>({
    model,
    optimizer: new AdamW(groups, { lr, weightDecay: 0 }),
    data: { size: windows, batch: (idx) => idx.slice() },
    batchSize: batchWindows,
    steps,
    seed: options.seed ?? 0,
    lr: (s) => cosineLr(s, { lr, totalSteps: Math.max(1, steps), warmupSteps: Math.min(steps, Math.ceil(steps / 20)) }),
    clipNorm: options.clipNorm,
    onProgress: options.onProgress,
  });
  await trainer.run();
  const finalMse = layerMse(layer, inputs, targets, windows, seqLen);
  return { initialMse, finalMse, steps, ms: performance.now() - t0 };
}

export interface QatPluginOptions extends LayerQatOptions {
  /**
   * What each layer is trained to reproduce: "fp-stream" (default) the float model's own hidden
   * states (so a layer can also undo earlier layers' error), or "same-input" the float layer's
   * outputs on the quantized model's inputs (as GPTQ's objective).
   */
  target?: "fp-stream" | "same-input";
  /** Backend of the converted linears. Default `defaultQuantizedLinear`. */
  makeLinear?: QuantizedLinearFactory;
  /** Called after each layer with its result. */
  onLayer?: (layer: number, result: LayerQatResult) => void;
}

/**
 * Block-by-block QAT as a plug-in of @lowbit/calibration's sequential driver: each decoder layer
 * becomes a trainable copy, is trained on the driver's windows against the float outputs, and its
 * linears are replaced by real quantized backends (the driver then reruns the quantized layer to
 * feed the next one).
 */
export function qatPlugin(options: QatPluginOptions): LayerPlugin {
  let fpHidden: Float32Array | undefined;
  const target = options.target ?? "fp-stream";
  return {
    name: "qat",
    propagate: "quantized",
    async quantizeLayer(ctx: LayerContext) {
      const { model, layer, windows, seqLen } = ctx;
      let targets: Float32Array;
      if (target === "same-input") {
        targets = ctx.forward({ collectOutput: true })!;
      } else {
        // the float model's stream: layer 0 (or a resumed start) begins from the driver's inputs
        const input = fpHidden ?? ctx.inputs;
        targets = new Float32Array(input.length);
        const w = seqLen * model.config.dim;
        for (let c = 0; c < windows; c += 8) {
          const n = Math.min(8, windows - c);
          targets.set(model.runLayer(layer, input.subarray(c * w, (c + n) * w), n, seqLen), c * w);
        }
        fpHidden = targets;
      }
      const qlayer = QatDecoderLayer.fromModel(model, layer);
      const res = await trainLayerQat(qlayer, ctx.inputs, targets, windows, seqLen, options);
      const make = options.makeLinear ?? defaultQuantizedLinear;
      const quantized = qlayer.toQuantized();
      for (const name of LINEAR_NAMES) {
        const qm = quantized[name];
        if (!qm) continue;
        const lin = make(qm, `blk.${layer}.${name}`);
        ctx.setLinear(name, lin);
        ctx.record({
          name,
          kind: lin.kind,
          bits: qm.bits,
          groupSize: qm.groupSize,
          rows: qm.rows,
          cols: qm.cols,
          bitsPerWeight: qm.bits + (16 + qm.bits) / qm.groupSize,
          info: { initialMse: res.initialMse, finalMse: res.finalMse, steps: res.steps },
        });
      }
      if (options.trainNorms ?? true) {
        const norms = model.layerNorms(layer);
        norms.attnNorm.set(qlayer.attnNorm.value);
        norms.ffnNorm.set(qlayer.ffnNorm.value);
      }
      ctx.log(`QAT mse ${res.initialMse.toExponential(3)} -> ${res.finalMse.toExponential(3)} in ${res.steps} steps`);
      options.onLayer?.(layer, res);
    },
  };
}
