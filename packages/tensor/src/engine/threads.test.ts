import { execFileSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { bitsEqual } from "@lowbit/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { F32Linear } from "../kernels/f32-linear";
import { f32Module, gemv, matmulAB, matmulABt, splitRange } from "../kernels/f32";
import { Rng } from "../rng";
import { wasmBase64 as f32Base64 } from "../wasm/f32.generated";
import { wasmBase64 as f64Base64 } from "../wasm/f64.generated";
import { MAX_PAGES, getEngine } from "./engine";
import { toSharedMemoryModule } from "./shared-module";
import {
  activeKernelThreads,
  getKernelThreads,
  kernelThreadsInfo,
  kernelThreadsReady,
  limitKernelThreads,
  runKernelParts,
  setKernelThreads,
  shutdownKernelThreads,
} from "./threads";

const here = path.dirname(fileURLToPath(import.meta.url));

function b64(s: string): Uint8Array<ArrayBuffer> {
  const b = Buffer.from(s, "base64");
  const out = new Uint8Array(b.byteLength);
  out.set(b);
  return out;
}

describe("shared-memory variant of kernel modules", () => {
  it.each([
    ["tensor/f32", f32Base64],
    ["tensor/f64", f64Base64],
  ])("%s: only the memory import changes; instantiates over a shared memory only", (_name, base64) => {
    const bytes = b64(base64);
    const shared = toSharedMemoryModule(bytes, MAX_PAGES);
    // limits {flags 0, min} -> {flags 3, min, max 65536 (3 LEB bytes)}: 3 bytes longer
    expect(shared.length).toBe(bytes.length + 3);
    const sharedMem = new WebAssembly.Memory({ initial: 17, maximum: MAX_PAGES, shared: true });
    const plainMem = new WebAssembly.Memory({ initial: 17, maximum: MAX_PAGES });
    const sm = new WebAssembly.Module(shared);
    expect(WebAssembly.Module.exports(sm).map((e) => e.name)).toEqual(
      WebAssembly.Module.exports(new WebAssembly.Module(bytes)).map((e) => e.name),
    );
    expect(() => new WebAssembly.Instance(sm, { env: { memory: sharedMem } })).not.toThrow();
    expect(() => new WebAssembly.Instance(sm, { env: { memory: plainMem } })).toThrow();
    expect(() => new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory: sharedMem } })).toThrow();
    // idempotent
    expect(toSharedMemoryModule(shared, MAX_PAGES)).toEqual(shared);
  });

  it("rejects bytes that are not a kernel module", () => {
    expect(() => toSharedMemoryModule(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]), MAX_PAGES)).toThrow(/not a WebAssembly/);
    // a module without imports
    expect(() => toSharedMemoryModule(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]), MAX_PAGES)).toThrow(/no import/);
  });
});

describe("splitRange", () => {
  it.each([
    [10, 2, 4, [0, 8, 10]],
    [4096, 2, 4, [0, 2048, 4096]],
    [17, 3, 8, [0, 8, 16, 17]],
    [5, 3, 4, [0, 4, 4, 5]],
  ])("%i into %i parts aligned to %i", (total, parts, align, want) => {
    expect(splitRange(total, parts, align)).toEqual(want);
  });
});

// Shapes big enough to be split (>= 2^18 multiply-adds per part), ragged on purpose.
const gemvShapes: Array<[number, number]> = [
  [4096, 257],
  [1031, 515],
  [515, 1029],
  [2051, 263],
];
const gemmShapes: Array<[number, number, number]> = [
  [64, 515, 300],
  [5, 2047, 129],
  [300, 7, 1000],
  [33, 130, 513],
  [129, 64, 257],
];

