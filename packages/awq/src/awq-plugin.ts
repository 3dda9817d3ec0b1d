import {
  bitsPerWeight,
  quantizedBackend,
  quantizedKind,
  type LayerContext,
  type LayerPlugin,
  linearQuantConfig,
  type WeightQuantOptions,
} from "@lowbit/calibration";
import { LINEAR_NAMES, type LinearName, makeF32Linear } from "@lowbit/runtime";
import { awqPseudoQuantize } from "./awq-quantizer";
import { applyClip, searchClip } from "./clip";
import { activationMean, candidateScales, divideColumns, divideRows, scaleColumns, weightMean } from "./scales";

export interface AwqPluginOptions extends WeightQuantOptions {
  /** AutoAWQ's duo scaling: s = x^r / w^(1-r). Default false (llm-awq). */
  duoScaling?: boolean;
  /** Grid points of the ratio search. Default 20. */
  nGrid?: number;
  /** Run the clip search (skipped for q and k). Default true. */
  clip?: boolean;
  /** Clip search grid, shrink limit and sampled tokens (defaults 20, 0.5, 512). */
  clipGrid?: number;
  clipMaxShrink?: number;
  clipTokens?: number;
  /**
   * Quantize the scaled (and clipped) weights with this plug-in (e.g. GPTQ) instead of AWQ's
   * round-to-nearest; it then also decides what feeds the next layer.
   */
  quantize?: LayerPlugin;
}

/** One group of linears scaled together and the op the inverse scale is folded into. */
interface ScaleGroup {
  prev: "attn_norm" | "ffn_norm" | LinearName;
  linears: LinearName[];
  /** Whose input the scale is searched on. */
  input: LinearName;
  /** Output whose error is measured: the attention block, the MLP block, or the linears themselves. */
  inspect: "attn" | "mlp" | "self";
}

/** The scaled groups of a LLaMA decoder layer (llm-awq auto_scale_block), v -> o only when shapes match. */
export function llamaScaleGroups(shape: (n: LinearName) => [number, number]): ScaleGroup[] {
  const groups: ScaleGroup[] = [
    { prev: "attn_norm", linears: ["attn_q", "attn_k", "attn_v"], input: "attn_q", inspect: "attn" },
  ];
  const [vo, vi] = shape("attn_v");
  const [oo, oi] = shape("attn_output");
  if (vo === oo && vi === oi) groups.push({ prev: "attn_v", linears: ["attn_output"], input: "attn_output", inspect: "self" });
  groups.push({ prev: "ffn_norm", linears: ["ffn_gate", "ffn_up"], input: "ffn_gate", inspect: "mlp" });
  groups.push({ prev: "ffn_up", linears: ["ffn_down"], input: "ffn_down", inspect: "self" });
  return groups;
}

/** Mean squared difference over all elements, in f64. */
function mse(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    s += d * d;
  }
  return s / a.length;
}

interface LayerState {
  ctx: LayerContext;
  /** Current f32 weights (the model computes with them) and biases. */
  weights: Map<LinearName, Float32Array>;
  biases: Map<LinearName, Float32Array | undefined>;
  shapes: Map<LinearName, [number, number]>;
  inputs: Map<LinearName, Float32Array>;
}

