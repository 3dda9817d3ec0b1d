import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gguf } from "@huggingface/gguf";
import { LowbitError } from "@lowbit/tensor";
import { tmpDir } from "@lowbit/testing";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type GgmlTypeName, ggmlTensorBytes, ggmlTypeInfo } from "./ggml-types";
import { readGguf } from "./gguf-read";
import type { GgufMetadataEntry } from "./gguf-values";
import { encodeGgufHeader, type GgufStreamTensor, type GgufTensorInput, writeGguf, writeGgufStream } from "./gguf-write";

const root = tmpDir("lowbit-gguf-stream-");
let dirCount = 0;
/** A fresh empty folder per case, so leftovers of a failed write are visible. */
const freshDir = () => {
  const d = join(root, String(dirCount++));
  mkdirSync(d);
  return d;
};

const metadata: GgufMetadataEntry[] = [
  { key: "general.architecture", type: "string", value: "llama" },
  { key: "llama.block_count", type: "u32", value: 2 },
  { key: "tokenizer.ggml.tokens", type: "array", itemType: "string", value: ["<unk>", "▁a"] },
];

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 131 + seed * 17 + (i >> 8)) & 0xff);

/** A stream tensor over fixed bytes, its producer's calls recorded in `log`. */
function streamed(t: GgufTensorInput, log: string[] = []): GgufStreamTensor {
  const data = () => {
    log.push(t.name);
    return t.data;
  };
  return { name: t.name, type: t.type, dims: t.dims, byteLength: t.data.byteLength, data };
}

const sample: GgufTensorInput[] = [
  { name: "token_embd.weight", type: "Q8_0", dims: [64, 3], data: bytes(2 * 3 * 34, 1) },
  { name: "blk.0.attn_norm.weight", type: "F32", dims: [5], data: Float32Array.from([1, -2, 3.5, 0, 7]) },
  { name: "blk.0.attn_q.weight", type: "Q4_0", dims: [32, 4], data: bytes(4 * 18, 2) },
  { name: "blk.0.ffn_down.weight", type: "F16", dims: [3, 2, 1], data: bytes(12, 3) },
  { name: "output.weight", type: "Q4_1", dims: [32, 2], data: bytes(2 * 20, 4) },
];

/** Types with their block sizes, small enough for random tensors. */
const TYPES: GgmlTypeName[] = ["F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q8_0", "Q4_K", "Q6_K", "I8", "I32", "F64"];

const tensorArb = fc
  .record({
    type: fc.constantFrom(...TYPES),
    blocks: fc.integer({ min: 0, max: 3 }),
    rest: fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 3 }),
    seed: fc.integer({ min: 0, max: 255 }),
    view: fc.constantFrom("u8", "dataview", "offset", "f32"),
    async: fc.boolean(),
  })
  .map(({ type, blocks, rest, seed, view, async }) => {
    const info = ggmlTypeInfo(type);
    const dims = [blocks * info.blockSize, ...rest];
    const n = Number(ggmlTensorBytes(info, dims));
    const raw = bytes(n, seed);
    // the same bytes behind different views: a DataView, a view at an offset into a larger buffer, a Float32Array
    let data: ArrayBufferView = raw;
    if (view === "dataview") data = new DataView(raw.buffer);
    if (view === "offset") {
      const big = new Uint8Array(n + 24);
      big.set(raw, 8);
      data = big.subarray(8, 8 + n);
    }
    if (view === "f32" && n % 4 === 0) data = new Float32Array(raw.buffer);
    return { type, dims, data, async };
  });

