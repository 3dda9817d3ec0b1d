import { readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { isLowbitError } from "@lowbit/tensor";
import { dataFile, hasData, tmpDir } from "@lowbit/testing";
import { afterAll, describe, expect, it } from "vitest";
import { run } from "./test-helpers";
import { threadCount } from "./threads";

describe("threadCount", () => {
  const cores = Math.min(8, os.availableParallelism());
  it.each([
    [["model", "--threads", "3"], {}, 3],
    [["model", "--threads=1"], { LOWBIT_THREADS: "4" }, 1],
    [["model"], { LOWBIT_THREADS: "4" }, 4],
    [["model"], {}, cores],
    [["model", "--", "--threads", "5"], {}, cores],
  ] as const)("%j with env %j -> %i", (args, env, want) => {
    expect(threadCount("quantize", args, env)).toBe(want);
  });

  it.each([
    [["--threads", "0"], {}, /--threads/],
    [["--threads", "two"], {}, /--threads/],
    [[], { LOWBIT_THREADS: "-1" }, /LOWBIT_THREADS/],
  ] as const)("%j with env %j is a usage error naming its source", (args, env, message) => {
    let err: unknown;
    try {
      threadCount("quantize", args, env);
    } catch (e) {
      err = e;
    }
    expect(isLowbitError(err) || (err instanceof Error && err.name === "CLIError")).toBe(true);
    expect((err as Error).message).toMatch(message);
  });
});

describe.skipIf(!hasData)("--threads on stories260K: the same bytes on 1 and 2 threads", () => {
  const dir = hasData ? tmpDir("lowbit-threads-") : "";
  const model = hasData ? dataFile("stories260K", "stories260K.bin") : "";
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const files = (d: string) =>
    readdirSync(d)
      .filter((f) => !f.endsWith(".run.json"))
      .sort()
      .map((f) => [f, readFileSync(join(d, f))] as const);

  it("quantize --method gptq writes identical outputs and records its threads", async () => {
    const outs: string[] = [];
    for (const t of ["1", "2"]) {
      const out = join(dir, `gptq-t${t}`);
      const r = await run(["quantize", model, "--method", "gptq", "--bits", "4", "--group-size", "32", "--samples", "8", "--seq-len", "128", "--format", "gguf", "--out", `${out}.gguf`, "--threads", t]);
      expect(r.code, r.stderr).toBe(0);
      outs.push(`${out}.gguf`);
      const record = JSON.parse(readFileSync(`${out}.gguf.run.json`, "utf8"));
      expect(record.threads.threads).toBe(Number(t));
      // on 2 threads the calibration forward, Hessians and GPTQ steps really were split
      if (t === "2") expect(record.threads.splitCalls).toBeGreaterThan(10);
      else expect(record.threads.splitCalls).toBe(0);
    }
    expect(Buffer.compare(readFileSync(outs[0]!), readFileSync(outs[1]!))).toBe(0);
    expect(files(dir).length).toBeGreaterThanOrEqual(2);
  });

  it("generate (greedy) gives the same tokens and reports the threads", async () => {
    const got = [];
    for (const t of ["1", "2"]) {
      const r = await run(["generate", model, "--prompt", "Once upon a time", "--max-tokens", "24", "--temperature", "0", "--json", "--threads", t]);
      expect(r.code, r.stderr).toBe(0);
      const d = JSON.parse(r.stdout);
      expect(d.threads).toBe(Number(t));
      got.push(d.tokens);
    }
    expect(got[1]).toEqual(got[0]);
  });
});
