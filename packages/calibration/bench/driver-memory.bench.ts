/**
 * Peak memory of the sequential driver: a synthetic LLaMA opened lazily (each decoder layer is
 * read when the driver reaches it), quantized by a data-dependent plug-in that captures every
 * linear's inputs over all calibration windows (as AWQ does) and replaces the weights with packed
 * int4 (`Int4Linear`), so the float layer is released after each step.
 *
 *   pnpm --filter @lowbit/calibration bench [--dim 1024] [--hidden 2816] [--layers 12]
 *                                           [--windows 32] [--seq 512]
 *
 * Reports the process's peak resident set size (getrusage ru_maxrss) against the float model's
 * size, one float layer, and the activations the driver holds (two hidden-state buffers plus the
 * plug-in's captured inputs).
 */
import { Int4Linear, quantizeRTN } from "@lowbit/int4";
import { buildModel, expectedTensors, LINEAR_NAMES, makeConfig, type TensorSource } from "@lowbit/runtime";
import { getEngine, Rng } from "@lowbit/tensor";
import { bitsPerWeight, type LayerPlugin, quantizeModel, sampleWindows } from "../src/index";

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const MB = 2 ** 20;
const dim = arg("--dim", 1024);
const hidden = arg("--hidden", 2816);
const nLayers = arg("--layers", 12);
const windows = arg("--windows", 32);
const seq = arg("--seq", 512);
const cfg = makeConfig({ dim, hiddenDim: hidden, nLayers, nHeads: dim / 64, vocabSize: 512, maxSeqLen: seq });

/** Weights generated on read, seeded by the tensor's name: nothing is resident until asked for. */
const shapes = expectedTensors(cfg);
let reads = 0;
const source: TensorSource = {
  shape: (name) => shapes.get(name),
  async readF32(name) {
    reads++;
    const shape = shapes.get(name)!;
    let seed = 0;
    for (const ch of name) seed = (seed * 31 + ch.charCodeAt(0)) | 0;
    const rng = new Rng(seed);
    const n = shape.reduce((a, b) => a * b, 1);
    if (name.includes("norm")) return new Float32Array(n).fill(1);
    return rng.fillNormal(new Float32Array(n), 0, 1 / Math.sqrt(shape[shape.length - 1]!));
  },
};

const model = await buildModel(cfg, source, { lazy: true });
const rng = new Rng(1);
const stream = Int32Array.from({ length: windows * seq * 4 }, () => 3 + rng.int(500));
const calib = sampleWindows(stream, { windows, seqLen: seq, seed: 0, bosId: 1 });

/** Captures every linear's inputs (like AWQ), then RTN w4 g128 into packed Int4Linear. */
const plugin: LayerPlugin = {
  name: "capture+rtn-int4",
  propagate: "quantized",
  quantizeLayer(ctx) {
    const inputs = ctx.captureInputs(LINEAR_NAMES);
    let captured = 0;
    for (const x of new Set(inputs.values())) captured += x.byteLength;
    capturedPeak = Math.max(capturedPeak, captured);
    for (const name of LINEAR_NAMES) {
      const l = ctx.model.getLinear(ctx.layer, name);
      const qm = quantizeRTN(ctx.weight(name), l.outFeatures, l.inFeatures, { bits: 4, groupSize: 128, sym: false });
      ctx.setLinear(name, new Int4Linear(qm));
      ctx.record({ name, kind: "int4", bits: 4, groupSize: 128, rows: l.outFeatures, cols: l.inFeatures, bitsPerWeight: bitsPerWeight(4, 128) });
    }
  },
};
let capturedPeak = 0;

const layerParams = 4 * dim * dim + 3 * dim * hidden;
const layerMB = (layerParams * 4) / MB;
const modelMB = layerMB * nLayers + (2 * 512 * dim * 4) / MB;
const hiddenMB = (windows * seq * dim * 4) / MB;
const rssStart = process.memoryUsage().rss / MB;
console.log(
  `synthetic LLaMA dim ${dim}, hidden ${hidden}, ${nLayers} layers: ${modelMB.toFixed(0)} MB as f32 (${layerMB.toFixed(0)} MB per layer); ` +
    `calibration ${windows} x ${seq} tokens (${hiddenMB.toFixed(0)} MB per hidden-state buffer); RSS at start ${rssStart.toFixed(0)} MB`,
);
const t0 = performance.now();
const rep = await quantizeModel(model, calib, plugin, {
  batchWindows: 8,
  onProgress: (p) =>
    console.log(
      `  layer ${p.layer + 1}/${p.nLayers}  RSS ${(process.memoryUsage().rss / MB).toFixed(0)} MB  ` +
        `kernel memory in use ${(getEngine().stats.allocatedBytes / MB).toFixed(0)} MB  ETA ${(p.etaMs / 1000).toFixed(0)} s`,
    ),
});
const peak = (process.resourceUsage().maxRSS * 1024) / MB;
console.log(`quantized in ${((performance.now() - t0) / 1000).toFixed(1)} s; tensor reads ${reads}`);
console.log(
  `peak RSS ${peak.toFixed(0)} MB (driver-sampled ${((rep.peakRssBytes ?? 0) / MB).toFixed(0)} MB) = start ${rssStart.toFixed(0)} MB + ` +
    `${(peak - rssStart).toFixed(0)} MB; one f32 layer ${layerMB.toFixed(0)} MB + 2 hidden buffers ${(2 * hiddenMB).toFixed(0)} MB + ` +
    `captured inputs ${(capturedPeak / MB).toFixed(0)} MB = ${(layerMB + 2 * hiddenMB + capturedPeak / MB).toFixed(0)} MB; ` +
    `the f32 model alone would be ${modelMB.toFixed(0)} MB`,
);
