import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { isLowbitError } from "@lowbit/tensor";
import { dataFile, hasData, repoRoot, tmpDir } from "@lowbit/testing";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type Llama2cConfig,
  parseLlama2cCheckpoint,
  parseLlama2cTokenizer,
  readLlama2cCheckpoint,
  readLlama2cTokenizer,
} from "./llama2c";
import { randomTensors } from "./llama2c-test-tensors";
import {
  encodeLlama2cCheckpoint,
  encodeLlama2cTokenizer,
  type Llama2cTensorInput,
  writeLlama2cCheckpoint,
  writeLlama2cTokenizer,
} from "./llama2c-write";

const SEED = 20261126;

/** -1 when a and b hold the same bytes, else the first index where they differ (fast on large arrays). */
function firstDiff(a: Uint8Array, b: Uint8Array): number {
  if (Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))) return -1;
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

const bitsOf = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);
const bytesOf = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** The reader's result equals the input, bit for bit (NaN payloads too). */
function expectSameTensors(got: Map<string, { shape: number[]; data: Float32Array }>, want: Map<string, { shape: number[]; data: Float32Array }>) {
  expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
  for (const [name, t] of want) {
    expect(got.get(name)!.shape, name).toEqual(t.shape);
    expect(firstDiff(bytesOf(got.get(name)!.data), bytesOf(t.data)), name).toBe(-1);
  }
}

const base: Llama2cConfig = { dim: 8, hiddenDim: 12, nLayers: 2, nHeads: 2, nKvHeads: 1, vocabSize: 5, seqLen: 3, sharedClassifier: true };

