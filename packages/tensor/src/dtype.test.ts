import { describe, expect, it } from "vitest";
import { byteSize, dtypeInfo, registerDType } from "./dtype";
import { LowbitError } from "./errors";

describe("dtype table", () => {
  it.each([
    ["f32", 4],
    ["f64", 8],
    ["f16", 2],
    ["bf16", 2],
    ["i8", 1],
    ["u8", 1],
    ["i16", 2],
    ["i32", 4],
  ])("%s is %i bytes", (name, bytes) => {
    expect(dtypeInfo(name).blockBytes).toBe(bytes);
    expect(byteSize(name, 10)).toBe(10 * bytes);
  });

  it("packed formats register with block sizes", () => {
    registerDType({ name: "test_q4_0", blockSize: 32, blockBytes: 18, kind: "packed" });
    expect(byteSize("test_q4_0", 64)).toBe(36);
    expect(() => byteSize("test_q4_0", 33)).toThrow(LowbitError);
    expect(() => registerDType({ name: "test_q4_0", blockSize: 32, blockBytes: 20, kind: "packed" })).toThrow(/already/);
  });

  it("unknown dtype is a LowbitError naming the known ones", () => {
    expect(() => dtypeInfo("f8")).toThrow(/unknown dtype "f8"; known: f32/);
  });
});
