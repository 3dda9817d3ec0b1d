import { describe, expect, it } from "vitest";
import { type BenchRecordJson, backendClass, chartsOf, machineText, parseAccuracy, parseResults } from "../.vitepress/theme/bench/bench-model";

const rec = (kernel: string, backend: string, gops: number | null, gbps: number | null, extra?: BenchRecordJson["extra"]): BenchRecordJson => ({
  kernel,
  backend,
  shape: { m: 1, n: 64, k: 64 },
  ms: 1,
  minMs: 0.9,
  gops,
  gbps,
  ...(extra ? { extra } : {}),
});

describe("benchmark page model", () => {
  it.each([
    ["wasm", "lowbit"],
    ["wasm-simd-4-streams", "lowbit"],
    ["ref", "reference"],
    ["js", "reference"],
    ["onnxruntime-node MatMulNBits acc4", "peer"],
  ] as const)("backend %s is drawn as %s", (backend, cls) => {
    expect(backendClass(backend)).toBe(cls);
  });

  it("groups records by kernel and shape, GOP/s when there are operation counts, GB/s otherwise", () => {
    const charts = chartsOf([
      rec("gemv", "wasm", 8, 16, { input: "resident" }),
      rec("gemv", "ref", 0.5, 1),
      rec("gemv", "wasm speedup vs peers", null, null),
      rec("read-bandwidth", "js", null, 3),
      rec("cholesky", "js", null, null),
    ]);
    expect(charts.map((c) => [c.title, c.metric, c.bars.length])).toEqual([
      ["gemv 1×64×64", "GOP/s", 2],
      ["read-bandwidth 1×64×64", "GB/s", 1],
    ]);
    expect(charts[0]!.bars[0]).toMatchObject({ label: "wasm", note: "resident", value: 8, backendClass: "lowbit" });
  });

  it("reads accuracy protocols and their machine, and rejects other shapes", () => {
    const acc = parseAccuracy({
      protocol: { model: "m", seqLen: 256, nested: { x: 1 } },
      machine: { node: "v20.20.2", cpus: 2 },
      rows: [{ id: "fp32", label: "FP32", ppl: 7.4, kl: 0, top1: 1, bitsPerWeight: 32 }, { id: "bad" }],
    });
    expect(acc?.rows.map((r) => r.id)).toEqual(["fp32"]);
    expect(acc?.protocol).toEqual({ model: "m", seqLen: 256 });
    expect(machineText(acc!.machine!)).toBe("2 cores, Node 20.20.2");
    expect(parseAccuracy([rec("gemv", "wasm", 1, 1)])).toBeUndefined();
    expect(parseAccuracy({ rows: [] })).toBeUndefined();
  });

  it("parses result arrays and names the file when a record is malformed", () => {
    expect(parseResults(JSON.stringify([rec("gemv", "wasm", 1, 2)]), "f.json")).toHaveLength(1);
    expect(() => parseResults(JSON.stringify([{ kernel: "gemv" }]), "f.json")).toThrow(/f\.json: record 0/);
    expect(() => parseResults(JSON.stringify({ a: 1 }), "f.json")).toThrow(/f\.json: expected an array/);
  });
});
