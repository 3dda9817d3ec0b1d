import { describe, expect, it } from "vitest";
import { Capture } from "../test-helpers";
import { formatBytes, formatDuration, formatNumber } from "./format";
import { Io, stripAnsi } from "./io";
import { Progress } from "./progress";
import { renderTable } from "./table";

describe("formatting", () => {
  it.each([
    [0, "0 B"],
    [1023, "1023 B"],
    [1536, "1.50 KiB"],
    [1_056_540, "1.01 MiB"],
  ])("formatBytes(%d) = %s", (n, s) => expect(formatBytes(n)).toBe(s));

  it.each([
    [0.0123, "12 ms"],
    [3.456, "3.46 s"],
    [125, "2m 05s"],
    [3725, "1h 02m"],
  ])("formatDuration(%d) = %s", (n, s) => expect(formatDuration(n)).toBe(s));

  it.each([
    [1.23456, "1.235"],
    [Number.NaN, "-"],
    [0.000012, "1.200e-5"],
  ])("formatNumber(%d) = %s", (n, s) => expect(formatNumber(n)).toBe(s));
});

describe("renderTable", () => {
  it("pads columns by visible width and right-aligns numbers", () => {
    const t = renderTable(
      [{ header: "name" }, { header: "size", align: "right" }],
      [
        ["\u001B[31mrtn\u001B[39m", "1"],
        ["gptq", "100"],
      ],
    );
    const lines = stripAnsi(t).split("\n");
    expect(lines[0]).toBe("name  size");
    expect(lines[2]).toBe("rtn      1");
    expect(lines[3]).toBe("gptq   100");
  });
});

describe("Progress", () => {
  function fakeIo(tty: boolean, env: Record<string, string> = {}) {
    let t = 0;
    const stderr = new Capture(tty);
    const io = new Io({ stdout: new Capture(tty), stderr, env, now: () => t });
    return { io, stderr, advance: (ms: number) => (t += ms) };
  }

  it("shows layer i of n and an ETA from the mean step time", () => {
    const { io, stderr, advance } = fakeIo(false, { LOWBIT_PROGRESS: "1" });
    const p = new Progress(io, "quantize", 4);
    advance(2000);
    p.update(1, "blk.0");
    expect(p.eta).toBeCloseTo(6, 6);
    advance(2000);
    p.update(2, "blk.1");
    const lines = stderr.text.trim().split("\n");
    expect(lines[0]).toMatch(/quantize {2}layer 2 of 4 .* 25% {2}ETA 6\.00 s {2}blk\.0/);
    expect(lines[1]).toMatch(/layer 3 of 4 .* 50% {2}ETA 4\.00 s/);
  });

  it("is silent when stderr is not a TTY, and redraws in place on a TTY", () => {
    const quiet = fakeIo(false);
    new Progress(quiet.io, "x", 3).update(1);
    expect(quiet.stderr.text).toBe("");
    const live = fakeIo(true);
    const p = new Progress(live.io, "x", 3);
    p.update(1);
    live.advance(200);
    p.update(2);
    p.finish();
    expect(live.stderr.text.split("\r\u001B[2K").length).toBeGreaterThanOrEqual(3);
    expect(live.stderr.text).not.toContain("\n");
  });

  it("uses no colour with NO_COLOR even on a TTY", () => {
    const { io, stderr } = fakeIo(true, { NO_COLOR: "1" });
    new Progress(io, "x", 2).update(2);
    expect(stderr.text.replace("\r\u001B[2K", "")).not.toContain("\u001B[");
  });
});
