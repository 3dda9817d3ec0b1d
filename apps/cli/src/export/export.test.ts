import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { dequantizeMatrix, type QuantizedMatrix } from "@lowbit/int4";
import { buildModel, ggufSource, LINEAR_NAMES } from "@lowbit/runtime";
import { readGguf } from "@lowbit/formats";
import { hasData, tmpDir } from "@lowbit/testing";
import { f16BitsToF32, f32ToF16Bits, Rng } from "@lowbit/tensor";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel } from "../model/load";
import { prepare, type QuantizeSettings, runQuantization, toQuantizedModel } from "../quant/pipeline";
import { permuteRowsQ, type QuantizedModel, ropePermutation } from "../quant/qmodel";
import { Capture, rtnSettings } from "../test-helpers";
import { Io } from "../ui/io";
import { buildGguf, regroup32 } from "./gguf-format";
import { readHfQuantizedModel, remapZerosForV1 } from "./hf-quantized";
import { readLowbitModel } from "./lowbit-format";
import { writeModel } from "./write-output";

const quietIo = () => new Io({ stdout: new Capture(), stderr: new Capture(), env: {} });
// the models prepare() opened (lazy sources keep their files open), closed when the file is done
const opened: Array<{ close(): Promise<void> }> = [];
afterAll(async () => {
  for (const o of opened.splice(0)) await o.close();
});

function settings(over: Partial<QuantizeSettings>): QuantizeSettings {
  return rtnSettings({ samples: 4, seqLen: 64, ...over });
}

async function quantized(over: Partial<QuantizeSettings>): Promise<QuantizedModel> {
  const s = settings(over);
  const p = await prepare(s);
  opened.push(p.opened);
  const run = await runQuantization(s, p, quietIo());
  return toQuantizedModel(run, s, p);
}

function expectSameValues(a: QuantizedMatrix, b: QuantizedMatrix, name: string): void {
  const da = dequantizeMatrix(a);
  const db = dequantizeMatrix(b);
  expect(db.length, name).toBe(da.length);
  for (let i = 0; i < da.length; i++) if (da[i] !== db[i]) expect.fail(`${name}: value ${i} differs: ${da[i]} vs ${db[i]}`);
}

/** The model's q/k rows in Hugging Face order (what GPTQ/AWQ folders hold). */
function toHalf(m: QuantizedModel, name: string, qm: QuantizedMatrix): QuantizedMatrix {
  const c = m.config;
  if (name.includes(".attn_q.")) return permuteRowsQ(qm, ropePermutation(c.nHeads, c.headDim, "toHalf"));
  if (name.includes(".attn_k.")) return permuteRowsQ(qm, ropePermutation(c.nKvHeads, c.headDim, "toHalf"));
  return qm;
}

describe("format helpers", () => {
  it.each([
    [4, 0, [3, 7, 14], true],
    [4, 0, [15, 0], false],
    [4, 5, [15, 0], true],
    [2, 0, [0, 1, 2], true],
  ])("remapZerosForV1 bits %d zero %d codes %j: remappable %s, same values", (bits, zero, codes, ok) => {
    const qm: QuantizedMatrix = {
      bits,
      groupSize: codes.length,
      rows: 1,
      cols: codes.length,
      sym: false,
      q: Uint8Array.from(codes),
      scales: Float32Array.of(0.5),
      zeros: Float32Array.of(zero),
    };
    const r = remapZerosForV1(qm);
    expect(r !== undefined).toBe(ok);
    if (r) {
      expect(r.zeros.every((z) => z >= 1)).toBe(true);
      expectSameValues(qm, r, "remap");
    }
  });

  it("regroup32 splits groups of 64/128 into identical 32-column blocks", () => {
    const rng = new Rng(7);
    for (const g of [32, 64, 128]) {
      const rows = 3;
      const cols = 256;
      const ng = cols / g;
      const qm: QuantizedMatrix = {
        bits: 4,
        groupSize: g,
        rows,
        cols,
        sym: false,
        q: Uint8Array.from({ length: rows * cols }, () => rng.int(16)),
        scales: Float32Array.from({ length: rows * ng }, () => rng.uniform() + 0.01),
        zeros: Float32Array.from({ length: rows * ng }, () => rng.int(16)),
      };
      const r = regroup32(qm)!;
      expect(r.groupSize).toBe(32);
      expectSameValues(qm, r, `g${g}`);
    }
    expect(regroup32({ bits: 4, groupSize: 43, rows: 1, cols: 172, sym: true, q: new Uint8Array(172), scales: new Float32Array(4), zeros: new Float32Array(4) })).toBeUndefined();
  });

  it.each([
    ["toInterleaved", "toHalf"],
    ["toHalf", "toInterleaved"],
  ] as const)("ropePermutation %s then %s is the identity", (a, b) => {
    for (const [heads, hd] of [
      [8, 8],
      [4, 64],
      [1, 2],
    ]) {
      const p = ropePermutation(heads!, hd!, a);
      const q = ropePermutation(heads!, hd!, b);
      expect(Array.from(p, (_, i) => p[q[i]!])).toEqual(Array.from({ length: heads! * hd! }, (_, i) => i));
    }
  });
});

