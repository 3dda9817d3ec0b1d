import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gguf } from "@huggingface/gguf";
import { dataFile, hasData, tmpDir } from "@lowbit/testing";
import { describe, expect, it } from "vitest";
import { GGML_TYPE } from "./ggml-types";
import { LLAMA_TOKEN_TYPE, llama2cToGguf, shapeFromGgufDims } from "./gguf-llama";
import { parseGguf, readGguf } from "./gguf-read";
import { GGUF_VALUE_TYPES } from "./gguf-values";
import { type GgufMetadataBuilder, writeGguf } from "./gguf-write";
import { parseLlama2cCheckpoint, readLlama2cCheckpoint, readLlama2cTokenizer } from "./llama2c";
import { openSafetensors, parseSafetensors, writeSafetensors } from "./safetensors";
import { openSafetensorsModel, writeShardedSafetensors } from "./safetensors-sharded";

if (!hasData) console.warn("real data not found (LOWBIT_DATA or ../shared/data): stories260K conversions skipped");

const bytesOf = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
/** Bit-identical comparison (vitest's deep equality is slow on large typed arrays). */
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);

describe.skipIf(!hasData)("stories260K through every container", () => {
  const dir = tmpDir();
  const load = async () => ({
    ckpt: await readLlama2cCheckpoint(dataFile("stories260K", "stories260K.bin")),
    tok: await readLlama2cTokenizer(dataFile("stories260K", "tok512.bin")),
  });

  it("llama2.c -> safetensors -> read back bit-identical (single file and shards)", async () => {
    const { ckpt } = await load();
    const tensors = [...ckpt.tensors].map(([name, t]) => ({ name, dtype: "F32" as const, shape: t.shape, data: t.data }));
    const single = join(dir, "stories260K.safetensors");
    await writeSafetensors(single, tensors, { format: "pt", source: "stories260K.bin" });
    const sharded = join(dir, "sharded");
    const res = await writeShardedSafetensors(sharded, tensors, { maxShardBytes: 256 * 1024 });
    expect(res.shards.length).toBeGreaterThanOrEqual(4);

    const st = await openSafetensors(single);
    const model = await openSafetensorsModel(sharded);
    try {
      expect(st.metadata).toEqual({ format: "pt", source: "stories260K.bin" });
      expect(st.tensors.size).toBe(47);
      expect(model.tensors.size).toBe(47);
      for (const [name, t] of ckpt.tensors) {
        expect(st.tensors.get(name)).toMatchObject({ dtype: "F32", shape: t.shape, byteLength: t.data.byteLength });
        expect(same(await st.read(name), bytesOf(t.data)), name).toBe(true);
        expect(same(bytesOf(await model.readF32(name)), bytesOf(t.data)), name).toBe(true);
      }
    } finally {
      await st.close();
      await model.close();
    }
  });

  it("llama2.c + tok512 -> GGUF, read back by @huggingface/gguf and by readGguf", async () => {
    const { ckpt, tok } = await load();
    const input = llama2cToGguf(ckpt, tok, { name: "stories260K" });
    const entries = (input.metadata as GgufMetadataBuilder).build();
    const p = join(dir, "stories260K-f32.gguf");
    await writeGguf(p, input);

    // the values llama.cpp needs, as written
    const byKey = new Map(entries.map((e) => [e.key, e]));
    const expectValue = (key: string, value: unknown) => expect(byKey.get(key)?.value, key).toEqual(value);
    expectValue("general.architecture", "llama");
    expectValue("llama.context_length", 512);
    expectValue("llama.embedding_length", 64);
    expectValue("llama.block_count", 5);
    expectValue("llama.feed_forward_length", 172);
    expectValue("llama.rope.dimension_count", 8);
    expectValue("llama.attention.head_count", 8);
    expectValue("llama.attention.head_count_kv", 4);
    expectValue("tokenizer.ggml.model", "llama");
    const tokens = byKey.get("tokenizer.ggml.tokens")!.value as string[];
    expect(tokens.length).toBe(512);
    expect(tokens.slice(0, 4)).toEqual(["<unk>", "<s>", "</s>", "<0x00>"]);
    expect(tokens.some((t) => t.startsWith("\u2581"))).toBe(true);
    expect(tokens.some((t) => t.includes(" "))).toBe(false);
    const types = byKey.get("tokenizer.ggml.token_type")!.value as number[];
    expect(types.slice(0, 4)).toEqual([LLAMA_TOKEN_TYPE.UNKNOWN, LLAMA_TOKEN_TYPE.CONTROL, LLAMA_TOKEN_TYPE.CONTROL, LLAMA_TOKEN_TYPE.BYTE]);
    expect(types.filter((t) => t === LLAMA_TOKEN_TYPE.BYTE).length).toBe(256);

    // @huggingface/gguf sees the same metadata (types and values) and tensor infos
    const hf = await gguf(p, { allowLocalFile: true, typedMetadata: true });
    expect(hf.metadata.version).toBe(3);
    expect(hf.metadata.tensor_count).toBe(47n);
    expect(hf.metadata.kv_count).toBe(BigInt(entries.length));
    for (const e of entries) {
      const typed = hf.typedMetadata[e.key];
      expect(typed, e.key).toBeDefined();
      expect(typed!.type, e.key).toBe(GGUF_VALUE_TYPES.indexOf(e.type));
      const want = e.type === "f32" ? Math.fround(e.value) : e.value;
      expect(typed!.value, e.key).toEqual(want);
      if (e.type === "array") expect((typed as { subType?: number }).subType).toBe(GGUF_VALUE_TYPES.indexOf(e.itemType));
    }

    const ours = await readGguf(p);
    try {
      expect(hf.tensorInfos.length).toBe(47);
      expect(Number(hf.tensorDataOffset)).toBe(ours.dataOffset);
      for (const [i, info] of hf.tensorInfos.entries()) {
        const mine = ours.tensors[i]!;
        const src = ckpt.tensors.get(info.name)!;
        expect(info.name).toBe(mine.name);
        expect(info.dtype).toBe(GGML_TYPE.F32);
        expect(info.shape).toEqual([...src.shape].reverse().map(BigInt));
        expect(info.offset).toBe(BigInt(mine.offset));
        expect(shapeFromGgufDims(mine.dims)).toEqual(src.shape);
        expect(same(await ours.read(mine.name), bytesOf(src.data)), mine.name).toBe(true);
      }
      for (const e of entries) {
        const got = ours.metadata.get(e.key)!;
        expect(got.type, e.key).toBe(e.type);
        expect(got.value, e.key).toEqual(e.type === "f32" ? Math.fround(e.value) : e.value);
      }
      expect(ours.get("tokenizer.ggml.scores")).toEqual(Array.from(tok.scores));
    } finally {
      await ours.close();
    }
  });

  it("the bytes twins (parseLlama2cCheckpoint, parseGguf, parseSafetensors) give what the path readers give", async () => {
    const { ckpt, tok } = await load();
    const bin = dataFile("stories260K", "stories260K.bin");
    const fromBytes = parseLlama2cCheckpoint(new Uint8Array(readFileSync(bin)), "stories260K.bin");
    expect(fromBytes.config).toEqual(ckpt.config);
    expect([...fromBytes.tensors.keys()]).toEqual([...ckpt.tensors.keys()]);
    for (const [name, t] of ckpt.tensors) {
      expect(fromBytes.tensors.get(name)!.shape).toEqual(t.shape);
      expect(same(bytesOf(fromBytes.tensors.get(name)!.data), bytesOf(t.data)), name).toBe(true);
    }

    const g = join(dir, "twins.gguf");
    await writeGguf(g, llama2cToGguf(ckpt, tok, { name: "stories260K" }));
    const path = await readGguf(g);
    const mem = parseGguf(new Uint8Array(readFileSync(g)), "twins.gguf");
    try {
      for (const key of ["version", "metadata", "tensors", "alignment", "dataOffset"] as const) expect(mem[key], key).toEqual(path[key]);
      expect(mem.path).toBe("twins.gguf");
      expect(mem.get("llama.block_count")).toBe(5);
      for (const t of path.tensors) expect(same(await mem.read(t.name), await path.read(t.name)), t.name).toBe(true);
      await expect(mem.read("nope")).rejects.toMatchObject({ code: "E_MISSING_TENSOR", message: expect.stringContaining("twins.gguf") });
    } finally {
      await path.close();
      await mem.close();
    }
    await expect(mem.read("token_embd.weight")).rejects.toMatchObject({ code: "E_IO" });

    const st = join(dir, "twins.safetensors");
    await writeSafetensors(st, [...ckpt.tensors].map(([name, t]) => ({ name, dtype: "F32" as const, shape: t.shape, data: t.data })), { format: "pt" });
    const stPath = await openSafetensors(st);
    const stMem = parseSafetensors(new Uint8Array(readFileSync(st)), "twins.safetensors");
    try {
      expect(stMem.metadata).toEqual(stPath.metadata);
      expect(stMem.tensors).toEqual(stPath.tensors);
      expect(stMem.dataOffset).toBe(stPath.dataOffset);
      for (const name of stPath.tensors.keys()) {
        expect(same(bytesOf(await stMem.readF32(name)), bytesOf(await stPath.readF32(name))), name).toBe(true);
      }
    } finally {
      await stPath.close();
      await stMem.close();
    }
  });
});
