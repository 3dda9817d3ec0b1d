import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeGguf } from "@lowbit/formats";
import { dataFile, hasData, tmpDir } from "@lowbit/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packageRoot } from "../demo-assets";
import { run } from "../test-helpers";

const ok = (r: { code: number; stderr: string }) => expect(r.code, r.stderr).toBe(0);

describe.skipIf(!hasData)("commands on stories260K", () => {
  const dir = hasData ? tmpDir("lowbit-cmd-") : "";
  const model = hasData ? dataFile("stories260K", "stories260K.bin") : "";
  const text = join(dir, "text.txt");
  const calib = join(dir, "calib.txt");

  beforeAll(() => {
    const all = readFileSync(dataFile("text", "tinystories-valid.txt"), "utf8");
    writeFileSync(calib, all.slice(0, 40_000));
    writeFileSync(text, all.slice(-12_000));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("inspect --json describes the llama2.c checkpoint and finds its tokenizer", async () => {
    const r = await run(["inspect", model, "--json"]);
    ok(r);
    const d = JSON.parse(r.stdout);
    expect(d).toMatchObject({ kind: "llama2c", parameters: 260_032, architecture: { dim: 64, nLayers: 5, nHeads: 8, nKvHeads: 4, hiddenDim: 172, vocabSize: 512 } });
    expect(d.tokenizer.path).toMatch(/tok512\.bin$/);
    expect(d.tensors).toHaveLength(47);
  });

  it("inspect prints a readable summary with layers collapsed", async () => {
    const r = await run(["inspect", model]);
    ok(r);
    expect(r.stdout).toMatch(/format\s+llama2\.c checkpoint/);
    expect(r.stdout).toMatch(/blk\.\*\.ffn_down\.weight\s+5\s+f32\s+64 x 172/);
    expect(r.stdout).not.toContain("\u001B[");
  });

  it("generate --json continues greedily with the known story opening", async () => {
    const r = await run(["generate", model, "--temperature", "0", "--max-tokens", "24", "--json"]);
    ok(r);
    expect(JSON.parse(r.stdout).text).toMatch(/^Once upon a time, there was a little girl named Lily/);
  });

  it("eval: perplexity, and against itself KL 0 and top-1 100%", async () => {
    const r = await run(["eval", model, "--data", text, "--seq-len", "128", "--max-tokens", "1024", "--baseline", model, "--json"]);
    ok(r);
    const e = JSON.parse(r.stdout);
    expect(e.perplexity).toBeGreaterThan(2);
    expect(e.perplexity).toBeLessThan(20);
    expect(e.kl).toBeCloseTo(0, 6);
    expect(e.top1).toBe(1);
  });

  it("quantize rtn -> lowbit, then inspect, generate, eval and report on the output", async () => {
    const out = join(dir, "q4");
    const q = await run(["quantize", model, "--method", "rtn", "--bits", "4", "--group-size", "32", "--calib", calib, "--samples", "4", "--seq-len", "64", "--out", out]);
    ok(q);
    expect(q.stdout).toMatch(/size\s+1\.01 MiB -> /);
    expect(q.stdout).toMatch(/peak memory/);
    expect(q.stdout).toMatch(/attn_q\s+attn_k/);
    const i = await run(["inspect", out, "--json"]);
    ok(i);
    expect(JSON.parse(i.stdout)).toMatchObject({ kind: "lowbit", parameters: 260_032 });
    const g = await run(["generate", out, "--temperature", "0", "--max-tokens", "8", "--json"]);
    ok(g);
    expect(JSON.parse(g.stdout).text).toMatch(/^Once upon a time/);
    const e = await run(["eval", out, "--baseline", model, "--data", text, "--seq-len", "128", "--max-tokens", "512", "--json"]);
    ok(e);
    expect(JSON.parse(e.stdout).top1).toBeGreaterThan(0.6);
    const rep = await run(["report", out]);
    ok(rep);
    const html = readFileSync(join(dir, "q4.html"), "utf8");
    expect(html).toMatch(/^<!doctype html>/);
    expect((html.match(/<svg/g) ?? []).length).toBeGreaterThanOrEqual(3);
    expect(html).not.toMatch(/<script|https?:\/\/|\ssrc=|\shref=/);
  });

  it("quantize --format gptq then convert GPTQ -> GGUF keeps the 4-bit blocks (Q4_0 for sym)", async () => {
    const out = join(dir, "gptq");
    ok(await run(["quantize", model, "--method", "rtn", "--bits", "4", "--group-size", "32", "--sym", "--format", "gptq", "--out", out]));
    const gguf = join(dir, "from-gptq.gguf");
    const c = await run(["convert", out, "--to", "gguf", "--out", gguf, "--json"]);
    ok(c);
    const types = JSON.parse(c.stdout).tensorTypes as Record<string, string>;
    expect(types["blk.0.attn_q.weight"]).toBe("q4_0");
    expect(types["blk.0.ffn_gate.weight"]).toBe("q4_0");
    const g = await run(["generate", gguf, "--temperature", "0", "--max-tokens", "8", "--json"]);
    ok(g);
    expect(JSON.parse(g.stdout).text).toMatch(/^Once upon a time/);
  });

  it("quantize --method qat (w3 g32, one pass per layer) beats RTN at the same bits on held-out text", async () => {
    const evalOf = async (out: string) => {
      const e = await run(["eval", out, "--baseline", model, "--data", text, "--seq-len", "128", "--max-tokens", "512", "--json"]);
      ok(e);
      return JSON.parse(e.stdout) as { perplexity: number; kl: number; top1: number };
    };
    const qat = join(dir, "qat3");
    const q = await run(["quantize", model, "--method", "qat", "--bits", "3", "--group-size", "32", "--calib", calib, "--samples", "4", "--seq-len", "64", "--steps", "1", "--out", qat, "--json"]);
    ok(q);
    expect(JSON.parse(q.stdout)).toMatchObject({ method: "qat", bits: 3, groupSize: 32 });
    const rtn = join(dir, "rtn3");
    ok(await run(["quantize", model, "--method", "rtn", "--bits", "3", "--group-size", "32", "--out", rtn]));
    const [eq, er] = [await evalOf(qat), await evalOf(rtn)];
    expect(eq.perplexity).toBeLessThan(er.perplexity);
    expect(eq.kl).toBeLessThan(er.kl);
  });

  it("quantize --budget-bpw 5 keeps the most sensitive linears at 8 bits and plans at most 5 bits per weight", async () => {
    const out = join(dir, "budget");
    const q = await run(["quantize", model, "--method", "rtn", "--bits", "4", "--group-size", "32", "--budget-bpw", "5", "--calib", calib, "--samples", "4", "--seq-len", "64", "--out", out, "--json"]);
    ok(q);
    const d = JSON.parse(q.stdout) as { notes: string[]; layers: Array<{ name: string; bits: number }> };
    const planned = Number(/--budget-bpw 5: planned ([\d.]+) bits per weight/.exec(d.notes.join("\n"))?.[1]);
    expect(planned).toBeGreaterThan(4.5);
    expect(planned).toBeLessThanOrEqual(5);
    const bits = new Set(d.layers.map((l) => l.bits));
    expect([...bits].sort()).toEqual([4, 8]);
    const i = await run(["inspect", out, "--json"]);
    ok(i);
    expect(JSON.parse(i.stdout).quantization.quantization.mixed).toBe("budget-bpw=5");
  });

  it("quantize --method awq --format awq, then convert AWQ -> GGUF (Q4_1 blocks) runs", async () => {
    const out = join(dir, "awq");
    ok(await run(["quantize", model, "--method", "awq", "--bits", "4", "--group-size", "32", "--calib", calib, "--samples", "4", "--seq-len", "64", "--format", "awq", "--out", out]));
    const gguf = join(dir, "from-awq.gguf");
    const c = await run(["convert", out, "--to", "gguf", "--out", gguf, "--json"]);
    ok(c);
    const types = JSON.parse(c.stdout).tensorTypes as Record<string, string>;
    expect(types["blk.0.attn_q.weight"]).toBe("q4_1");
    expect(types["blk.4.ffn_up.weight"]).toBe("q4_1");
    const g = await run(["generate", gguf, "--temperature", "0", "--max-tokens", "8", "--json"]);
    ok(g);
    expect(JSON.parse(g.stdout).text).toMatch(/^Once upon a time/);
  });

  it("convert --to safetensors writes a Hugging Face folder that inspects and runs", async () => {
    const out = join(dir, "hf");
    ok(await run(["convert", model, "--to", "safetensors", "--out", out]));
    const i = await run(["inspect", out, "--json"]);
    ok(i);
    expect(JSON.parse(i.stdout).kind).toBe("hf");
    const g = await run(["generate", out, "--temperature", "0", "--max-tokens", "24", "--json"]);
    ok(g);
    expect(JSON.parse(g.stdout).text).toMatch(/^Once upon a time, there was a little girl named Lily/);
  });

  it("demo runs a reduced comparison and writes its report", async () => {
    const out = join(dir, "demo");
    const r = await run(["demo", "--methods", "rtn", "--bits", "4", "--samples", "2", "--seq-len", "64", "--eval-tokens", "256", "--out", out], { env: { LOWBIT_DATA: join(dataFile("stories260K"), "..") } });
    ok(r);
    expect(r.stdout).toMatch(/^lowbit demo on (the .*demo model|stories260K)/m);
    expect(r.stdout).toMatch(/uniform baseline/);
    expect(r.stdout).toMatch(/float32\s+-/);
    expect(r.stdout).toMatch(/rtn\s+4\s/);
    expect(existsSync(join(out, "report.html"))).toBe(true);
    expect(JSON.parse(readFileSync(join(out, "run.json"), "utf8")).runs).toHaveLength(1);
  });

  it("bench shows saved results as a table", async () => {
    const res = join(dir, "bench");
    mkdirSync(res);
    writeFileSync(
      join(res, "f32.json"),
      JSON.stringify([{ suite: "f32", kernel: "gemv", backend: "wasm", shape: { m: 1, n: 4096, k: 4096 }, ms: 4.2, minMs: 4, gops: 8, gbps: 16, threads: 1 }]),
    );
    const r = await run(["bench", "--results", res]);
    ok(r);
    expect(r.stdout).toMatch(/f32\s+gemv\s+wasm\s+1x4096x4096\s+4\.2/);
  });

  it("bench shows the repository's own results, accuracy protocol and memory runs included", async () => {
    const results = join(packageRoot(), "../../tools/bench/results");
    const protocol = JSON.parse(readFileSync(join(results, "ptq-protocol.json"), "utf8")) as { rows: Array<{ label: string }> };
    const memory = JSON.parse(readFileSync(join(results, "memory.json"), "utf8")) as { runs: Array<{ id: string }> };
    const r = await run(["bench", "--results", results]);
    ok(r);
    expect(r.stdout).toMatch(/^accuracy \(/m);
    expect(r.stdout).toMatch(/^memory and time of quantizing \(/m);
    for (const row of protocol.rows) expect(r.stdout).toContain(row.label);
    for (const run_ of memory.runs) expect(r.stdout).toContain(run_.id);
    const j = await run(["bench", "--results", results, "--json"]);
    ok(j);
    const parsed = JSON.parse(j.stdout) as { accuracy: unknown[]; memory: unknown[]; records: unknown[] };
    expect(parsed.accuracy).toHaveLength(1);
    expect(parsed.memory).toHaveLength(1);
    expect(parsed.records.length).toBeGreaterThan(0);
  });

  it("bench refuses an object that is neither an accuracy protocol nor memory runs, naming the file", async () => {
    const res = join(dir, "bench-bad");
    mkdirSync(res);
    writeFileSync(join(res, "odd.json"), JSON.stringify({ hello: 1 }));
    const r = await run(["bench", "--results", res]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/odd\.json: expected an array of benchmark records/);
  });

  describe("bad inputs end in one paragraph and exit 1", () => {
    const notModel = join(dir, "notes.txt");
    const lonely = join(dir, "lonely");
    const gpt2 = join(dir, "gpt2");
    const falcon = join(dir, "falcon.gguf");
    const tiny = join(dir, "tiny.txt");
    beforeAll(async () => {
      writeFileSync(notModel, "just some words");
      writeFileSync(tiny, "A short story.");
      mkdirSync(lonely);
      copyFileSync(model, join(lonely, "model.bin"));
      mkdirSync(gpt2);
      writeFileSync(join(gpt2, "config.json"), JSON.stringify({ model_type: "gpt2", architectures: ["GPT2LMHeadModel"], n_embd: 64 }));
      writeFileSync(join(gpt2, "model.safetensors"), Buffer.concat([Buffer.from([2, 0, 0, 0, 0, 0, 0, 0]), Buffer.from("{}")]));
      await writeGguf(falcon, { metadata: [{ key: "general.architecture", type: "string", value: "falcon" }], tensors: [] });
    });

    it.each([
      ["a missing model", () => ["inspect", join(dir, "nope.bin")], "E_FILE_NOT_FOUND", /not found/],
      ["a text file as a model", () => ["inspect", notModel], "E_FORMAT", /not a model file lowbit recognises/],
      ["a folder without config.json", () => ["generate", dir], "E_FORMAT", /without config\.json/],
      ["a checkpoint without a tokenizer", () => ["generate", join(lonely, "model.bin")], "E_TOKENIZER", /--tokenizer/],
      ["an unsupported HF architecture", () => ["generate", gpt2], "E_UNSUPPORTED_ARCHITECTURE", /gpt2/],
      ["an unsupported GGUF architecture", () => ["generate", falcon], "E_UNSUPPORTED_ARCHITECTURE", /falcon/],
      ["--bits 5", () => ["quantize", model, "--bits", "5", "--out", join(dir, "x")], "E_INVALID_ARGUMENT", /--bits must be one of 8, 4, 3, 2/],
      ["--method foo", () => ["quantize", model, "--method", "foo", "--out", join(dir, "x")], "E_INVALID_ARGUMENT", /--method must be one of rtn, gptq, awq, qat/],
      ["--group-size 0", () => ["quantize", model, "--group-size", "0", "--out", join(dir, "x")], "E_INVALID_ARGUMENT", /--group-size/],
      ["--format xyz", () => ["quantize", model, "--format", "xyz", "--out", join(dir, "x")], "E_INVALID_ARGUMENT", /--format must be one of/],
      ["no --out", () => ["quantize", model], "E_INVALID_ARGUMENT", /--out is required/],
      ["AWQ at 8 bits", () => ["quantize", model, "--bits", "8", "--format", "awq", "--out", join(dir, "x")], "E_UNSUPPORTED", /4-bit weights only/],
      ["calibration text too short", () => ["quantize", model, "--method", "gptq", "--calib", tiny, "--out", join(dir, "x")], "E_CALIBRATION", /too short.*--calib/],
      ["a missing --calib file", () => ["quantize", model, "--method", "gptq", "--calib", join(dir, "none.txt"), "--out", join(dir, "x")], "E_FILE_NOT_FOUND", /--calib/],
      ["--temperature -1", () => ["generate", model, "--temperature", "-1"], "E_INVALID_ARGUMENT", /--temperature must be a number >= 0/],
      ["eval without --data", () => ["eval", model], "E_INVALID_ARGUMENT", /--data is required/],
      ["report on something else", () => ["report", notModel], "E_FILE_NOT_FOUND", /no run record/],
      ["convert to gptq from a float model", () => ["convert", model, "--to", "gptq", "--out", join(dir, "x")], "E_UNSUPPORTED", /lowbit quantize/],
    ])("%s", async (_what, argv, code, message) => {
      const r = await run(argv());
      expect(r.code).toBe(1);
      const lines = r.stderr.trim().split("\n");
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`^error \\[${code}\\] `));
      expect(lines[0]).toMatch(message);
      expect(existsSync(join(dir, "x"))).toBe(false);
    });

    it("--resume with different settings refuses to mix runs", async () => {
      const out = join(dir, "mix");
      const base = ["quantize", model, "--method", "rtn", "--bits", "4", "--group-size", "32", "--calib", calib, "--samples", "2", "--seq-len", "32", "--out", out];
      // leave a checkpoint behind as an interrupted run would: state of a different group size
      const { ResumeStore } = await import("../quant/resume");
      const { store } = await ResumeStore.open(out, "another-run", false);
      await store.commit(1, []);
      const r = await run([...base, "--resume"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/different model, data or settings/);
      ok(await run(base));
      expect(existsSync(out)).toBe(true);
    });
  });
});
