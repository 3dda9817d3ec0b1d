import { bitsEqual } from "@lowbit/testing";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { getEngine, setKernelBackend } from "../engine/engine";
import { getKernelThreads, kernelThreadsInfo, kernelThreadsReady, setKernelThreads, shutdownKernelThreads } from "../engine/threads";
import { LowbitError } from "../errors";
import { decodeBf16, decodeF16, encodeBf16, encodeF16 } from "../half";
import { Rng } from "../rng";
import { F32Linear } from "./f32-linear";
import { HALF_FMT, type HalfFormat, halfKernels } from "./half-kernels";
import { HalfLinear } from "./half-linear";
import { matmulABtHalfRef } from "./half-ref";

afterEach(() => setKernelBackend("wasm"));

const u32 = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

/** max |got - want| / max(1e-30, max |want|): relative to the output's scale. */
function relErr(got: Float32Array, want: Float32Array): number {
  let num = 0;
  let den = 1e-30;
  for (let i = 0; i < want.length; i++) {
    num = Math.max(num, Math.abs(got[i]! - want[i]!));
    den = Math.max(den, Math.abs(want[i]!));
  }
  return num / den;
}

/** Converts `bits` with the kernel's half_to_f32 (n values per call, so n % 4 exercises the scalar tail). */
function kernelDecode(bits: Uint16Array, fmt: number, perCall: number): Float32Array {
  const engine = getEngine();
  const src = engine.buffer(bits.length * 2 + 16);
  const dst = engine.buffer(bits.length * 4 + 16);
  src.u16(0, bits.length).set(bits);
  const kx = halfKernels(engine);
  for (let i = 0; i < bits.length; i += perCall) {
    kx.half_to_f32(src.ptr + 2 * i, dst.ptr + 4 * i, Math.min(perCall, bits.length - i), fmt);
  }
  const out = dst.f32(0, bits.length).slice();
  src.dispose();
  dst.dispose();
  return out;
}

/** Weights of scale ~0.1 with some f16 subnormals, zeros and signed zeros mixed in. */
function weights(rng: Rng, count: number): Float32Array {
  const w = rng.fillNormal(new Float32Array(count), 0, 0.1);
  for (let i = 0; i < count; i += 37) w[i] = (i % 2 ? 1 : -1) * 3e-6 * rng.uniform(); // f16 subnormal range
  for (let i = 5; i < count; i += 101) w[i] = i % 2 ? 0 : -0;
  return w;
}

describe("half -> f32 conversion in the kernel: bit-exact over all 65,536 inputs", () => {
  const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
  it.each([
    ["f16", HALF_FMT.f16, 65536],
    ["f16", HALF_FMT.f16, 3],
    ["bf16", HALF_FMT.bf16, 65536],
    ["bf16", HALF_FMT.bf16, 3],
  ] as const)("%s (format code %i), %i values per call", (name, fmt, perCall) => {
    const want = name === "bf16" ? decodeBf16(all) : decodeF16(all);
    const got = kernelDecode(all, fmt, perCall);
    const a = u32(got);
    const b = u32(want);
    const bad: number[] = [];
    for (let h = 0; h < 65536; h++) if (a[h] !== b[h]) bad.push(h);
    expect(bad.slice(0, 8)).toEqual([]);
  });

  it.each([65536, 3])("f16 without the inf/NaN fix is exact on every finite input (%i per call)", (perCall) => {
    const finite = all.filter((h) => (h & 0x7c00) !== 0x7c00);
    expect(finite.length).toBe(65536 - 2048);
    expect(bitsEqual(kernelDecode(finite, HALF_FMT.f16Finite, perCall), decodeF16(finite))).toBe(true);
  });
});

