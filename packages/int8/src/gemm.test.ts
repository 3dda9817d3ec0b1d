import { getEngine, Rng } from "@lowbit/tensor";
import { describe, expect, it } from "vitest";
import {
  gemmI8,
  gemmI8Ref,
  gemmScaledI8,
  gemmScaledI8Ref,
  gemmW8F32,
  gemmW8F32Ref,
  gemvI8,
  gemvI8Ref,
} from "./gemm";
import { INT8_KERNEL_MODULES, withScratch } from "./kernels";
import { Int8Weights } from "./packed";
import { gaussian, maxRelDiff, randomInt8, SHAPES, withRef } from "./test-util";

describe("gemmI8 (exact i32)", () => {
  it("matches a hand-computed product", () => {
    const a = Int8Array.from([1, -2, 3, 127, -128, 0]); // [2, 3]
    const b = Int8Array.from([4, 5, 6, -1, 0, 1]); // [2, 3]
    expect(Array.from(gemmI8Ref(a, b, 2, 2, 3))).toEqual([12, 2, -132, -127]);
    expect(Array.from(gemmI8(a, b, 2, 2, 3))).toEqual([12, 2, -132, -127]);
  });

  it.each(SHAPES)("fast = reference at m=%i n=%i k=%i", (m, n, k) => {
    const a = randomInt8(m * k, m * 1000 + k);
    const b = randomInt8(n * k, n * 1000 + k + 1);
    expect(Array.from(gemmI8(a, b, m, n, k))).toEqual(Array.from(gemmI8Ref(a, b, m, n, k)));
  });

  it("handles the extremes without overflow (k = 4096, all -128)", () => {
    const k = 4096;
    const a = new Int8Array(2 * k).fill(-128);
    const b = new Int8Array(5 * k).fill(-128);
    expect(Array.from(gemmI8(a, b, 2, 5, k))).toEqual(new Array(10).fill(128 * 128 * k));
  });

  it.each(SHAPES.filter(([m]) => m === 1))("gemvI8 fast = reference at n=%#", (_m, n, k) => {
    const w = randomInt8(n * k, 7 + n);
    const x = randomInt8(k, 9 + k);
    expect(Array.from(gemvI8(w, x, n, k))).toEqual(Array.from(gemvI8Ref(w, x, n, k)));
  });

  it("rejects short operands and oversized k", () => {
    expect(() => gemmI8(new Int8Array(3), new Int8Array(4), 2, 2, 2)).toThrow(/a holds 3 values, needs 4/);
    expect(() => gemmI8Ref(new Int8Array(0), new Int8Array(0), 0, 0, 70000)).toThrow(/exceeds 65536/);
  });
});

describe("Int8Weights.gemmI8 (resident weights)", () => {
  it.each(SHAPES)("int8 and uint8 activations, fast = reference at m=%i n=%i k=%i", (m, n, k) => {
    const w = new Int8Weights(randomInt8(n * k, n + k), n, k);
    const a8 = randomInt8(m * k, m + k);
    const u8 = new Uint8Array(m * k).map((_, i) => (i * 37 + 11) % 256);
    for (const a of [a8, u8]) {
      const ref = withRef(() => w.gemmI8(a, m));
      expect(Array.from(w.gemmI8(a, m))).toEqual(Array.from(ref));
    }
    // uint8 values are not reinterpreted as signed
    const ones = new Uint8Array(m * k).fill(255);
    const sums = w.wsum();
    const y = w.gemmI8(ones, m);
    for (let j = 0; j < n; j++) expect(y[j]).toBe(255 * sums[j]!);
    w.dispose();
  });
});

