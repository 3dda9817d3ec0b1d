/**
 * Seeded property tests: every parser, fed truncated, bit-flipped, spliced or field-overwritten
 * versions of valid files (huge lengths and counts, wrong type ids), must end in a correct parse
 * or a LowbitError with a code; never another exception, a hang, or an oversized allocation
 * (which would surface here as a RangeError).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isLowbitError } from "@lowbit/tensor";
import { dataFile, hasData, tmpDir } from "@lowbit/testing";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type GgufFile, parseGguf, parseGgufHeader, parseGgufHeaderPrefix, readGguf } from "./gguf-read";
import { NeedMore } from "./gguf-values";
import { encodeGgufHeader } from "./gguf-write";
import { parseHfConfig } from "./hf-config";
import {
  type Llama2cCheckpoint,
  parseLlama2cCheckpoint,
  parseLlama2cHeader,
  parseLlama2cTokenizer,
  readLlama2cCheckpoint,
  readLlama2cTokenizer,
} from "./llama2c";
import { openSafetensors, parseSafetensors, type SafetensorsFile } from "./safetensors";
import { checkHeaderLength, encodeSafetensorsHeader, parseSafetensorsHeader } from "./safetensors-header";

const SEED = 20240917;
const dir = tmpDir();

type Outcome = { ok: true } | { ok: false; code: string };

/** Runs a parser; any exception other than a coded LowbitError fails the property. */
function outcome(fn: () => unknown): Outcome {
  try {
    fn();
    return { ok: true };
  } catch (e) {
    if (!isLowbitError(e) || !/^E_[A-Z0-9_]+$/.test(e.code)) throw e;
    return { ok: false, code: e.code };
  }
}

async function outcomeAsync(fn: () => Promise<unknown>): Promise<Outcome> {
  return (await resultAsync(fn)).outcome;
}

/** Like outcomeAsync, also keeping the value on success (to compare a path reader with its bytes twin). */
async function resultAsync<T>(fn: () => Promise<T>): Promise<{ outcome: Outcome; value?: T }> {
  try {
    return { outcome: { ok: true }, value: await fn() };
  } catch (e) {
    if (!isLowbitError(e) || !/^E_[A-Z0-9_]+$/.test(e.code)) throw e;
    return { outcome: { ok: false, code: e.code } };
  }
}

/** Every tensor's bytes of an opened GGUF or safetensors file, then closes it. */
async function readAllTensors(f: GgufFile | SafetensorsFile): Promise<Map<string, Uint8Array>> {
  const names = Array.isArray(f.tensors) ? f.tensors.map((t) => t.name) : [...f.tensors.keys()];
  const out = new Map<string, Uint8Array>();
  try {
    for (const name of names) out.set(name, await f.read(name));
  } finally {
    await f.close();
  }
  return out;
}

const HUGE_U64 = [2n ** 64n - 1n, 2n ** 63n, 2n ** 63n - 1n, 2n ** 53n + 1n, 2n ** 40n, 2n ** 32n, 2n ** 31n, 100_000_001n];
const HUGE_U32 = [0xffffffff, 0x80000000, 0x7fffffff, 65536, 13, 9, 5, 4, 0];

