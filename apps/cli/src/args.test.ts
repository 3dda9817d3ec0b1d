import { describe, expect, it } from "vitest";
import { checkArgs, choiceFlag, floatFlag, intFlag, multiFlag } from "./args";

describe("flag helpers", () => {
  it.each([
    ["8", 8],
    [" 4 ", 4],
    [undefined, 7],
  ])("intFlag(%j) = %d", (v, want) => {
    expect(intFlag("bits", v, 7, { choices: [8, 4, 3, 2, 7] })).toBe(want);
  });

  it.each(["5", "4.5", "", "four", "1e3"])("intFlag rejects %j naming the flag and the choices", (v) => {
    expect(() => intFlag("bits", v, 4, { choices: [8, 4, 3, 2], command: "quantize" })).toThrow(
      /--bits must be one of 8, 4, 3, 2, got .*lowbit quantize --help/,
    );
  });

  it.each([
    ["0", { positive: true }],
    ["-1", { min: 0 }],
    ["x", {}],
    ["", {}],
  ])("floatFlag rejects %j", (v, opts) => {
    expect(() => floatFlag("lr", v, 1, opts)).toThrow(/--lr must be a number/);
  });

  it("choiceFlag is case-insensitive and names the choices", () => {
    expect(choiceFlag("method", "GPTQ", ["rtn", "gptq"], "rtn")).toBe("gptq");
    expect(() => choiceFlag("method", "xyz", ["rtn", "gptq"], "rtn")).toThrow(/one of rtn, gptq/);
  });

  it.each([
    [["--calib", "a.txt", "b.txt", "--bits", "4"], ["a.txt", "b.txt"]],
    [["--calib=a.txt,b.txt"], ["a.txt", "b.txt"]],
    [["--calib", "a", "--seed", "1", "--calib", "c"], ["a", "c"]],
    [["--bits", "4"], []],
  ])("multiFlag(%j)", (argv, want) => {
    expect(multiFlag(argv, "calib")).toEqual(want);
  });

  const defs = {
    model: { type: "positional" },
    bits: { type: "string" },
    groupSize: { type: "string" },
    sym: { type: "boolean" },
    calib: { type: "string" },
  } as const;

  it.each([
    [["m.bin", "--bits", "4", "--group-size", "32", "--sym"]],
    [["m.bin", "--groupSize=32", "--no-sym"]],
    [["m.bin", "--calib", "a", "b", "c", "--bits", "-1"]],
  ])("checkArgs accepts %j", (argv) => {
    expect(() => checkArgs("quantize", defs, argv, ["calib"])).not.toThrow();
  });

  it.each([
    [["m.bin", "extra"], /unexpected argument "extra"/],
    [["m.bin", "--bitz", "4"], /unknown option "--bitz"/],
    [["m.bin", "--calib", "a", "b"], /unexpected argument "b"/],
  ])("checkArgs rejects %j", (argv, msg) => {
    expect(() => checkArgs("quantize", defs, argv)).toThrow(msg);
  });
});
