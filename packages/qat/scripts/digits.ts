// The digits QAT experiment: FP accuracy, RTN post-training accuracy and QAT accuracy (after
// conversion to real quantized layers) at int4/int3/int2 weights on the UCI optdigits set.
// Run: pnpm --filter @lowbit/qat digits [-- --seeds 0,1,2 --fp-epochs 60 --qat-epochs 30 --json results/digits.json]
import fs from "node:fs";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import { parseArgs } from "node:util";
import { dataFile } from "@lowbit/testing";
import { defaultQuantizedLinear, parseDigitsCsv, runDigitsExperiment, splitData } from "../src/index";

const { values } = parseArgs({
  // pnpm passes a literal "--" through
  args: process.argv.slice(2).filter((a) => a !== "--"),
  options: {
    seeds: { type: "string", default: "0" },
    bits: { type: "string", default: "4,3,2" },
    "fp-epochs": { type: "string", default: "60" },
    "qat-epochs": { type: "string", default: "30" },
    hidden: { type: "string", default: "64" },
    granularity: { type: "string", default: "channel" },
    "group-size": { type: "string" },
    json: { type: "string" },
  },
});

const file = dataFile("digits", "digits.csv.gz");
const data = parseDigitsCsv(gunzipSync(fs.readFileSync(file)).toString("utf8"), file);
const seeds = values.seeds.split(",").map(Number);
const bits = values.bits.split(",").map(Number);
const pct = (x: number) => (100 * x).toFixed(2);

console.log(`digits: ${data.labels.length} rows from ${file}; 20% held out per seed; MLP 64-${values.hidden}-10`);
console.log(`weights ${values.granularity}${values["group-size"] ? ` g${values["group-size"]}` : ""} symmetric; QAT = LSQ step sizes + weights, AdamW, cosine LR`);
console.log("");
console.log("| seed | bits | FP acc % | RTN acc % | QAT acc % | RTN loss (pts) | QAT loss (pts) | recovered | QAT time |");
console.log("|---|---|---|---|---|---|---|---|---|");
const records: Array<Record<string, number | string>> = [];
for (const seed of seeds) {
  const { train, test } = splitData(data, 0.2, seed);
  const r = await runDigitsExperiment(train, test, {
    seed,
    bits,
    hidden: values.hidden.split(",").map(Number),
    fpEpochs: Number(values["fp-epochs"]),
    qatEpochs: Number(values["qat-epochs"]),
    granularity: values.granularity as "channel" | "group",
    groupSize: values["group-size"] ? Number(values["group-size"]) : undefined,
    makeLinear: defaultQuantizedLinear,
  });
  for (const b of r.results) {
    records.push({ seed, bits: b.bits, fpAcc: r.fp, rtnAcc: b.rtn, qatAcc: b.qat, recovered: b.recovered, qatSeconds: b.qatMs / 1000, fpSeconds: r.fpMs / 1000 });
    if (b.qat !== b.qatFake) console.warn(`warning: converted accuracy ${b.qat} != fake-quantized ${b.qatFake}`);
    console.log(
      `| ${seed} | int${b.bits} | ${pct(r.fp)} | ${pct(b.rtn)} | ${pct(b.qat)} | ${pct(r.fp - b.rtn)} | ${pct(r.fp - b.qat)} | ${
        r.fp - b.rtn > 0 ? `${(100 * b.recovered).toFixed(0)}%` : "n/a"
      } | ${(b.qatMs / 1000).toFixed(1)} s |`,
    );
  }
  console.log(`(seed ${seed}: ${r.trainRows} train / ${r.testRows} test rows; FP training ${(r.fpMs / 1000).toFixed(1)} s)`);
}
if (values.json) {
  const record = {
    script: "digits",
    command: `pnpm --filter @lowbit/qat digits -- ${process.argv.slice(2).filter((a) => a !== "--").join(" ")}`,
    options: { ...values, json: undefined },
    node: process.version,
    date: new Date().toISOString(),
    rows: records,
  };
  fs.mkdirSync(path.dirname(values.json), { recursive: true });
  const tmp = `${values.json}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(record, null, 2)}\n`);
  fs.renameSync(tmp, values.json);
  console.log(`wrote ${values.json}`);
}
