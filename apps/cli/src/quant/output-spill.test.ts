import { existsSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { Rng } from "@lowbit/tensor";
import { describe, expect, it } from "vitest";
import { OutputSpill } from "./output-spill";

describe("OutputSpill: f32 arrays through a temporary file, back in the order written", () => {
  it.each([[[1]], [[0, 5, 3]], [[4096, 1, 70_000, 17]]])("lengths %j", (lengths) => {
    const rng = new Rng(lengths.length);
    const arrays = lengths.map((n) => Float32Array.from({ length: n }, () => rng.normal()));
    const spill = new OutputSpill();
    try {
      // a view into a larger buffer is written as the view
      for (const a of arrays) {
        const host = new Float32Array(a.length + 2);
        host.set(a, 1);
        spill.push(host.subarray(1, a.length + 1));
      }
      expect(spill.count).toBe(arrays.length);
      for (const a of arrays) expect(Buffer.from(spill.shift(a.length).buffer).equals(Buffer.from(a.buffer))).toBe(true);
      expect(() => spill.shift(1)).toThrow(expect.objectContaining({ code: "E_INTERNAL" }));
    } finally {
      spill.dispose();
    }
  });

  it("rejects reading an array with another length, and deletes its folder on dispose", () => {
    const before = new Set(readdirSync(tmpdir()).filter((f) => f.startsWith("lowbit-outputs-")));
    const spill = new OutputSpill();
    const made = readdirSync(tmpdir()).filter((f) => f.startsWith("lowbit-outputs-") && !before.has(f));
    expect(made).toHaveLength(1);
    spill.push(new Float32Array(8));
    expect(() => spill.shift(7)).toThrow(/array 0 has 8 values, 7 were asked for/);
    spill.dispose();
    expect(existsSync(`${tmpdir()}/${made[0]}`)).toBe(false);
  });
});
