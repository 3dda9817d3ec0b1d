import { closeSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { GGMLQuantizationType, gguf } from "@huggingface/gguf";
import { tmpDir } from "@lowbit/testing";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { GGML_TYPE, GGML_TYPE_INFO, ggmlTypeInfo } from "./ggml-types";
import { parseGgufHeader, readGguf } from "./gguf-read";
import { ByteWriter, GGUF_VALUE_TYPES, type GgufMetadataEntry } from "./gguf-values";
import { encodeGgufHeader, GgufMetadataBuilder, writeGguf } from "./gguf-write";

const dir = tmpDir();

describe("ggml type table", () => {
  it.each([
    ["F32", 0, 1, 4],
    ["F16", 1, 1, 2],
    ["Q4_0", 2, 32, 18],
    ["Q4_1", 3, 32, 20],
    ["Q5_0", 6, 32, 22],
    ["Q5_1", 7, 32, 24],
    ["Q8_0", 8, 32, 34],
    ["Q8_1", 9, 32, 40],
    ["Q2_K", 10, 256, 84],
    ["Q3_K", 11, 256, 110],
    ["Q4_K", 12, 256, 144],
    ["Q5_K", 13, 256, 176],
    ["Q6_K", 14, 256, 210],
    ["Q8_K", 15, 256, 292],
    ["BF16", 30, 1, 2],
  ])("%s: id %i, %i values in %i bytes (sizeof block_*)", (name, id, blockSize, typeSize) => {
    expect(ggmlTypeInfo(name)).toEqual({ id, name, blockSize, typeSize });
    expect(ggmlTypeInfo(id).name).toBe(name);
  });

  it("agrees with @huggingface/gguf on every id", () => {
    for (const info of GGML_TYPE_INFO.values()) {
      expect((GGMLQuantizationType as unknown as Record<string, number>)[info.name], info.name).toBe(info.id);
    }
    expect(GGML_TYPE).toMatchObject({ F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q8_0: 8, Q4_K: 12, Q6_K: 14, BF16: 30 });
  });

  it("reports unknown types with the known list", () => {
    expect(() => ggmlTypeInfo(4)).toThrow(/unknown ggml tensor type 4; known: F32=0, F16=1/);
    expect(() => ggmlTypeInfo("Q4_2")).toThrow(expect.objectContaining({ code: "E_GGUF_TENSOR" }));
  });
});

const allKinds: GgufMetadataEntry[] = [
  { key: "general.architecture", type: "string", value: "llama" },
  { key: "t.u8", type: "u8", value: 255 },
  { key: "t.i8", type: "i8", value: -128 },
  { key: "t.u16", type: "u16", value: 65535 },
  { key: "t.i16", type: "i16", value: -32768 },
  { key: "t.u32", type: "u32", value: 4294967295 },
  { key: "t.i32", type: "i32", value: -2147483648 },
  { key: "t.f32", type: "f32", value: 0.1 },
  { key: "t.bool", type: "bool", value: true },
  { key: "t.str", type: "string", value: "ünï ▁cödé 🦙" },
  { key: "t.u64", type: "u64", value: 2n ** 64n - 1n },
  { key: "t.i64", type: "i64", value: -(2n ** 63n) },
  { key: "t.f64", type: "f64", value: Math.PI },
  { key: "t.arr.str", type: "array", itemType: "string", value: ["a", "", "▁b"] },
  { key: "t.arr.f32", type: "array", itemType: "f32", value: [1.5, -2, 0] },
  { key: "t.arr.u64", type: "array", itemType: "u64", value: [1n, 2n ** 40n] },
  { key: "t.arr.empty", type: "array", itemType: "i32", value: [] },
  {
    key: "t.arr.nested",
    type: "array",
    itemType: "array",
    value: [
      { itemType: "i32", value: [1, 2] },
      { itemType: "string", value: ["x"] },
      { itemType: "array", value: [{ itemType: "bool", value: [false, true] }] },
    ],
  },
];

describe("writeGguf / readGguf", () => {
  const rng = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 131 + seed * 17) & 0xff);
  const tensors = [
    { name: "a.f32", type: GGML_TYPE.F32, dims: [3, 2], data: Float32Array.from([1, 2, 3, 4, 5, 6]) },
    { name: "b.q4_0", type: "Q4_0" as const, dims: [64, 3], data: rng(2 * 3 * 18, 1) },
    { name: "c.f16", type: GGML_TYPE.F16, dims: [5], data: rng(10, 2) },
    { name: "d.q8_0", type: GGML_TYPE.Q8_0, dims: [32, 1, 2, 1], data: rng(2 * 34, 3) },
  ];

  it.each([32, 64])("round-trips all metadata kinds and tensors with alignment %i", async (alignment) => {
    const p = join(dir, `all-${alignment}.gguf`);
    await writeGguf(p, { metadata: allKinds, tensors, alignment });
    const f = await readGguf(p);
    const dataOffset = f.dataOffset;
    try {
      expect(f.version).toBe(3);
      expect(f.alignment).toBe(alignment);
      expect(f.dataOffset % alignment).toBe(0);
      const expected = new Map(allKinds.map(({ key, ...v }) => [key, v]));
      if (alignment !== 32) expected.set("general.alignment", { type: "u32", value: alignment });
      expected.set("t.f32", { type: "f32", value: Math.fround(0.1) });
      expect(f.metadata).toEqual(expected);
      expect(f.get("t.f32")).toBe(Math.fround(0.1));
      expect(f.tensors.map((t) => [t.name, t.type, t.dims, t.offset % alignment])).toEqual(
        tensors.map((t) => [t.name, ggmlTypeInfo(t.type).id, t.dims, 0]),
      );
      for (const t of tensors) {
        const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
        expect(await f.read(t.name)).toEqual(bytes);
      }
      await expect(f.read("nope")).rejects.toMatchObject({ code: "E_MISSING_TENSOR" });
    } finally {
      await f.close();
    }
    expect(readFileSync(p).byteLength % alignment).toBe(0);

    const hf = await gguf(p, { allowLocalFile: true, typedMetadata: true });
    for (const e of allKinds) {
      const typed = hf.typedMetadata[e.key]!;
      expect(typed.type, e.key).toBe(GGUF_VALUE_TYPES.indexOf(e.type));
      if (e.type === "array" && e.itemType !== "array") {
        expect(typed.value, e.key).toEqual(e.value);
      } else if (e.type === "f32") {
        expect(typed.value).toBe(Math.fround(e.value));
      } else if (e.type !== "array") {
        expect(typed.value, e.key).toEqual(e.value);
      }
    }
    expect(hf.tensorInfos.map((t) => [t.name, t.dtype, t.shape.map(Number)])).toEqual(
      tensors.map((t) => [t.name, ggmlTypeInfo(t.type).id, t.dims]),
    );
    expect(Number(hf.tensorDataOffset)).toBe(dataOffset);
  });

  it("reads a header larger than the first 1 MiB read (re-reads a longer prefix)", async () => {
    const tokens = Array.from({ length: 200_000 }, (_, i) => `tok_${i}`);
    const p = join(dir, "big-header.gguf");
    await writeGguf(p, {
      metadata: [{ key: "tokenizer.ggml.tokens", type: "array", itemType: "string", value: tokens }],
      tensors: [{ name: "w", type: "F32", dims: [2], data: Float32Array.from([3, 4]) }],
    });
    const f = await readGguf(p);
    try {
      expect(f.dataOffset).toBeGreaterThan(3 * 2 ** 20);
      const got = f.get("tokenizer.ggml.tokens") as string[];
      expect(got.length).toBe(200_000);
      expect(got[199_999]).toBe("tok_199999");
      expect([...new Float32Array((await f.read("w")).buffer)]).toEqual([3, 4]);
    } finally {
      await f.close();
    }
  });

  it("builds metadata with the typed builder", async () => {
    const p = join(dir, "builder.gguf");
    const md = new GgufMetadataBuilder()
      .string("general.architecture", "llama")
      .u32("llama.block_count", 5)
      .f32("llama.rope.freq_base", 10000)
      .u64("big", 5)
      .bool("flag", false)
      .array("tokenizer.ggml.tokens", "string", ["<unk>", "<s>"]);
    await writeGguf(p, { metadata: md, tensors: [] });
    const f = await readGguf(p);
    expect(f.metadata.get("big")).toEqual({ type: "u64", value: 5n });
    expect(f.metadata.get("tokenizer.ggml.tokens")).toEqual({
      type: "array",
      itemType: "string",
      value: ["<unk>", "<s>"],
    });
    expect(f.tensors).toEqual([]);
    await f.close();
  });

  it.each<[string, () => Parameters<typeof writeGguf>[1], string, RegExp]>([
    ["u8 out of range", () => ({ metadata: [{ key: "k", type: "u8", value: 256 }], tensors: [] }), "E_GGUF_METADATA", /not a u8/],
    ["u32 fraction", () => ({ metadata: [{ key: "k", type: "u32", value: 1.5 }], tensors: [] }), "E_GGUF_METADATA", /not a u32/],
    ["u64 negative", () => ({ metadata: [{ key: "k", type: "u64", value: -1n }], tensors: [] }), "E_GGUF_METADATA", /not a u64/],
    // biome-ignore lint/suspicious/noExplicitAny: deliberately wrong value
    ["string not a string", () => ({ metadata: [{ key: "k", type: "string", value: 5 as any }], tensors: [] }), "E_GGUF_METADATA", /not a string/],
    [
      "array element of wrong type",
      // biome-ignore lint/suspicious/noExplicitAny: deliberately wrong value
      () => ({ metadata: [{ key: "k", type: "array", itemType: "i32", value: [1, "2"] as any }], tensors: [] }),
      "E_GGUF_METADATA",
      /metadata "k"\[1\]/,
    ],
    [
      "duplicate key",
      () => ({ metadata: [{ key: "k", type: "u8", value: 1 }, { key: "k", type: "u8", value: 2 }], tensors: [] }),
      "E_GGUF_METADATA",
      /duplicate metadata key/,
    ],
    ["bad alignment", () => ({ metadata: [], tensors: [], alignment: 48 }), "E_INVALID_ARGUMENT", /power of two/],
    [
      "data size mismatch",
      () => ({ metadata: [], tensors: [{ name: "t", type: 0, dims: [4], data: new Float32Array(3) }] }),
      "E_SHAPE_MISMATCH",
      /need 16 bytes, data has 12/,
    ],
    [
      "row not whole blocks",
      () => ({ metadata: [], tensors: [{ name: "t", type: "Q4_0", dims: [48], data: new Uint8Array(27) }] }),
      "E_GGUF_TENSOR",
      /not a multiple of the Q4_0 block size 32/,
    ],
    [
      "unknown type",
      () => ({ metadata: [], tensors: [{ name: "t", type: 77, dims: [1], data: new Uint8Array(1) }] }),
      "E_GGUF_TENSOR",
      /unknown ggml tensor type 77/,
    ],
    [
      "long name",
      () => ({ metadata: [], tensors: [{ name: "x".repeat(64), type: 0, dims: [1], data: new Float32Array(1) }] }),
      "E_GGUF_TENSOR",
      /shorter than 64/,
    ],
    [
      "five dims",
      () => ({ metadata: [], tensors: [{ name: "t", type: 0, dims: [1, 1, 1, 1, 1], data: new Float32Array(1) }] }),
      "E_GGUF_TENSOR",
      /dims/,
    ],
  ])("refuses to write %s", async (_label, input, code, message) => {
    const p = join(dir, "refused.gguf");
    await expect(writeGguf(p, input())).rejects.toMatchObject({ code, message: expect.stringMatching(message) });
  });
});

