import path from "node:path";
import { GGML_TYPE, llama2cToGguf, readLlama2cCheckpoint, readLlama2cTokenizer, writeGguf } from "@lowbit/formats";
import { quantizeGgufInt4 } from "@lowbit/int4";
import { quantizeQ8_0 } from "@lowbit/int8";
import { dataFile, hasData, tmpDir } from "@lowbit/testing";
import { decodeBf16, decodeF16, encodeBf16, encodeF16 } from "@lowbit/tensor";
import { beforeAll, describe, expect, it } from "vitest";
import { ggufTensorType } from "../src/gguf-types";
import { generate, type LlamaModel, loadGguf, loadGgufTokenizer, loadLlama2c, loadModel, Llama2cTokenizer } from "../src/index";

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
const bf16All: Encode = (_n, data) => ({ type: GGML_TYPE.BF16, data: encodeBf16(data) });
/** F32 tensors holding exactly the values a 16-bit file stores (weights rounded to f16 / bf16). */
const roundedF32 =
  (format: "f16" | "bf16"): Encode =>
  (_n, data) => ({ type: GGML_TYPE.F32, data: format === "f16" ? decodeF16(encodeF16(data)) : decodeBf16(encodeBf16(data)) });

/** max |a - b| / max |a|. */
function maxRel(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i]! - b[i]!));
    den = Math.max(den, Math.abs(a[i]!));
  }
  return num / den;
}
/**
 * Matrices whose rows are a multiple of 32 in a block format; the rest (norms, and ffn_down whose
 * rows of 172 are not, as llama.cpp does) as F16 (ffn_down) or F32 (norms).
 */
