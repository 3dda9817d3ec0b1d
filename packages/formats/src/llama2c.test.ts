import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isLowbitError } from "@lowbit/tensor";
import { dataFile, hasData, tmpDir } from "@lowbit/testing";
import { describe, expect, it } from "vitest";
import { readLlama2cCheckpoint, readLlama2cTokenizer } from "./llama2c";

const d = describe.skipIf(!hasData);
if (!hasData) console.warn("real data not found (LOWBIT_DATA or ../shared/data): stories260K tests skipped");

const modelPath = () => dataFile("stories260K", "stories260K.bin");
const tokPath = () => dataFile("stories260K", "tok512.bin");

d("readLlama2cCheckpoint on stories260K", () => {
  it("reads the header", async () => {
    const ckpt = await readLlama2cCheckpoint(modelPath());
    expect(ckpt.config).toEqual({
      dim: 64,
      hiddenDim: 172,
      nLayers: 5,
      nHeads: 8,
      nKvHeads: 4,
      vocabSize: 512,
      seqLen: 512,
      sharedClassifier: true,
    });
  });

  it("reads every weight (count, shapes, all bytes accounted for)", async () => {
    const { tensors } = await readLlama2cCheckpoint(modelPath());
    expect(tensors.size).toBe(2 + 9 * 5);
    expect(tensors.has("output.weight")).toBe(false);
    const shapes: Record<string, number[]> = {
      "token_embd.weight": [512, 64],
      "output_norm.weight": [64],
      "blk.4.attn_norm.weight": [64],
      "blk.0.attn_q.weight": [64, 64],
      "blk.0.attn_k.weight": [32, 64],
      "blk.0.attn_v.weight": [32, 64],
      "blk.0.attn_output.weight": [64, 64],
      "blk.0.ffn_norm.weight": [64],
      "blk.0.ffn_gate.weight": [172, 64],
      "blk.0.ffn_down.weight": [64, 172],
      "blk.0.ffn_up.weight": [172, 64],
    };
    for (const [name, shape] of Object.entries(shapes)) expect(tensors.get(name)?.shape).toEqual(shape);
    let floats = 0;
    for (const t of tensors.values()) {
      expect(t.data.length).toBe(t.shape.reduce((a, b) => a * b, 1));
      expect(t.data.every(Number.isFinite)).toBe(true);
      floats += t.data.length;
    }
    // 260,032 weights + 2 * 512 * 4 freq_cis floats + 28-byte header = file size
    expect(floats).toBe(260_032);
    expect(28 + (floats + 4096) * 4).toBe(readFileSync(modelPath()).byteLength);
  });

  it("matches the raw bytes read with a DataView", async () => {
    const { tensors } = await readLlama2cCheckpoint(modelPath());
    const raw = readFileSync(modelPath());
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const f = (floatIndex: number) => dv.getFloat32(28 + floatIndex * 4, true);
    const embd = 512 * 64;
    const rmsAtt = 5 * 64;
    const wq = 5 * 64 * 64;
    const wk = 5 * 32 * 64;
    const wo = 5 * 64 * 64;
    const rmsFfn = 5 * 64;
    const w1 = 5 * 172 * 64;
    const cases: Array<[string, number, number]> = [
      ["token_embd.weight", 0, 0],
      ["token_embd.weight", 511 * 64 + 63, 511 * 64 + 63],
      ["blk.0.attn_norm.weight", 5, embd + 5],
      ["blk.3.attn_norm.weight", 7, embd + 3 * 64 + 7],
      ["blk.2.attn_q.weight", 64 * 10 + 3, embd + rmsAtt + 2 * 4096 + 64 * 10 + 3],
      ["blk.1.attn_k.weight", 100, embd + rmsAtt + wq + 2048 + 100],
      ["blk.4.attn_v.weight", 2047, embd + rmsAtt + wq + wk + 4 * 2048 + 2047],
      ["blk.0.attn_output.weight", 1, embd + rmsAtt + wq + 2 * wk + 1],
      ["blk.2.ffn_norm.weight", 9, embd + rmsAtt + wq + 2 * wk + wo + 2 * 64 + 9],
      ["blk.1.ffn_gate.weight", 333, embd + rmsAtt + wq + 2 * wk + wo + rmsFfn + 172 * 64 + 333],
      ["blk.3.ffn_down.weight", 64 * 172 - 1, embd + rmsAtt + wq + 2 * wk + wo + rmsFfn + w1 + 4 * 172 * 64 - 1],
      ["blk.4.ffn_up.weight", 0, embd + rmsAtt + wq + 2 * wk + wo + rmsFfn + 2 * w1 + 4 * 172 * 64],
      ["output_norm.weight", 63, embd + rmsAtt + wq + 2 * wk + wo + rmsFfn + 3 * w1 + 63],
    ];
    for (const [name, index, floatIndex] of cases) {
      expect(tensors.get(name)!.data[index], `${name}[${index}]`).toBe(f(floatIndex));
    }
    // The RMSNorm weights of a trained model are not all zero; the weights differ between layers.
    expect(tensors.get("blk.0.attn_q.weight")!.data).not.toEqual(tensors.get("blk.1.attn_q.weight")!.data);
  });

  it("reads tok512.bin", async () => {
    const tok = await readLlama2cTokenizer(tokPath(), { expectedVocabSize: 512 });
    expect(tok.maxTokenLength).toBe(7);
    expect(tok.tokens).toHaveLength(512);
    expect(tok.scores).toHaveLength(512);
    const text = (i: number) => new TextDecoder().decode(tok.tokens[i]);
    expect(text(0)).toBe("<unk>");
    expect(text(1)).toBe("\n<s>\n");
    expect(text(2)).toBe("\n</s>\n");
    expect(text(3)).toBe("<0x00>");
    expect(text(258)).toBe("<0xFF>");
    await expect(readLlama2cTokenizer(tokPath(), { expectedVocabSize: 32000 })).rejects.toMatchObject({
      code: "E_TOKENIZER",
    });
  });
});

