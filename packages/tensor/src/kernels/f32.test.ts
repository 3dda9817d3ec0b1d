import { afterEach, describe, expect, it } from "vitest";
import { getEngine, setKernelBackend } from "../engine/engine";
import { LowbitError } from "../errors";
import { Rng } from "../rng";
import { gemv, matmulAB, matmulABt, sumF32, sumF32Ref } from "./f32";
import { F32Linear } from "./f32-linear";
import { gemvRef, matmulABRef, matmulABtRef } from "./f32-ref";

/** max |got - want| / max(1, max |want|): relative to the output's scale. */
function relErr(got: Float32Array, want: Float32Array): number {
  let num = 0;
  let den = 1e-30;
  for (let i = 0; i < want.length; i++) {
    num = Math.max(num, Math.abs(got[i]! - want[i]!));
    den = Math.max(den, Math.abs(want[i]!));
  }
  return num / den;
}

/** RMS relative error ||got - want|| / ||want||. */
function rmsRel(got: Float32Array, want: Float32Array): number {
  let e = 0;
  let w = 0;
  for (let i = 0; i < want.length; i++) {
    e += (got[i]! - want[i]!) ** 2;
    w += want[i]! ** 2;
  }
  return Math.sqrt(e / Math.max(w, 1e-30));
}

const shapes: Array<[number, number, number]> = [
  [1, 1, 1],
  [1, 7, 5],
  [1, 33, 130],
  [2, 3, 4],
  [3, 9, 17],
  [4, 8, 8],
  [5, 13, 1023],
  [7, 64, 513],
  [16, 17, 3],
  [33, 70, 1030],
  [130, 24, 64],
  [9, 1, 600],
  [1, 4096, 64],
];

afterEach(() => setKernelBackend("wasm"));

describe("f32 kernels: fast path against the reference twins", () => {
  it.each(shapes)("matmulABt m=%i n=%i k=%i", (m, n, k) => {
    const rng = new Rng(m * 7919 + n * 31 + k);
    const a = rng.fillNormal(new Float32Array(m * k));
    const b = rng.fillNormal(new Float32Array(n * k));
    const want = matmulABtRef(a, b, m, n, k);
    const got = matmulABt(a, b, m, n, k);
    expect(rmsRel(got, want)).toBeLessThanOrEqual(1e-5);
    expect(relErr(got, want)).toBeLessThanOrEqual(1e-5);
  });

  it.each(shapes)("matmulAB m=%i n=%i k=%i", (m, n, k) => {
    const rng = new Rng(m * 131 + n * 17 + k);
    const a = rng.fillNormal(new Float32Array(m * k));
    const b = rng.fillNormal(new Float32Array(k * n));
    const want = matmulABRef(a, b, m, n, k);
    const got = matmulAB(a, b, m, n, k);
    expect(rmsRel(got, want)).toBeLessThanOrEqual(1e-5);
    expect(relErr(got, want)).toBeLessThanOrEqual(1e-5);
  });

  it.each(shapes.map(([, n, k]) => [n, k]))("gemv n=%i k=%i", (n, k) => {
    const rng = new Rng(n * 3 + k);
    const w = rng.fillNormal(new Float32Array(n * k));
    const x = rng.fillNormal(new Float32Array(k));
    const want = gemvRef(w, x, n, k);
    const got = gemv(w, x, n, k);
    expect(relErr(got, want)).toBeLessThanOrEqual(1e-5);
  });

  it("writes into a given output, accepts kernel-memory views in place, handles empty shapes", () => {
    const rng = new Rng(5);
    const [m, n, k] = [6, 10, 12];
    const a = rng.fillNormal(new Float32Array(m * k));
    const b = rng.fillNormal(new Float32Array(n * k));
    const out = new Float32Array(m * n);
    expect(matmulABt(a, b, m, n, k, out)).toBe(out);
    const buf = getEngine().buffer(b.length * 4);
    buf.f32().set(b);
    const viaView = matmulABt(a, buf.f32(), m, n, k);
    expect(Array.from(viaView)).toEqual(Array.from(out));
    buf.dispose();
    expect(matmulABt(new Float32Array(0), new Float32Array(0), 0, 0, 5)).toHaveLength(0);
    expect(Array.from(matmulABt(new Float32Array(0), new Float32Array(0), 2, 3, 0))).toEqual([0, 0, 0, 0, 0, 0]);
    expect(Array.from(matmulAB(new Float32Array(0), new Float32Array(0), 2, 2, 0))).toEqual([0, 0, 0, 0]);
  });

  it("rejects mismatched lengths with a LowbitError naming the operand", () => {
    expect(() => matmulABt(new Float32Array(5), new Float32Array(6), 2, 2, 3)).toThrow(/matmulABt: a must hold \[m=2, k=3\]/);
    expect(() => gemv(new Float32Array(6), new Float32Array(2), 2, 3)).toThrow(LowbitError);
    expect(() => matmulAB(new Float32Array(6), new Float32Array(6), 2, 2, 3, new Float32Array(3))).toThrow(/out/);
  });

  it("the ref backend routes to the reference twins", () => {
    const rng = new Rng(6);
    const a = rng.fillNormal(new Float32Array(3 * 5));
    const b = rng.fillNormal(new Float32Array(4 * 5));
    setKernelBackend("ref");
    expect(Array.from(matmulABt(a, b, 3, 4, 5))).toEqual(Array.from(matmulABtRef(a, b, 3, 4, 5)));
  });
});