// [m, out, in, bias]: m = 1 is the GEMV, ragged sizes hit every tail (rows % 4, k % 8, panels % 8, k > KC = 512)
const shapes: Array<[number, number, number, boolean]> = [
  [1, 1, 1, false],
  [1, 7, 5, true],
  [1, 33, 130, false],
  [1, 64, 64, true],
  [1, 4096, 64, false],
  [2, 3, 4, true],
  [3, 9, 17, false],
  [5, 13, 1023, true],
  [7, 64, 513, false],
  [16, 17, 3, true],
  [33, 70, 1030, false],
  [130, 24, 64, true],
  [9, 1, 600, false],
];

describe.each(["f16", "bf16"] as const)("HalfLinear %s", (format: HalfFormat) => {
  it.each(shapes)("m=%i out=%i in=%i bias=%s: the reference twin within f32 rounding; F32Linear of the decoded weight bit for bit", (m, n, k, withBias) => {
    const rng = new Rng(m * 7919 + n * 31 + k + (format === "bf16" ? 1 : 0));
    const w = weights(rng, n * k);
    const bias = withBias ? rng.fillNormal(new Float32Array(n)) : undefined;
    const x = rng.fillNormal(new Float32Array(m * k));
    const lin = HalfLinear.fromF32(w, n, k, { format, bias });
    const bits = format === "bf16" ? encodeBf16(w) : encodeF16(w);
    expect(lin.kind).toBe(format);
    expect(lin.storageBytes).toBe(2 * n * k + (bias ? 4 * n : 0));
    expect(Array.from(lin.weightBits())).toEqual(Array.from(bits));
    const decoded = format === "bf16" ? decodeBf16(bits) : decodeF16(bits);
    expect(bitsEqual(lin.dequantizedWeight(), decoded)).toBe(true);
    // unrelated allocations in between (memory growth) must not disturb the resident weight
    const junk = getEngine().buffer(4 << 20);
    const got = lin.forward(x, m);
    junk.dispose();
    const want = matmulABtHalfRef(x, bits, format, m, n, k, bias);
    // the conversion is exact, so only f32 summation order separates the kernels from the f64-accumulating twin
    expect(relErr(got, want)).toBeLessThanOrEqual(1e-5);
    // same packing / accumulation order as the f32 kernels: identical to F32Linear on the decoded weight
    const f32 = new F32Linear(decoded, n, k, bias);
    expect(bitsEqual(got, f32.forward(x, m))).toBe(true);
    f32.dispose();
    setKernelBackend("ref");
    expect(relErr(lin.forward(x, m), want)).toBeLessThanOrEqual(1e-6);
    setKernelBackend("wasm");
    const out = new Float32Array(m * n);
    expect(lin.forward(x, m, out)).toBe(out);
    expect(bitsEqual(out, got)).toBe(true);
    lin.dispose();
  });
});

describe("HalfLinear with inf / NaN f16 weights", () => {
  it.each([1, 6])("m=%i: inf and NaN weights propagate exactly as with the decoded f32 weight", (m) => {
    const [n, k] = [12, 40];
    const rng = new Rng(77);
    const bits = encodeF16(weights(rng, n * k));
    bits[3] = 0x7c00; // +inf in row 0
    bits[k + 9] = 0xfc00; // -inf in row 1
    bits[5 * k + 39] = 0x7e01; // NaN in row 5 (tail column)
    const x = rng.fillNormal(new Float32Array(m * k));
    const lin = new HalfLinear(bits, n, k, { format: "f16" });
    const f32 = new F32Linear(decodeF16(bits), n, k);
    const got = lin.forward(x, m);
    const want = f32.forward(x, m);
    for (let i = 0; i < m; i++) {
      expect(Math.abs(got[i * n]!)).toBe(Number.POSITIVE_INFINITY);
      expect(Number.isNaN(got[i * n + 5]!)).toBe(true);
    }
    for (let i = 0; i < got.length; i++) expect(Object.is(got[i], want[i]) || (Number.isNaN(got[i]!) && Number.isNaN(want[i]!))).toBe(true);
    lin.dispose();
    f32.dispose();
  });
});

