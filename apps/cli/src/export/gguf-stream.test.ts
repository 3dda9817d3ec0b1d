import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { readGguf, writeGguf } from "@lowbit/formats";
import type { QuantizedMatrix } from "@lowbit/int4";
import { LowbitError } from "@lowbit/tensor";
import { dataFile, hasData, tmpDir } from "@lowbit/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { prepare, type QuantizeSettings, runQuantization, toQuantizedModel } from "../quant/pipeline";
import { DeferredFloat, DeferredMatrix, type FloatTensor, type QuantizedModel } from "../quant/qmodel";
import { Capture } from "../test-helpers";
import { Io } from "../ui/io";
import { buildGguf, type GgufType } from "./gguf-format";
import { writeModel } from "./write-output";

// the models prepare() opened (lazy sources keep their files open), closed when the file is done
const opened: Array<{ close(): Promise<void> }> = [];
afterAll(async () => {
  for (const o of opened.splice(0)) await o.close();
});

async function quantized(sym: boolean, bits = 4): Promise<QuantizedModel> {
  const s: QuantizeSettings = {
    model: dataFile("stories260K", "stories260K.bin"),
    method: "rtn",
    bits,
    groupSize: 32,
    sym,
    actOrder: false,
    damp: 0.01,
    clip: false,
    epochs: 1,
    lr: 1e-4,
    seed: 0,
    calib: [],
    samples: 4,
    seqLen: 64,
    resume: false,
    format: "gguf",
  };
  const p = await prepare(s);
  opened.push(p.opened);
  const run = await runQuantization(s, p, new Io({ stdout: new Capture(), stderr: new Capture(), env: {} }));
  return toQuantizedModel(run, s, p);
}

/**
 * The model with every tensor kept "on disk": loaders returning the in-memory values, each call
 * logged. `claimSym` overrides what the matrices' settings say about symmetry.
 */
function deferred(m: QuantizedModel, log: string[], claimSym?: boolean, fail?: string): QuantizedModel {
  const floats = new Map<string, FloatTensor>();
  for (const [name, t] of m.floats) {
    floats.set(
      name,
      new DeferredFloat(name, t.shape, async () => {
        log.push(name);
        return t.data;
      }),
    );
  }
  const quantized = new Map<string, QuantizedMatrix>();
  for (const [name, qm] of m.quantized) {
    const meta = { bits: qm.bits, groupSize: qm.groupSize, rows: qm.rows, cols: qm.cols, sym: claimSym ?? qm.sym, hasGIdx: false, byteZeros: true };
    quantized.set(
      name,
      new DeferredMatrix(name, meta, async () => {
        log.push(name);
        if (name === fail) throw new LowbitError("E_IO", `${name}: checkpoint unreadable`);
        // a fresh copy per load, as a read from disk gives
        return { ...qm, q: qm.q.slice(), scales: qm.scales.slice(), zeros: qm.zeros.slice() };
      }),
    );
  }
  return { ...m, floats, quantized };
}