describe("sumF32", () => {
  it.each([0, 1, 15, 16, 17, 64, 1000, 4099])("n=%i, 1 and 4 streams, plain and kernel-memory input", (n) => {
    const x = new Rng(n).fillUniform(new Float32Array(n), -1, 1);
    const want = sumF32Ref(x);
    const tol = 1e-5 * Math.max(1, n);
    expect(Math.abs(sumF32(x) - want)).toBeLessThanOrEqual(tol);
    expect(Math.abs(sumF32(x, 4) - want)).toBeLessThanOrEqual(tol);
    const buf = getEngine().buffer(Math.max(4, n * 4));
    const view = buf.f32(0, n);
    view.set(x);
    expect(Math.abs(sumF32(view, 4) - want)).toBeLessThanOrEqual(tol);
    buf.dispose();
  });
});

describe("F32Linear", () => {
  it.each([
    [1, 33, 47, true],
    [1, 64, 64, false],
    [5, 31, 129, true],
    [12, 40, 512, false],
    [64, 24, 200, true],
  ])("m=%i out=%i in=%i bias=%s: fast and ref backends agree with x W^T + b", (m, out, inF, withBias) => {
    const rng = new Rng(m + out + inF);
    const w = rng.fillNormal(new Float32Array(out * inF), 0, 0.1);
    const bias = withBias ? rng.fillNormal(new Float32Array(out)) : undefined;
    const x = rng.fillNormal(new Float32Array(m * inF));
    const want = matmulABtRef(x, w, m, out, inF);
    if (bias) for (let i = 0; i < m; i++) for (let j = 0; j < out; j++) want[i * out + j]! += bias[j]!;
    const lin = new F32Linear(w, out, inF, bias);
    expect(lin.kind).toBe("f32");
    expect(lin.storageBytes).toBe(4 * (out * inF + (bias ? out : 0)));
    expect(Array.from(lin.dequantizedWeight())).toEqual(Array.from(w));
    // unrelated allocations in between (memory growth) must not disturb the resident weight
    const junk = getEngine().buffer(4 << 20);
    expect(relErr(lin.forward(x, m), want)).toBeLessThanOrEqual(1e-5);
    junk.dispose();
    setKernelBackend("ref");
    expect(relErr(lin.forward(x, m), want)).toBeLessThanOrEqual(1e-6);
    setKernelBackend("wasm");
    lin.dispose();
    expect(() => lin.forward(x, m)).toThrow(/after dispose/);
  });

  it("rejects a weight of the wrong size", () => {
    expect(() => new F32Linear(new Float32Array(5), 2, 3)).toThrow(/weight must hold \[out=2, in=3\]/);
  });
});
