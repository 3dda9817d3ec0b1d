import { closeSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { encodeBf16, encodeF16 } from "@lowbit/tensor";
import { tmpDir } from "@lowbit/testing";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { writeAtomic } from "./file-io";
import { openSafetensors, writeSafetensors } from "./safetensors";
import {
  encodeSafetensorsHeader,
  parseSafetensorsHeader,
  SAFETENSORS_DTYPES,
  type SafetensorsDType,
} from "./safetensors-header";
import { openSafetensorsModel, writeShardedSafetensors } from "./safetensors-sharded";

const dir = tmpDir();

/** A raw safetensors file from a header object (JSON-encoded as is) and a data buffer. */
function rawFile(name: string, header: unknown, data: Uint8Array = new Uint8Array(0), lengthOverride?: bigint) {
  const json = Buffer.from(typeof header === "string" ? header : JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(lengthOverride ?? BigInt(json.length));
  const p = join(dir, name);
  writeFileSync(p, Buffer.concat([prefix, json, data]));
  return p;
}

describe("writeSafetensors / openSafetensors", () => {
  it("round-trips every kind of dtype with metadata, bit-exact, header padded to 8 with spaces", async () => {
    const f32 = Float32Array.from([1.5, -2.25, Number.NaN, Number.NEGATIVE_INFINITY, 3e-41, 0]);
    const i64 = BigInt64Array.from([-1n, 2n ** 62n]);
    const u8 = Uint8Array.from([0, 1, 255]);
    const i16 = Int16Array.from([-32768, 32767, 5, 6]);
    const p = join(dir, "rt.safetensors");
    await writeSafetensors(
      p,
      [
        { name: "a.f32", dtype: "F32", shape: [2, 3], data: f32 },
        { name: "b.i64", dtype: "I64", shape: [2], data: i64 },
        { name: "c.u8", dtype: "U8", shape: [3], data: u8 },
        { name: "d.empty", dtype: "F16", shape: [0, 4], data: new Uint16Array(0) },
        { name: "e.i16", dtype: "I16", shape: [2, 2], data: i16 },
        { name: "f.scalar", dtype: "F64", shape: [], data: Float64Array.from([Math.PI]) },
      ],
      { format: "pt", note: "ünïcode" },
    );
    const raw = readFileSync(p);
    const n = Number(raw.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    const headerText = raw.subarray(8, 8 + n).toString("utf8");
    expect(headerText.trimEnd().endsWith("}")).toBe(true);
    expect(/^[^ ]*\}( *)$/.exec(headerText.replace(/"[^"]*"/g, '""'))).not.toBeNull();

    const st = await openSafetensors(p);
    try {
      expect(st.metadata).toEqual({ format: "pt", note: "ünïcode" });
      expect([...st.tensors.keys()]).toEqual(["a.f32", "b.i64", "c.u8", "d.empty", "e.i16", "f.scalar"]);
      expect(st.tensors.get("a.f32")).toMatchObject({ dtype: "F32", shape: [2, 3], byteLength: 24 });
      expect(new Uint8Array(await st.read("a.f32"))).toEqual(new Uint8Array(f32.buffer));
      expect(new BigInt64Array((await st.read("b.i64")).buffer)).toEqual(i64);
      expect(await st.read("c.u8")).toEqual(u8);
      expect((await st.read("d.empty")).byteLength).toBe(0);
      expect(new Int16Array((await st.read("e.i16")).buffer)).toEqual(i16);
      expect([...(await st.readF32("f.scalar"))]).toEqual([Math.fround(Math.PI)]);
      await expect(st.read("nope")).rejects.toMatchObject({ code: "E_MISSING_TENSOR" });
      await expect(st.readF32("c.u8")).rejects.toMatchObject({ code: "E_DTYPE" });
    } finally {
      await st.close();
    }
  });

  it("readF32 converts F16 and BF16 exactly", async () => {
    const values = Float32Array.from([0, -0, 1, -1.5, 65504, 2 ** -24, 0.333251953125, 1000.5]);
    const p = join(dir, "half.safetensors");
    await writeSafetensors(p, [
      { name: "h", dtype: "F16", shape: [8], data: encodeF16(values) },
      { name: "b", dtype: "BF16", shape: [2, 4], data: encodeBf16(values) },
    ]);
    const st = await openSafetensors(p);
    expect([...(await st.readF32("h"))]).toEqual([...values]);
    const bf = await st.readF32("b");
    for (let i = 0; i < values.length; i++) {
      expect(Math.abs(bf[i]! - values[i]!)).toBeLessThanOrEqual(Math.abs(values[i]!) * 2 ** -8);
    }
    expect(bf[2]).toBe(1);
    await st.close();
  });

  it.each([
    ["shape/data mismatch", [{ name: "x", dtype: "F32", shape: [3], data: new Float32Array(2) }], "E_SHAPE_MISMATCH"],
    ["duplicate names", [
      { name: "x", dtype: "U8", shape: [1], data: new Uint8Array(1) },
      { name: "x", dtype: "U8", shape: [1], data: new Uint8Array(1) },
    ], "E_INVALID_ARGUMENT"],
    ["reserved name", [{ name: "__metadata__", dtype: "U8", shape: [1], data: new Uint8Array(1) }], "E_INVALID_ARGUMENT"],
    ["unknown dtype", [{ name: "x", dtype: "F128", shape: [1], data: new Uint8Array(16) }], "E_DTYPE"],
    ["negative dim", [{ name: "x", dtype: "U8", shape: [-1], data: new Uint8Array(0) }], "E_SHAPE_MISMATCH"],
  ])("refuses to write %s", async (_label, tensors, code) => {
    const p = join(dir, "refused.safetensors");
    // biome-ignore lint/suspicious/noExplicitAny: deliberately malformed input
    await expect(writeSafetensors(p, tensors as any)).rejects.toMatchObject({ code });
    expect(readdirSync(dir).filter((n) => n.includes("refused"))).toEqual([]);
  });

  it("writes atomically: a failure leaves neither a temporary file nor a changed target", async () => {
    const sub = tmpDir();
    const p = join(sub, "m.safetensors");
    await writeSafetensors(p, [{ name: "x", dtype: "U8", shape: [2], data: Uint8Array.from([7, 8]) }]);
    const before = readFileSync(p);
    await expect(
      writeAtomic(p, async (sink) => {
        await sink.write(new Uint8Array(100));
        throw new Error("disk on fire");
      }),
    ).rejects.toMatchObject({ code: "E_IO", message: expect.stringMatching(/disk on fire/) });
    expect(readdirSync(sub)).toEqual(["m.safetensors"]);
    expect(readFileSync(p)).toEqual(before);
  });
});

describe("safetensors header validation", () => {
  const ok = { x: { dtype: "F32", shape: [2], data_offsets: [0, 8] } };
  const eight = new Uint8Array(8);
  it.each<[string, unknown, Uint8Array, RegExp, bigint?]>([
    ["header length over the limit", ok, eight, /exceeds the limit/, 100_000_001n],
    ["header length past the file", ok, eight, /runs past the end/, 10_000n],
    ["huge u64 header length", ok, eight, /exceeds the limit/, 2n ** 64n - 1n],
    ["not JSON", "{not json", eight, /not valid UTF-8 JSON/],
    ["not an object", "[1,2]", eight, /does not start with/],
    ["unknown dtype", { x: { dtype: "F12", shape: [2], data_offsets: [0, 8] } }, eight, /unknown dtype "F12"/],
    ["shape not array", { x: { dtype: "F32", shape: 2, data_offsets: [0, 8] } }, eight, /shape is not an array/],
    ["fractional dim", { x: { dtype: "F32", shape: [1.5], data_offsets: [0, 8] } }, eight, /bad dimension/],
    ["negative dim", { x: { dtype: "F32", shape: [-2], data_offsets: [0, 8] } }, eight, /bad dimension/],
    ["shape x dtype != range", { x: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, eight, /needs 12 bytes/],
    ["range past buffer", { x: { dtype: "F32", shape: [4], data_offsets: [0, 16] } }, eight, /run past the data buffer/],
    ["reversed range", { x: { dtype: "U8", shape: [0], data_offsets: [8, 0] } }, eight, /not an increasing range/],
    ["offsets not integers", { x: { dtype: "U8", shape: [8], data_offsets: ["0", 8] } }, eight, /not integers/],
    ["offsets not a pair", { x: { dtype: "U8", shape: [8], data_offsets: [0] } }, eight, /not \[begin, end\]/],
    [
      "overlap",
      { x: { dtype: "U8", shape: [6], data_offsets: [0, 6] }, y: { dtype: "U8", shape: [4], data_offsets: [4, 8] } },
      eight,
      /overlap/,
    ],
    [
      "hole",
      { x: { dtype: "U8", shape: [2], data_offsets: [0, 2] }, y: { dtype: "U8", shape: [4], data_offsets: [4, 8] } },
      eight,
      /hole in the data buffer between bytes 2 and 4/,
    ],
    ["trailing bytes", { x: { dtype: "U8", shape: [4], data_offsets: [0, 4] } }, eight, /cover 4 bytes/],
    ["metadata value not a string", { __metadata__: { a: 1 }, ...ok }, eight, /__metadata__\["a"\] is number/],
    ["metadata not an object", { __metadata__: "x", ...ok }, eight, /__metadata__ is not an object/],
    ["entry not an object", { x: 5 }, eight, /entry is not an object/],
  ])("%s -> E_SAFETENSORS_HEADER", async (_label, header, data, message, lengthOverride) => {
    const p = rawFile("bad.safetensors", header, data, lengthOverride);
    await expect(openSafetensors(p)).rejects.toMatchObject({
      code: "E_SAFETENSORS_HEADER",
      message: expect.stringMatching(message),
    });
  });

  it("accepts unsorted entries, unpadded headers and a null __metadata__", async () => {
    const header = {
      __metadata__: null,
      y: { dtype: "U8", shape: [4], data_offsets: [4, 8] },
      x: { dtype: "U8", shape: [2, 2], data_offsets: [0, 4] },
    };
    const p = rawFile("unsorted.safetensors", header, Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]));
    const st = await openSafetensors(p);
    expect([...(await st.read("y"))]).toEqual([5, 6, 7, 8]);
    expect(st.metadata).toEqual({});
    await st.close();
  });

  it("reads tensors beyond 4 GiB by position (sparse 5 GiB file)", async () => {
    const big = 5 * 2 ** 30;
    const header = encodeSafetensorsHeader([
      { name: "pad", dtype: "U8", shape: [big], byteLength: big },
      { name: "tail", dtype: "F32", shape: [4], byteLength: 16 },
    ]);
    const p = join(dir, "sparse.safetensors");
    const fd = openSync(p, "w");
    try {
      writeSync(fd, header, 0, header.length, 0);
      const tail = new Float32Array([1, 2, 3, 4]);
      writeSync(fd, new Uint8Array(tail.buffer), 0, 16, header.length + big);
    } finally {
      closeSync(fd);
    }
    const st = await openSafetensors(p);
    try {
      expect(st.tensors.get("tail")!.offset).toBe(header.length + big);
      expect([...(await st.readF32("tail"))]).toEqual([1, 2, 3, 4]);
      expect(st.tensors.get("pad")!.byteLength).toBe(big);
    } finally {
      await st.close();
      rmSync(p);
    }
  });
});

describe("sharded safetensors", () => {
  const tensors = Array.from({ length: 7 }, (_, i) => ({
    name: `blk.${i}.w`,
    dtype: "F32" as const,
    shape: [i + 1, 4],
    data: Float32Array.from({ length: (i + 1) * 4 }, (_, j) => i * 100 + j),
  }));

  it("writes shards of at most maxShardBytes plus a sorted index, and reads them through one interface", async () => {
    const out = tmpDir();
    const res = await writeShardedSafetensors(out, tensors, { maxShardBytes: 64, metadata: { format: "pt" } });
    expect(res.shards.length).toBeGreaterThan(2);
    expect(res.shards[0]).toBe(`model-00001-of-${String(res.shards.length).padStart(5, "0")}.safetensors`);
    expect(res.index).toBe("model.safetensors.index.json");
    const index = JSON.parse(readFileSync(join(out, res.index!), "utf8"));
    expect(index.metadata.total_size).toBe(tensors.reduce((a, t) => a + t.data.byteLength, 0));
    expect(Object.keys(index.weight_map)).toEqual([...tensors.map((t) => t.name)].sort());
    const model = await openSafetensorsModel(out);
    try {
      expect(model.indexPath).toBe(join(out, "model.safetensors.index.json"));
      expect(model.metadata).toEqual({ format: "pt" });
      expect(model.files.length).toBe(res.shards.length);
      for (const f of model.files) {
        const bytes = [...f.tensors.values()].reduce((a, t) => a + t.byteLength, 0);
        expect(bytes <= 64 || f.tensors.size === 1).toBe(true);
      }
      for (const t of tensors) {
        expect(model.tensors.get(t.name)!.shape).toEqual(t.shape);
        expect(await model.readF32(t.name)).toEqual(t.data);
      }
    } finally {
      await model.close();
    }
  });

  it("writes one model.safetensors when everything fits, removing a stale index", async () => {
    const out = tmpDir();
    await writeShardedSafetensors(out, tensors, { maxShardBytes: 64 });
    const res = await writeShardedSafetensors(out, tensors, { maxShardBytes: 1 << 20 });
    expect(res).toEqual({ shards: ["model.safetensors"], index: undefined });
    expect(readdirSync(out)).toEqual(["model.safetensors"]);
    for (const target of [out, join(out, "model.safetensors")]) {
      const model = await openSafetensorsModel(target);
      expect(model.tensors.size).toBe(7);
      expect(await model.readF32("blk.6.w")).toEqual(tensors[6]!.data);
      await model.close();
    }
  });

  it.each([
    ["not JSON", "nope", /not valid JSON/, "E_SAFETENSORS_HEADER"],
    ["no weight_map", "{}", /weight_map is missing/, "E_SAFETENSORS_HEADER"],
    ["path traversal", '{"weight_map":{"a":"../x.safetensors"}}', /not a plain file name/, "E_SAFETENSORS_HEADER"],
    ["missing shard", '{"weight_map":{"a":"gone.safetensors"}}', /not found/, "E_FILE_NOT_FOUND"],
    ["tensor not in shard", '{"weight_map":{"zzz":"model-00001-of-00002.safetensors"}}', /no such tensor/, "E_MISSING_TENSOR"],
  ])("bad index: %s", async (_label, text, message, code) => {
    const out = tmpDir();
    await writeShardedSafetensors(out, tensors.slice(0, 2), { maxShardBytes: 16 });
    writeFileSync(join(out, "model.safetensors.index.json"), text);
    await expect(openSafetensorsModel(out)).rejects.toMatchObject({ code, message: expect.stringMatching(message) });
  });

  it("reports a folder without safetensors files", async () => {
    await expect(openSafetensorsModel(tmpDir())).rejects.toMatchObject({ code: "E_FILE_NOT_FOUND" });
    await expect(openSafetensorsModel(join(dir, "missing"))).rejects.toMatchObject({ code: "E_FILE_NOT_FOUND" });
  });
});

describe("safetensors header codec (property)", () => {
  it("any tensors and metadata encode to a header that parses back to the same entries", () => {
    const dtype = fc.constantFrom(...(Object.keys(SAFETENSORS_DTYPES) as SafetensorsDType[]));
    const tensor = fc.record({ dtype, shape: fc.array(fc.nat({ max: 6 }), { maxLength: 4 }) });
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(fc.string({ minLength: 1, maxLength: 12 }).filter((n) => n !== "__metadata__"), tensor), {
          selector: ([n]) => n,
          maxLength: 8,
        }),
        fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }),
        (pairs, metadata) => {
          const entries = pairs.map(([name, t]) => ({
            name,
            ...t,
            byteLength: t.shape.reduce((a, d) => a * d, 1) * SAFETENSORS_DTYPES[t.dtype],
          }));
          const header = encodeSafetensorsHeader(entries, metadata);
          const n = Number(new DataView(header.buffer).getBigUint64(0, true));
          expect(n % 8).toBe(0);
          const total = entries.reduce((a, e) => a + e.byteLength, 0);
          const parsed = parseSafetensorsHeader(header.subarray(8), total, "mem");
          expect(parsed.metadata).toEqual(Object.keys(metadata).length > 0 ? { ...metadata } : {});
          expect([...parsed.tensors.keys()].sort()).toEqual(entries.map((e) => e.name).sort());
          let offset = header.length;
          for (const e of entries) {
            expect(parsed.tensors.get(e.name)).toEqual({ dtype: e.dtype, shape: e.shape, byteLength: e.byteLength, offset });
            offset += e.byteLength;
          }
        },
      ),
      { seed: 11, numRuns: 500 },
    );
  });
});
