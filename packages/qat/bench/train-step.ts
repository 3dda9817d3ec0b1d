// Time and memory of one training step (forward, backward, AdamW update) of stories260K on
// 8 windows of 256 tokens, in full precision and with int3 g32 LSQ fake quantization.
//   pnpm --filter @lowbit/qat bench [-- --windows 8 --seq-len 256 --repeats 5 --json results/train-step.json]
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { loadLlama2c } from "@lowbit/runtime";
import { Rng } from "@lowbit/tensor";
import { dataFile } from "@lowbit/testing";
import { AdamW, backward, QatLlama } from "../src/index";

const { values } = parseArgs({
  args: process.argv.slice(2).filter((a) => a !== "--"),
  options: {
    windows: { type: "string", default: "8" },
    "seq-len": { type: "string", default: "256" },
    repeats: { type: "string", default: "5" },
    mode: { type: "string" },
    json: { type: "string" },
  },
});
const MODES = ["fp32", "int3 g32 LSQ fake-quant"] as const;
if (values.mode === undefined) {
  // one process per mode, so each peak RSS is its own
  const rows: unknown[] = [];
  const passOn = process.argv.slice(2).filter((a) => a !== "--");
  const jsonAt = passOn.indexOf("--json");
  if (jsonAt >= 0) passOn.splice(jsonAt, 2);
  for (const mode of MODES) {
    const args = [...process.execArgv, process.argv[1]!, ...passOn, "--mode", mode];
    const out = execFileSync(process.execPath, args, { encoding: "utf8" });
    for (const line of out.split("\n")) {
      if (line.startsWith("RECORD ")) rows.push(JSON.parse(line.slice(7)));
      else if (line) process.stdout.write(`${line}\n`);
    }
  }
  if (values.json) {
    const record = {
      script: "train-step",
      command: `pnpm --filter @lowbit/qat bench -- ${process.argv.slice(2).filter((a) => a !== "--").join(" ")}`,
      node: process.version,
      date: new Date().toISOString(),
      load: os.loadavg(),
      rows,
    };
    fs.mkdirSync(path.dirname(values.json), { recursive: true });
    fs.writeFileSync(`${values.json}.tmp`, `${JSON.stringify(record, null, 2)}\n`);
    fs.renameSync(`${values.json}.tmp`, values.json);
    console.log(`wrote ${values.json}`);
  }
  process.exit(0);
}
const B = Number(values.windows);
const T = Number(values["seq-len"]);
const repeats = Number(values.repeats);
const mb = (b: number) => (b / 2 ** 20).toFixed(1);

const base = await loadLlama2c(dataFile("stories260K", "stories260K.bin"));
const rng = new Rng(0);
const tokens = Int32Array.from({ length: B * T }, () => rng.int(512));
const targets = Int32Array.from({ length: B * T }, () => rng.int(512));

for (const mode of MODES.filter((m) => m === values.mode)) {
  const model = QatLlama.fromModel(base);
  if (mode !== "fp32") model.quantize({ bits: 3, granularity: "group", groupSize: 32, sym: false });
  const opt = new AdamW(model.parameters(), { lr: 1e-4 });
  globalThis.gc?.();
  const rss0 = process.memoryUsage().rss;
  const times: number[] = [];
  const parts = { forward: [] as number[], backward: [] as number[], update: [] as number[] };
  let loss = 0;
  for (let r = 0; r < repeats + 1; r++) {
    const t0 = performance.now();
    opt.zeroGrad();
    const l = model.loss({ tokens, targets, seqLen: T });
    const t1 = performance.now();
    backward(l);
    const t2 = performance.now();
    opt.step();
    const t3 = performance.now();
    loss = l.item();
    if (r === 0) continue; // warm-up
    times.push(t3 - t0);
    parts.forward.push(t1 - t0);
    parts.backward.push(t2 - t1);
    parts.update.push(t3 - t2);
  }
  const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
  const peak = process.resourceUsage().maxRSS * 1024;
  console.log(
    `${mode}: step median ${med(times).toFixed(0)} ms (forward ${med(parts.forward).toFixed(0)}, backward ${med(parts.backward).toFixed(0)}, ` +
      `AdamW ${med(parts.update).toFixed(1)}) over ${repeats} steps of ${B}x${T} tokens = ${((B * T) / (med(times) / 1000)).toFixed(0)} tokens/s; ` +
      `RSS before ${mb(rss0)} MiB, process peak RSS ${mb(peak)} MiB, loss ${loss.toFixed(3)}`,
  );
  const rec = {
    mode,
    windows: B,
    seqLen: T,
    steps: repeats,
    stepMs: med(times),
    forwardMs: med(parts.forward),
    backwardMs: med(parts.backward),
    updateMs: med(parts.update),
    tokensPerSecond: (B * T) / (med(times) / 1000),
    rssBeforeMiB: rss0 / 2 ** 20,
    peakRssMiB: peak / 2 ** 20,
    loss,
  };
  console.log(`RECORD ${JSON.stringify(rec)}`);
}