describe.skipIf(!hasData)("GGUF written one tensor at a time", () => {
  const dir = hasData ? tmpDir("lowbit-gguf-stream-") : "";
  let asym: QuantizedModel;
  let sym: QuantizedModel;

  beforeAll(async () => {
    asym = await quantized(false);
    sym = await quantized(true);
  }, 60_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** The GGUF of the in-memory model through buildGguf + writeGguf (every tensor at once). */
  async function allAtOnce(m: QuantizedModel, type: GgufType | undefined, path: string) {
    const built = await buildGguf({ config: m.config, floats: m.floats, quantized: m.quantized, tokenizer: m.tokenizer }, { type });
    await writeGguf(path, built.input);
    return built;
  }

  it.each<[string, boolean, GgufType | undefined]>([
    ["sym, natural Q4_0", true, undefined],
    ["asym, natural Q4_1", false, undefined],
    ["asym forced to Q4_0 (requantized)", false, "q4_0"],
    ["sym forced to Q8_0 (requantized from 4 bits)", true, "q8_0"],
    ["asym forced to F16", false, "f16"],
  ])("%s: the same bytes, types and notes as building it in memory; each tensor read once, in file order", async (label, isSym, type) => {
    const m = isSym ? sym : asym;
    const want = join(dir, `${label}-want.gguf`);
    const built = await allAtOnce(m, type, want);
    const log: string[] = [];
    const got = join(dir, `${label}-got.gguf`);
    const w = await writeModel("gguf", got, { config: m.config, q: deferred(m, log) }, { ggufType: type });
    expect(readFileSync(got).equals(readFileSync(want))).toBe(true);
    expect(w.ggufTypes).toEqual(built.types);
    expect(w.notes).toEqual(built.notes);
    expect(w.notes.some((n) => /requantized/.test(n))).toBe(label.includes("requantized"));
    expect(w.notes.some((n) => /blk\.0\.ffn_down\.weight \(172 columns\)/.test(n))).toBe(type !== "f16");
    const f = await readGguf(got);
    expect(log).toEqual(f.tensors.map((t) => t.name));
    await f.close();
  });

  it("a matrix whose values contradict its settings (asym whose zeros are all 8): planned again from the values, same file", async () => {
    const want = join(dir, "replan-want.gguf");
    const built = await allAtOnce(sym, undefined, want);
    expect(built.types.get("blk.0.attn_q.weight")).toBe("q4_0");
    const log: string[] = [];
    const got = join(dir, "replan-got.gguf");
    // settings say asymmetric (so Q4_1), the zeros say Q4_0
    const w = await writeModel("gguf", got, { config: sym.config, q: deferred(sym, log, false) });
    expect(readFileSync(got).equals(readFileSync(want))).toBe(true);
    expect(w.ggufTypes).toEqual(built.types);
    // first plan: the embedding, then the first matrix (found to be Q4_0); then every matrix read to type it; then the file
    const matrices = [...sym.quantized.keys()];
    const f = await readGguf(got);
    const fileOrder = f.tensors.map((t) => t.name);
    await f.close();
    expect(log).toEqual([...fileOrder.slice(0, fileOrder.indexOf("blk.0.attn_q.weight") + 1), ...matrices, ...fileOrder]);
    expect(readdirSync(dir).filter((n) => n.includes("replan-got"))).toEqual(["replan-got.gguf"]);
  });

  it("8-bit matrices on disk whose settings say asymmetric: read once each to find Q8_0's zeros, then written", async () => {
    const q8 = await quantized(true, 8);
    const want = join(dir, "q8-want.gguf");
    const built = await allAtOnce(q8, undefined, want);
    expect(built.types.get("blk.0.attn_q.weight")).toBe("q8_0");
    const log: string[] = [];
    const got = join(dir, "q8-got.gguf");
    const w = await writeModel("gguf", got, { config: q8.config, q: deferred(q8, log, false) });
    expect(readFileSync(got).equals(readFileSync(want))).toBe(true);
    expect(w.ggufTypes).toEqual(built.types);
    const f = await readGguf(got);
    const fileOrder = f.tensors.map((t) => t.name);
    await f.close();
    expect(log).toEqual([...q8.quantized.keys(), ...fileOrder]);
  });

  it("a tensor that cannot be read: the error, no file and no temporary left", async () => {
    const sub = join(dir, "fail");
    const out = join(sub, "m.gguf");
    const log: string[] = [];
    await expect(writeModel("gguf", out, { config: sym.config, q: deferred(sym, log, undefined, "blk.1.ffn_up.weight") })).rejects.toMatchObject({
      code: "E_IO",
      message: expect.stringMatching(/blk\.1\.ffn_up\.weight: checkpoint unreadable/),
    });
    expect(log.at(-1)).toBe("blk.1.ffn_up.weight");
    expect(readdirSync(sub)).toEqual([]);
  });
});
