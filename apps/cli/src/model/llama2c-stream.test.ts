import { copyFileSync, readdirSync, rmSync, statSync, truncateSync } from "node:fs";
import { join } from "node:path";
import { openLlama2c, readLlama2cCheckpoint } from "@lowbit/formats";
import { memorySource } from "@lowbit/runtime";
import { dataFile, hasData, tmpDir } from "@lowbit/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { GgufType } from "../export/gguf-format";
import { type OutputFormat, sourceFloats, writeModel } from "../export/write-output";
import { padIntermediate } from "../quant/pad";
import { prepare, type QuantizeSettings, runQuantization, toQuantizedModel } from "../quant/pipeline";
import { Capture, files, run } from "../test-helpers";
import { Io } from "../ui/io";
import { openModel } from "./open";
import { resolveModel } from "./resolve";

/**
 * lowbit convert and quantize read a llama2.c checkpoint one tensor at a time (openModel's source
 * over a lazy Llama2cFile). Their outputs must be the bytes of the path they replaced: the whole
 * checkpoint read into memory first (readLlama2cCheckpoint + memorySource).
 */
const quietIo = () => new Io({ stdout: new Capture(), stderr: new Capture(), env: {} });
const bin = hasData ? dataFile("stories260K", "stories260K.bin") : "";
const tok = hasData ? dataFile("stories260K", "tok512.bin") : "";
const calib = hasData ? dataFile("text", "tinystories-valid.txt") : "";

function expectSameFiles(got: string, want: string) {
  const g = files(got);
  const w = files(want);
  expect([...g.keys()]).toEqual([...w.keys()]);
  for (const [name, bytes] of w) expect(g.get(name)!.equals(bytes), name).toBe(true);
}

async function cli(argv: string[]): Promise<void> {
  const r = await run(argv);
  expect(r.code, r.stderr).toBe(0);
}

