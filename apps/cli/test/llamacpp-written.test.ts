import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { type GgufFile, readGguf } from "@lowbit/formats";
import { quantizeQ4_0Ref, quantizeQ4_1Ref } from "@lowbit/int4";
import { quantizeQ8_0Ref } from "@lowbit/int8";
import { evaluate, ggufSource, type LlamaModel, loadGgufTokenizer, loadModel } from "@lowbit/runtime";
import { encodeF16 } from "@lowbit/tensor";
import { dataFile, hasData, tmpDir } from "@lowbit/testing";
import { getLlama, type Llama, LlamaLogLevel } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run } from "../src/test-helpers";
import { compareDecodeWithLibggml, compileHarness, llamaBinsDir, llamaCppGreedyProbs, runHarness, softmaxRow } from "./llamacpp/harness";

/**
 * GGUF files written by llama.cpp itself, loaded by lowbit. lowbit writes stories260K as an F32
 * GGUF; llama.cpp's llama_model_quantize (node-llama-cpp's prebuilt libllama, default parameters,
 * driven by test/llamacpp/quantize.c) turns it into F16, Q8_0, Q4_0 and Q4_1 files. lowbit's runtime
 * then has to read llama.cpp's choice of type per tensor, decode every tensor exactly as libggml's
 * own dequantize_row_* does, and predict the next token as llama.cpp does on the same file.
 *
 * Needs gcc with the C library headers (Debian: gcc, libc6-dev) and node-llama-cpp's prebuilt
 * binaries for this platform; either missing is an error that names it, not a skip.
 */

const GGML = { F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q8_0: 8 } as const;
const FILES = [
  { type: "f16", ggml: GGML.F16, fileType: 1 },
  { type: "q8_0", ggml: GGML.Q8_0, fileType: 7 },
  { type: "q4_0", ggml: GGML.Q4_0, fileType: 2 },
  { type: "q4_1", ggml: GGML.Q4_1, fileType: 3 },
] as const;
type FileType = (typeof FILES)[number]["type"];

