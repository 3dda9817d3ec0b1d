/**
 * Runtime benchmark: prefill and decode tokens/s of stories260K and of a generated ~100M-parameter
 * LLaMA (random weights, never stored) with f32, int8 and int4 weights; resident memory of the int4
 * model (a Q4_0 GGUF written to a temporary folder and loaded in a fresh process) against its size on
 * disk. Heavy: not part of the tests.
 *
 *   pnpm --filter @lowbit/runtime bench [--only stories|100m] [--prefill 128] [--decode 32]
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { effectiveGroupSize, Int4Linear, quantizeRTN } from "@lowbit/int4";
import { Int8WeightOnlyLinear } from "@lowbit/int8";
import { dataFile, hasData } from "@lowbit/testing";
import type { Linear } from "@lowbit/tensor";
import { LINEAR_NAMES, type LlamaModel, loadLlama2c, parameterCount } from "../src/index";
import { buildRandomModel, CONFIG_100M, f32Linear, type MakeLinear, writeRandomQ4_0Gguf } from "./random-llama";
import { measureSpeed, type Speed } from "./speed";

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : def;
}
const only = arg("only", "all");
const prefill = Number(arg("prefill", "128"));
const decode = Number(arg("decode", "32"));

const int8: MakeLinear = (w, o, i) => Int8WeightOnlyLinear.fromWeight(w, o, i);
const int4: MakeLinear = (w, o, i) => new Int4Linear(quantizeRTN(w, o, i, { bits: 4, groupSize: effectiveGroupSize(i, 32), sym: false }));

function swapAll(model: LlamaModel, make: (w: Float32Array, o: number, i: number) => Linear): void {
  for (let l = 0; l < model.nLayers; l++) {
    for (const name of LINEAR_NAMES) {
      const f = model.getLinear(l, name);
      model.setLinear(l, name, make(f.dequantizedWeight(), f.outFeatures, f.inFeatures))?.dispose?.();
    }
  }
}

const rows: Array<{ model: string; weights: string; storageMB: string; prefill: string; decode: string; cpu: string }> = [];
const share = (s: Speed) => `${s.prefillCpuShare.toFixed(2)} / ${s.decodeCpuShare.toFixed(2)}`;
function record(model: string, weights: string, m: LlamaModel, s: Speed): void {
  rows.push({
    model,
    weights,
    storageMB: (m.storageBytes / 1e6).toFixed(2),
    prefill: s.prefillTokensPerSec.toFixed(1),
    decode: s.decodeTokensPerSec.toFixed(1),
    cpu: share(s),
  });
  console.log(
    `${model} ${weights}: prefill ${s.prefillTokensPerSec.toFixed(1)} tok/s, decode ${s.decodeTokensPerSec.toFixed(1)} tok/s (CPU share ${share(s)})`,
  );
}

console.log(`node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model}), load average ${os.loadavg().map((x) => x.toFixed(1)).join(" ")}`);
console.log(`prefill ${prefill} tokens in one batched pass; decode ${decode} tokens one at a time`);

if (only !== "100m") {
  if (!hasData) throw new Error("stories260K not found (set LOWBIT_DATA)");
  const file = dataFile("stories260K", "stories260K.bin");
  for (const [weights, make] of [
    ["f32", undefined],
    ["int8 weight-only (per-channel)", int8],
    ["int4 RTN (g32, asym)", int4],
  ] as const) {
    const m = await loadLlama2c(file);
    if (make) swapAll(m, make);
    record("stories260K", weights, m, measureSpeed(m, prefill, decode, 3));
    m.dispose();
  }
}

if (only !== "stories") {
  const cfg = CONFIG_100M;
  const params = parameterCount(cfg);
  console.log(`random LLaMA: ${(params / 1e6).toFixed(1)}M parameters (dim ${cfg.dim}, ${cfg.nLayers} layers, ${cfg.nHeads}/${cfg.nKvHeads} heads, ffn ${cfg.hiddenDim}, vocab ${cfg.vocabSize})`);
  for (const [weights, make] of [
    ["f32", f32Linear],
    ["int8 weight-only (per-channel)", int8],
    ["int4 RTN (g32, asym)", int4],
  ] as const) {
    const t0 = performance.now();
    // the classifier stays f32 (tied to the f32 embedding) in these in-memory builds
    const m = buildRandomModel(cfg, 7, make, f32Linear);
    console.log(`  built ${weights} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    record("random-100M", weights, m, measureSpeed(m, prefill, decode, 1));
    m.dispose();
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), "lowbit-bench-"));
  try {
    const gguf = path.join(dir, "random-100M-q4_0.gguf");
    const t0 = performance.now();
    await writeRandomQ4_0Gguf(cfg, 7, gguf);
    console.log(`  wrote Q4_0 GGUF in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const child = path.join(path.dirname(fileURLToPath(import.meta.url)), "int4-memory.ts");
    const out = execFileSync(
      process.execPath,
      ["--expose-gc", "--conditions=@lowbit/source", "--import", "tsx", child, gguf, String(prefill), String(decode)],
      { encoding: "utf8", maxBuffer: 1 << 20 },
    );
    const r = JSON.parse(out.trim().split("\n").at(-1)!);
    const mb = (x: number) => `${(x / 1e6).toFixed(1)} MB`;
    rows.push({
      model: "random-100M",
      weights: "Q4_0 GGUF from disk (all matrices and tied embedding)",
      storageMB: (r.storageBytes / 1e6).toFixed(2),
      prefill: r.prefillTokensPerSec.toFixed(1),
      decode: r.decodeTokensPerSec.toFixed(1),
      cpu: share(r),
    });
    console.log(
      `int4 (Q4_0) model: file ${mb(r.fileBytes)}; resident after load: RSS +${mb(r.rssAfter - r.rssBefore)} ` +
        `(kernel memory allocated ${mb(r.kernelAllocatedBytes)}, JS array buffers +${mb(r.arrayBuffersDelta)}); ` +
        `RSS/file = ${((r.rssAfter - r.rssBefore) / r.fileBytes).toFixed(2)}; backends ${JSON.stringify(r.backends)}, embedding ${r.embedding}`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log("");
console.log("| model | weights | weight storage (MB) | prefill tok/s | decode tok/s | CPU share (prefill / decode) |");
console.log("|---|---|---:|---:|---:|---:|");
for (const r of rows) console.log(`| ${r.model} | ${r.weights} | ${r.storageMB} | ${r.prefill} | ${r.decode} | ${r.cpu} |`);