describe("gemmScaledI8 (W8A8 with per-token activation and per-channel weight scales)", () => {
  function setup(m: number, n: number, k: number, unsigned: boolean, seed: number) {
    const rng = new Rng(seed);
    const aq = unsigned ? new Uint8Array(m * k).map(() => rng.int(256)) : randomInt8(m * k, seed);
    const aScale = new Float32Array(m).map(() => 0.001 + rng.uniform() * 0.05);
    const aZero = new Int32Array(m).map(() => (unsigned ? rng.int(256) : rng.int(21) - 10));
    const wq = randomInt8(n * k, seed + 1);
    const wScale = new Float32Array(n).map(() => 0.001 + rng.uniform() * 0.02);
    const bias = gaussian(n, seed + 2);
    return { aq, aScale, aZero, wq, wScale, bias };
  }

  it.each(SHAPES.flatMap((s) => [[...s, false] as const, [...s, true] as const]))(
    "fast = reference at m=%i n=%i k=%i (uint8 activations: %s)",
    (m, n, k, unsigned) => {
      const { aq, aScale, aZero, wq, wScale, bias } = setup(m, n, k, unsigned, m * 31 + n * 7 + k);
      // same integer sums and the same f32 epilogue order: identical results, not merely close
      for (const opts of [{}, { bias }]) {
        const ref = gemmScaledI8Ref(aq, aScale, aZero, wq, wScale, m, n, k, opts);
        const fast = gemmScaledI8(aq, aScale, aZero, wq, wScale, m, n, k, opts);
        expect(Array.from(fast)).toEqual(Array.from(ref));
      }
    },
  );

  it("equals the dequantized product", () => {
    const { aq, aScale, aZero, wq, wScale } = setup(3, 5, 40, true, 5);
    const y = gemmScaledI8(aq, aScale, aZero, wq, wScale, 3, 5, 40);
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 5; j++) {
        let s = 0;
        for (let t = 0; t < 40; t++) s += (aq[i * 40 + t]! - aZero[i]!) * aScale[i]! * wq[j * 40 + t]! * wScale[j]!;
        expect(y[i * 5 + j]).toBeCloseTo(s, 4);
      }
    }
  });
});

describe("gemmW8F32 (weight-only int8)", () => {
  it.each(SHAPES)("fast = reference (f32 summation order aside) at m=%i n=%i k=%i", (m, n, k) => {
    const x = gaussian(m * k, m + n + k);
    const wq = randomInt8(n * k, k);
    const wScale = new Float32Array(n).map((_, i) => 0.01 + i * 1e-4);
    const bias = gaussian(n, 3);
    for (const opts of [{}, { bias }]) {
      const ref = withRef(() => gemmW8F32(x, wq, wScale, m, n, k, opts));
      expect(ref).toEqual(gemmW8F32Ref(x, wq, wScale, m, n, k, opts));
      const fast = gemmW8F32(x, wq, wScale, m, n, k, opts);
      expect(maxRelDiff(fast, ref)).toBeLessThan(2e-6);
    }
  });
});

describe("dot_i16_peak (the benchmark's ceiling probe)", () => {
  // its value, not its work (timing says that): each activation meets all four weights (sum 26)
  // once per step, x0 + x1 and x2 + x3 stay 3, so each step adds 8 * 26 * (3 + 3)
  it.each([0, 1, 7, 1000])("returns the sum its arithmetic defines over %i steps", (iters) => {
    const peak = getEngine().exports<{ dot_i16_peak(n: number): number }>(INT8_KERNEL_MODULES[0]!).dot_i16_peak;
    expect(peak(iters)).toBe(1248 * iters);
  });
});

describe("wino_loop_peak (the benchmark's probe of gemm_wino's inner loop)", () => {
  // its value, not its work: each pass adds, for both packed activation rows r and both weight rows
  // c, the Winograd products sum_l (a_r[l] + w_c[l + 8]) (a_r[l + 8] + w_c[l]) over its 64 steps
  it.each([0, 1, 3])("returns the sum its arithmetic defines over %i passes", (reps) => {
    const rng = new Rng(91);
    const probe = getEngine().exports<{ wino_loop_peak(a: number, b: number, reps: number, out: number): void }>(INT8_KERNEL_MODULES[0]!)
      .wino_loop_peak;
    const a = new Int16Array(64 * 32).map(() => rng.int(256));
    const w = new Int8Array(2048).map(() => rng.int(256) - 128);
    let pass = 0;
    for (let s = 0; s < 64; s++) {
      for (let r = 0; r < 2; r++) {
        for (let c = 0; c < 2; c++) {
          const ar = s * 32 + r * 16;
          const wc = c * 1024 + s * 16;
          for (let l = 0; l < 8; l++) pass += (a[ar + l]! + w[wc + l + 8]!) * (a[ar + l + 8]! + w[wc + l]!);
        }
      }
    }
    const got = withScratch([a.byteLength, w.byteLength, 16], ([pa, pb, out]) => {
      const e = getEngine();
      new Int16Array(e.u8(pa!, a.byteLength).buffer, pa!, a.length).set(a);
      e.i8(pb!, w.length).set(w);
      probe(pa!, pb!, reps, out!);
      return e.i32(out!, 4).reduce((x, y) => x + y, 0);
    });
    expect(got).toBe(pass * reps);
  });
});
