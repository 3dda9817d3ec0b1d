import { readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { getKernelThreads, isLowbitError, kernelThreadsInfo, kernelThreadsReady, setKernelThreads, shutdownKernelThreads } from "@lowbit/tensor";
import { dataFile, hasData, tmpDir } from "@lowbit/testing";
import { afterAll, describe, expect, it } from "vitest";
import { run } from "./test-helpers";
import { threadCount, withKernelThreads } from "./threads";

describe("threadCount", () => {
  const cores = Math.min(8, os.availableParallelism());
  it.each([
    ["3", {}, 3],
    ["1", { LOWBIT_THREADS: "4" }, 1],
    [undefined, { LOWBIT_THREADS: "4" }, 4],
    [undefined, { LOWBIT_THREADS: "" }, cores],
    [undefined, {}, cores],
  ] as const)("--threads %s with env %j -> %i", (flag, env, want) => {
    expect(threadCount("quantize", flag, env)).toBe(want);
  });

  it.each([
    ["0", {}, /--threads/],
    ["two", {}, /--threads/],
    [undefined, { LOWBIT_THREADS: "-1" }, /LOWBIT_THREADS/],
  ] as const)("--threads %s with env %j is a usage error naming its source", (flag, env, message) => {
    let err: unknown;
    try {
      threadCount("quantize", flag, env);
    } catch (e) {
      err = e;
    }
    expect(isLowbitError(err) || (err instanceof Error && err.name === "CLIError")).toBe(true);
    expect((err as Error).message).toMatch(message);
  });
});

describe("withKernelThreads", () => {
  afterAll(() => shutdownKernelThreads());
  it("runs the body on the count asked, then restores the caller's count", async () => {
    setKernelThreads(3);
    await kernelThreadsReady();
    const inside = await withKernelThreads(2, async () => getKernelThreads());
    expect(inside).toBe(2);
    expect(getKernelThreads()).toBe(3);
    const one = await withKernelThreads(1, async () => kernelThreadsInfo().threads);
    expect(one).toBe(1);
    expect(getKernelThreads()).toBe(3);
    await shutdownKernelThreads();
    await withKernelThreads(2, async () => expect(getKernelThreads()).toBe(2));
    expect(getKernelThreads()).toBe(1);
  });

  it("restores the caller's count when the body throws", async () => {
    await expect(withKernelThreads(2, async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(getKernelThreads()).toBe(1);
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
      // a prompt that mentions --threads is the prompt, not the flag
      const r = await run(["generate", model, "--prompt", "--threads=7 Once upon a time", "--max-tokens", "24", "--temperature", "0", "--json", "--threads", t]);
      expect(r.code, r.stderr).toBe(0);
      const d = JSON.parse(r.stdout);
      expect(d.threads).toBe(Number(t));
      got.push(d.tokens);
    }
    expect(got[1]).toEqual(got[0]);
  });
});
