import { copyFileSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { dataFile, hasData, tmpDir } from "@lowbit/testing";
import { afterAll, describe, expect, it } from "vitest";
import { findLlama2cTokenizer, resolveModel, sniffFile } from "./resolve";

describe.skipIf(!hasData)("model paths", () => {
  const dir = hasData ? tmpDir("lowbit-resolve-") : "";
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const model = hasData ? dataFile("stories260K", "stories260K.bin") : "";

  it("a llama2.c checkpoint finds the single tokenizer .bin beside it", async () => {
    const r = await resolveModel(model);
    expect(r).toMatchObject({ kind: "llama2c", weights: model });
    expect(r.tokenizer).toMatch(/tok512\.bin$/);
  });

  it.each([
    [["a.bin", "b.bin"], /several: a\.bin, b\.bin/],
    [[], /no other \.bin file/],
  ])("without --tokenizer, candidates %j are an error naming them", async (others, msg) => {
    const d = join(dir, `case-${others.length}`);
    mkdirSync(d);
    copyFileSync(model, join(d, "m.bin"));
    for (const o of others) writeFileSync(join(d, o), "x");
    await expect(findLlama2cTokenizer(join(d, "m.bin"))).rejects.toThrow(msg);
    await expect(findLlama2cTokenizer(join(d, "m.bin"), join(d, "missing.bin"))).rejects.toThrow(/not found.*--tokenizer/);
  });

  it("a tokenizer named tok* wins over other .bin files", async () => {
    const d = join(dir, "named");
    mkdirSync(d);
    copyFileSync(model, join(d, "m.bin"));
    writeFileSync(join(d, "other.bin"), "x");
    copyFileSync(dataFile("stories260K", "tok512.bin"), join(d, "tok512.bin"));
    expect(await findLlama2cTokenizer(join(d, "m.bin"))).toBe(join(d, "tok512.bin"));
  });

  it.each([
    ["GGUF", Buffer.from("GGUF\u0003\u0000\u0000\u0000"), "gguf"],
    ["safetensors", Buffer.concat([Buffer.from([2, 0, 0, 0, 0, 0, 0, 0]), Buffer.from("{}")]), "safetensors"],
    ["text", Buffer.from("hello world"), "unknown"],
  ])("sniffs %s by its first bytes", async (_n, bytes, kind) => {
    const f = join(dir, `sniff-${kind}`);
    writeFileSync(f, bytes);
    expect(await sniffFile(f)).toBe(kind);
  });

  it.each([
    [{ quantization_config: { quant_method: "gptq", bits: 4 } }, "gptq"],
    [{ quantization_config: { quant_method: "awq", bits: 4 } }, "awq"],
    [{ lowbit: { format: "lowbit" } }, "lowbit"],
    [{ model_type: "llama" }, "hf"],
  ])("a folder with config %j is %s", async (config, kind) => {
    const d = join(dir, `folder-${kind}`);
    mkdirSync(d);
    writeFileSync(join(d, "config.json"), JSON.stringify(config));
    writeFileSync(join(d, "model.safetensors"), Buffer.concat([Buffer.from([2, 0, 0, 0, 0, 0, 0, 0]), Buffer.from("{}")]));
    expect((await resolveModel(d, { needTokenizer: false })).kind).toBe(kind);
  });

  it.each([
    ["bitsandbytes quantization", { quantization_config: { quant_method: "bitsandbytes" } }, ["model.safetensors"], /not supported/],
    ["PyTorch-only weights", { model_type: "llama" }, ["pytorch_model.bin"], /safetensors only/],
  ])("%s is refused with what to do", async (_n, config, files, msg) => {
    const d = join(dir, `bad-${files[0]}-${Object.keys(config)[0]}`);
    mkdirSync(d);
    writeFileSync(join(d, "config.json"), JSON.stringify(config));
    for (const f of files) writeFileSync(join(d, f), Buffer.concat([Buffer.from([2, 0, 0, 0, 0, 0, 0, 0]), Buffer.from("{}")]));
    await expect(resolveModel(d)).rejects.toThrow(msg);
  });
});