describe("HalfLinear f16 GEMV with large activations", () => {
  // finite f16 weights multiply x pre-scaled by 2^112, exact while every |x| < 2^16; beyond that
  // the GEMV falls back to scaling each weight, with the same result bit for bit
  it.each([
    [1000, "prescaled"],
    [65535, "prescaled"],
    [65536, "fallback"],
    [3e38, "fallback"],
    [Number.POSITIVE_INFINITY, "prescaled"],
  ])("x holding %s (%s path) equals F32Linear on the decoded weight", (big) => {
    const [n, k] = [9, 21];
    const rng = new Rng(5);
    const bits = encodeF16(weights(rng, n * k));
    const x = rng.fillNormal(new Float32Array(k));
    x[4] = big;
    x[19] = -big / 2;
    const lin = new HalfLinear(bits, n, k, { format: "f16" });
    const f32 = new F32Linear(decodeF16(bits), n, k);
    const got = lin.forward(x, 1);
    const want = f32.forward(x, 1);
    for (let i = 0; i < n; i++) expect(Object.is(got[i], want[i]) || (Number.isNaN(got[i]!) && Number.isNaN(want[i]!))).toBe(true);
    lin.dispose();
    f32.dispose();
  });
});

describe("HalfLinear: bad input", () => {
  it("rejects a bad format, mismatched lengths and use after dispose, naming what was expected", () => {
    expect(() => new HalfLinear(new Uint16Array(6), 2, 3, { format: "f8" as HalfFormat })).toThrow(/format must be "f16" or "bf16"/);
    expect(() => new HalfLinear(new Uint16Array(5), 2, 3, { format: "f16" })).toThrow(/weight must hold \[out=2, in=3\] = 6 values, got 5/);
    expect(() => new HalfLinear(new Uint16Array(6), 2, 3, { format: "bf16", bias: new Float32Array(3) })).toThrow(LowbitError);
    const lin = new HalfLinear(new Uint16Array(6), 2, 3, { format: "bf16" });
    expect(() => lin.forward(new Float32Array(4), 1)).toThrow(/x must hold \[m=1, in=3\]/);
    expect(Array.from(lin.forward(new Float32Array(0), 0))).toEqual([]);
    lin.dispose();
    expect(() => lin.forward(new Float32Array(3), 1)).toThrow(/after dispose/);
  });
});

describe("HalfLinear on 2 and 3 kernel threads equals one thread bit for bit", () => {
  afterAll(async () => {
    await shutdownKernelThreads();
  });
  // big enough to be split (>= 2^18 multiply-adds per part), ragged on purpose
  const cases: Array<[HalfFormat, number, number, number]> = [
    ["f16", 1, 4096, 257],
    ["bf16", 1, 1031, 515],
    ["f16", 64, 515, 300],
    ["bf16", 5, 2047, 129],
    ["f16", 300, 7, 1000],
  ];
  const rng = new Rng(9);
  const data = cases.map(([format, m, n, k]) => ({
    format,
    m,
    n,
    k,
    w: weights(rng, n * k),
    x: rng.fillNormal(new Float32Array(m * k)),
    bias: rng.fillNormal(new Float32Array(n)),
  }));
  const runAll = () =>
    data.map((c) => {
      const lin = HalfLinear.fromF32(c.w, c.n, c.k, { format: c.format, bias: c.bias });
      const y = lin.forward(c.x, c.m);
      lin.dispose();
      return y;
    });

  it.each([2, 3])("%i threads", async (t) => {
    expect(getKernelThreads()).toBe(1);
    const single = runAll();
    expect(setKernelThreads(t, { spinMicros: 50 })).toBe(t);
    expect(await kernelThreadsReady()).toBe(t);
    const before = kernelThreadsInfo().dispatches;
    const got = runAll();
    for (const [i, y] of got.entries()) expect(bitsEqual(y, single[i]!), `case ${i}`).toBe(true);
    expect(kernelThreadsInfo().dispatches - before).toBe(cases.length);
    await shutdownKernelThreads();
  });
});