/** A small valid GGUF (one KV, two F32 tensors) and positions of its fields, to corrupt in tests. */
function sampleFile(): Uint8Array {
  const { header } = encodeGgufHeader({
    metadata: [{ key: "general.architecture", type: "string", value: "llama" }],
    tensors: [
      { name: "a", type: 0, dims: [4], data: new Float32Array(4) },
      { name: "b", type: 0, dims: [2, 2], data: new Float32Array(4) },
    ],
  });
  const out = new Uint8Array(header.length + 32 + 32);
  out.set(header);
  return out;
}

describe("GGUF header validation", () => {
  const base = sampleFile();
  // layout: magic 0, version 4, n_tensors 8, n_kv 16, key len 24, key 32.."general.architecture"(20) -> 52,
  // type 52, str len 56, "llama" 64 -> 69, tensor a: name len 69, "a" 77, n_dims 78, ne0 82, type 90, offset 94,
  // tensor b: name len 102, "b" 110, n_dims 111, ne 115/123, type 131, offset 135 -> 143
  const edit = (f: (dv: DataView, b: Uint8Array) => void, length = base.length) => {
    const b = base.slice(0, length);
    f(new DataView(b.buffer), b);
    return b;
  };
  it.each<[string, Uint8Array, string, RegExp]>([
    ["bad magic", edit((dv) => dv.setUint32(0, 0x46554748, true)), "E_GGUF_HEADER", /bad magic/],
    ["version 1", edit((dv) => dv.setUint32(4, 1, true)), "E_GGUF_HEADER", /unsupported GGUF version 1/],
    ["big-endian", edit((dv) => dv.setUint32(4, 3, false)), "E_GGUF_HEADER", /big-endian/],
    ["huge tensor count", edit((dv) => dv.setBigUint64(8, 2n ** 62n, true)), "E_GGUF_HEADER", /tensor count \d+ cannot fit/],
    ["huge kv count", edit((dv) => dv.setBigUint64(16, 2n ** 64n - 1n, true)), "E_GGUF_HEADER", /metadata count/],
    ["huge key length", edit((dv) => dv.setBigUint64(24, 2n ** 63n, true)), "E_GGUF_METADATA", /key 0 length/],
    ["bad value type", edit((dv) => dv.setUint32(52, 13, true)), "E_GGUF_METADATA", /unknown GGUF value type id 13/],
    ["string past end", edit((dv) => dv.setBigUint64(56, 100_000n, true)), "E_GGUF_METADATA", /cannot fit/],
    ["n_dims 0", edit((dv) => dv.setUint32(78, 0, true)), "E_GGUF_TENSOR", /n_dims is 0/],
    ["n_dims 5", edit((dv) => dv.setUint32(78, 5, true)), "E_GGUF_TENSOR", /n_dims is 5/],
    ["negative dim", edit((dv) => dv.setBigInt64(82, -4n, true)), "E_GGUF_TENSOR", /ne\[0\] = -4 is out of range/],
    ["unknown type", edit((dv) => dv.setInt32(90, 5, true)), "E_GGUF_TENSOR", /unknown ggml tensor type 5/],
    ["misaligned offset", edit((dv) => dv.setBigUint64(94, 4n, true)), "E_GGUF_TENSOR", /not a multiple of the alignment/],
    ["data past end", edit((dv) => dv.setBigUint64(135, 2n ** 40n, true)), "E_GGUF_TENSOR", /runs past the data section/],
    ["overlap", edit((dv) => dv.setBigUint64(135, 0n, true)), "E_GGUF_TENSOR", /overlaps/],
    ["duplicate name", edit((_dv, b) => (b[110] = 0x61)), "E_GGUF_TENSOR", /duplicate tensor name "a"/],
    ["truncated data", base.slice(0, base.length - 24), "E_GGUF_TENSOR", /runs past/],
    ["truncated header", base.slice(0, 100), "E_GGUF_TENSOR", /needs 8 bytes/],
    ["empty file", new Uint8Array(0), "E_GGUF_HEADER", /magic/],
  ])("%s", async (_label, bytes, code, message) => {
    const p = join(dir, "bad.gguf");
    writeFileSync(p, bytes);
    await expect(readGguf(p)).rejects.toMatchObject({ code, message: expect.stringMatching(message) });
  });

  it("the unmodified sample reads (layout offsets above are right)", async () => {
    const p = join(dir, "sample.gguf");
    writeFileSync(p, base);
    const f = await readGguf(p);
    expect(f.tensors.map((t) => [t.name, t.dims, t.offset])).toEqual([
      ["a", [4], 0],
      ["b", [2, 2], 32],
    ]);
    await f.close();
  });

  it("reads version 2 files and rejects a non-u32 or non-power-of-two general.alignment", async () => {
    const p = join(dir, "v2.gguf");
    writeFileSync(p, edit((dv) => dv.setUint32(4, 2, true)));
    const v2 = await readGguf(p);
    expect(v2.version).toBe(2);
    await v2.close();
    for (const metadata of [
      [{ key: "general.alignment", type: "u32" as const, value: 24 }],
      [{ key: "general.alignment", type: "u64" as const, value: 32n }],
    ]) {
      const { header } = encodeGgufHeaderUnchecked(metadata);
      writeFileSync(p, header);
      await expect(readGguf(p)).rejects.toMatchObject({ code: "E_GGUF_METADATA", message: /general.alignment/ });
    }
  });

  it("reads tensor data beyond 4 GiB (sparse 5 GiB file, 64-bit offsets)", async () => {
    const big = 5 * 2 ** 30;
    const { header, offsets } = encodeGgufHeader({
      metadata: [],
      tensors: [
        { name: "pad", type: "I8", dims: [big], data: { byteLength: big } as ArrayBufferView },
        { name: "tail", type: "F32", dims: [4], data: new Float32Array(4) },
      ],
    });
    expect(offsets[1]).toBe(big);
    const p = join(dir, "sparse.gguf");
    const fd = openSync(p, "w");
    try {
      writeSync(fd, header, 0, header.length, 0);
      const tail = new Uint8Array(Float32Array.from([9, 8, 7, 6]).buffer);
      writeSync(fd, tail, 0, 16, header.length + big);
      writeSync(fd, new Uint8Array(16), 0, 16, header.length + big + 16);
    } finally {
      closeSync(fd);
    }
    const f = await readGguf(p);
    try {
      expect(f.tensor("tail").offset).toBe(big);
      expect(f.tensor("pad").byteLength).toBe(big);
      expect([...new Float32Array((await f.read("tail")).buffer)]).toEqual([9, 8, 7, 6]);
    } finally {
      await f.close();
      rmSync(p);
    }
  });
});