/** Output of the inspected block for `group` with the model's current weights (and temporary overrides). */
function blockOutput(st: LayerState, g: ScaleGroup, over: Map<LinearName, Float32Array>): Float32Array {
  const { ctx } = st;
  const w = (n: LinearName) => over.get(n) ?? st.weights.get(n)!;
  const lin = (n: LinearName) => {
    const [o, i] = st.shapes.get(n)!;
    return makeF32Linear(w(n), o, i, st.biases.get(n));
  };
  if (g.inspect === "attn") {
    for (const [n, wt] of over) ctx.setWeight(n, wt, st.biases.get(n) ?? null);
    const [dim] = st.shapes.get("attn_output")!;
    const out = new Float32Array(ctx.windows * ctx.seqLen * dim);
    let off = 0;
    ctx.forward({
      stopAfter: "attn_output",
      onCapture: (a) => {
        out.set(a.output, off);
        off += a.output.length;
      },
    });
    for (const n of over.keys()) ctx.setWeight(n, st.weights.get(n)!, st.biases.get(n) ?? null);
    return out;
  }
  const x = st.inputs.get(g.input)!;
  const [, cols] = st.shapes.get(g.input)!;
  const rows = x.length / cols;
  if (g.inspect === "self") {
    const l = lin(g.linears[0]!);
    const y = l.forward(x, rows);
    l.dispose?.();
    return y;
  }
  // mlp: down(silu(gate x) * up x)
  const gate = lin("ffn_gate");
  const up = lin("ffn_up");
  const down = lin("ffn_down");
  const gv = gate.forward(x, rows);
  const uv = up.forward(x, rows);
  for (let i = 0; i < gv.length; i++) {
    const v = gv[i]!;
    gv[i] = (v / (1 + Math.exp(-v))) * uv[i]!;
  }
  const y = down.forward(gv, rows);
  for (const l of [gate, up, down]) l.dispose?.();
  return y;
}

/**
 * AWQ on one decoder layer, as llm-awq's run_awq: capture the float inputs of every linear; for
 * each scale group search the ratio r of s = mean|x|^r (20-point grid) minimising the block's output
 * error with W' = Q(W s) / s; fold 1/s into the previous RMSNorm weight or linear rows (the float
 * function is unchanged); clip search on all but q and k; then quantize.
 */
