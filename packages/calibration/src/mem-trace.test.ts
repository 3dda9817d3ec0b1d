import { afterEach, describe, expect, it, vi } from "vitest";

describe("memTrace (LOWBIT_MEMTRACE=1)", () => {
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.restoreAllMocks();
    vi.resetModules();
  });

  it.each([
    { env: undefined, lines: 0 },
    { env: "0", lines: 0 },
    { env: "1", lines: 1 },
  ])("with LOWBIT_MEMTRACE=$env prints $lines line(s) per phase", async ({ env, lines }) => {
    if (env === undefined) vi.stubEnv("LOWBIT_MEMTRACE", undefined);
    else vi.stubEnv("LOWBIT_MEMTRACE", env);
    vi.resetModules();
    const { memTrace, memTraceEnabled } = await import("./mem-trace");
    const written: string[] = [];
    vi.spyOn(process.stderr, "write").mockImplementation((s: string | Uint8Array) => {
      written.push(String(s));
      return true;
    });
    memTrace("layer 3 quantized");
    expect(memTraceEnabled()).toBe(lines > 0);
    expect(written).toHaveLength(lines);
    if (lines > 0) {
      expect(written[0]).toMatch(/^memtrace rss +[\d.]+ peak +[\d.]+ heap +[\d.]+ arrayBuffers +[\d.]+ external +[\d.]+ wasm +[\d.]+ {2}layer 3 quantized\n$/);
    }
  });
});