const blocks =
  (format: "q8_0" | "q4_0" | "q4_1"): Encode =>
  (_n, data, shape) => {
    if (shape.length !== 2) return { type: GGML_TYPE.F32, data };
    const [rows, cols] = shape as [number, number];
    if (cols % 32 !== 0) return { type: GGML_TYPE.F16, data: encodeF16(data) };
    if (format === "q8_0") return { type: GGML_TYPE.Q8_0, data: quantizeQ8_0(data) };
    return { type: format === "q4_0" ? GGML_TYPE.Q4_0 : GGML_TYPE.Q4_1, data: quantizeGgufInt4(format, data, rows, cols) };
  };

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
    const m = await loadModel(file); // detected by its magic
    expect(m.config.architecture).toBe("llama");
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

  // tolerances: relative RMS error of all logits over a 16-token prompt, per bit width
  it.each([
    ["F16", 2e-3, "f16", f16All],
    ["BF16", 2e-2, "bf16", bf16All],
    ["Q8_0", 2e-2, "q8_0", blocks("q8_0")],
    ["Q4_0", 0.2, "q4_0", blocks("q4_0")],
    ["Q4_1", 0.2, "q4_1", blocks("q4_1")],
  ] as const)("%s: logits within %s relative RMS error of f32, through %s linears", async (_name, tol, kind, enc) => {
    // tolerance per bit width (16, 8, 4)
    const m = await loadGguf(await writeStoriesGguf(enc));
    expect(m.getLinear(0, "attn_q").kind).toBe(kind);
    // ffn_down is F16 in the block encodings (rows of 172), kept 16-bit by default
    expect(m.getLinear(0, "ffn_down").kind).toBe(kind === "bf16" ? "bf16" : "f16");
    // the embedding stays in its file encoding, decoded per looked-up row
    expect(m.weights.embeddingTable?.kind).toBe(_name.toLowerCase());
    expect(relRmse(f32.embeddingWeight(), m.embeddingWeight())).toBeLessThan(tol);
    expect(m.storageBytes).toBeLessThan(f32.storageBytes);
    const logits = m.forward(prompt, m.createCache(), "all");
    const err = relRmse(refLogits, logits);
    expect(err).toBeLessThan(tol);
    expect(err).toBeGreaterThan(0);
  });

  it.each(["f16", "bf16"] as const)(
    "%s GGUF: 16-bit linears (half the bytes) give the logits of an F32 GGUF of the same rounded values up to summation order",
    async (format) => {
      const file = await writeStoriesGguf(format === "f16" ? f16All : bf16All);
      const half = await loadGguf(file);
      const rounded = await loadGguf(await writeStoriesGguf(roundedF32(format)));
      // halfWeights "f32": the same file's linears decoded to f32 at load
      const wide = await loadGguf(file, { halfWeights: "f32" });
      expect(new Set(Object.values(wide.backends()[0]!))).toEqual(new Set(["f32"]));
      expect(wide.weights.output.kind).toBe("f32");
      for (const name of ["attn_q", "attn_k", "ffn_gate", "ffn_down"] as const) {
        const a = half.getLinear(1, name);
        const b = rounded.getLinear(1, name);
        expect(a.kind).toBe(format);
        expect(b.kind).toBe("f32");
        expect(a.storageBytes * 2).toBe(b.storageBytes);
        expect(Array.from(a.dequantizedWeight())).toEqual(Array.from(b.dequantizedWeight()));
      }
      // tied classifier over the 16-bit embedding, also kept 16-bit
      expect(half.weights.output.kind).toBe(format);
      // the conversion is exact: only f32 summation order may differ (here it does not even do that)
      const a = half.forward(prompt, half.createCache(), "all");
      const b = rounded.forward(prompt, rounded.createCache(), "all");
      expect(maxRel(b, a)).toBeLessThan(1e-5);
      expect(maxRel(b, wide.forward(prompt, wide.createCache(), "all"))).toBeLessThan(1e-5);
      const ga = generate(half, [1], { maxTokens: 24, stopTokens: [] }).tokens;
      expect(generate(rounded, [1], { maxTokens: 24, stopTokens: [] }).tokens).toEqual(ga);
    },
  );

  it.each([
    [1, "F16", "f16"],
    [30, "BF16", "bf16"],
  ] as const)('ggml type %i (%s): the table makes a %s HalfLinear, or with halfWeights "f32" an f32 linear of the decoded values', (id, _name, kind) => {
    const [out, inp] = [8, 20];
    const w = Float32Array.from({ length: out * inp }, (_, i) => Math.sin(i) / 3);
    const bits = kind === "f16" ? encodeF16(w) : encodeBf16(w);
    const bytes = new Uint8Array(bits.buffer);
    const type = ggufTensorType(id, "test");
    const kept = type.linear!(bytes, out, inp, undefined, "w");
    const wide = type.linear!(bytes, out, inp, undefined, "w", undefined, "f32");
    expect([kept.kind, wide.kind]).toEqual([kind, "f32"]);
    expect([kept.storageBytes, wide.storageBytes]).toEqual([2 * out * inp, 4 * out * inp]);
    expect(Array.from(kept.dequantizedWeight())).toEqual(Array.from(type.toF32(bytes, out * inp)));
    const x = Float32Array.from({ length: 3 * inp }, (_, i) => Math.cos(i));
    expect(maxRel(wide.forward(x, 3), kept.forward(x, 3))).toBeLessThan(1e-5);
    // an odd byte offset (as in a file) is copied, not misread
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    expect(Array.from(type.linear!(shifted.subarray(1), out, inp, undefined, "w").dequantizedWeight())).toEqual(Array.from(kept.dequantizedWeight()));
    expect(() => type.linear!(bytes, out, inp, undefined, "w", undefined, "f8" as "f32")).toThrow(/halfWeights must be "keep" or "f32"/);
  });

  it("Q8_0 GGUF (int8's encoder, ffn_down F16) greedy decoding agrees with f32 for the first 32 tokens", async () => {
    const m = await loadGguf(await writeStoriesGguf(blocks("q8_0")));
    const a = generate(f32, [1], { maxTokens: 32, stopTokens: [] }).tokens;
    const b = generate(m, [1], { maxTokens: 32, stopTokens: [] }).tokens;
    expect(b).toEqual(a);
  });

  it("F16 GGUF greedy decoding agrees with f32 for the first 32 tokens", async () => {
    const m = await loadGguf(await writeStoriesGguf(f16All));
    const a = generate(f32, [1], { maxTokens: 32, stopTokens: [] }).tokens;
    const b = generate(m, [1], { maxTokens: 32, stopTokens: [] }).tokens;
    expect(b).toEqual(a);
  });
});
