import { truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isLowbitError } from "@lowbit/tensor";
import { dataFile, hasData, tmpDir } from "@lowbit/testing";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Llama2cCheckpoint, type Llama2cConfig, parseLlama2cCheckpoint, readLlama2cCheckpoint } from "./llama2c";
import { Llama2cFile, openLlama2c } from "./llama2c-lazy";
import { randomTensors } from "./llama2c-test-tensors";
import { encodeLlama2cCheckpoint } from "./llama2c-write";

const SEED = 20261127;
const dir = tmpDir();

const bytesOf = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** Every tensor of the lazy file, read in `order` (default: file order), as the eager readers give them. */
async function readAll(f: Llama2cFile, order?: string[]): Promise<Llama2cCheckpoint> {
  const data = new Map<string, Float32Array>();
  for (const name of order ?? f.tensors.keys()) data.set(name, await f.readF32(name));
  const tensors = new Map([...f.tensors.values()].map((t) => [t.name, { shape: [...t.shape], data: data.get(t.name)! }]));
  return { config: f.config, tensors };
}

/** Same config, same names in the same order, same shapes, same bits. */
function expectSame(got: Llama2cCheckpoint, want: Llama2cCheckpoint) {
  expect(got.config).toEqual(want.config);
  expect([...got.tensors.keys()]).toEqual([...want.tensors.keys()]);
  for (const [name, t] of want.tensors) {
    expect(got.tensors.get(name)!.shape, name).toEqual(t.shape);
    expect(bytesOf(got.tensors.get(name)!.data).equals(bytesOf(t.data)), name).toBe(true);
  }
}

const configArb = fc
  .record({
    nKvHeads: fc.integer({ min: 1, max: 3 }),
    group: fc.integer({ min: 1, max: 3 }),
    halfHead: fc.integer({ min: 1, max: 4 }),
    hiddenDim: fc.integer({ min: 1, max: 20 }),
    nLayers: fc.integer({ min: 1, max: 3 }),
    vocabSize: fc.integer({ min: 1, max: 20 }),
    seqLen: fc.integer({ min: 1, max: 16 }),
    sharedClassifier: fc.boolean(),
    seed: fc.nat(),
  })
  .map(({ group, halfHead, seed, ...c }) => ({
    seed,
    config: { ...c, nHeads: c.nKvHeads * group, dim: c.nKvHeads * group * 2 * halfHead } as Llama2cConfig,
  }));

describe("Llama2cFile (lazy llama2.c reader)", () => {
  it("property: over bytes, any generated checkpoint reads as parseLlama2cCheckpoint reads it, in any order", async () => {
    await fc.assert(
      fc.asyncProperty(configArb, fc.nat(), async ({ config, seed }, shuffleSeed) => {
        const bytes = encodeLlama2cCheckpoint(config, randomTensors(config, seed));
        const lazy = Llama2cFile.fromBytes(bytes, "gen.bin");
        const names = [...lazy.tensors.keys()];
        // a seeded permutation of the names: reads are independent of each other
        const order = names.map((n, i) => [n, (i * 2654435761 + shuffleSeed) % 4294967296] as const).sort((a, b) => a[1] - b[1]).map(([n]) => n);
        expectSame(await readAll(lazy, order), parseLlama2cCheckpoint(bytes, "gen.bin"));
      }),
      { seed: SEED, numRuns: 150 },
    );
  });

  it("property: from a path, any generated checkpoint reads as readLlama2cCheckpoint reads it", async () => {
    const p = join(dir, "gen.bin");
    await fc.assert(
      fc.asyncProperty(configArb, async ({ config, seed }) => {
        writeFileSync(p, encodeLlama2cCheckpoint(config, randomTensors(config, seed)));
        const lazy = await openLlama2c(p);
        try {
          expectSame(await readAll(lazy), await readLlama2cCheckpoint(p));
        } finally {
          await lazy.close();
        }
      }),
      { seed: SEED, numRuns: 40 },
    );
  });

  it("byte ranges: tensors follow each other from byte 28, the freq_cis tables before a separate classifier", async () => {
    const config: Llama2cConfig = { dim: 8, hiddenDim: 12, nLayers: 1, nHeads: 2, nKvHeads: 1, vocabSize: 4, seqLen: 2, sharedClassifier: false };
    const f = Llama2cFile.fromBytes(encodeLlama2cCheckpoint(config, randomTensors(config, 3)), "ranges.bin");
    const infos = [...f.tensors.values()];
    expect(infos[0]).toEqual({ name: "token_embd.weight", shape: [4, 8], offset: 28, byteLength: 4 * 8 * 4 });
    for (let i = 1; i < infos.length - 1; i++) expect(infos[i]!.offset, infos[i]!.name).toBe(infos[i - 1]!.offset + infos[i - 1]!.byteLength);
    const norm = f.info("output_norm.weight");
    // seq_len x head_size floats of freq_cis (2 x 2 x 2) between output_norm and output
    expect(f.info("output.weight").offset).toBe(norm.offset + norm.byteLength + 2 * 4 * 4);
    expect(f.info("output.weight").offset + 4 * 8 * 4).toBe(f.size);
  });
});

