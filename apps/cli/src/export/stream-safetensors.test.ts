import { mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { type SafetensorsTensorInput, writeSafetensors, writeShardedSafetensors } from "@lowbit/formats";
import { tmpDir } from "@lowbit/testing";
import { isLowbitError, Rng } from "@lowbit/tensor";
import { afterAll, describe, expect, it } from "vitest";
import { type StreamedTensor, writeSafetensorsStreaming, writeShardedSafetensorsStreaming } from "./stream-safetensors";

const root = tmpDir("stream-safetensors");
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Seeded random tensors of mixed dtypes and ragged shapes (some empty). */
function randomTensors(seed: number): SafetensorsTensorInput[] {
  const rng = new Rng(seed);
  const n = 1 + rng.int(7);
  const out: SafetensorsTensorInput[] = [];
  for (let i = 0; i < n; i++) {
    const shape = rng.int(3) === 0 ? [rng.int(9)] : [1 + rng.int(5), rng.int(13)];
    const numel = shape.reduce((a, d) => a * d, 1);
    const kind = rng.int(4);
    const name = `t${seed}.${i}.${["w", "bias", "qweight", "g_idx"][kind]}`;
    if (kind === 0) out.push({ name, dtype: "F32", shape, data: Float32Array.from({ length: numel }, () => rng.normal()) });
    else if (kind === 1) out.push({ name, dtype: "F16", shape, data: Uint16Array.from({ length: numel }, () => rng.int(65536)) });
    else if (kind === 2) out.push({ name, dtype: "U8", shape, data: Uint8Array.from({ length: numel }, () => rng.int(256)) });
    else out.push({ name, dtype: "I32", shape, data: Int32Array.from({ length: numel }, () => rng.int(1 << 30) - (1 << 29)) });
  }
  return out;
}

const streamed = (ts: SafetensorsTensorInput[]): StreamedTensor[] => ts.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, data: async () => t.data }));

function filesOf(dir: string): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const f of readdirSync(dir).sort()) out[f] = readFileSync(join(dir, f));
  return out;
}

describe("streaming safetensors writers write @lowbit/formats' bytes", () => {
  it.each([1, 2, 3, 4, 5, 6, 7, 8])("one file, seed %i", async (seed) => {
    const ts = randomTensors(seed);
    const meta = seed % 2 ? { format: "pt", seed: String(seed) } : undefined;
    await writeSafetensors(join(root, `ref-${seed}.safetensors`), ts, meta);
    await writeSafetensorsStreaming(join(root, `out-${seed}.safetensors`), streamed(ts), meta);
    expect(readFileSync(join(root, `out-${seed}.safetensors`)).equals(readFileSync(join(root, `ref-${seed}.safetensors`)))).toBe(true);
  });

  it.each([
    [11, 1],
    [12, 40],
    [13, 200],
    [14, 1e9],
  ])("shards, seed %i, at most %i bytes each", async (seed, maxShardBytes) => {
    const ts = randomTensors(seed);
    const a = join(root, `sharded-ref-${seed}`);
    const b = join(root, `sharded-out-${seed}`);
    mkdirSync(b, { recursive: true });
    const ra = await writeShardedSafetensors(a, ts, { maxShardBytes, metadata: { format: "pt" } });
    const rb = await writeShardedSafetensorsStreaming(b, streamed(ts), { maxShardBytes, metadata: { format: "pt" } });
    expect(rb).toEqual(ra);
    const fa = filesOf(a);
    const fb = filesOf(b);
    expect(Object.keys(fb)).toEqual(Object.keys(fa));
    for (const k of Object.keys(fa)) expect(fb[k]!.equals(fa[k]!), k).toBe(true);
  });

  it("asks for each tensor's data once, in file order, after the previous one is written", async () => {
    const ts = randomTensors(21);
    const asked: string[] = [];
    await writeSafetensorsStreaming(
      join(root, "order.safetensors"),
      ts.map((t) => ({
        name: t.name,
        dtype: t.dtype,
        shape: t.shape,
        data: () => {
          asked.push(t.name);
          return t.data;
        },
      })),
    );
    expect(asked).toEqual(ts.map((t) => t.name));
  });
});

describe("streaming safetensors writers on bad input leave no file behind", () => {
  const tensors = (bad: "throw" | "short"): StreamedTensor[] => [
    { name: "a", dtype: "F32", shape: [4], data: () => new Float32Array(4) },
    {
      name: "b",
      dtype: "F32",
      shape: [2, 3],
      data: async () => {
        if (bad === "throw") throw new Error("disk read failed");
        return new Float32Array(5);
      },
    },
  ];

  it.each(["throw", "short"] as const)("a tensor whose data %s", async (bad) => {
    const dir = join(root, `bad-${bad}`);
    mkdirSync(dir, { recursive: true });
    const err = await writeSafetensorsStreaming(join(dir, "m.safetensors"), tensors(bad)).catch((e: unknown) => e);
    if (bad === "throw") expect((err as Error).message).toBe("disk read failed");
    else {
      expect(isLowbitError(err) && err.code).toBe("E_SHAPE_MISMATCH");
      expect((err as Error).message).toMatch(/tensor "b".*needs 24 bytes, data has 20/);
    }
    expect(readdirSync(dir)).toEqual([]);
  });

  it("a failing shard leaves the shards before it but no index and no temporary file", async () => {
    const dir = join(root, "bad-shard");
    mkdirSync(dir, { recursive: true });
    const err = await writeShardedSafetensorsStreaming(dir, tensors("throw"), { maxShardBytes: 16 }).catch((e: unknown) => e);
    expect((err as Error).message).toBe("disk read failed");
    // the caller writes into a temporary folder and removes it on failure (writeAtomically)
    expect(readdirSync(dir)).toEqual(["model-00001-of-00002.safetensors"]);
  });

  it.each([
    ["duplicate names", [{ name: "x", dtype: "U8", shape: [1], data: () => new Uint8Array(1) }, { name: "x", dtype: "U8", shape: [1], data: () => new Uint8Array(1) }], "E_INVALID_ARGUMENT"],
    ["a bad shape", [{ name: "x", dtype: "U8", shape: [-1], data: () => new Uint8Array(1) }], "E_SHAPE_MISMATCH"],
    ["an unknown dtype", [{ name: "x", dtype: "Q4", shape: [1], data: () => new Uint8Array(1) }], "E_DTYPE"],
  ] as Array<[string, StreamedTensor[], string]>)("%s is refused before any file is created", async (_what, ts, code) => {
    const dir = join(root, `refused-${code}-${ts.length}`);
    mkdirSync(dir, { recursive: true });
    const err = await writeSafetensorsStreaming(join(dir, "m.safetensors"), ts).catch((e: unknown) => e);
    expect(isLowbitError(err) && err.code).toBe(code);
    expect(readdirSync(dir)).toEqual([]);
  });
});
