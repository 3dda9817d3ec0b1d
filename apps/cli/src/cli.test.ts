import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { commands } from "./cli";
import { run } from "./test-helpers";
import { VERSION } from "./version";

const ESC = String.fromCharCode(27);

describe("lowbit (root)", () => {
  it("prints usage listing every command with --help and exits 0", async () => {
    const r = await run(["--help"]);
    expect(r.code).toBe(0);
    for (const name of Object.keys(commands)) expect(r.stdout).toContain(name);
    expect(r.stdout).not.toContain(ESC);
  });

  it("--version matches package.json", async () => {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
    expect(VERSION).toBe(pkg.version);
    const r = await run(["--version"]);
    expect(r.stdout.trim()).toBe(VERSION);
  });

  it.each(Object.keys(commands))("%s --help shows its usage and --json", async (name) => {
    const r = await run([name, "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`lowbit ${name}`);
    expect(r.stdout).toContain("--json");
  });

  it("colours help only on a TTY and never with NO_COLOR", async () => {
    expect((await run(["--help"], { tty: true })).stdout).toContain(ESC);
    expect((await run(["--help"], { tty: true, env: { NO_COLOR: "1" } })).stdout).not.toContain(ESC);
    expect((await run(["--help"], { tty: false })).stdout).not.toContain(ESC);
  });

  it.each([
    [["nope"], /unknown command "nope"/],
    [["inspect", "--bogus"], /unknown option "--bogus" for "lowbit inspect"/],
    [["quantize", "--group_size=64"], /Did you mean "--group-size"\?/],
  ])("%j fails with a one-paragraph error and exit 1", async (argv, message) => {
    const r = await run(argv as string[]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toContain("--help");
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
  });

  it("--json turns a failure into a JSON error object on stdout", async () => {
    const r = await run(["inspect", "--bogus", "--json"]);
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout) as { ok: boolean; error: { code: string } };
    expect(out).toMatchObject({ ok: false, error: { code: "E_INVALID_ARGUMENT" } });
  });
});