describe("kernel threads (2 and 3 threads) equal one thread bit for bit", () => {
  const rng = new Rng(9);
  const gemvCases = gemvShapes.map(([n, k]) => {
    const w = rng.fillNormal(new Float32Array(n * k));
    const x = rng.fillNormal(new Float32Array(k));
    const bias = rng.fillNormal(new Float32Array(n));
    return { n, k, w, x, bias };
  });
  const gemmCases = gemmShapes.map(([m, n, k]) => {
    const a = rng.fillNormal(new Float32Array(m * k));
    const b = rng.fillNormal(new Float32Array(n * k));
    const bias = rng.fillNormal(new Float32Array(n));
    return { m, n, k, a, b, bias };
  });
  type Out = { gemv: Float32Array[]; lin1: Float32Array[]; abt: Float32Array[]; ab: Float32Array[]; lin: Float32Array[] };
  const runAll = (): Out => {
    const o: Out = { gemv: [], lin1: [], abt: [], ab: [], lin: [] };
    for (const c of gemvCases) {
      o.gemv.push(gemv(c.w, c.x, c.n, c.k));
      const l = new F32Linear(c.w, c.n, c.k, c.bias);
      o.lin1.push(l.forward(c.x, 1));
      l.dispose();
    }
    for (const c of gemmCases) {
      o.abt.push(matmulABt(c.a, c.b, c.m, c.n, c.k));
      o.ab.push(matmulAB(c.a, c.b, c.m, c.n, c.k));
      const l = new F32Linear(c.b, c.n, c.k, c.bias);
      o.lin.push(l.forward(c.a, c.m));
      l.dispose();
    }
    return o;
  };
  let single: Out;

  beforeAll(() => {
    expect(getKernelThreads()).toBe(1);
    single = runAll();
  });
  afterAll(async () => {
    await shutdownKernelThreads();
  });

  it.each([2, 3])("%i threads", async (t) => {
    expect(setKernelThreads(t, { spinMicros: 50 })).toBe(t);
    expect(await kernelThreadsReady()).toBe(t);
    const info = kernelThreadsInfo();
    expect(info).toMatchObject({ threads: t, ready: true, shared: true, dispatches: 0 });
    const got = runAll();
    for (const key of ["gemv", "lin1", "abt", "ab", "lin"] as const) {
      got[key].forEach((y, i) => {
        expect(bitsEqual(y, single[key][i]!), `${key} case ${i}`).toBe(true);
      });
    }
    // every call above was split: 4 gemv + 4 linear gemv + 5 x 3 gemm
    expect(kernelThreadsInfo().dispatches).toBe(2 * gemvCases.length + 3 * gemmCases.length);
    // small calls stay on the calling thread
    const before = kernelThreadsInfo().dispatches;
    gemv(new Float32Array(64 * 64).fill(1), new Float32Array(64).fill(2), 64, 64);
    expect(kernelThreadsInfo().dispatches).toBe(before);
  });

  it("keeps working after the memory grows under running workers, and after shutdown", async () => {
    setKernelThreads(2);
    await kernelThreadsReady();
    const engine = getEngine();
    const big = engine.buffer(96 * 2 ** 20); // grows the shared memory past what the workers first saw
    const c = gemvCases[0]!;
    const w = engine.buffer(c.w.length * 4);
    w.f32().set(c.w);
    expect(bitsEqual(gemv(w.f32(0, c.w.length), c.x, c.n, c.k), single.gemv[0]!)).toBe(true);
    big.dispose();
    w.dispose();
    await shutdownKernelThreads();
    expect(getKernelThreads()).toBe(1);
    expect(bitsEqual(gemv(c.w, c.x, c.n, c.k), single.gemv[0]!)).toBe(true);
    await shutdownKernelThreads(); // twice is fine
  });

  it("limitKernelThreads caps each call's threads with the workers kept, and lifts the cap", async () => {
    setKernelThreads(3);
    await kernelThreadsReady();
    const c = gemmCases[gemmCases.length - 1]!;
    try {
      limitKernelThreads(1);
      expect(activeKernelThreads()).toBe(1);
      const before = kernelThreadsInfo().dispatches;
      expect(bitsEqual(matmulABt(c.a, c.b, c.m, c.n, c.k), single.abt[gemmCases.length - 1]!)).toBe(true);
      // parts handed over directly run here, one after another
      const one = { module: f32Module, fn: "dot_f32", args: [0, 0, 0] };
      runKernelParts([one, one]);
      expect(kernelThreadsInfo().dispatches).toBe(before);
      limitKernelThreads(2);
      expect(activeKernelThreads()).toBe(2);
      expect(bitsEqual(matmulABt(c.a, c.b, c.m, c.n, c.k), single.abt[gemmCases.length - 1]!)).toBe(true);
      expect(kernelThreadsInfo().dispatches).toBe(before + 1);
      runKernelParts([one, one, one]); // 3 parts over a cap of 2: not dispatched
      expect(kernelThreadsInfo().dispatches).toBe(before + 1);
      limitKernelThreads(undefined);
      expect(activeKernelThreads()).toBe(3);
      expect(kernelThreadsInfo()).toMatchObject({ threads: 3, ready: true });
      // a new thread count removes the cap
      limitKernelThreads(1);
      setKernelThreads(2);
      await kernelThreadsReady();
      expect(activeKernelThreads()).toBe(2);
    } finally {
      limitKernelThreads(undefined);
      await shutdownKernelThreads();
    }
    expect(() => limitKernelThreads(0)).toThrow(/integer in 1\.\.256 or undefined/);
    expect(() => limitKernelThreads(1.5)).toThrow(/limitKernelThreads/);
  });

  it("passes up to 16 arguments to a worker's part and rejects more", async () => {
    setKernelThreads(2);
    await kernelThreadsReady();
    const part = (n: number) => ({ module: f32Module, fn: "dot_f32", args: new Array<number>(n).fill(0) });
    // extra arguments are ignored by the export; 16 fit the worker's slot
    expect(() => runKernelParts([part(3), part(16)])).not.toThrow();
    expect(() => runKernelParts([part(3), part(17)])).toThrow(/at most 16 arguments/);
    await shutdownKernelThreads();
  });

  it("rejects a bad thread count", () => {
    expect(() => setKernelThreads(0)).toThrow(/integer in 1\.\.256/);
    expect(() => setKernelThreads(1.5)).toThrow(/integer/);
  });
});

describe("workers never keep Node alive", () => {
  it("a process that enables threads and never shuts them down exits by itself", () => {
    const index = path.join(here, "../index.ts");
    const script = `
      const t = await import(${JSON.stringify(index)});
      t.setKernelThreads(2);
      await t.kernelThreadsReady();
      const n = 1024, k = 1024;
      const w = new Float32Array(n * k).fill(0.5), x = new Float32Array(k).fill(2);
      const y = t.gemv(w, x, n, k);
      console.log(JSON.stringify({ y0: y[0], dispatches: t.kernelThreadsInfo().dispatches }));
    `;
    const out = execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      cwd: here,
      timeout: 30000,
      encoding: "utf8",
    });
    expect(JSON.parse(out.trim().split("\n").pop()!)).toEqual({ y0: 1024, dispatches: 1 });
  });
});