/** The 28-byte llama2.c header holding these seven int32 values. */
function header(values: number[]): Buffer {
  const b = Buffer.alloc(28);
  values.forEach((v, i) => {
    b.writeInt32LE(v, i * 4);
  });
  return b;
}

describe("readLlama2cCheckpoint validation", () => {
  const dir = tmpDir();
  // dim 8, hidden 12, 1 layer, 2 heads, 1 kv head, vocab 4, seq 2 -> kvDim 4, headSize 4
  const good = [8, 12, 1, 2, 1, 4, 2];
  const weights = 4 * 8 + 8 + 64 + 32 + 32 + 64 + 8 + 96 * 3 + 8;
  const freq = 2 * 4;

  it("reads a separate classifier after the freq_cis tables (negative vocab_size)", async () => {
    const h = header([8, 12, 1, 2, 1, -4, 2]);
    const body = new Float32Array(weights + freq + 32);
    for (let i = 0; i < body.length; i++) body[i] = i;
    const p = join(dir, "unshared.bin");
    writeFileSync(p, Buffer.concat([h, Buffer.from(body.buffer)]));
    const { config, tensors } = await readLlama2cCheckpoint(p);
    expect(config.sharedClassifier).toBe(false);
    expect(config.vocabSize).toBe(4);
    const out = tensors.get("output.weight")!;
    expect(out.shape).toEqual([4, 8]);
    expect(out.data[0]).toBe(weights + freq);
    expect(out.data[31]).toBe(weights + freq + 31);
    expect(tensors.get("output_norm.weight")!.data[7]).toBe(weights - 1);
  });

  it.each([
    ["dim", [0, 12, 1, 2, 1, 4, 2], /dim is 0/],
    ["hidden_dim", [8, -1, 1, 2, 1, 4, 2], /hidden_dim is -1/],
    ["n_layers", [8, 12, 0, 2, 1, 4, 2], /n_layers is 0/],
    ["n_heads", [8, 12, 1, 0, 1, 4, 2], /n_heads is 0/],
    ["n_kv_heads", [8, 12, 1, 2, -3, 4, 2], /n_kv_heads is -3/],
    ["vocab_size", [8, 12, 1, 2, 1, 0, 2], /vocab_size is 0/],
    ["seq_len", [8, 12, 1, 2, 1, 4, 0], /seq_len is 0/],
    ["dim % n_heads", [8, 12, 1, 3, 1, 4, 2], /dim \(8\) is not divisible by n_heads \(3\)/],
    ["odd head size", [6, 12, 1, 2, 1, 4, 2], /head size dim\/n_heads = 3 must be even/],
    ["n_heads % n_kv_heads", [8, 12, 1, 2, 3, 4, 2], /n_heads \(2\) is not divisible by n_kv_heads \(3\)/],
    ["file size", [8, 12, 2, 2, 1, 4, 2], /file size is \d+ bytes but the header/],
    ["huge dims", [0x40000000, 0x7fffffff, 0x7fffffff, 1, 1, 0x7fffffff, 0x7fffffff], /file size/],
  ])("rejects bad %s with E_LLAMA2C naming the field", async (_label, values, message) => {
    const p = join(dir, "bad.bin");
    writeFileSync(p, Buffer.concat([header(values), Buffer.alloc((weights + freq) * 4)]));
    const err = await readLlama2cCheckpoint(p).catch((e: unknown) => e);
    expect(isLowbitError(err)).toBe(true);
    expect(err).toMatchObject({ code: "E_LLAMA2C", message: expect.stringMatching(message) });
  });

  it("accepts the well-formed variant of the same file", async () => {
    const p = join(dir, "good.bin");
    writeFileSync(p, Buffer.concat([header(good), Buffer.alloc((weights + freq) * 4)]));
    const { tensors } = await readLlama2cCheckpoint(p);
    expect(tensors.get("blk.0.attn_k.weight")!.shape).toEqual([4, 8]);
  });

  it("rejects a truncated header and a missing file", async () => {
    const p = join(dir, "short.bin");
    writeFileSync(p, Buffer.alloc(10));
    await expect(readLlama2cCheckpoint(p)).rejects.toMatchObject({ code: "E_LLAMA2C" });
    await expect(readLlama2cCheckpoint(join(dir, "nope.bin"))).rejects.toMatchObject({ code: "E_FILE_NOT_FOUND" });
  });
});