describe.skipIf(!hasData)("llama2.c inputs, read one tensor at a time", () => {
  const dir = hasData ? tmpDir("lowbit-llama2c-stream-") : "";
  let eager: Awaited<ReturnType<typeof readLlama2cCheckpoint>>;
  beforeAll(async () => {
    eager = await readLlama2cCheckpoint(bin);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("openModel's source has the eager reader's shapes and bits, and reads the file on every call", async () => {
    const m = await openModel(await resolveModel(bin, { tokenizer: tok, needTokenizer: "optional" }));
    try {
      expect(m.config).toMatchObject({ dim: 64, hiddenDim: 172, nLayers: 5, vocabSize: 512, tiedEmbeddings: true, ropeStyle: "interleaved" });
      expect(m.source.shape("output.weight")).toBeUndefined();
      for (const [name, t] of eager.tensors) {
        expect(m.source.shape(name), name).toEqual(t.shape);
        const a = await m.source.readF32(name);
        expect(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)), name).toBe(true);
        // a fresh array per read: nothing of the model is kept by the source
        expect(await m.source.readF32(name)).not.toBe(a);
      }
    } finally {
      await m.close();
    }
  });

  it("a checkpoint cut short after it was opened: the read of the first missing tensor fails naming the file and the tensor", async () => {
    const p = join(dir, "cut.bin");
    copyFileSync(bin, p);
    const m = await openModel(await resolveModel(p, { tokenizer: tok, needTokenizer: "optional" }));
    try {
      const f = await openLlama2c(p);
      const at = f.info("blk.2.ffn_up.weight").offset;
      await f.close();
      truncateSync(p, at);
      expect((await m.source.readF32("blk.4.ffn_down.weight")).length).toBe(64 * 172);
      await expect(m.source.readF32("blk.2.ffn_up.weight")).rejects.toMatchObject({
        code: "E_LLAMA2C",
        message: expect.stringMatching(/cut\.bin: tensor "blk\.2\.ffn_up\.weight" \(bytes \[\d+, \d+\)\) cannot be read: unexpected end of file/),
      });
    } finally {
      await m.close();
    }
  });

  it("convert of a truncated checkpoint fails before writing, naming the file", async () => {
    const p = join(dir, "short.bin");
    copyFileSync(bin, p);
    truncateSync(p, statSync(bin).size - 4);
    const out = join(dir, "short.gguf");
    const r = await run(["convert", p, "--tokenizer", tok, "--to", "gguf", "--out", out]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/short\.bin: file size is 1056536 bytes but the header \(dim=64, .*\) implies 1056540 bytes/);
    expect(readdirSync(dir).filter((n) => n.startsWith("short.gguf") || n.includes(".short.gguf."))).toEqual([]);
  });

  const converts: Array<[OutputFormat, GgufType | undefined, "f32" | "f16" | undefined]> = [
    ["gguf", undefined, undefined],
    ["gguf", "f16", undefined],
    ["gguf", "q8_0", undefined],
    ["gguf", "q4_0", undefined],
    ["gguf", "q4_1", undefined],
    ["safetensors", undefined, "f32"],
    ["safetensors", undefined, "f16"],
  ];
  it.each(converts)("lowbit convert --to %s (gguf type %s, dtype %s): the bytes of the in-memory checkpoint's output", async (to, ggufType, dtype) => {
    const name = `convert-${to}-${ggufType ?? dtype ?? "default"}`;
    const got = join(dir, `${name}-got${to === "gguf" ? ".gguf" : ""}`);
    await cli(["convert", bin, "--tokenizer", tok, "--to", to, "--out", got, ...(ggufType ? ["--gguf-type", ggufType] : []), ...(dtype ? ["--dtype", dtype] : [])]);
    const want = join(dir, `${name}-want${to === "gguf" ? ".gguf" : ""}`);
    const m = await openModel(await resolveModel(bin, { tokenizer: tok, needTokenizer: "optional" }));
    try {
      const floats = sourceFloats(m.config, memorySource(eager.tensors), bin);
      await writeModel(to, want, { config: m.config, floats, tokenizer: m.tokenizerFiles }, { ggufType, dtype });
    } finally {
      await m.close();
    }
    expectSameFiles(got, want);
  });

  const quantizes: Array<[string, Partial<QuantizeSettings> & { format: OutputFormat }]> = [
    ["rtn w8 gguf", { method: "rtn", bits: 8, groupSize: 128, sym: true, format: "gguf" }],
    ["rtn w4 g32 lowbit", { method: "rtn", bits: 4, groupSize: 32, format: "lowbit" }],
    ["gptq w4 g32 gptq", { method: "gptq", bits: 4, groupSize: 32, format: "gptq", calib: [calib], samples: 2, seqLen: 16 }],
    ["awq w4 g32 awq (no clip search)", { method: "awq", bits: 4, groupSize: 32, format: "awq", clip: false, calib: [calib], samples: 2, seqLen: 16 }],
  ];
  it.each(quantizes)("lowbit quantize, %s: the bytes of the in-memory checkpoint's output", async (label, over) => {
    const name = `quantize-${label.replaceAll(" ", "-")}`;
    const ext = over.format === "gguf" ? ".gguf" : "";
    const got = join(dir, `${name}-got${ext}`);
    const argv = ["quantize", bin, "--tokenizer", tok, "--method", over.method!, "--bits", String(over.bits), "--group-size", String(over.groupSize), "--format", over.format, "--out", got];
    if (over.calib) argv.push("--calib", ...over.calib, "--samples", String(over.samples), "--seq-len", String(over.seqLen));
    if (over.sym) argv.push("--sym");
    if (over.method === "awq" && !over.clip) argv.push("--no-clip");
    await cli(argv);
    const want = join(dir, `${name}-want${ext}`);
    const s: QuantizeSettings = { model: bin, tokenizer: tok, sym: false, actOrder: false, damp: 0.01, clip: false, epochs: 4, lr: 1e-4, seed: 0, calib: [], samples: 128, resume: false, ...over, method: over.method!, bits: over.bits!, groupSize: over.groupSize!, out: want };
    const p = await prepare(s);
    try {
      // a fresh in-memory copy (the old source handed out the same arrays on every read), padded as prepare pads
      let source = memorySource((await readLlama2cCheckpoint(bin)).tensors);
      if (p.padding) source = padIntermediate(p.opened.config, source, p.padding.intermediateSize.padded).source;
      const r = await runQuantization(s, { ...p, source }, quietIo());
      const q = toQuantizedModel(r, s, p);
      await writeModel(over.format, want, { config: q.config, q });
      await r.store?.remove();
    } finally {
      await p.opened.close();
    }
    expectSameFiles(got, want);
  });
});
