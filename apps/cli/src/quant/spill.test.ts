import { existsSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { hasData, tmpDir } from "@lowbit/testing";
import { isLowbitError } from "@lowbit/tensor";
import { afterAll, describe, expect, it } from "vitest";
import { type OutputFormat, writeModel } from "../export/write-output";
import { Capture, files, rtnSettings } from "../test-helpers";
import { Io } from "../ui/io";
import { prepare, type QuantizeSettings, runQuantization, toQuantizedModel } from "./pipeline";
import { DeferredFloat, DeferredMatrix } from "./qmodel";

const quietIo = () => new Io({ stdout: new Capture(), stderr: new Capture(), env: {} });
const root = tmpDir("lowbit-spill-");
afterAll(() => rmSync(root, { recursive: true, force: true }));

function settings(over: Partial<QuantizeSettings>): QuantizeSettings {
  return rtnSettings(over);
}

/** Quantizes and writes: in memory (no output path during quantization, as `lowbit demo` runs) or spilled (as `lowbit quantize` runs). */
async function quantizeAndWrite(over: Partial<QuantizeSettings>, format: OutputFormat, out: string, spill: boolean) {
  const s = settings({ ...over, format, ...(spill ? { out } : {}) });
  const p = await prepare(s);
  try {
    const run = await runQuantization(s, p, quietIo());
    const q = toQuantizedModel(run, s, p);
    await writeModel(format, out, { config: q.config, q });
    await run.store?.remove();
    return { run, q };
  } finally {
    await p.opened.close();
  }
}

describe.skipIf(!hasData)("quantize keeps finished layers on disk and writes the same bytes (stories260K)", () => {
  it.each([
    ["rtn", "lowbit", {}],
    ["rtn", "gptq", {}],
    ["rtn", "awq", {}],
    ["rtn", "gguf", {}],
    ["rtn", "gptq", { sym: true, bits: 3, groupSize: -1 }],
    ["gptq", "gptq", { actOrder: true }],
    ["gptq", "lowbit", { mixed: "ffn_down=8,blk.1.attn_q=2" }],
    ["awq", "awq", {}],
  ] as Array<[QuantizeSettings["method"], OutputFormat, Partial<QuantizeSettings>]>)("%s -> %s %j", async (method, format, over) => {
    const tag = `${method}-${format}-${JSON.stringify(over).replace(/\W+/g, "_")}`;
    const ext = format === "gguf" ? ".gguf" : "";
    const a = await quantizeAndWrite({ method, ...over }, format, join(root, `mem-${tag}${ext}`), false);
    const b = await quantizeAndWrite({ method, ...over }, format, join(root, `spill-${tag}${ext}`), true);
    // the spilled run kept nothing of its finished layers in the model and read everything back lazily
    expect(a.run.spilled).toBeUndefined();
    expect(b.run.spilled).toHaveLength(b.q.config.nLayers);
    for (let i = 0; i < b.q.config.nLayers; i++) expect(b.run.model.isLayerLoaded(i)).toBe(false);
    expect([...b.q.quantized.values()].every((m) => m instanceof DeferredMatrix)).toBe(true);
    expect(b.q.floats.get("token_embd.weight")).toBeInstanceOf(DeferredFloat);
    // same bytes, same statistics
    const fa = files(join(root, `mem-${tag}${ext}`));
    const fb = files(join(root, `spill-${tag}${ext}`));
    expect([...fb.keys()]).toEqual([...fa.keys()]);
    for (const [k, v] of fa) expect(fb.get(k)!.equals(v), k).toBe(true);
    expect(b.run.stats).toEqual(a.run.stats.map((st) => ({ ...st, ms: expect.any(Number) })));
    expect(b.run.sample.errors).toEqual(a.run.sample.errors);
    // the checkpoints are gone once the output is written
    expect(readdirSync(root).filter((n) => n.endsWith(".lowbit-resume"))).toEqual([]);
  }, 60_000);

  it("an export that fails leaves no output and no temporary folder, and keeps the checkpoints for --resume", async () => {
    const out = join(root, "broken");
    const s = settings({ format: "gptq", out });
    const p = await prepare(s);
    try {
      const run = await runQuantization(s, p, quietIo());
      const q = toQuantizedModel(run, s, p);
      // a finished layer's checkpoint goes missing before the writer reads it
      rmSync(join(run.store!.dir, "layer-00001.safetensors"));
      const err = await writeModel("gptq", out, { config: q.config, q }).catch((e: unknown) => e);
      expect(isLowbitError(err)).toBe(true);
      expect((err as Error).message).toMatch(/layer-00001\.safetensors/);
      expect(existsSync(out)).toBe(false);
      expect(readdirSync(root).filter((n) => n.includes("broken") && !n.endsWith(".lowbit-resume"))).toEqual([]);
      expect(existsSync(join(run.store!.dir, "state.json"))).toBe(true);
      await run.store!.remove();
    } finally {
      await p.opened.close();
    }
  }, 60_000);

  it("a resumed run reads the layers finished before the interruption from the checkpoints", async () => {
    const out = join(root, "resumed");
    await quantizeAndWrite({ method: "gptq" }, "lowbit", join(root, "uninterrupted"), true);
    const s = settings({ method: "gptq", format: "lowbit", out, resume: true });
    const p = await prepare(s);
    try {
      const first = await runQuantization({ ...s, resume: false }, p, quietIo());
      const n = first.config.nLayers;
      // as if interrupted in the last layer: the store holds layers [0, n-1) and the last layer's inputs
      await first.store!.commit(n - 1, first.stats);
      const run = await runQuantization(s, p, quietIo());
      expect(run.resumedAt).toBe(n - 1);
      for (let i = 0; i < n - 1; i++) expect(run.model.isLayerLoaded(i)).toBe(false);
      const q = toQuantizedModel(run, s, p);
      await writeModel("lowbit", out, { config: q.config, q });
      await run.store!.remove();
    } finally {
      await p.opened.close();
    }
    const fa = files(join(root, "uninterrupted"));
    const fb = files(out);
    expect([...fb.keys()]).toEqual([...fa.keys()]);
    for (const [k, v] of fa) expect(fb.get(k)!.equals(v), k).toBe(true);
  }, 60_000);
});
