import path from "node:path";
import { GGML_TYPE, llama2cToGguf, readLlama2cCheckpoint, readLlama2cTokenizer, writeGguf } from "@lowbit/formats";
import { quantizeGgufInt4 } from "@lowbit/int4";
import { dataFile, hasData, tmpDir } from "@lowbit/testing";
import { encodeF16 } from "@lowbit/tensor";
import { beforeAll, describe, expect, it } from "vitest";
import { generate, type LlamaModel, loadGguf, loadGgufTokenizer, loadLlama2c, Llama2cTokenizer } from "../src/index";

/** Relative RMS error of b against a. */
function relRmse(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += a[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

type Encode = (name: string, data: Float32Array, shape: number[]) => { type: number; data: Uint8Array | Uint16Array | Float32Array };

async function writeStoriesGguf(encode: Encode): Promise<string> {
  const ckpt = await readLlama2cCheckpoint(dataFile("stories260K", "stories260K.bin"));
  const tok = await readLlama2cTokenizer(dataFile("stories260K", "tok512.bin"));
  const input = llama2cToGguf(ckpt, tok, { name: "stories260K" });
  const tensors = input.tensors.map((t) => {
    const c = ckpt.tensors.get(t.name)!;
    const e = encode(t.name, c.data, c.shape);
    return { ...t, type: e.type, data: e.data };
  });
  const file = path.join(tmpDir("lowbit-gguf-"), "stories260K.gguf");
  await writeGguf(file, { ...input, tensors });
  return file;
}

const keepF32: Encode = (_n, data) => ({ type: GGML_TYPE.F32, data });
const f16All: Encode = (_n, data) => ({ type: GGML_TYPE.F16, data: encodeF16(data) });
/** Matrices with rows of a multiple of 32 in a 4-bit format; the rest (norms, ffn_down's 172) as F32. */
const int4 =
  (format: "q4_0" | "q4_1"): Encode =>
  (_n, data, shape) =>
    shape.length === 2 && shape[1]! % 32 === 0
      ? { type: format === "q4_0" ? GGML_TYPE.Q4_0 : GGML_TYPE.Q4_1, data: quantizeGgufInt4(format, data, shape[0]!, shape[1]!) }
      : { type: GGML_TYPE.F32, data };

describe.runIf(hasData)("GGUF of stories260K written in the test", () => {
  let f32: LlamaModel;
  const prompt = [1, 403, 407, 261, 378, 395, 267, 261, 300, 400, 272, 266, 280, 290, 301, 320];
  let refLogits: Float32Array;
  beforeAll(async () => {
    f32 = await loadLlama2c(dataFile("stories260K", "stories260K.bin"));
    refLogits = f32.forward(prompt, f32.createCache(), "all");
  });

  it("F32 GGUF loads as the same model (metadata, tokenizer) with identical logits", async () => {
    const file = await writeStoriesGguf(keepF32);
    const m = await loadGguf(file);
    expect(m.config.ropeStyle).toBe("interleaved");
    expect(m.config.tiedEmbeddings).toBe(true);
    expect([m.config.dim, m.config.nKvHeads, m.config.vocabSize]).toEqual([64, 4, 512]);
    expect(Array.from(m.forward(prompt, m.createCache(), "all"))).toEqual(Array.from(refLogits));
    const tok = await loadGgufTokenizer(file);
    const ref = await Llama2cTokenizer.fromFile(dataFile("stories260K", "tok512.bin"));
    const text = "Once upon a time, Lily saw a big red ball. “Wow!” she said.";
    expect(tok.encode(text)).toEqual(ref.encode(text));
    expect(tok.decode(ref.encode(text))).toBe(text);
  });

  it.each([
    ["F16", f16All, 2e-3],
    ["Q4_0 (ffn_down F32)", int4("q4_0"), 0.2],
    ["Q4_1 (ffn_down F32)", int4("q4_1"), 0.2],
  ] as const)("%s logits are within %s relative RMS error of f32", async (_name, enc, tol) => {
    const m = await loadGguf(await writeStoriesGguf(enc));
    const logits = m.forward(prompt, m.createCache(), "all");
    const err = relRmse(refLogits, logits);
    expect(err).toBeLessThan(tol);
    expect(err).toBeGreaterThan(0);
  });

  it("F16 GGUF greedy decoding agrees with f32 for the first 32 tokens", async () => {
    const m = await loadGguf(await writeStoriesGguf(f16All));
    const a = generate(f32, [1], { maxTokens: 32, stopTokens: [] }).tokens;
    const b = generate(m, [1], { maxTokens: 32, stopTokens: [] }).tokens;
    expect(b).toEqual(a);
  });
});
