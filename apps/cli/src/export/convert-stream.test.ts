import { mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { openSafetensorsModel, readGguf, writeGguf } from "@lowbit/formats";
import { expectedTensors, hfNameFromInternal, type TensorSource } from "@lowbit/runtime";
import { LowbitError } from "@lowbit/tensor";
import { dataFile, hasData, tmpDir } from "@lowbit/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type OpenedModel, openModel } from "../model/open";
import { resolveModel } from "../model/resolve";
import type { FloatTensor } from "../quant/qmodel";
import { buildGguf, type GgufType } from "./gguf-format";
import { sourceFloats, writeModel } from "./write-output";

/** The source with every readF32 logged; `fail` names a tensor whose read throws. */
function logged(source: TensorSource, log: string[], fail?: string): TensorSource {
  return {
    ...source,
    readF32: async (name) => {
      log.push(name);
      if (name === fail) throw new LowbitError("E_IO", `${name}: unreadable`);
      return source.readF32(name);
    },
  };
}

/** Every tensor read into memory first (what convert did before it streamed). */
async function inMemory(m: OpenedModel): Promise<Map<string, FloatTensor>> {
  const out = new Map<string, FloatTensor>();
  for (const [name, shape] of expectedTensors(m.config)) out.set(name, { shape, data: await m.source.readF32(name) });
  return out;
}

describe.skipIf(!hasData)("convert of a float model, one tensor at a time", () => {
  const dir = hasData ? tmpDir("lowbit-convert-stream-") : "";
  const models: Record<"llama2c" | "hf", OpenedModel> = {} as never;

  beforeAll(async () => {
    const tokenizer = dataFile("stories260K", "tok512.bin");
    models.llama2c = await openModel(await resolveModel(dataFile("stories260K", "stories260K.bin"), { tokenizer, needTokenizer: "optional" }));
    // a Hugging Face folder of the same model, read lazily from its safetensors file
    const hf = join(dir, "hf");
    await writeModel("safetensors", hf, { config: models.llama2c.config, floats: await inMemory(models.llama2c), tokenizer: models.llama2c.tokenizerFiles });
    models.hf = await openModel(await resolveModel(hf, { needTokenizer: "optional" }));
  }, 30_000);
  afterAll(async () => {
    for (const m of Object.values(models)) await m?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const cases: Array<["llama2c" | "hf", GgufType | undefined]> = [];
  for (const kind of ["llama2c", "hf"] as const) for (const t of [undefined, "f32", "f16", "q8_0", "q4_0", "q4_1"] as const) cases.push([kind, t]);

  it.each(cases)("%s to GGUF %s: the bytes, types and notes of the in-memory path; each tensor read once, in file order", async (kind, type) => {
    const m = models[kind];
    const want = join(dir, `${kind}-${type}-want.gguf`);
    const built = await buildGguf({ config: m.config, floats: await inMemory(m), tokenizer: m.tokenizerFiles }, { type });
    await writeGguf(want, built.input);
    const log: string[] = [];
    const got = join(dir, `${kind}-${type}-got.gguf`);
    const floats = sourceFloats(m.config, logged(m.source, log));
    expect(log).toEqual([]);
    const w = await writeModel("gguf", got, { config: m.config, floats, tokenizer: m.tokenizerFiles }, { ggufType: type });
    expect(readFileSync(got).equals(readFileSync(want))).toBe(true);
    expect(w.ggufTypes).toEqual(built.types);
    expect(w.notes).toEqual(built.notes);
    const f = await readGguf(got);
    expect(log).toEqual(f.tensors.map((t) => t.name));
    await f.close();
  });

  it.each([
    ["llama2c", "f32"],
    ["llama2c", "f16"],
    ["hf", "f32"],
    ["hf", "f16"],
  ] as const)("%s to safetensors %s: the bytes of the in-memory path; each tensor read once, in file order", async (kind, dtype) => {
    const m = models[kind];
    const want = join(dir, `${kind}-${dtype}-want`);
    await writeModel("safetensors", want, { config: m.config, floats: await inMemory(m), tokenizer: m.tokenizerFiles }, { dtype });
    const log: string[] = [];
    const got = join(dir, `${kind}-${dtype}-got`);
    await writeModel("safetensors", got, { config: m.config, floats: sourceFloats(m.config, logged(m.source, log)), tokenizer: m.tokenizerFiles }, { dtype });
    expect(readdirSync(got).sort()).toEqual(readdirSync(want).sort());
    for (const n of readdirSync(want)) expect(readFileSync(join(got, n)).equals(readFileSync(join(want, n))), n).toBe(true);
    const st = await openSafetensorsModel(join(got, "model.safetensors"));
    const fileOrder = [...st.tensors.keys()];
    await st.close();
    expect(log.map((n) => hfNameFromInternal(n))).toEqual(fileOrder);
  });

  it.each(["gguf", "safetensors"] as const)("a source read that fails while writing %s: the error, and no output or temporary left", async (format) => {
    const m = models.hf;
    const sub = join(dir, `fail-${format}`);
    mkdirSync(sub);
    const out = join(sub, format === "gguf" ? "m.gguf" : "m");
    const log: string[] = [];
    const floats = sourceFloats(m.config, logged(m.source, log, "blk.1.ffn_up.weight"));
    await expect(writeModel(format, out, { config: m.config, floats, tokenizer: m.tokenizerFiles }, { ggufType: format === "gguf" ? "q8_0" : undefined })).rejects.toMatchObject({
      code: "E_IO",
      message: expect.stringMatching(/blk\.1\.ffn_up\.weight: unreadable/),
    });
    // tensors before it were read (and written), nothing after it
    expect(log.at(-1)).toBe("blk.1.ffn_up.weight");
    expect(log.length).toBeGreaterThan(1);
    expect(readdirSync(sub)).toEqual([]);
  });

  it("a source missing a tensor fails before anything is read", () => {
    const m = models.llama2c;
    const log: string[] = [];
    const source = logged(m.source, log);
    const missing: TensorSource = { ...source, shape: (name) => (name === "blk.3.attn_v.weight" ? undefined : source.shape(name)) };
    expect(() => sourceFloats(m.config, missing, "stories260K.bin")).toThrow(expect.objectContaining({ code: "E_MISSING_TENSOR", message: expect.stringMatching(/stories260K\.bin: missing tensors: blk\.3\.attn_v\.weight/) }));
    expect(log).toEqual([]);
  });
});