describe("llama2.c checkpoint writer", () => {
  const dir = tmpDir();

  it.each([
    ["shared classifier, GQA", base],
    ["separate classifier", { ...base, sharedClassifier: false }],
    ["MHA, one layer", { ...base, nLayers: 1, nKvHeads: 2 }],
    ["head size 2, long context", { ...base, dim: 4, nHeads: 2, nKvHeads: 2, seqLen: 40 }],
  ])("%s: encode, write, read and parse agree bit for bit", async (label, config) => {
    const tensors = randomTensors(config, label.length);
    const bytes = encodeLlama2cCheckpoint(config, tensors);
    const p = join(dir, "rt.bin");
    await writeLlama2cCheckpoint(p, config, tensors);
    expect(new Uint8Array(readFileSync(p))).toEqual(bytes);
    for (const ckpt of [await readLlama2cCheckpoint(p), parseLlama2cCheckpoint(bytes, "rt.bin")]) {
      expect(ckpt.config).toEqual(config);
      expectSameTensors(ckpt.tensors, tensors);
    }
  });

  it("writes run.c's freq_cis tables (cos/sin of p / 10000^(2i/head_size)) before a separate classifier", () => {
    const config = { ...base, sharedClassifier: false };
    const tensors = randomTensors(config, 7);
    const bytes = encodeLlama2cCheckpoint(config, tensors);
    const weights = [...tensors.values()].reduce((a, t) => a + t.data.length, 0) - 5 * 8;
    const dv = new DataView(bytes.buffer);
    const at = (float: number) => dv.getFloat32(28 + float * 4, true);
    // head size 4: 2 frequencies per position, 3 positions; real then imaginary
    for (let p = 0; p < 3; p++) {
      for (let i = 0; i < 2; i++) {
        const a = p / 10000 ** ((2 * i) / 4);
        expect(at(weights + p * 2 + i)).toBe(Math.fround(Math.cos(a)));
        expect(at(weights + 6 + p * 2 + i)).toBe(Math.fround(Math.sin(a)));
      }
    }
    expect(bitsOf(new Float32Array(bytes.slice(28 + (weights + 12) * 4).buffer))).toEqual(bitsOf(tensors.get("output.weight")!.data));
    expect(dv.getInt32(20, true)).toBe(-5);
    const other = encodeLlama2cCheckpoint(config, tensors, { ropeTheta: 500000 });
    expect(other.byteLength).toBe(bytes.byteLength);
    expect(other).not.toEqual(bytes);
  });

  it("property: any consistent config and any f32 bits round-trip through parseLlama2cCheckpoint", () => {
    const cfg = fc.record({
      nKvHeads: fc.integer({ min: 1, max: 3 }),
      group: fc.integer({ min: 1, max: 3 }),
      halfHead: fc.integer({ min: 1, max: 4 }),
      hiddenDim: fc.integer({ min: 1, max: 20 }),
      nLayers: fc.integer({ min: 1, max: 3 }),
      vocabSize: fc.integer({ min: 1, max: 20 }),
      seqLen: fc.integer({ min: 1, max: 16 }),
      sharedClassifier: fc.boolean(),
      seed: fc.nat(),
    });
    fc.assert(
      fc.property(cfg, (c) => {
        const nHeads = c.nKvHeads * c.group;
        const config: Llama2cConfig = {
          dim: nHeads * 2 * c.halfHead,
          hiddenDim: c.hiddenDim,
          nLayers: c.nLayers,
          nHeads,
          nKvHeads: c.nKvHeads,
          vocabSize: c.vocabSize,
          seqLen: c.seqLen,
          sharedClassifier: c.sharedClassifier,
        };
        const tensors = randomTensors(config, c.seed);
        const bytes = encodeLlama2cCheckpoint(config, tensors);
        const ckpt = parseLlama2cCheckpoint(bytes);
        expect(ckpt.config).toEqual(config);
        expectSameTensors(ckpt.tensors, tensors);
        expect(firstDiff(encodeLlama2cCheckpoint(ckpt.config, ckpt.tensors), bytes)).toBe(-1);
      }),
      { seed: SEED, numRuns: 200 },
    );
  });

  const tensors = randomTensors(base, 1);
  const without = (name: string) => new Map([...tensors].filter(([n]) => n !== name));
  const replaced = (name: string, t: Llama2cTensorInput) => new Map<string, Llama2cTensorInput>([...tensors, [name, t]]);
  it.each<[string, Llama2cConfig, Map<string, Llama2cTensorInput>, string, RegExp]>([
    ["a missing tensor", base, without("blk.1.ffn_up.weight"), "E_MISSING_TENSOR", /"blk\.1\.ffn_up\.weight"/],
    ["every missing tensor at once", base, new Map(), "E_MISSING_TENSOR", /"token_embd\.weight".*"output_norm\.weight"/],
    ["a separate classifier missing", { ...base, sharedClassifier: false }, tensors, "E_MISSING_TENSOR", /"output\.weight"/],
    [
      "wrong length",
      base,
      replaced("blk.0.attn_k.weight", { shape: [4, 8], data: new Float32Array(31) }),
      "E_SHAPE_MISMATCH",
      /tensor "blk\.0\.attn_k\.weight" has 31 values; expected 32 \(shape \[4, 8\]\)/,
    ],
    [
      "wrong shape, right length",
      base,
      replaced("blk.0.ffn_down.weight", { shape: [12, 8], data: new Float32Array(96) }),
      "E_SHAPE_MISMATCH",
      /tensor "blk\.0\.ffn_down\.weight" has shape \[12, 8\]; expected \[8, 12\]/,
    ],
    [
      "not float32",
      base,
      replaced("output_norm.weight", { data: new Float64Array(8) as unknown as Float32Array }),
      "E_DTYPE",
      /tensor "output_norm\.weight": data must be a Float32Array/,
    ],
    ["a classifier the config shares", base, replaced("output.weight", { data: new Float32Array(40) }), "E_INVALID_ARGUMENT", /"output\.weight".*sharedClassifier/],
    ["an unknown tensor", base, replaced("blk.0.attn_q.bias", { data: new Float32Array(8) }), "E_INVALID_ARGUMENT", /"blk\.0\.attn_q\.bias"/],
    ["a zero field", { ...base, seqLen: 0 }, tensors, "E_LLAMA2C", /config field seqLen is 0/],
    ["a fractional field", { ...base, hiddenDim: 12.5 }, tensors, "E_LLAMA2C", /config field hiddenDim is 12\.5/],
    ["a field beyond int32", { ...base, vocabSize: 2 ** 31 }, tensors, "E_LLAMA2C", /config field vocabSize/],
    ["dim not divisible by heads", { ...base, nHeads: 3, nKvHeads: 1 }, tensors, "E_LLAMA2C", /not divisible by n_heads/],
  ])("rejects %s (LowbitError naming it) and writes nothing", async (_label, config, input, code, message) => {
    const err = (() => {
      try {
        encodeLlama2cCheckpoint(config, input);
      } catch (e) {
        return e;
      }
    })();
    expect(isLowbitError(err)).toBe(true);
    expect(err).toMatchObject({ code, message: expect.stringMatching(message) });
    const sub = tmpDir();
    const p = join(sub, "bad.bin");
    await expect(writeLlama2cCheckpoint(p, config, input)).rejects.toMatchObject({ code });
    expect(readdirSync(sub)).toEqual([]);
  });

  it("rejects a bad ropeTheta", () => {
    expect(() => encodeLlama2cCheckpoint(base, tensors, { ropeTheta: 0 })).toThrow(/ropeTheta is 0/);
  });
});

