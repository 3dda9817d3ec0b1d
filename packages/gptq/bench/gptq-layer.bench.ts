/**
 * GPTQ on one large linear layer: time and peak memory of the Hessian accumulation and of the
 * quantization step, separately. Defaults follow issue 5: a 4096 x 4096 layer, 128 windows of 2048
 * tokens of (random, seeded) calibration input, 4 bits, group 128, asymmetric.
 *
 *   pnpm --filter @lowbit/gptq bench [--rows 4096] [--cols 4096] [--windows 128] [--tokens 2048]
 *                                    [--bits 4] [--group 128] [--act-order] [--json out.json]
 *
 * Peak memory is the process's maximum resident set size (getrusage ru_maxrss), read after each
 * phase (the phases are synchronous, so nothing could sample in between), and the kernel engine's
 * high-water mark of WebAssembly memory.
 */
import fs from "node:fs";
import { getEngine, Rng } from "@lowbit/tensor";
import { gptqQuantize } from "../src/gptq-quantize";
import { HessianAccumulator } from "../src/hessian";

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const rows = arg("--rows", 4096);
const cols = arg("--cols", 4096);
const windows = arg("--windows", 128);
const tokens = arg("--tokens", 2048);
const bits = arg("--bits", 4);
const group = arg("--group", 128);
const actOrder = process.argv.includes("--act-order");
const jsonIdx = process.argv.indexOf("--json");

const MB = 2 ** 20;
const maxRssMB = () => (process.resourceUsage().maxRSS * 1024) / MB;
const rssMB = () => process.memoryUsage().rss / MB;

console.log(
  `GPTQ layer benchmark: W ${rows}x${cols}, ${windows} windows x ${tokens} tokens, w${bits} g${group}` +
    `${actOrder ? " act-order" : ""}; node ${process.version}`,
);
const rng = new Rng(0);
const w = new Float32Array(rows * cols);
for (let i = 0; i < w.length; i++) w[i] = rng.normal() / Math.sqrt(cols);
const baseline = rssMB();

// phase 1: Hessian accumulation (input generation excluded from the timing)
const acc = new HessianAccumulator(cols);
const x = new Float32Array(tokens * cols);
let hessianMs = 0;
for (let b = 0; b < windows; b++) {
  rng.fillNormal(x);
  const t = performance.now();
  acc.addBatch(x, tokens);
  hessianMs += performance.now() - t;
  if ((b + 1) % Math.max(1, Math.floor(windows / 8)) === 0 || b === windows - 1) {
    const per = hessianMs / (b + 1);
    console.log(`  Hessian: ${b + 1}/${windows} windows, ${(per / 1000).toFixed(2)} s/window, ETA ${((per * (windows - b - 1)) / 1000).toFixed(0)} s`);
  }
}
acc.releaseScratch();
const flops = 2 * windows * tokens * cols * cols; // full X^T X (the triangle computed is about half)
const hessianPeak = maxRssMB();
const engineAfterH = getEngine().stats.highWater / MB;
console.log(
  `Hessian accumulation: ${(hessianMs / 1000).toFixed(1)} s (${(flops / 2 / (hessianMs / 1000) / 1e9).toFixed(1)} GFLOP/s on the triangle), ` +
    `peak RSS ${hessianPeak.toFixed(0)} MB, kernel memory high-water ${engineAfterH.toFixed(0)} MB`,
);

// phase 2: quantization
const t = performance.now();
const res = gptqQuantize(w, rows, cols, acc.h, { bits, groupSize: group, sym: false, actOrder });
const quantMs = performance.now() - t;
const quantPeak = maxRssMB();
console.log(
  `Quantization step: ${(quantMs / 1000).toFixed(1)} s (percdamp ${res.percdamp}, ${res.dampRetries} retries, loss ${res.loss.toExponential(3)}), ` +
    `peak RSS ${quantPeak.toFixed(0)} MB, kernel memory high-water ${(getEngine().stats.highWater / MB).toFixed(0)} MB`,
);
console.log(
  `weights ${((rows * cols * 4) / MB).toFixed(0)} MB f32, Hessian ${((cols * cols * 4) / MB).toFixed(0)} MB f32; RSS before the run ${baseline.toFixed(0)} MB`,
);
if (jsonIdx >= 0) {
  const out = process.argv[jsonIdx + 1]!;
  fs.writeFileSync(
    out,
    `${JSON.stringify(
      { rows, cols, windows, tokens, bits, group, actOrder, hessianSeconds: hessianMs / 1000, quantSeconds: quantMs / 1000, hessianPeakRssMB: hessianPeak, quantPeakRssMB: quantPeak, baselineRssMB: baseline, node: process.version },
      null,
      2,
    )}\n`,
  );
}
