import { afterEach, describe, expect, it, vi } from "vitest";
import { gemv, matmulABt } from "../kernels/f32";
import { gemvRef, matmulABtRef } from "../kernels/f32-ref";
import { Rng } from "../rng";
import { getEngine } from "./engine";
import {
  activeKernelThreads,
  getKernelThreads,
  kernelThreadsInfo,
  kernelThreadsReady,
  kernelThreadsUnsupportedReason,
  setKernelThreads,
} from "./threads";

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("single-thread fallback without shared memory", () => {
  it.each([
    ["no SharedArrayBuffer", "SharedArrayBuffer", undefined, /SharedArrayBuffer is unavailable/],
    ["a page that is not cross-origin isolated", "crossOriginIsolated", false, /not cross-origin isolated/],
  ])("%s: the count stays 1 and kernels run on the calling thread", async (_what, name, value, reason) => {
    vi.stubGlobal(name, value);
    expect(kernelThreadsUnsupportedReason()).toMatch(reason);
    expect(setKernelThreads(4)).toBe(1);
    expect(getKernelThreads()).toBe(1);
    expect(activeKernelThreads()).toBe(1);
    expect(await kernelThreadsReady()).toBe(1);
    const info = kernelThreadsInfo();
    expect(info.threads).toBe(1);
    expect(info.reason).toMatch(reason);
    expect(getEngine().shared).toBe(false);
    const rng = new Rng(3);
    const [m, n, k] = [8, 300, 517];
    const w = rng.fillNormal(new Float32Array(n * k));
    const x = rng.fillNormal(new Float32Array(m * k));
    const y = gemv(w, x.subarray(0, k), n, k);
    const want = gemvRef(w, x.subarray(0, k), n, k);
    for (let i = 0; i < n; i++) expect(Math.abs(y[i]! - want[i]!)).toBeLessThan(1e-3);
    const c = matmulABt(x, w, m, n, k);
    const cw = matmulABtRef(x, w, m, n, k);
    for (let i = 0; i < m * n; i++) expect(Math.abs(c[i]! - cw[i]!)).toBeLessThan(1e-3);
  });
});