/** A GGUF header holding one KV pair our writer would refuse (to test the reader). */
function encodeGgufHeaderUnchecked(metadata: GgufMetadataEntry[]): { header: Uint8Array } {
  const w = new ByteWriter();
  w.u32(0x46554747);
  w.u32(3);
  w.u64(0);
  w.u64(metadata.length);
  for (const m of metadata) {
    w.string(m.key);
    w.u32(GGUF_VALUE_TYPES.indexOf(m.type));
    w.value(m.type, m.value, m.key);
  }
  return { header: w.result() };
}

/** Arbitrary typed values (as read back: f32 values are exactly representable). */
const f32 = fc.float({ noNaN: true });
const scalarOf: Record<string, fc.Arbitrary<unknown>> = {
  u8: fc.integer({ min: 0, max: 255 }),
  i8: fc.integer({ min: -128, max: 127 }),
  u16: fc.integer({ min: 0, max: 65535 }),
  i16: fc.integer({ min: -32768, max: 32767 }),
  u32: fc.integer({ min: 0, max: 0xffffffff }),
  i32: fc.integer({ min: -0x80000000, max: 0x7fffffff }),
  f32,
  f64: fc.double({ noNaN: true }),
  bool: fc.boolean(),
  string: fc.string({ unit: "grapheme", maxLength: 12 }),
  u64: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  i64: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
};
const scalarTypes = Object.keys(scalarOf);
const arrayValue = (depth: number): fc.Arbitrary<{ itemType: string; value: unknown[] }> =>
  depth === 0
    ? fc.constantFrom(...scalarTypes).chain((t) => fc.record({ itemType: fc.constant(t), value: fc.array(scalarOf[t]!, { maxLength: 300 }) }))
    : fc.oneof(
        arrayValue(0),
        fc.record({ itemType: fc.constant("array"), value: fc.array(arrayValue(depth - 1), { maxLength: 4 }) }),
      );
const entryArb = fc.oneof(
  fc.constantFrom(...scalarTypes).chain((t) => fc.record({ type: fc.constant(t), value: scalarOf[t]! })),
  arrayValue(2).map((a) => ({ type: "array", ...a })),
);

describe("GGUF metadata codec (property)", () => {
  it("any metadata written is read back identically", () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.tuple(fc.string({ minLength: 1, maxLength: 20 }), entryArb), { selector: ([k]) => k, maxLength: 8 }), (pairs) => {
        const metadata = pairs.map(([key, e]) => ({ key, ...e }) as GgufMetadataEntry);
        const { header } = encodeGgufHeader({ metadata, tensors: [] });
        const parsed = parseGgufHeader(header, "mem");
        expect(parsed.version).toBe(3);
        expect(parsed.metadata).toEqual(new Map(metadata.map(({ key, ...v }) => [key, v])));
      }),
      { seed: 7, numRuns: 300 },
    );
  });
});