describe("readLlama2cTokenizer validation", () => {
  const dir = tmpDir();
  const tokenizer = (max: number, entries: Array<[number, number, number[]]>) => {
    const parts = [Buffer.alloc(4)];
    parts[0]!.writeInt32LE(max, 0);
    for (const [score, len, bytes] of entries) {
      const b = Buffer.alloc(8);
      b.writeFloatLE(score, 0);
      b.writeInt32LE(len, 4);
      parts.push(b, Buffer.from(bytes));
    }
    return Buffer.concat(parts);
  };

  it.each([
    ["max_token_length <= 0", tokenizer(0, [[0, 1, [65]]]), /max_token_length is 0/],
    ["negative length", tokenizer(4, [[0, -1, []]]), /byte length -1 is negative/],
    ["length > max", tokenizer(2, [[0, 3, [65, 66, 67]]]), /exceeds max_token_length/],
    ["length past end", tokenizer(8, [[0, 5, [65]]]), /runs past the end/],
    ["truncated entry", tokenizer(8, [[0, 1, [65]]]).subarray(0, 9), /truncated/],
    ["NaN score", tokenizer(8, [[Number.NaN, 1, [65]]]), /NaN/],
    ["no tokens", tokenizer(8, []), /no tokens/],
    ["too short", Buffer.alloc(2), /too short/],
  ])("rejects %s with E_TOKENIZER", async (_label, bytes, message) => {
    const p = join(dir, "tok.bin");
    writeFileSync(p, bytes);
    await expect(readLlama2cTokenizer(p)).rejects.toMatchObject({
      code: "E_TOKENIZER",
      message: expect.stringMatching(message),
    });
  });

  it("reads a well-formed file", async () => {
    const p = join(dir, "tok-ok.bin");
    writeFileSync(
      p,
      tokenizer(3, [
        [-1.5, 2, [104, 105]],
        [0, 0, []],
        [2.25, 3, [0xe2, 0x96, 0x81]],
      ]),
    );
    const tok = await readLlama2cTokenizer(p);
    expect(tok.maxTokenLength).toBe(3);
    expect([...tok.scores]).toEqual([-1.5, 0, 2.25]);
    expect(tok.tokens.map((t) => [...t])).toEqual([[104, 105], [], [0xe2, 0x96, 0x81]]);
  });
});
