import { dtypeInfo, f16BitsToF32, isLowbitError, byteSize } from "@lowbit/tensor";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  dequantizeQ8_0,
  dequantizeQ8_0Ref,
  Q8_0_BLOCK_BYTES,
  quantizeQ8_0,
  quantizeQ8_0Ref,
  registerQ8_0,
} from "./q8-0";
import { gaussian, maxAbs, rms, rmse, withRef } from "./test-util";

const SEED = 8008;

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
}

describe("Q8_0 dtype", () => {
  it("registers 32 values in 34 bytes", () => {
    registerQ8_0();
    registerQ8_0(); // idempotent
    expect(dtypeInfo("q8_0")).toMatchObject({ blockSize: 32, blockBytes: 34, kind: "packed" });
    expect(byteSize("q8_0", 64)).toBe(68);
  });
});

describe("Q8_0 encoding of a fixed vector (worked by hand)", () => {
  // Block 0: amax = 127 -> d = 1 (f16 0x3c00), 1/d = 1, q = roundf(x): ties go away from zero
  // (2.5 -> 3, -3.5 -> -4, 0.5 -> 1, -0.5 -> -1, 63.5 -> 64), unlike round-half-even.
  // Block 1: amax = 2.54 -> d = f32(2.54 / 127) = 0.0199999995..., stored as f16 0x251f
  // (287/1024 + 1) / 64 = 0.0200043; 1/d = 50.0000011 rounds to the f32 50; q = roundf(x * 50):
  // -2.54 -> -127, 1 -> 50, 0.01 -> f32(0.49999998) = 0.5 -> 1, 0.03 -> f32(1.49999997) = 1.5 -> 2,
  // -0.05 -> -2.5 -> -3.
  const x = new Float32Array(64);
  x.set([127, 2.5, -3.5, 0.5, -0.5, 1.49, 63.5, -127], 0);
  x.set([-2.54, 1, 0.01, 0.03, -0.05], 32);
  const want = new Uint8Array(68);
  want.set([0x00, 0x3c, 0x7f, 0x03, 0xfc, 0x01, 0xff, 0x01, 0x40, 0x81], 0);
  want.set([0x1f, 0x25, 0x81, 0x32, 0x01, 0x02, 0xfd], 34);

  it.each([
    ["reference", () => quantizeQ8_0Ref(x)],
    ["fast path", () => quantizeQ8_0(x)],
  ])("%s", (_l, enc) => {
    expect(hex(enc())).toBe(hex(want));
  });

  it("decodes to q * f16(d)", () => {
    const y = dequantizeQ8_0(want);
    expect(y[0]).toBe(127);
    expect(y[2]).toBe(-4);
    const d = f16BitsToF32(0x251f);
    expect(d).toBeCloseTo(0.0200043, 7);
    expect(y[32]).toBe(Math.fround(-127 * d));
    expect(y[35]).toBe(Math.fround(2 * d));
  });
});

const blockArb = (maxBlocks: number) =>
  fc
    .record({
      nb: fc.integer({ min: 1, max: maxBlocks }),
      scale: fc.constantFrom(1e-3, 0.02, 1, 300, 5e4),
      seed: fc.integer({ min: 0, max: 1e9 }),
      ties: fc.boolean(),
    })
    .map(({ nb, scale, seed, ties }) => {
      const x = gaussian(nb * 32, seed, scale);
      if (ties) {
        // make d exactly representable and put values on .5 boundaries
        for (let b = 0; b < nb; b++) {
          x[b * 32] = 127;
          for (let j = 1; j < 32; j++) x[b * 32 + j] = Math.round(x[b * 32 + j]! * 10) / 2 + 0.5;
          for (let j = 1; j < 32; j++) x[b * 32 + j] = Math.max(-127, Math.min(127, x[b * 32 + j]!));
        }
      }
      return x;
    });