describe("writeGgufStream", () => {
  it("writes the same bytes as writeGguf for any small tensors, types, views and alignments (property)", async () => {
    const dir = freshDir();
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(tensorArb, { maxLength: 6 }),
        fc.constantFrom(8, 16, 32, 64),
        async (ts, alignment) => {
          const tensors: GgufTensorInput[] = ts.map((t, i) => ({ name: `t${i}.${t.type}`, type: t.type, dims: t.dims, data: t.data }));
          const a = join(dir, `a${run}.gguf`);
          const b = join(dir, `b${run++}.gguf`);
          await writeGguf(a, { metadata, tensors, alignment });
          await writeGgufStream(b, {
            metadata,
            alignment,
            tensors: tensors.map((t, i) => {
              const s = streamed(t);
              return ts[i]!.async ? { ...s, data: async () => s.data() } : s;
            }),
          });
          const fa = readFileSync(a);
          expect(readFileSync(b).equals(fa)).toBe(true);
          expect(fa.byteLength % alignment).toBe(0);
        },
      ),
      { seed: 11, numRuns: 60 },
    );
    expect(readdirSync(dir).filter((n) => n.endsWith(".tmp"))).toEqual([]);
  });

  it("reads back with readGguf and @huggingface/gguf", async () => {
    const p = join(freshDir(), "m.gguf");
    await writeGgufStream(p, { metadata, tensors: sample.map((t) => streamed(t)) });
    const f = await readGguf(p);
    try {
      expect(f.get("llama.block_count")).toBe(2);
      expect(f.tensors.map((t) => [t.name, t.type, t.dims])).toEqual(sample.map((t) => [t.name, ggmlTypeInfo(t.type).id, t.dims]));
      for (const t of sample) expect(await f.read(t.name), t.name).toEqual(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    } finally {
      await f.close();
    }
    const hf = await gguf(p, { allowLocalFile: true });
    expect((hf.metadata as Record<string, unknown>)["tokenizer.ggml.tokens"]).toEqual(["<unk>", "▁a"]);
    expect(hf.tensorInfos.map((t) => [t.name, t.dtype, t.shape.map(Number)])).toEqual(sample.map((t) => [t.name, ggmlTypeInfo(t.type).id, t.dims]));
  });

  it("asks for each tensor once, in file order, after the tensors before it are in the file", async () => {
    const dir = freshDir();
    const p = join(dir, "order.gguf");
    const { header, offsets } = encodeGgufHeader({ metadata, tensors: sample }, p);
    const calls: string[] = [];
    const seen: number[] = [];
    const tensors = sample.map((t, i): GgufStreamTensor => ({
      ...streamed(t),
      data: async () => {
        calls.push(t.name);
        // the temporary file already holds the header and every earlier tensor (nothing buffered)
        const tmp = readdirSync(dir).filter((n) => n.endsWith(".tmp"));
        expect(tmp).toHaveLength(1);
        seen.push(statSync(join(dir, tmp[0]!)).size);
        expect(existsSync(p)).toBe(false);
        await new Promise((r) => setTimeout(r, 1));
        return sample[i]!.data;
      },
    }));
    await writeGgufStream(p, { metadata, tensors });
    expect(calls).toEqual(sample.map((t) => t.name));
    expect(seen).toEqual(offsets.map((o) => header.length + o));
    expect(readdirSync(dir)).toEqual(["order.gguf"]);
  });

  it.each<[string, (t: GgufStreamTensor) => Partial<GgufStreamTensor>, string, RegExp]>([
    ["data() one byte short", (t) => ({ data: () => new Uint8Array(t.byteLength - 1) }), "E_SHAPE_MISMATCH", /tensor "blk\.0\.attn_q\.weight": data\(\) returned 71 bytes, expected 72 \(dims \[32,4\] of Q4_0\)/],
    ["data() one byte long (async)", (t) => ({ data: async () => new Uint8Array(t.byteLength + 1) }), "E_SHAPE_MISMATCH", /"blk\.0\.attn_q\.weight": data\(\) returned 73 bytes, expected 72/],
    ["data() not bytes", () => ({ data: () => [1, 2, 3] as unknown as Uint8Array }), "E_INVALID_ARGUMENT", /"blk\.0\.attn_q\.weight": data\(\) returned object, not a typed array/],
    ["data() rejecting with a LowbitError", () => ({ data: () => Promise.reject(new LowbitError("E_FORMAT", "source unreadable")) }), "E_FORMAT", /^source unreadable$/],
    ["data() throwing a plain error", () => ({ data: () => { throw new Error("disk on fire"); } }), "E_IO", /write failed \(disk on fire\)/],
  ])("%s: fails, leaves no file or temporary behind, keeps an older file", async (_label, change, code, message) => {
    const dir = freshDir();
    const p = join(dir, "bad.gguf");
    writeFileSync(p, "older");
    const calls: string[] = [];
    const tensors = sample.map((t) => streamed(t, calls));
    tensors[2] = { ...tensors[2]!, ...change(tensors[2]!) };
    await expect(writeGgufStream(p, { metadata, tensors })).rejects.toMatchObject({ code, message: expect.stringMatching(message) });
    expect(calls).toEqual(sample.slice(0, 2).map((t) => t.name));
    expect(readdirSync(dir)).toEqual(["bad.gguf"]);
    expect(readFileSync(p, "utf8")).toBe("older");
  });

  it.each<[string, Partial<GgufStreamTensor>, string, RegExp]>([
    ["byteLength not what the dims take", { byteLength: 70 }, "E_SHAPE_MISMATCH", /"blk\.0\.attn_q\.weight": dims \[32,4\] of Q4_0 need 72 bytes, data has 70/],
    ["fractional byteLength", { byteLength: 71.5 }, "E_INVALID_ARGUMENT", /"blk\.0\.attn_q\.weight": byteLength 71\.5 must be a non-negative integer/],
    ["negative byteLength", { byteLength: -72 }, "E_INVALID_ARGUMENT", /byteLength -72/],
    ["dims not whole blocks", { dims: [48, 1], byteLength: 27 }, "E_GGUF_TENSOR", /ne\[0\] = 48 is not a multiple of the Q4_0 block size 32/],
    ["five dims", { dims: [32, 1, 1, 1, 4] }, "E_GGUF_TENSOR", /dims \[32,1,1,1,4\] must be 1\.\.4/],
    ["data not a function", { data: new Uint8Array(72) as unknown as () => Uint8Array }, "E_INVALID_ARGUMENT", /"blk\.0\.attn_q\.weight": data must be a function/],
  ])("refuses a plan with %s before asking for any data", async (_label, change, code, message) => {
    const dir = freshDir();
    const p = join(dir, "refused.gguf");
    const calls: string[] = [];
    const tensors = sample.map((t) => streamed(t, calls));
    tensors[2] = { ...tensors[2]!, ...change };
    await expect(writeGgufStream(p, { metadata, tensors })).rejects.toMatchObject({ code, message: expect.stringMatching(message) });
    expect(calls).toEqual([]);
    expect(readdirSync(dir)).toEqual([]);
  });

  it("writeGguf refuses data that is not a typed array, naming the tensor", async () => {
    const p = join(freshDir(), "w.gguf");
    const tensors = [{ name: "w", type: 0, dims: [2], data: [1, 2] as unknown as Float32Array }];
    await expect(writeGguf(p, { metadata: [], tensors })).rejects.toMatchObject({ code: "E_INVALID_ARGUMENT", message: expect.stringMatching(/tensor "w": data must be a typed array/) });
  });
});
