import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { dataFile, hasData, tmpDir } from "@lowbit/testing";
import { Rng } from "@lowbit/tensor";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * Reliability of `lowbit quantize` as a real process: SIGKILL at any moment leaves no partial file
 * at the output path, and --resume continues from the last finished layer to an output
 * byte-identical to an uninterrupted run.
 */
const cli = join(import.meta.dirname, "..", "src", "main.ts");

function start(args: string[]): { child: ChildProcess; done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> } {
  const child = spawn(process.execPath, ["--conditions=@lowbit/source", "--import", "tsx", cli, ...args], {
    cwd: join(import.meta.dirname, ".."),
    env: { ...process.env, NO_COLOR: "1", LOWBIT_PROGRESS: "1" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += String(d)));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((res) =>
    child.on("exit", (code, signal) => res({ code, signal, stderr })),
  );
  return { child, done };
}

/** sha256 of every file under a path (a file or a folder), by relative name. */
function digest(path: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (p: string, rel: string) => {
    if (statSync(p).isDirectory()) for (const n of readdirSync(p).sort()) walk(join(p, n), rel ? `${rel}/${n}` : n);
    else out[rel || "."] = createHash("sha256").update(readFileSync(p)).digest("hex");
  };
  walk(path, "");
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond: () => boolean, timeoutMs: number): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error("timed out waiting");
    await sleep(20);
  }
}

describe.skipIf(!hasData)("quantize under SIGKILL (child processes)", () => {
  const dir = hasData ? tmpDir("lowbit-resume-") : "";
  const calib = join(dir, "calib.txt");
  const args = (out: string, format = "lowbit") => [
    "quantize",
    dataFile("stories260K", "stories260K.bin"),
    "--method",
    "gptq",
    "--bits",
    "4",
    "--group-size",
    "32",
    "--calib",
    calib,
    "--samples",
    "8",
    "--seq-len",
    "64",
    "--format",
    format,
    "--out",
    out,
  ];
  const reference: Record<string, Record<string, string>> = {};

  beforeAll(async () => {
    const text = readFileSync(dataFile("text", "tinystories-valid.txt"), "utf8");
    writeFileSync(calib, text.slice(0, 60_000));
    for (const format of ["lowbit", "gguf"]) {
      const out = join(dir, `ref-${format}${format === "gguf" ? ".gguf" : ""}`);
      const r = await start(args(out, format)).done;
      expect(r.code, r.stderr).toBe(0);
      reference[format] = digest(out);
      expect(existsSync(`${out}.run.json`)).toBe(true);
      // a finished run removes its checkpoints once the output is in place
      expect(readdirSync(dir).some((n) => n.includes("lowbit-resume"))).toBe(false);
    }
  }, 120_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each(["lowbit", "gguf"])("%s: killed after two layers, --resume finishes byte-identical to an uninterrupted run", async (format) => {
    const out = join(dir, `killed-${format}${format === "gguf" ? ".gguf" : ""}`);
    const state = join(dir, `.killed-${format}${format === "gguf" ? ".gguf" : ""}.lowbit-resume`, "state.json");
    const p = start(args(out, format));
    await waitFor(() => existsSync(state) && JSON.parse(readFileSync(state, "utf8")).next >= 2, 60_000);
    p.child.kill("SIGKILL");
    const r = await p.done;
    expect(r.signal).toBe("SIGKILL");
    expect(existsSync(out)).toBe(false);
    const resumed = await start([...args(out, format), "--resume"]).done;
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resumed after layer [1-4]/);
    expect(digest(out)).toEqual(reference[format]);
  }, 120_000);

  it("killed at random moments, the output path holds nothing or the complete output", async () => {
    const rng = new Rng(1234);
    const out = join(dir, "random");
    for (let trial = 0; trial < 3; trial++) {
      const p = start(args(out));
      await sleep(800 + rng.int(4000));
      p.child.kill("SIGKILL");
      await p.done;
      if (existsSync(out)) expect(digest(out)).toEqual(reference.lowbit);
      const names = readdirSync(dir).filter((n) => n.startsWith("random") && n !== "random.run.json");
      expect(names.every((n) => n === "random")).toBe(true);
    }
    const resumed = await start([...args(out), "--resume"]).done;
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(digest(out)).toEqual(reference.lowbit);
  }, 150_000);
});