export function awqQuantizeLayer(ctx: LayerContext, options: AwqPluginOptions): void | Promise<void> {
  const shapes = new Map<LinearName, [number, number]>();
  const weights = new Map<LinearName, Float32Array>();
  const biases = new Map<LinearName, Float32Array | undefined>();
  for (const n of LINEAR_NAMES) {
    const l = ctx.model.getLinear(ctx.layer, n);
    shapes.set(n, [l.outFeatures, l.inFeatures]);
    weights.set(n, ctx.weight(n));
    biases.set(n, ctx.bias(n));
  }
  const inputs = ctx.captureInputs(LINEAR_NAMES);
  const st: LayerState = { ctx, weights, biases, shapes, inputs };
  const setFloat = (n: LinearName) => ctx.setWeight(n, weights.get(n)!, biases.get(n) ?? null);
  const nGrid = options.nGrid ?? 20;
  const cfgOf = (n: LinearName) => linearQuantConfig(options, ctx.layer, n, shapes.get(n)![1]);
  const quantDequant = (n: LinearName, w: Float32Array): Float32Array => {
    const cfg = cfgOf(n);
    const [rows, cols] = shapes.get(n)!;
    const out = new Float32Array(w.length);
    awqPseudoQuantize(w, rows, cols, { bits: cfg.bits, groupSize: cfg.groupSize, zeroPoint: !cfg.sym }, out);
    return out;
  };

  // 1. search every group's scales on the float layer
  const groups = llamaScaleGroups((n) => shapes.get(n)!);
  const found: Array<{ g: ScaleGroup; s: Float32Array; ratio: number }> = [];
  for (const g of groups) {
    const [, cols] = shapes.get(g.input)!;
    const xMean = activationMean(inputs.get(g.input)!, cols);
    const wMean = options.duoScaling
      ? weightMean(
          g.linears.map((n) => weights.get(n)!),
          cols,
          cfgOf(g.linears[0]!).groupSize,
        )
      : undefined;
    const org = blockOutput(st, g, new Map());
    let best = Number.POSITIVE_INFINITY;
    let bestRatio = -1;
    let bestS: Float32Array | undefined;
    for (let k = 0; k < nGrid; k++) {
      const ratio = k / nGrid;
      const s = candidateScales(xMean, ratio, wMean);
      const over = new Map<LinearName, Float32Array>();
      for (const n of g.linears) {
        const q = quantDequant(n, scaleColumns(weights.get(n)!.slice(), cols, s));
        for (let i = 0; i < q.length; i++) q[i] = q[i]! / s[i % cols]!;
        over.set(n, q);
      }
      const loss = mse(org, blockOutput(st, g, over));
      if (loss < best) {
        best = loss;
        bestRatio = ratio;
        bestS = s;
      }
    }
    found.push({ g, s: bestS!, ratio: bestRatio });
    ctx.log(`AWQ ${g.linears.join(",")}: ratio ${bestRatio.toFixed(2)}`);
  }

  // 2. fold the scales: previous op / s, linears' columns * s, captured inputs / s
  const norms = ctx.model.layerNorms(ctx.layer);
  const divided = new Set<Float32Array>();
  for (const { g, s } of found) {
    if (g.prev === "attn_norm" || g.prev === "ffn_norm") {
      const nw = g.prev === "attn_norm" ? norms.attnNorm : norms.ffnNorm;
      for (let c = 0; c < nw.length; c++) nw[c] = nw[c]! / s[c]!;
    } else {
      const [, pc] = shapes.get(g.prev)!;
      divideRows(weights.get(g.prev)!, pc, s);
      const b = biases.get(g.prev);
      if (b) for (let i = 0; i < s.length; i++) b[b.length - s.length + i] = b[b.length - s.length + i]! / s[i]!;
    }
    for (const n of g.linears) {
      const [, cols] = shapes.get(n)!;
      scaleColumns(weights.get(n)!, cols, s);
      const x = inputs.get(n)!;
      if (!divided.has(x)) {
        divideColumns(x, cols, s);
        divided.add(x);
      }
    }
  }

  // 3. clip search on the scaled weights (not q, k: the q k^T product makes their error hard to see)
  if (options.clip ?? true) {
    for (const n of ["attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"] as const) {
      const [rows, cols] = shapes.get(n)!;
      const cfg = cfgOf(n);
      const t = searchClip(weights.get(n)!, rows, cols, inputs.get(n)!, {
        bits: cfg.bits,
        groupSize: cfg.groupSize,
        zeroPoint: !cfg.sym,
        nGrid: options.clipGrid ?? 20,
        maxShrink: options.clipMaxShrink ?? 0.5,
        nSampleTokens: options.clipTokens ?? 512,
      });
      applyClip(weights.get(n)!, rows, cols, cfg.groupSize, t);
    }
  }
  const wanted = new Set<LinearName>(options.linears ?? LINEAR_NAMES);
  const ratioOf = (n: LinearName) => found.find((f) => f.g.linears.includes(n))?.ratio;

  // 4. quantize: a given plug-in on the scaled float layer, or AWQ's round-to-nearest
  if (options.quantize) {
    for (const n of LINEAR_NAMES) setFloat(n);
    inputs.clear();
    return options.quantize.quantizeLayer(ctx);
  }
  for (const n of LINEAR_NAMES) {
    const [rows, cols] = shapes.get(n)!;
    if (!wanted.has(n)) {
      setFloat(n);
      continue;
    }
    const cfg = cfgOf(n);
    const qm = awqPseudoQuantize(weights.get(n)!, rows, cols, { bits: cfg.bits, groupSize: cfg.groupSize, zeroPoint: !cfg.sym });
    ctx.setLinear(n, quantizedBackend(options, qm, biases.get(n)));
    const ratio = ratioOf(n);
    ctx.record({
      name: n,
      kind: quantizedKind(qm),
      bits: cfg.bits,
      groupSize: cfg.groupSize,
      rows,
      cols,
      bitsPerWeight: bitsPerWeight(cfg.bits, cfg.groupSize),
      ...(ratio !== undefined ? { info: { ratio } } : {}),
    });
  }
}

/** AWQ as a plug-in of the calibration driver. */
export function awqPlugin(options: AwqPluginOptions): LayerPlugin {
  const inner = options.quantize;
  return {
    name: inner ? `awq+${inner.name}` : "awq",
    // llm-awq feeds the next layer from the float layer; a chained quantizer decides for itself
    propagate: inner ? (inner.propagate ?? "quantized") : "fp",
    quantizeLayer: (ctx) => awqQuantizeLayer(ctx, options),
  };
}