describe.skipIf(!hasData)("Llama2cFile on stories260K", () => {
  it("reads every tensor as readLlama2cCheckpoint does", async () => {
    const p = dataFile("stories260K", "stories260K.bin");
    const lazy = await openLlama2c(p);
    try {
      expect(lazy.config).toMatchObject({ dim: 64, hiddenDim: 172, nLayers: 5, nHeads: 8, nKvHeads: 4, vocabSize: 512, sharedClassifier: true });
      expect(lazy.tensors.size).toBe(1 + 5 * 9 + 1);
      expectSame(await readAll(lazy), await readLlama2cCheckpoint(p));
    } finally {
      await lazy.close();
    }
  });
});

/** The LowbitError code and message of a failing call (throws if it does not fail that way). */
async function failure(fn: () => Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await fn();
  } catch (e) {
    if (!isLowbitError(e)) throw e;
    return { code: e.code, message: e.message };
  }
  throw new Error("expected a LowbitError");
}

describe("Llama2cFile on bad input", () => {
  const config: Llama2cConfig = { dim: 8, hiddenDim: 12, nLayers: 2, nHeads: 2, nKvHeads: 1, vocabSize: 5, seqLen: 3, sharedClassifier: false };
  const good = encodeLlama2cCheckpoint(config, randomTensors(config, 11));
  const withHeader = (values: number[]) => {
    const b = good.slice();
    values.forEach((v, i) => {
      new DataView(b.buffer).setInt32(i * 4, v, true);
    });
    return b;
  };

  it.each([
    ["one byte short", good.subarray(0, good.byteLength - 1), /file size is \d+ bytes but the header \(dim=8, .*\) implies \d+ bytes/],
    ["one float too many", Buffer.concat([good, Buffer.alloc(4)]), /file size is \d+ bytes but the header/],
    ["a truncated header", good.subarray(0, 10), /file is 10 bytes, too short for the 28-byte llama2.c header/],
    ["an empty file", new Uint8Array(0), /file is 0 bytes, too short/],
    ["n_layers 3 for a 2-layer body", withHeader([8, 12, 3, 2, 1, -5, 3]), /file size .* implies/],
    ["n_heads not dividing dim", withHeader([8, 12, 2, 3, 1, -5, 3]), /dim \(8\) is not divisible by n_heads \(3\)/],
    ["a zero vocab_size", withHeader([8, 12, 2, 2, 1, 0, 3]), /vocab_size is 0; expected a non-zero value/],
  ])("%s: the eager reader's E_LLAMA2C error, naming the file, from the path and from bytes", async (_label, bytes, message) => {
    const p = join(dir, "bad.bin");
    writeFileSync(p, bytes);
    const eager = await failure(() => readLlama2cCheckpoint(p));
    expect(eager).toEqual({ code: "E_LLAMA2C", message: expect.stringMatching(message) });
    expect(eager.message.startsWith(`${p}: `)).toBe(true);
    expect(await failure(() => openLlama2c(p))).toEqual(eager);
    expect(await failure(async () => Llama2cFile.fromBytes(bytes, p))).toEqual(await failure(async () => parseLlama2cCheckpoint(bytes, p)));
    expect(await failure(async () => Llama2cFile.fromBytes(bytes, p))).toEqual(eager);
  });

  it("a missing file is E_FILE_NOT_FOUND", async () => {
    expect(await failure(() => openLlama2c(join(dir, "nope.bin")))).toEqual({ code: "E_FILE_NOT_FOUND", message: expect.stringMatching(/nope\.bin: file not found/) });
  });

  it("a tensor the checkpoint has no place for is E_MISSING_TENSOR naming the file and the tensor", async () => {
    const f = Llama2cFile.fromBytes(good, "m.bin");
    expect(await failure(() => f.readF32("blk.2.attn_q.weight"))).toEqual({
      code: "E_MISSING_TENSOR",
      message: 'm.bin: no tensor named "blk.2.attn_q.weight" in the llama2.c checkpoint',
    });
    const shared = Llama2cFile.fromBytes(encodeLlama2cCheckpoint({ ...config, sharedClassifier: true }, randomTensors({ ...config, sharedClassifier: true }, 1)), "s.bin");
    expect(shared.tensors.has("output.weight")).toBe(false);
    await expect(shared.readF32("output.weight")).rejects.toMatchObject({ code: "E_MISSING_TENSOR", message: expect.stringMatching(/s\.bin: .*"output\.weight"/) });
  });

  it("a file cut short after it was opened: tensors before the cut still read, the first one past it fails naming the file and the tensor", async () => {
    const p = join(dir, "shrinks.bin");
    writeFileSync(p, good);
    const f = await openLlama2c(p);
    try {
      const cutTensor = f.info("blk.1.ffn_gate.weight");
      truncateSync(p, cutTensor.offset + 8);
      // run.c's order groups each kind across layers: blk.0.ffn_gate comes right before blk.1.ffn_gate
      const before = await f.readF32("blk.0.ffn_gate.weight");
      expect(bytesOf(before).equals(Buffer.from(good.subarray(f.info("blk.0.ffn_gate.weight").offset, cutTensor.offset)))).toBe(true);
      const err = await failure(() => f.readF32("blk.1.ffn_gate.weight"));
      expect(err.code).toBe("E_LLAMA2C");
      expect(err.message).toMatch(new RegExp(`^${p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: tensor "blk\\.1\\.ffn_gate\\.weight" \\(bytes \\[${cutTensor.offset}, ${cutTensor.offset + cutTensor.byteLength}\\)\\) cannot be read: unexpected end of file at byte ${cutTensor.offset + 8}$`));
      await expect(f.readF32("output.weight")).rejects.toMatchObject({ code: "E_LLAMA2C", message: expect.stringMatching(/tensor "output\.weight"/) });
    } finally {
      await f.close();
    }
  });

  it("reads after close fail with E_IO naming the tensor", async () => {
    const p = join(dir, "closed.bin");
    writeFileSync(p, good);
    const f = await openLlama2c(p);
    await f.close();
    await expect(f.readF32("token_embd.weight")).rejects.toMatchObject({ code: "E_IO", message: expect.stringMatching(/closed\.bin: tensor "token_embd\.weight" .*file is closed/) });
  });

  it("property: mutated files open and read exactly as readLlama2cCheckpoint reads them, or fail with its error", async () => {
    const p = join(dir, "mutated.bin");
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant("truncate" as const), at: fc.nat({ max: good.byteLength }) }),
      fc.record({ kind: fc.constant("field" as const), field: fc.nat({ max: 6 }), value: fc.integer({ min: -3, max: 40 }) }),
      fc.record({ kind: fc.constant("append" as const), count: fc.integer({ min: 1, max: 64 }) }),
      fc.record({ kind: fc.constant("flip" as const), at: fc.nat({ max: good.byteLength - 1 }), bit: fc.nat({ max: 7 }) }),
    );
    await fc.assert(
      fc.asyncProperty(mutation, async (m) => {
        let bytes: Uint8Array = good.slice();
        if (m.kind === "truncate") bytes = bytes.subarray(0, m.at);
        else if (m.kind === "field") new DataView(bytes.buffer).setInt32(m.field * 4, m.value, true);
        else if (m.kind === "append") bytes = Buffer.concat([bytes, Buffer.alloc(m.count)]);
        else bytes[m.at]! ^= 1 << m.bit;
        writeFileSync(p, bytes);
        const eager = await readLlama2cCheckpoint(p).then(
          (c) => ({ ok: true as const, c }),
          (e: unknown) => ({ ok: false as const, e }),
        );
        if (eager.ok) {
          const f = await openLlama2c(p);
          try {
            expectSame(await readAll(f), eager.c);
          } finally {
            await f.close();
          }
          expectSame(await readAll(Llama2cFile.fromBytes(bytes, p)), eager.c);
        } else {
          expect(isLowbitError(eager.e)).toBe(true);
          const want = { code: (eager.e as { code: string }).code, message: (eager.e as Error).message };
          expect(await failure(() => openLlama2c(p))).toEqual(want);
          expect(await failure(async () => Llama2cFile.fromBytes(bytes, p))).toEqual(want);
        }
      }),
      { seed: SEED, numRuns: 120 },
    );
  });
});