/** A random corruption of a byte string. */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant("flip" as const),
    flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), {
      minLength: 1,
      maxLength: 6,
    }),
  }),
  fc.record({
    kind: fc.constant("u64" as const),
    at: fc.nat(),
    value: fc.oneof(fc.constantFrom(...HUGE_U64), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })),
  }),
  fc.record({
    kind: fc.constant("u32" as const),
    at: fc.nat(),
    value: fc.oneof(fc.constantFrom(...HUGE_U32), fc.nat()),
  }),
  fc.record({
    kind: fc.constant("splice" as const),
    at: fc.nat(),
    remove: fc.nat({ max: 16 }),
    insert: fc.uint8Array({ maxLength: 16 }),
  }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

function mutate(src: Uint8Array, m: Mutation): Uint8Array {
  const pos = (at: number, width = 0) => at % (Math.max(0, src.length - width) + 1);
  switch (m.kind) {
    case "truncate":
      return src.slice(0, pos(m.at));
    case "flip": {
      const out = src.slice();
      for (const [f, x] of m.flips) if (out.length > 0) out[pos(f, 1)]! ^= x;
      return out;
    }
    case "u64": {
      const out = src.slice();
      if (out.length >= 8) new DataView(out.buffer).setBigUint64(pos(m.at, 8), m.value, true);
      return out;
    }
    case "u32": {
      const out = src.slice();
      if (out.length >= 4) new DataView(out.buffer).setUint32(pos(m.at, 4), m.value >>> 0, true);
      return out;
    }
    case "splice": {
      const p = pos(m.at);
      const out = new Uint8Array(src.length - Math.min(m.remove, src.length - p) + m.insert.length);
      out.set(src.subarray(0, p));
      out.set(m.insert, p);
      out.set(src.subarray(p + m.remove), p + m.insert.length);
      return out;
    }
  }
}

const mutations = fc.array(mutation, { minLength: 1, maxLength: 3 });
const applyAll = (src: Uint8Array, ms: Mutation[]) => ms.reduce((b, m) => mutate(b, m), src);

// ---------- safetensors ----------

function sampleSafetensors(): Uint8Array {
  const header = encodeSafetensorsHeader(
    [
      { name: "a", dtype: "F32", shape: [2, 3], byteLength: 24 },
      { name: "b", dtype: "BF16", shape: [4], byteLength: 8 },
      { name: "c", dtype: "I64", shape: [1, 1], byteLength: 8 },
      { name: "d", dtype: "U8", shape: [0], byteLength: 0 },
    ],
    { format: "pt" },
  );
  const out = new Uint8Array(header.length + 40);
  out.set(header);
  for (let i = header.length; i < out.length; i++) out[i] = i & 0xff;
  return out;
}

function parseSafetensorsBytes(bytes: Uint8Array) {
  const n = checkHeaderLength(bytes.subarray(0, 8), bytes.length, "mem");
  return parseSafetensorsHeader(bytes.subarray(8, 8 + n), bytes.length - 8 - n, "mem");
}

describe("safetensors on bad input", () => {
  const base = sampleSafetensors();

  it("the unmutated sample parses", () => {
    expect([...parseSafetensorsBytes(base).tensors.keys()]).toEqual(["a", "b", "c", "d"]);
  });

  it("mutated bytes: a parse or a coded LowbitError", () => {
    const codes = new Set<string>();
    let parsed = 0;
    fc.assert(
      fc.property(mutations, (ms) => {
        const r = outcome(() => parseSafetensorsBytes(applyAll(base, ms)));
        if (r.ok) parsed++;
        else codes.add(r.code);
      }),
      { seed: SEED, numRuns: 2000 },
    );
    expect([...codes]).toEqual(["E_SAFETENSORS_HEADER"]);
    expect(parsed).toBeGreaterThan(0); // some corruptions (in the data, in the padding) are harmless
  });

  const jsonish = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom(1e300, -1, 0.5, 2 ** 53, "F32", []));
  const entry = fc.record(
    {
      dtype: fc.oneof(fc.constantFrom("F32", "F16", "BF16", "U8", "I64", "BOOL", "F4", "f32"), jsonish),
      shape: fc.oneof(fc.array(fc.oneof(fc.nat({ max: 8 }), jsonish), { maxLength: 4 }), jsonish),
      data_offsets: fc.oneof(fc.tuple(fc.nat({ max: 48 }), fc.nat({ max: 48 })), jsonish),
    },
    { requiredKeys: [] },
  );

  it("random JSON headers with wrong types: a parse or a coded LowbitError", () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.oneof(fc.string({ maxLength: 4 }), fc.constant("__metadata__")), fc.oneof(entry, jsonish), {
          maxKeys: 4,
        }),
        fc.nat({ max: 48 }),
        (header, dataBytes) => {
          const json = new TextEncoder().encode(JSON.stringify(header));
          outcome(() => parseSafetensorsHeader(json, dataBytes, "mem"));
        },
      ),
      { seed: SEED, numRuns: 2000 },
    );
  });

  it("openSafetensors and parseSafetensors on mutated files: the same tensors or the same coded LowbitError", async () => {
    const p = join(dir, "fuzz.safetensors");
    await fc.assert(
      fc.asyncProperty(mutations, async (ms) => {
        const bytes = applyAll(base, ms);
        writeFileSync(p, bytes);
        const fromPath = await resultAsync(async () => readAllTensors(await openSafetensors(p)));
        const fromBytes = await resultAsync(async () => readAllTensors(parseSafetensors(bytes, p)));
        expect(fromBytes).toEqual(fromPath);
      }),
      { seed: SEED, numRuns: 150 },
    );
  });
});

// ---------- GGUF ----------

function sampleGguf(): Uint8Array {
  const { header } = encodeGgufHeader({
    metadata: [
      { key: "general.architecture", type: "string", value: "llama" },
      { key: "u", type: "u32", value: 7 },
      { key: "big", type: "u64", value: 2n ** 40n },
      { key: "toks", type: "array", itemType: "string", value: ["<s>", "a", "▁b"] },
      { key: "scores", type: "array", itemType: "f32", value: [0, -1, 2] },
      {
        key: "nested",
        type: "array",
        itemType: "array",
        value: [{ itemType: "i16", value: [1, -2] }, { itemType: "bool", value: [true] }],
      },
    ],
    tensors: [
      { name: "w", type: "Q4_0", dims: [32, 2], data: new Uint8Array(36) },
      { name: "n", type: "F32", dims: [3], data: new Float32Array(3) },
    ],
  });
  const out = new Uint8Array(header.length + 96);
  out.set(header);
  return out;
}

