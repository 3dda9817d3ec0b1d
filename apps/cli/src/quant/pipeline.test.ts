import { existsSync, readdirSync, readlinkSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { hasData, tmpDir } from "@lowbit/testing";
import { isLowbitError } from "@lowbit/tensor";
import { afterAll, describe, expect, it } from "vitest";
import { rtnSettings } from "../test-helpers";
import { prepare, type QuantizeSettings } from "./pipeline";

const root = tmpDir("lowbit-prepare-");
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The file descriptors of this process that point at `file` (Linux: /proc/self/fd). */
function fdsOn(file: string): string[] {
  const target = realpathSync(file);
  return readdirSync("/proc/self/fd").filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === target;
    } catch {
      return false; // the directory's own descriptor, gone once read
    }
  });
}

function settings(over: Partial<QuantizeSettings>): QuantizeSettings {
  return rtnSettings({ format: "lowbit", ...over });
}

describe.skipIf(!hasData || !existsSync("/proc/self/fd"))("prepare (stories260K)", () => {
  it("keeps the model file open for the caller, who closes it", async () => {
    const s = settings({});
    const p = await prepare(s);
    expect(fdsOn(s.model).length).toBe(1);
    await p.opened.close();
    expect(fdsOn(s.model)).toEqual([]);
  });

  it("closes the model file itself when the tokenizer cannot be read", async () => {
    const bad = join(root, "tok.bin");
    writeFileSync(bad, Buffer.from([1, 2, 3]));
    const s = settings({ tokenizer: bad });
    const err = await prepare(s).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isLowbitError(err), String(err)).toBe(true);
    expect(String((err as Error).message)).toContain("tok.bin");
    expect(fdsOn(s.model)).toEqual([]);
  });
});