describe.skipIf(!hasData)("exports of a quantized stories260K", () => {
  const dir = hasData ? tmpDir("lowbit-export-") : "";
  let asym: QuantizedModel;
  let sym: QuantizedModel;

  beforeAll(async () => {
    asym = await quantized({ format: "gptq", sym: false });
    sym = await quantized({ format: "gptq", sym: true });
  }, 60_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("pads the 172-wide feed-forward to 192 for GPTQ g32 and records it; the function is unchanged", async () => {
    expect(asym.config.hiddenDim).toBe(192);
    expect(asym.padding).toEqual({ intermediateSize: { original: 172, padded: 192 } });
    const s = settings({ format: "gptq" });
    const p = await prepare(s);
    opened.push(p.opened);
    const padded = await buildModel(p.config, p.source);
    const { model: orig, tokenizer } = await loadModel(s.model);
    const tokens = tokenizer.encode("Once upon a time, there was a little girl", { bos: true });
    const a = orig.forward(tokens, orig.createCache(64), "all");
    const b = padded.forward(tokens, padded.createCache(64), "all");
    let maxDiff = 0;
    for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
    expect(maxDiff).toBeLessThan(1e-4);
  });

  it.each([
    ["asym", "gptq"],
    ["sym", "gptq"],
    ["asym", "awq"],
  ] as const)("%s %s output loads back with identical dequantized weights", async (kind, format) => {
    const m = kind === "asym" ? asym : sym;
    const out = join(dir, `${kind}-${format}`);
    const w = await writeModel(format, out, { config: m.config, q: m });
    const cfg = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
    expect(cfg.intermediate_size).toBe(192);
    expect(cfg.quantization_config).toMatchObject({ quant_method: format, bits: 4, group_size: 32 });
    expect(cfg.lowbit.padding.intermediateSize).toEqual({ original: 172, padded: 192 });
    if (format === "gptq") {
      const qc = JSON.parse(readFileSync(join(out, "quantize_config.json"), "utf8"));
      expect(qc).toMatchObject({ bits: 4, group_size: 32, sym: kind === "sym", desc_act: false, quant_method: "gptq" });
      expect(qc.checkpoint_format).toBe(w.checkpointFormat);
      if (kind === "sym") expect(w.checkpointFormat).toBe("gptq");
    } else {
      expect(JSON.parse(readFileSync(join(out, "quant_config.json"), "utf8"))).toMatchObject({ zero_point: true, q_group_size: 32, w_bit: 4, version: "GEMM" });
    }
    const back = await readHfQuantizedModel(out, format);
    expect(back.config.ropeStyle).toBe("half");
    for (const [name, qm] of m.quantized) expectSameValues(toHalf(m, name, qm), back.quantized.get(name)!, name);
    // and through the runtime's loader (Int4Linear backends)
    const { model } = await loadModel(out);
    for (const name of LINEAR_NAMES) {
      const want = dequantizeMatrix(toHalf(m, `blk.2.${name}.weight`, m.quantized.get(`blk.2.${name}.weight`)!));
      expect(Array.from(model.getLinear(2, name).dequantizedWeight())).toEqual(Array.from(want));
    }
  });

  it("GPTQ v1 cannot hold a zero point of 0 beside the largest code: auto writes gptq_v2, forcing gptq is an error", async () => {
    const m: QuantizedModel = { ...sym, quantized: new Map(sym.quantized), quantization: { ...sym.quantization, sym: false } };
    const name = "blk.0.attn_v.weight";
    const qm = m.quantized.get(name)!;
    const q = qm.q.slice();
    const zeros = qm.zeros.slice();
    zeros[0] = 0;
    q[0] = 15;
    m.quantized.set(name, { ...qm, sym: false, q, zeros });
    const w = await writeModel("gptq", join(dir, "v2"), { config: m.config, q: m });
    expect(w.checkpointFormat).toBe("gptq_v2");
    expect(w.notes.join(" ")).toMatch(/gptq_v2/);
    const back = await readHfQuantizedModel(join(dir, "v2"), "gptq");
    expectSameValues(toHalf(m, name, m.quantized.get(name)!), back.quantized.get(name)!, name);
    await expect(writeModel("gptq", join(dir, "v1"), { config: m.config, q: m }, { checkpointFormat: "gptq" })).rejects.toThrow(/zero point 0.*gptq_v2/s);
  });

  it("lowbit's own layout round-trips bit for bit", async () => {
    const out = join(dir, "lowbit");
    await writeModel("lowbit", out, { config: asym.config, q: asym });
    const back = await readLowbitModel(out);
    expect(back.config).toEqual(asym.config);
    for (const [name, qm] of asym.quantized) {
      const b = back.quantized.get(name)!;
      expect([b.bits, b.groupSize, b.rows, b.cols, b.sym]).toEqual([qm.bits, qm.groupSize, qm.rows, qm.cols, qm.sym]);
      expect(Buffer.from(b.q).equals(Buffer.from(qm.q))).toBe(true);
      expect(Array.from(b.scales)).toEqual(Array.from(qm.scales));
      expect(Array.from(b.zeros)).toEqual(Array.from(qm.zeros));
    }
    for (const [name, t] of asym.floats) expect(Array.from(back.floats.get(name)!.data), name).toEqual(Array.from(t.data));
  });

  it.each([
    [true, "q4_0"],
    [false, "q4_1"],
  ] as const)("GGUF from a 4-bit sym=%s model: %s blocks exact, ffn_down F16 fallback, embedding Q8_0", async (isSym, type) => {
    const m = await quantized({ format: "gguf", sym: isSym });
    const built = await buildGguf({ config: m.config, floats: m.floats, quantized: m.quantized });
    expect(built.types.get("blk.0.attn_q.weight")).toBe(type);
    expect(built.types.get("blk.0.ffn_down.weight")).toBe("f16");
    expect(built.types.get("token_embd.weight")).toBe("q8_0");
    expect(built.types.get("blk.0.attn_norm.weight")).toBe("f32");
    const path = join(dir, `m-${type}.gguf`);
    const { writeGguf } = await import("@lowbit/formats");
    await writeGguf(path, built.input);
    const f = await readGguf(path);
    const src = ggufSource(f);
    for (const n of ["attn_q", "attn_v", "ffn_gate"]) {
      const name = `blk.1.${n}.weight`;
      const want = dequantizeMatrix(m.quantized.get(name)!);
      const got = await src.readF32(name);
      const tol = isSym ? 0 : 1e-3; // Q4_1 stores m = -scale * zero in f16
      let worst = 0;
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(want[i]! - got[i]!));
      expect(worst, name).toBeLessThanOrEqual(tol * 1);
    }
    const down = await src.readF32("blk.1.ffn_down.weight");
    const wantDown = dequantizeMatrix(m.quantized.get("blk.1.ffn_down.weight")!);
    expect(Array.from(down)).toEqual(Array.from(wantDown, (v) => f16BitsToF32(f32ToF16Bits(v))));
    await f.close();
  });
});