describe("GGUF on bad input", () => {
  const base = sampleGguf();
  const parse = (b: Uint8Array) => parseGgufHeader(b, "mem");

  it("the unmutated sample parses", () => {
    expect(parse(base).tensors.map((t) => t.name)).toEqual(["w", "n"]);
  });

  it("mutated bytes: a parse or a coded LowbitError (never NeedMore with the whole file)", () => {
    const codes = new Set<string>();
    let parsed = 0;
    fc.assert(
      fc.property(mutations, (ms) => {
        const r = outcome(() => parse(applyAll(base, ms)));
        if (r.ok) parsed++;
        else codes.add(r.code);
      }),
      { seed: SEED, numRuns: 3000 },
    );
    expect([...codes].sort()).toEqual(["E_GGUF_HEADER", "E_GGUF_METADATA", "E_GGUF_TENSOR"]);
    expect(parsed).toBeGreaterThan(0);
  });

  it("a prefix of the file either parses the same as the whole file or asks for more", () => {
    fc.assert(
      fc.property(mutations, fc.nat(), (ms, cut) => {
        const bytes = applyAll(base, ms);
        const whole = outcome(() => parse(bytes));
        const prefix = bytes.subarray(0, cut % (bytes.length + 1));
        try {
          const r = parseGgufHeaderPrefix(prefix, bytes.length, "mem");
          expect(whole.ok).toBe(true);
          expect(r).toEqual(parse(bytes));
        } catch (e) {
          if (e instanceof NeedMore) {
            expect(e.bytes).toBeGreaterThan(prefix.length);
            expect(e.bytes).toBeLessThanOrEqual(bytes.length);
            return;
          }
          if (!isLowbitError(e)) throw e;
          expect(whole).toEqual({ ok: false, code: e.code });
        }
      }),
      { seed: SEED, numRuns: 1000 },
    );
  });

  it("readGguf and parseGguf on mutated files: the same tensors or the same coded LowbitError", async () => {
    const p = join(dir, "fuzz.gguf");
    await fc.assert(
      fc.asyncProperty(mutations, async (ms) => {
        const bytes = applyAll(base, ms);
        writeFileSync(p, bytes);
        const fromPath = await resultAsync(async () => readAllTensors(await readGguf(p)));
        const fromBytes = await resultAsync(async () => readAllTensors(parseGguf(bytes, p)));
        expect(fromBytes).toEqual(fromPath);
      }),
      { seed: SEED, numRuns: 150 },
    );
  });
});

// ---------- llama2.c ----------

describe("llama2.c checkpoint on bad input", () => {
  it("any header values and file size: a config or E_LLAMA2C", () => {
    const field = fc.oneof(fc.integer({ min: -2147483648, max: 2147483647 }), fc.integer({ min: -4, max: 128 }));
    fc.assert(
      fc.property(fc.array(field, { minLength: 7, maxLength: 7 }), fc.nat({ max: 2 ** 40 }), (values, size) => {
        const h = new Uint8Array(28);
        const dv = new DataView(h.buffer);
        values.forEach((v, i) => {
          dv.setInt32(i * 4, v, true);
        });
        const r = outcome(() => parseLlama2cHeader("mem", h, size));
        if (!r.ok) expect(r.code).toBe("E_LLAMA2C");
      }),
      { seed: SEED, numRuns: 3000 },
    );
  });

  it("any consistent header with the exact file size parses; one float more or less does not", () => {
    const cfg = fc.record({
      nKvHeads: fc.integer({ min: 1, max: 4 }),
      group: fc.integer({ min: 1, max: 3 }),
      halfHead: fc.integer({ min: 1, max: 8 }),
      hidden: fc.integer({ min: 1, max: 64 }),
      layers: fc.integer({ min: 1, max: 4 }),
      vocab: fc.integer({ min: 1, max: 100 }),
      shared: fc.boolean(),
      seq: fc.integer({ min: 1, max: 64 }),
    });
    fc.assert(
      fc.property(cfg, (c) => {
        const heads = c.nKvHeads * c.group;
        const headSize = 2 * c.halfHead;
        const dim = heads * headSize;
        const kvDim = c.nKvHeads * headSize;
        const perLayer = 2 * dim + 2 * dim * dim + 2 * kvDim * dim + 3 * c.hidden * dim;
        const floats = c.vocab * dim + c.layers * perLayer + dim + c.seq * headSize + (c.shared ? 0 : c.vocab * dim);
        const h = new Uint8Array(28);
        new Int32Array(h.buffer).set([dim, c.hidden, c.layers, heads, c.nKvHeads, c.shared ? c.vocab : -c.vocab, c.seq]);
        const config = parseLlama2cHeader("mem", h, 28 + floats * 4);
        expect(config).toMatchObject({ dim, nHeads: heads, vocabSize: c.vocab, sharedClassifier: c.shared });
        expect(outcome(() => parseLlama2cHeader("mem", h, 28 + floats * 4 + 4))).toEqual({ ok: false, code: "E_LLAMA2C" });
        expect(outcome(() => parseLlama2cHeader("mem", h, 28 + floats * 4 - 4))).toEqual({ ok: false, code: "E_LLAMA2C" });
      }),
      { seed: SEED, numRuns: 500 },
    );
  });

  it("mutated checkpoint files: readLlama2cCheckpoint and parseLlama2cCheckpoint read the same tensors or fail with E_LLAMA2C", async () => {
    // dim 8, hidden 12, 1 layer, 2 heads, 1 kv head, vocab -4 (separate classifier), seq 2
    const floats = 4 * 8 + 8 + 64 + 32 + 32 + 64 + 8 + 96 * 3 + 8 + 8 + 32;
    const base = new Uint8Array(28 + floats * 4);
    new Int32Array(base.buffer, 0, 7).set([8, 12, 1, 2, 1, -4, 2]);
    const p = join(dir, "fuzz-llama2c.bin");
    writeFileSync(p, base);
    expect((await readLlama2cCheckpoint(p)).tensors.size).toBe(12);
    await fc.assert(
      fc.asyncProperty(mutations, async (ms) => {
        const bytes = applyAll(base, ms);
        writeFileSync(p, bytes);
        const fromPath = await resultAsync(() => readLlama2cCheckpoint(p));
        if (!fromPath.outcome.ok) expect(fromPath.outcome.code).toBe("E_LLAMA2C");
        const fromBytes = await resultAsync<Llama2cCheckpoint>(async () => parseLlama2cCheckpoint(bytes, p));
        expect(fromBytes).toEqual(fromPath);
      }),
      { seed: SEED, numRuns: 150 },
    );
  });
});