describe("Q8_0 properties", () => {
  it("fast encoder and decoder are bit-identical to the reference", () => {
    fc.assert(
      fc.property(blockArb(40), (x) => {
        const ref = withRef(() => quantizeQ8_0(x));
        const fast = quantizeQ8_0(x);
        expect(hex(fast)).toBe(hex(ref));
        expect(Array.from(dequantizeQ8_0(fast))).toEqual(Array.from(dequantizeQ8_0Ref(ref)));
      }),
      { seed: SEED, numRuns: 60 },
    );
  });

  it("encode then decode then encode returns the same bytes", () => {
    fc.assert(
      fc.property(blockArb(8), (x) => {
        const bytes = quantizeQ8_0Ref(x);
        expect(hex(quantizeQ8_0Ref(dequantizeQ8_0Ref(bytes)))).toBe(hex(bytes));
      }),
      { seed: SEED + 1, numRuns: 60 },
    );
  });

  it("every block reaches |q| = 127 and q stays in [-127, 127]", () => {
    fc.assert(
      fc.property(blockArb(8), (x) => {
        const bytes = quantizeQ8_0(x);
        for (let b = 0; b < x.length / 32; b++) {
          const q = new Int8Array(bytes.buffer, b * Q8_0_BLOCK_BYTES + 2, 32);
          expect(Math.max(...Array.from(q, Math.abs))).toBe(127);
          expect(Math.min(...q)).toBeGreaterThanOrEqual(-127);
        }
      }),
      { seed: SEED + 2, numRuns: 30 },
    );
  });

  it("reconstruction error on Gaussian data", () => {
    const x = gaussian(32 * 2048, 11);
    const y = dequantizeQ8_0(quantizeQ8_0(x));
    const e = rmse(x, y);
    expect(e / maxAbs(x)).toBeLessThan(0.005);
    // blocks of 32: amax ~ 2.1 sigma, step amax/127, noise step/sqrt(12) ~ 0.5% of sigma
    expect(e / rms(x)).toBeLessThan(0.0056);
  });
});

describe("Q8_0 edge cases", () => {
  it("encodes an all-zero block as d = 0, q = 0 and decodes exact zeros", () => {
    const bytes = quantizeQ8_0(new Float32Array(32));
    expect(Array.from(bytes)).toEqual(new Array(34).fill(0));
    expect(Array.from(dequantizeQ8_0(bytes))).toEqual(new Array(32).fill(0));
  });

  it.each([
    ["reference", quantizeQ8_0Ref],
    ["fast path", quantizeQ8_0],
  ])("%s: rejects a length that is not a multiple of 32", (_l, enc) => {
    try {
      enc(new Float32Array(40), { name: "token_embd.weight" });
      expect.unreachable();
    } catch (e) {
      expect(isLowbitError(e) && e.code).toBe("E_SHAPE_MISMATCH");
      expect((e as Error).message).toMatch(/"token_embd\.weight".*40 values \(8 left over\).*multiple of 32/);
    }
  });

  it.each([
    ["reference", quantizeQ8_0Ref],
    ["fast path", quantizeQ8_0],
  ])("%s: names the tensor and the first non-finite index", (_l, enc) => {
    const x = gaussian(96, 1);
    x[70] = Number.NEGATIVE_INFINITY;
    x[90] = Number.NaN;
    expect(() => enc(x, { name: "w" })).toThrow(/"w" has a non-finite value -Infinity at index 70/);
  });

  it("rejects scales beyond f16", () => {
    const x = new Float32Array(32).fill(1e7);
    expect(() => quantizeQ8_0(x)).toThrow(/f16 range/);
    expect(() => quantizeQ8_0Ref(x)).toThrow(/f16 range/);
  });

  it("rejects byte lengths that are not whole blocks", () => {
    expect(() => dequantizeQ8_0(new Uint8Array(35))).toThrow(/34-byte blocks/);
    expect(() => dequantizeQ8_0Ref(new Uint8Array(68), 96)).toThrow(/64 values, 96 requested/);
  });
});
