import { Llama2cTokenizer } from "@lowbit/runtime";
import { dataFile, hasData } from "@lowbit/testing";
import { describe, expect, it } from "vitest";
import {
  consecutiveWindows,
  defaultCalibrationDocuments,
  encodeDocuments,
  parseJsonl,
  sampleWindows,
  splitOnBlankLines,
} from "./dataset";

describe("documents", () => {
  it.each([
    { text: "a\n\nb", docs: ["a", "b"] },
    { text: "a\nb\n\n\n\nc  \n", docs: ["a\nb", "c"] },
    { text: "a\r\n\r\nb", docs: ["a", "b"] },
    { text: "x\n  \ny", docs: ["x", "y"] },
    { text: "\n\n", docs: [] },
  ])("splitOnBlankLines($text)", ({ text, docs }) => {
    expect(splitOnBlankLines(text)).toEqual(docs);
  });

  it("parses JSON Lines, skipping blank lines", () => {
    expect(parseJsonl('{"text":"one"}\n\n{"text":"two","id":2}\n', "text")).toEqual(["one", "two"]);
    expect(parseJsonl('{"body":"x"}', "body")).toEqual(["x"]);
  });

  it.each([
    { text: '{"text":"a"}\n{oops', msg: /line 2 is not valid JSON/ },
    { text: '{"other":"a"}', msg: /line 1 has no string field "text"/ },
    { text: '{"text":3}', msg: /line 1 has no string field/ },
  ])("rejects bad JSONL naming the line: $text", ({ text, msg }) => {
    expect(() => parseJsonl(text, "text", "calib.jsonl")).toThrow(msg);
  });

  it("has an in-package default text", () => {
    const docs = defaultCalibrationDocuments();
    expect(docs.length).toBeGreaterThanOrEqual(10);
    expect(docs.join(" ").length).toBeGreaterThan(3000);
  });

  it("encodes each document with BOS and concatenates", () => {
    const tok = { bosId: 1, encode: (t: string, o?: { bos?: boolean }) => [...(o?.bos ? [1] : []), ...Array.from(t, (c) => c.charCodeAt(0))] };
    expect(Array.from(encodeDocuments(["ab", "c"], tok))).toEqual([1, 97, 98, 1, 99]);
  });
});

describe("windows", () => {
  const stream = Int32Array.from({ length: 1000 }, (_, i) => 2 + (i % 300));

  it("samples seeded windows with BOS at token 0 and reports the tokens used", () => {
    const a = sampleWindows(stream, { windows: 8, seqLen: 64, seed: 3, bosId: 1 });
    const b = sampleWindows(stream, { windows: 8, seqLen: 64, seed: 3, bosId: 1 });
    const c = sampleWindows(stream, { windows: 8, seqLen: 64, seed: 4, bosId: 1 });
    expect(a.tokens).toEqual(b.tokens);
    expect(a.offsets).toEqual(b.offsets);
    expect(a.offsets).not.toEqual(c.offsets);
    expect(a.tokensUsed).toBe(512);
    expect(a.distinctTokens).toBeLessThanOrEqual(512);
    expect(a.streamTokens).toBe(1000);
    for (let w = 0; w < 8; w++) {
      const off = a.offsets[w]!;
      expect(off).toBeGreaterThanOrEqual(0);
      expect(off).toBeLessThan(1000 - 64);
      expect(a.tokens[w * 64]).toBe(1);
      for (let t = 1; t < 64; t++) expect(a.tokens[w * 64 + t]).toBe(stream[off + t]);
    }
  });

  it("rejects text shorter than one window", () => {
    expect(() => sampleWindows(stream.subarray(0, 64), { windows: 1, seqLen: 64, seed: 0 })).toThrow(
      expect.objectContaining({ code: "E_CALIBRATION" }),
    );
  });

  it.each([
    { max: 1000, seqLen: 256, windows: 3 },
    { max: 512, seqLen: 256, windows: 2 },
    { max: 300, seqLen: 100, windows: 3 },
  ])("cuts $max tokens into $windows consecutive windows of $seqLen", ({ max, seqLen, windows }) => {
    const s = consecutiveWindows(stream, seqLen, max, 1);
    expect(s.windows).toBe(windows);
    expect(s.tokens[seqLen]).toBe(1);
    expect(s.tokens[seqLen + 1]).toBe(stream[seqLen + 1]);
  });
});

describe.runIf(hasData)("with the stories260K tokenizer", () => {
  it("the default text yields enough tokens for 8 windows of 128", async () => {
    const tok = await Llama2cTokenizer.fromFile(dataFile("stories260K", "tok512.bin"));
    const stream = encodeDocuments(defaultCalibrationDocuments(), tok);
    expect(stream.length).toBeGreaterThan(700);
    const set = sampleWindows(stream, { windows: 8, seqLen: 128, seed: 0, bosId: tok.bosId });
    expect(set.tokensUsed).toBe(1024);
  });
});

describe("reading files", () => {
  it("reads text and JSONL documents, and names a missing file", async () => {
    const { tmpDir } = await import("@lowbit/testing");
    const fs = await import("node:fs");
    const dir = tmpDir();
    fs.writeFileSync(`${dir}/a.txt`, "one\ntwo\n\nthree\n");
    fs.writeFileSync(`${dir}/b.jsonl`, '{"text":"x"}\n{"text":"y"}\n');
    const { readTextDocuments, readJsonlDocuments } = await import("./dataset");
    expect(await readTextDocuments(`${dir}/a.txt`)).toEqual(["one\ntwo", "three"]);
    expect(await readJsonlDocuments(`${dir}/b.jsonl`)).toEqual(["x", "y"]);
    await expect(readTextDocuments(`${dir}/missing.txt`)).rejects.toThrow(/missing\.txt/);
  });
});