describe("llama2.c tokenizer on bad input", () => {
  const synthetic = () => {
    const parts: number[] = [];
    const push32 = (v: number, float = false) => {
      const b = new Uint8Array(4);
      if (float) new DataView(b.buffer).setFloat32(0, v, true);
      else new DataView(b.buffer).setInt32(0, v, true);
      parts.push(...b);
    };
    push32(4);
    for (const [score, text] of [[0, "<u>"], [-1, "ab"], [2.5, "▁"]] as const) {
      const bytes = new TextEncoder().encode(text);
      push32(score, true);
      push32(bytes.length);
      parts.push(...bytes);
    }
    return Uint8Array.from(parts);
  };
  const base = hasData ? new Uint8Array(readFileSync(dataFile("stories260K", "tok512.bin"))) : synthetic();

  it("mutated tokenizer bytes: tokens or E_TOKENIZER", () => {
    expect(parseLlama2cTokenizer(base).tokens.length).toBeGreaterThan(0);
    fc.assert(
      fc.property(mutations, (ms) => {
        const r = outcome(() => parseLlama2cTokenizer(applyAll(base, ms)));
        if (!r.ok) expect(r.code).toBe("E_TOKENIZER");
      }),
      { seed: SEED, numRuns: 2000 },
    );
  });

  it("mutated tokenizer files through readLlama2cTokenizer", async () => {
    const p = join(dir, "fuzz-tok.bin");
    await fc.assert(
      fc.asyncProperty(mutations, async (ms) => {
        writeFileSync(p, applyAll(base, ms));
        const r = await outcomeAsync(() => readLlama2cTokenizer(p));
        if (!r.ok) expect(r.code).toBe("E_TOKENIZER");
      }),
      { seed: SEED, numRuns: 100 },
    );
  });
});

// ---------- config.json ----------

describe("parseHfConfig on bad input", () => {
  const valid: Record<string, unknown> = {
    model_type: "llama",
    hidden_size: 64,
    intermediate_size: 172,
    num_hidden_layers: 5,
    num_attention_heads: 8,
    num_key_value_heads: 4,
    vocab_size: 512,
    rope_theta: 10000,
    rms_norm_eps: 1e-5,
    tie_word_embeddings: true,
    rope_scaling: null,
    eos_token_id: 2,
  };
  it("fields replaced by arbitrary JSON: a config or a coded LowbitError", () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.constantFrom(...Object.keys(valid), "head_dim", "hidden_act", "architectures"), fc.jsonValue({ maxDepth: 2 }), {
          maxKeys: 4,
        }),
        (patch) => {
          outcome(() => parseHfConfig({ ...valid, ...patch }));
          outcome(() => parseHfConfig(JSON.stringify(patch)));
        },
      ),
      { seed: SEED, numRuns: 2000 },
    );
  });
});
