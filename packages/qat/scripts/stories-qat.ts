// Block-by-block QAT of stories260K against RTN (and GPTQ when available) at the same bits and
// group size, with disjoint calibration, training and evaluation text.
//   pnpm --filter @lowbit/qat stories [-- --bits 3 --group 32 --windows 64 --epochs 4 --json results/stories-qat.json]
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { encodeDocuments, quantizeModel, rtnPlugin, sampleWindows, type LayerPlugin } from "@lowbit/calibration";
import { documentHalf, evaluate, Llama2cTokenizer, loadLlama2c, splitDocuments } from "@lowbit/runtime";
import { dataFile } from "@lowbit/testing";
import { qatPlugin } from "../src/index";

const { values } = parseArgs({
  // pnpm passes a literal "--" through
  args: process.argv.slice(2).filter((a) => a !== "--"),
  options: {
    bits: { type: "string", default: "3" },
    group: { type: "string", default: "32" },
    sym: { type: "boolean", default: false },
    windows: { type: "string", default: "64" },
    "seq-len": { type: "string", default: "256" },
    epochs: { type: "string", default: "4" },
    "batch-windows": { type: "string", default: "4" },
    lr: { type: "string", default: "1e-4" },
    "scale-lr": { type: "string", default: "1e-3" },
    target: { type: "string", default: "fp-stream" },
    "eval-tokens": { type: "string", default: "100000" },
    methods: { type: "string", default: "fp,rtn,gptq,qat" },
    seed: { type: "string", default: "0" },
    json: { type: "string" },
  },
});
const bits = Number(values.bits);
const groupSize = Number(values.group);
const sym = values.sym;
const seqLen = Number(values["seq-len"]);
const windows = Number(values.windows);
const seed = Number(values.seed);
const methods = values.methods.split(",");

const modelPath = dataFile("stories260K", "stories260K.bin");
const tokenizer = await Llama2cTokenizer.fromFile(dataFile("stories260K", "tok512.bin"));
const stories = splitDocuments(fs.readFileSync(dataFile("text", "tinystories-valid.txt"), "utf8"));
// evaluation: the second half of the stories (as the runtime's ppl script); the first half is cut
// into a calibration part (its first quarter, for GPTQ) and a training part (the rest, for QAT)
const evalDocs = documentHalf(stories, "second");
const firstHalf = documentHalf(stories, "first");
const q = Math.floor(firstHalf.length / 4);
const calibDocs = firstHalf.slice(0, q);
const trainDocs = firstHalf.slice(q);
const evalTokens = Array.from(encodeDocuments(evalDocs, tokenizer)).slice(0, Number(values["eval-tokens"]));
const calib = sampleWindows(encodeDocuments(calibDocs, tokenizer), { windows, seqLen, seed, bosId: 1 });
const train = sampleWindows(encodeDocuments(trainDocs, tokenizer), { windows, seqLen, seed, bosId: 1 });
console.log(
  `stories: ${stories.length} (calibration ${calibDocs.length}, QAT training ${trainDocs.length}, evaluation ${evalDocs.length}); ` +
    `${windows} windows x ${seqLen} tokens each for calibration and training; evaluation ${evalTokens.length} tokens in 256-token windows`,
);
console.log(`weights: int${bits}, group ${groupSize} (effective group per linear), ${sym ? "symmetric" : "asymmetric"}`);

async function ppl(plugin: LayerPlugin | null, data = calib): Promise<{ ppl: number; ms: number }> {
  const model = await loadLlama2c(modelPath);
  const t0 = performance.now();
  if (plugin) await quantizeModel(model, data, plugin, { log: (m) => console.log(`  ${m}`) });
  const ms = performance.now() - t0;
  return { ppl: evaluate(model, evalTokens, { windowLength: 256 }).perplexity, ms };
}

const rows: Array<[string, number, number]> = [];
const show = (name: string, r: { ppl: number; ms: number }) => {
  rows.push([name, r.ppl, r.ms]);
  console.log(`${name}: perplexity ${r.ppl.toFixed(4)} (${(r.ms / 1000).toFixed(1)} s)`);
};
if (methods.includes("fp")) show("fp32", await ppl(null));
if (methods.includes("rtn")) show(`RTN int${bits} g${groupSize}`, await ppl(rtnPlugin({ bits, groupSize, sym })));
if (methods.includes("gptq")) {
  let gptqPlugin: ((o: Record<string, unknown>) => LayerPlugin) | undefined;
  try {
    gptqPlugin = (await import("@lowbit/gptq" as string)).gptqPlugin;
  } catch {
    gptqPlugin = undefined;
  }
  if (gptqPlugin) show(`GPTQ int${bits} g${groupSize}`, await ppl(gptqPlugin({ bits, groupSize, sym })));
  else console.log("GPTQ: @lowbit/gptq has no gptqPlugin here; skipped");
}
if (methods.includes("qat")) {
  const plugin = qatPlugin({
    weight: { bits, granularity: "group", groupSize, sym, mode: "lsq" },
    epochs: Number(values.epochs),
    batchWindows: Number(values["batch-windows"]),
    lr: Number(values.lr),
    scaleLr: Number(values["scale-lr"]),
    target: values.target as "fp-stream" | "same-input",
    seed,
  });
  show(`QAT int${bits} g${groupSize}`, await ppl(plugin, train));
}
console.log("");
console.log("| method | perplexity | time |");
console.log("|---|---|---|");
for (const [n, p, ms] of rows) console.log(`| ${n} | ${p.toFixed(4)} | ${(ms / 1000).toFixed(1)} s |`);
if (values.json) {
  const record = {
    script: "stories-qat",
    command: `pnpm --filter @lowbit/qat stories -- ${process.argv.slice(2).filter((a) => a !== "--").join(" ")}`,
    options: { ...values, json: undefined },
    node: process.version,
    date: new Date().toISOString(),
    rows: rows.map(([method, perplexity, ms]) => ({ method, perplexity, seconds: ms / 1000 })),
  };
  fs.mkdirSync(path.dirname(values.json), { recursive: true });
  const tmp = `${values.json}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(record, null, 2)}\n`);
  fs.renameSync(tmp, values.json);
  console.log(`wrote ${values.json}`);
}