describe("llama2.c tokenizer writer", () => {
  const dir = tmpDir();
  const enc = new TextEncoder();
  const tok = (pieces: string[], scores: number[], maxTokenLength?: number) => ({
    tokens: pieces.map((p) => enc.encode(p)),
    scores: Float32Array.from(scores),
    ...(maxTokenLength === undefined ? {} : { maxTokenLength }),
  });

  it.each([
    ["specials and bytes", tok(["<unk>", "\n<s>\n", "<0x00>", " the"], [0, 0, 0, -1.5])],
    ["empty and multibyte tokens", tok(["", "\u2581", "é"], [1e30, Number.NEGATIVE_INFINITY, -0])],
    ["a larger max_token_length", tok(["a", "bc"], [0, -1], 16)],
  ])("%s: write, read and parse agree", async (_label, t) => {
    const bytes = encodeLlama2cTokenizer(t);
    const p = join(dir, "tok.bin");
    await writeLlama2cTokenizer(p, t);
    expect(new Uint8Array(readFileSync(p))).toEqual(bytes);
    for (const got of [await readLlama2cTokenizer(p), parseLlama2cTokenizer(bytes)]) {
      expect(got.tokens).toEqual(t.tokens);
      expect(bitsOf(got.scores)).toEqual(bitsOf(t.scores));
      expect(got.maxTokenLength).toBe(t.maxTokenLength ?? Math.max(...t.tokens.map((x) => x.length)));
    }
  });

  it("property: any token bytes and non-NaN scores round-trip byte for byte", () => {
    const entry = fc.tuple(fc.uint8Array({ maxLength: 12 }), fc.float({ noNaN: true }));
    fc.assert(
      fc.property(fc.array(entry, { minLength: 1, maxLength: 40 }), fc.nat({ max: 8 }), (entries, extra) => {
        const tokens = entries.map(([b]) => b);
        const longest = Math.max(1, ...tokens.map((b) => b.length));
        const input = { tokens, scores: entries.map(([, s]) => s), maxTokenLength: longest + extra };
        const bytes = encodeLlama2cTokenizer(input);
        const got = parseLlama2cTokenizer(bytes, "mem", { expectedVocabSize: tokens.length });
        expect(got.tokens).toEqual(tokens);
        expect(Array.from(got.scores)).toEqual(input.scores.map(Math.fround));
        expect(got.maxTokenLength).toBe(longest + extra);
        expect(encodeLlama2cTokenizer(got)).toEqual(bytes);
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  it.each([
    ["no tokens", tok([], []), /no tokens/],
    ["scores of another length", { tokens: [enc.encode("a")], scores: [0, 1] }, /1 tokens but 2 scores/],
    ["a NaN score", tok(["a", "b"], [0, Number.NaN]), /token 1: score is NaN/],
    ["a token longer than maxTokenLength", tok(["a", "abc"], [0, 0], 2), /token 1 is 3 bytes, longer than maxTokenLength 2/],
    ["maxTokenLength 0", tok(["a"], [0], 0), /maxTokenLength is 0/],
  ])("rejects %s with E_TOKENIZER", async (_label, t, message) => {
    expect(() => encodeLlama2cTokenizer(t)).toThrow(message);
    const sub = tmpDir();
    await expect(writeLlama2cTokenizer(join(sub, "tok.bin"), t)).rejects.toMatchObject({ code: "E_TOKENIZER" });
    expect(readdirSync(sub)).toEqual([]);
  });
});

describe("real checkpoints through the writer", () => {
  const demo = join(repoRoot, "tools/demo-model/model");

  it("the committed demo model and tokenizer re-encode to identical bytes", async () => {
    expect(existsSync(join(demo, "model.bin")), "tools/demo-model/model/model.bin is committed").toBe(true);
    const ckpt = await readLlama2cCheckpoint(join(demo, "model.bin"));
    const bytes = new Uint8Array(readFileSync(join(demo, "model.bin")));
    expect(firstDiff(encodeLlama2cCheckpoint(ckpt.config, ckpt.tensors), bytes)).toBe(-1);
    const p = join(tmpDir(), "model.bin");
    await writeLlama2cCheckpoint(p, ckpt.config, ckpt.tensors);
    expect(firstDiff(new Uint8Array(readFileSync(p)), bytes)).toBe(-1);
    const tok = await readLlama2cTokenizer(join(demo, "tokenizer.bin"));
    const { maxTokenLength: _, ...withoutMax } = tok;
    expect(firstDiff(encodeLlama2cTokenizer(withoutMax), new Uint8Array(readFileSync(join(demo, "tokenizer.bin"))))).toBe(-1);
  });

  it.skipIf(!hasData)("stories260K: weights and tokenizer identical; freq_cis within float32 rounding of torch's", async () => {
    const path = dataFile("stories260K", "stories260K.bin");
    const raw = new Uint8Array(readFileSync(path));
    const ckpt = await readLlama2cCheckpoint(path);
    const bytes = encodeLlama2cCheckpoint(ckpt.config, ckpt.tensors);
    expect(bytes.byteLength).toBe(raw.byteLength);
    const freqStart = 28 + 260_032 * 4; // the 260,032 weights, then 2 x 512 x 4 freq_cis floats (shared classifier)
    expect(firstDiff(bytes.subarray(0, freqStart), raw.subarray(0, freqStart))).toBe(-1);
    const ours = new Float32Array(bytes.slice(freqStart).buffer);
    const theirs = new Float32Array(raw.slice(freqStart).buffer);
    let maxErr = 0;
    for (let i = 0; i < ours.length; i++) maxErr = Math.max(maxErr, Math.abs(ours[i]! - theirs[i]!));
    // torch computes the angles p * freq in float32: up to ~511 * 2^-24 apart at the last position
    expect(maxErr).toBeLessThan(1e-4);
    const tokPath = dataFile("stories260K", "tok512.bin");
    expect(firstDiff(encodeLlama2cTokenizer(await readLlama2cTokenizer(tokPath)), new Uint8Array(readFileSync(tokPath)))).toBe(-1);
  });
});
