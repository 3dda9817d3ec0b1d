import fs from "node:fs";
import { gunzipSync } from "node:zlib";
import { dataFile, hasData } from "@lowbit/testing";
import { describe, expect, it } from "vitest";
import { defaultQuantizedLinear } from "../convert/default-linear";
import { parseDigitsCsv, runDigitsExperiment, splitData } from "./digits";

describe("parseDigitsCsv", () => {
  it("parses rows of 64 pixels and a label, scaling pixels to [0, 1]", () => {
    const row = [...Array.from({ length: 64 }, (_, i) => i % 17), 7].join(",");
    const d = parseDigitsCsv(`${row}\n${row}\n`);
    expect(d.labels).toEqual(Int32Array.of(7, 7));
    expect(d.x[16]).toBe(1);
    expect(d.x[1]).toBe(1 / 16);
  });

  it.each([
    ["1,2,3", /3 fields/],
    [[...Array(64).fill(0), 10].join(","), /label must be 0..9/],
    [[...Array(63).fill(0), 17, 1].join(","), /pixel 63/],
  ])("rejects %#", (text, err) => {
    expect(() => parseDigitsCsv(text as string, "d.csv")).toThrow(err);
  });

  it("splits with a seed, disjointly", () => {
    const rows = Array.from({ length: 10 }, (_, i) => [...Array(64).fill(i), i].join(",")).join("\n");
    const d = parseDigitsCsv(rows);
    const a = splitData(d, 0.3, 1);
    expect(a.test.labels.length).toBe(3);
    const all = [...a.test.labels, ...a.train.labels].sort((x, y) => x - y);
    expect(all).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(Array.from(splitData(d, 0.3, 1).test.labels)).toEqual(Array.from(a.test.labels));
  });
});

describe.skipIf(!hasData)("digits QAT (fast version of `pnpm --filter @lowbit/qat digits`; needs the shared data)", () => {
  it("QAT recovers at least half of what RTN lost at int4 and int2 (or loses under 0.5 points)", async () => {
    const text = gunzipSync(fs.readFileSync(dataFile("digits", "digits.csv.gz"))).toString("utf8");
    const data = parseDigitsCsv(text);
    expect(data.labels.length).toBe(1797);
    const { train, test } = splitData(data, 0.2, 0);
    const r = await runDigitsExperiment(train, test, {
      fpEpochs: 20,
      qatEpochs: 8,
      fpLr: 1e-2,
      bits: [4, 2],
      makeLinear: defaultQuantizedLinear,
    });
    expect(r.fp).toBeGreaterThan(0.93);
    for (const b of r.results) {
      // the converted real-quantized model classifies exactly as the fake-quantized one
      expect(b.qat).toBe(b.qatFake);
      const ok = b.recovered >= 0.5 || r.fp - b.qat < 0.005;
      expect(ok, JSON.stringify(b)).toBe(true);
    }
    // int2 RTN really does lose accuracy here, so the recovery is not vacuous
    expect(r.fp - r.results[1]!.rtn).toBeGreaterThan(0.01);
  });
});