describe.skipIf(!hasData)("GGUF written by llama.cpp, loaded by lowbit (stories260K)", () => {
  const dir = hasData ? tmpDir("lowbit-llamacpp-") : "";
  const f32Path = join(dir, "stories260K-f32.gguf");
  const paths = {} as Record<FileType, string>;
  let bins: string;
  let exe: string;
  let llama: Llama;
  let f32File: GgufFile;

  const harness = (...args: string[]) => runHarness(exe, bins, ...args);

  beforeAll(async () => {
    bins = llamaBinsDir();
    exe = compileHarness(dir);
    const c = await run(["convert", dataFile("stories260K", "stories260K.bin"), "--to", "gguf", "--gguf-type", "f32", "--out", f32Path]);
    expect(c.code, c.stderr).toBe(0);
    for (const f of FILES) {
      paths[f.type] = join(dir, `stories260K-${f.type}.llamacpp.gguf`);
      harness("quantize", f32Path, paths[f.type], f.type);
    }
    f32File = await readGguf(f32Path);
    llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
  }, 120_000);

  afterAll(async () => {
    await f32File?.close();
    await llama?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The type llama.cpp's default rules give each tensor of stories260K (dim 64, hidden 172, tied embedding). */
  function expectedType(f: (typeof FILES)[number], name: string, dims: readonly number[]): number {
    if (dims.length === 1) return GGML.F32; // norms stay f32
    if (f.type === "f16") return GGML.F16;
    if (dims[0]! % 32 !== 0) return GGML.F16; // ffn_down rows of 172: no 32-block type fits
    // the tied embedding is also the classifier: Q6_K for Q4_x, which needs rows of 256 -> Q8_0
    if (name === "token_embd.weight") return GGML.Q8_0;
    return f.ggml;
  }

  it.each(FILES)("$type: llama.cpp chose its own type per tensor, and lowbit reads every tensor", async (f) => {
    const file = await readGguf(paths[f.type]);
    try {
      expect(Number(file.get("general.file_type"))).toBe(f.fileType);
      expect(file.tensors).toHaveLength(f32File.tensors.length);
      const counts = new Map<number, number>();
      for (const t of file.tensors) {
        expect([t.name, t.type]).toEqual([t.name, expectedType(f, t.name, t.dims)]);
        counts.set(t.type, (counts.get(t.type) ?? 0) + 1);
      }
      expect(counts.get(f.ggml)).toBeGreaterThanOrEqual(f.type === "f16" ? 36 : 30);
    } finally {
      await file.close();
    }
  });

  /** lowbit's encoder for a type, applied to the F32 weights (F16: round to nearest even). */
  const ENCODE: Record<number, (x: Float32Array) => Uint8Array> = {
    [GGML.F32]: (x) => new Uint8Array(x.buffer, x.byteOffset, x.byteLength),
    [GGML.F16]: (x) => {
      const h = encodeF16(x);
      return new Uint8Array(h.buffer, h.byteOffset, h.byteLength);
    },
    [GGML.Q8_0]: (x) => quantizeQ8_0Ref(x),
    [GGML.Q4_0]: (x) => quantizeQ4_0Ref(x),
    [GGML.Q4_1]: (x) => quantizeQ4_1Ref(x),
  };

  it.each(FILES)("$type: llama.cpp's bytes are lowbit's encoding of the same f32 weights, bit for bit", async (f) => {
    const file = await readGguf(paths[f.type]);
    try {
      for (const t of file.tensors) {
        const n = t.dims.reduce((a, d) => a * d, 1);
        const source = await f32File.read(t.name);
        const x = new Float32Array(source.slice().buffer, 0, n);
        expect(Buffer.from(await file.read(t.name)).equals(Buffer.from(ENCODE[t.type]!(x))), `${t.name} (type ${t.type})`).toBe(true);
      }
    } finally {
      await file.close();
    }
  });

  const NAME: Record<number, string> = { [GGML.F16]: "f16", [GGML.Q8_0]: "q8_0", [GGML.Q4_0]: "q4_0", [GGML.Q4_1]: "q4_1" };

  it.each(FILES)("$type: lowbit's runtime decodes every tensor exactly as libggml's dequantize_row_*", async (f) => {
    const file = await readGguf(paths[f.type]);
    try {
      const source = ggufSource(file);
      const checks = await compareDecodeWithLibggml(file, source, dir, f.type, (type) => NAME[type]!, harness);
      const types = [...new Set(checks.map((c) => c.type))];
      expect(types.sort()).toEqual([...new Set(file.tensors.map((t) => t.type).filter((t) => t !== GGML.F32))].sort());
      let checked = 0;
      for (const c of checks) {
        expect(c.decoded).toBe(c.n);
        expect(c.firstDiff, `${c.name}: first differing value`).toBe(-1);
        checked += c.n;
      }
      expect(checked).toBeGreaterThan(60_000);
    } finally {
      await file.close();
    }
  });

  const PROMPTS = ["", "Once upon a time, there was a little dog", "Tom and Sue went to the park"];
  const STEPS = 24;

  // Largest |p_llama.cpp - p_lowbit| over the vocabulary along llama.cpp's greedy path. F16
  // differs by accumulation order and llama.cpp's f16 KV cache; for the block types llama.cpp
  // quantizes activations to Q8_0 blocks inside every matmul (lowbit does for Q8_0; for Q4_x it
  // keeps f32 activations by default), and the gap grows with the context (see interop.test.ts).
  const PROB_TOLERANCE: Record<FileType, number> = { f16: 5e-3, q8_0: 0.05, q4_0: 0.05, q4_1: 0.05 };

  it.each(FILES)(
    "$type: lowbit's next-token distributions match llama.cpp's on the same file",
    async (f) => {
      const model: LlamaModel = await loadModel(paths[f.type]);
      const tokenizer = await loadGgufTokenizer(paths[f.type]);
      const vocab = model.config.vocabSize;
      let worst = 0;
      let sameTop = 0;
      for (const text of PROMPTS) {
        const prompt = tokenizer.encode(text, { bos: true });
        const theirs = await llamaCppGreedyProbs(llama, paths[f.type], prompt, STEPS);
        expect(theirs.tokens).toHaveLength(STEPS);
        // one pass over prompt + llama.cpp's continuation: row prompt.length - 1 + s predicts step s
        const seq = [...prompt, ...theirs.tokens.slice(0, STEPS - 1)];
        const logits = model.forward(seq, model.createCache(128), "all");
        for (let s = 0; s < STEPS; s++) {
          const ours = softmaxRow(logits, prompt.length - 1 + s, vocab);
          const dist = theirs.probs[s]!;
          expect(dist.size).toBe(vocab);
          let top = 0;
          for (let i = 1; i < vocab; i++) if (ours[i]! > ours[top]!) top = i;
          if (top === theirs.tokens[s]) sameTop++;
          for (const [tok, p] of dist) worst = Math.max(worst, Math.abs(p - ours[tok as number]!));
        }
      }
      console.log(`${f.type} (llama.cpp-written): max |p_llama.cpp - p_lowbit| over ${PROMPTS.length} prompts x ${STEPS} steps = ${worst.toExponential(2)}; same argmax ${sameTop}/${PROMPTS.length * STEPS}`);
      expect(worst).toBeLessThan(PROB_TOLERANCE[f.type]);
      expect(sameTop).toBeGreaterThanOrEqual(PROMPTS.length * STEPS - (f.type === "f16" ? 0 : 2));
    },
    60_000,
  );

  // Perplexity of each llama.cpp-written file against lowbit's F32 model on the same windows.
  const PPL_TOLERANCE: Record<FileType, number> = { f16: 1e-3, q8_0: 5e-3, q4_0: 0.08, q4_1: 0.08 };

  it("perplexity on a slice of tinystories-valid.txt stays close to the f32 model's", async () => {
    const tokenizer = await loadGgufTokenizer(f32Path);
    const text = readFileSync(dataFile("text", "tinystories-valid.txt"), "utf8").slice(0, 6000);
    const tokens = tokenizer.encode(text, { bos: false });
    const fp = await loadModel(f32Path);
    const opts = { windowLength: 128, maxWindows: 8 };
    const base = evaluate(fp, tokens, opts);
    expect(base.windows).toBe(8);
    const report = [`f32 ${base.perplexity.toFixed(4)}`];
    for (const f of FILES) {
      const r = evaluate(await loadModel(paths[f.type]), tokens, { ...opts, reference: fp });
      report.push(`${f.type} ${r.perplexity.toFixed(4)} (KL ${r.kl!.toExponential(2)}, top-1 ${(100 * r.top1!).toFixed(1)}%)`);
      expect(Math.abs(r.perplexity / base.perplexity - 1), f.type).toBeLessThan(PPL_TOLERANCE[f.type]);
    }
    console.log(`perplexity, ${base.windows} windows x ${opts.windowLength} tokens: ${report.join("; ")}`);
  }, 60_000);
});
