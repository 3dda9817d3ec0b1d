import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { computeQParams, type QParamsOptions, type QuantParams } from "./qparams";
import { dequantize, dequantizeRef, quantize, quantizeDynamic, quantizeRef, quantizeTensor } from "./quantize";
import { gaussian, maxAbs, rms, rmse, withRef } from "./test-util";

const SEED = 20240611;

/** Granularities over a [rows, cols] tensor (cols divisible by 4 for the group case). */
const GRANULARITIES: Array<[string, QParamsOptions]> = [
  ["per-tensor", { granularity: "per-tensor" }],
  ["per-channel axis 0", { granularity: "per-channel", axis: 0 }],
  ["per-channel last axis", { granularity: "per-channel", axis: 1 }],
  ["per-group 4", { granularity: "per-group", groupSize: 4 }],
  ["per-token", { granularity: "per-token" }],
];
const SCHEMES: Array<[string, QParamsOptions]> = [
  ["int8 symmetric", { dtype: "int8", scheme: "symmetric" }],
  ["int8 affine", { dtype: "int8", scheme: "affine" }],
  ["uint8 affine", { dtype: "uint8", scheme: "affine" }],
  ["uint8 symmetric reduce_range", { dtype: "uint8", scheme: "symmetric", reduceRange: true }],
];
const CASES = GRANULARITIES.flatMap(([g, go]) => SCHEMES.map(([s, so]) => [`${g}, ${s}`, { ...go, ...so }] as const));

const finiteF32 = fc.float({ min: -1e4, max: 1e4, noNaN: true, noDefaultInfinity: true });

/** A [rows, cols] tensor: rows 1..6, cols a multiple of 4 up to 40, with some zero rows. */
const tensorArb = fc
  .record({ rows: fc.integer({ min: 1, max: 6 }), c4: fc.integer({ min: 1, max: 10 }), zeroRow: fc.integer({ min: -1, max: 5 }) })
  .chain(({ rows, c4, zeroRow }) =>
    fc.array(finiteF32, { minLength: rows * c4 * 4, maxLength: rows * c4 * 4 }).map((v) => {
      const x = Float32Array.from(v);
      if (zeroRow >= 0 && zeroRow < rows) x.fill(0, zeroRow * c4 * 4, (zeroRow + 1) * c4 * 4);
      return { x, shape: [rows, c4 * 4] };
    }),
  );

describe.each(CASES)("%s", (_label, opts) => {
  it("keeps values in range, reconstructs within half a step and represents 0 exactly", () => {
    fc.assert(
      fc.property(tensorArb, ({ x, shape }) => {
        const p = computeQParams(x, shape, opts);
        const q = quantizeRef(x, p);
        const y = dequantizeRef(q, p);
        const per = perValue(p);
        for (let i = 0; i < x.length; i++) {
          const { scale, zero } = per(i);
          expect(q[i]).toBeGreaterThanOrEqual(p.qmin);
          expect(q[i]).toBeLessThanOrEqual(p.qmax);
          const lo = (p.qmin - zero) * scale;
          const hi = (p.qmax - zero) * scale;
          if (x[i]! >= lo && x[i]! <= hi) {
            // half a step, plus the f32 rounding of the scale amplified by up to 255 steps
            expect(Math.abs(y[i]! - x[i]!)).toBeLessThanOrEqual(scale * 0.5 + Math.abs(x[i]!) * 1e-6 + 1e-30);
          }
          if (x[i] === 0) expect(y[i]).toBe(0);
        }
      }),
      { seed: SEED, numRuns: 40 },
    );
  });

  it("decode then encode returns the same integers", () => {
    fc.assert(
      fc.property(tensorArb, fc.integer({ min: 0, max: 2 ** 31 }), ({ x, shape }, salt) => {
        const p = computeQParams(x, shape, opts);
        // arbitrary integers in range, not only ones produced by quantizing x
        const q = quantizeRef(x, p).map((v, i) => p.qmin + ((v * 31 + i * 17 + salt) % (p.qmax - p.qmin + 1) + (p.qmax - p.qmin + 1)) % (p.qmax - p.qmin + 1));
        const again = quantizeRef(dequantizeRef(q, p), p);
        expect(Array.from(again)).toEqual(Array.from(q));
      }),
      { seed: SEED + 1, numRuns: 40 },
    );
  });

  it("fast path equals the reference bit for bit", () => {
    fc.assert(
      fc.property(tensorArb, ({ x, shape }) => {
        const p = computeQParams(x, shape, opts);
        const qRef = withRef(() => quantize(x, p));
        const q = quantize(x, p);
        expect(q.constructor).toBe(qRef.constructor);
        expect(Array.from(q)).toEqual(Array.from(qRef));
        const yRef = withRef(() => dequantize(q, p));
        expect(Array.from(dequantize(q, p))).toEqual(Array.from(yRef));
      }),
      { seed: SEED + 2, numRuns: 25 },
    );
  });
});

/** Scale and zero point of value i. */
function perValue(p: QuantParams): (i: number) => { scale: number; zero: number } {
  const shape = p.shape;
  const cols = shape[shape.length - 1]!;
  return (i) => {
    let c = 0;
    if (p.granularity === "per-channel") {
      const inner = shape.slice(p.axis + 1).reduce((a, b) => a * b, 1);
      c = Math.floor(i / inner) % shape[p.axis]!;
    } else if (p.granularity === "per-group") c = Math.floor(i / p.groupSize);
    else if (p.granularity === "per-token") c = Math.floor(i / cols);
    return { scale: p.scale[c]!, zero: p.zeroPoint[c]! };
  };
}

describe("fast path on larger and ragged shapes", () => {
  it.each([
    [[3, 1000], { granularity: "per-channel", axis: 1 }],
    [[5, 7, 33], { granularity: "per-channel", axis: 1 }],
    [[5, 7, 33], { granularity: "per-channel", axis: 2, dtype: "uint8", scheme: "affine" }],
    [[17, 96], { granularity: "per-group", groupSize: 32, scheme: "affine" }],
    [[9, 1023], { granularity: "per-token", dtype: "uint8", scheme: "affine" }],
    [[4097], { granularity: "per-tensor" }],
  ] as Array<[number[], QParamsOptions]>)("%j %j", (shape, opts) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const x = gaussian(n, n, 3);
    const { q, params } = quantizeTensor(x, shape, opts);
    expect(Array.from(q)).toEqual(Array.from(withRef(() => quantize(x, params))));
    expect(Array.from(dequantize(q, params))).toEqual(Array.from(withRef(() => dequantize(q, params))));
  });
});

describe("reconstruction error on Gaussian data (8 bits)", () => {
  // rows of 1024 N(0, 1) values. Relative to the largest magnitude the error is ~0.1-0.25%
  // everywhere; relative to the RMS it is step/sqrt(12)/sigma, which for 8 bits is 0.5-1%
  // when one scale covers 1024+ Gaussian values (amax ~ 3.5-4.5 sigma) and below 0.5% for
  // groups of 32.
  const rows = 32;
  const cols = 1024;
  const x = gaussian(rows * cols, 7);
  it.each([
    ["per-tensor", { granularity: "per-tensor" }, 0.0105],
    ["per-channel", { granularity: "per-channel", axis: 0 }, 0.009],
    ["per-token affine", { granularity: "per-token", scheme: "affine" }, 0.009],
    ["per-group 32 affine", { granularity: "per-group", groupSize: 32, scheme: "affine" }, 0.005],
  ] as Array<[string, QParamsOptions, number]>)("%s", (_l, opts, relToRms) => {
    const { q, params } = quantizeTensor(x, [rows, cols], opts);
    const y = dequantize(q, params);
    const e = rmse(x, y);
    expect(e / maxAbs(x)).toBeLessThan(0.005);
    expect(e / rms(x)).toBeLessThan(relToRms);
    // and no worse than uniform noise of the coarsest step
    const step = Math.max(...params.scale);
    expect(e).toBeLessThanOrEqual((step / Math.sqrt(12)) * 1.05);
  });
});

describe("quantizeDynamic (activations)", () => {
  it("defaults to per-token uint8 affine and handles all-zero rows", () => {
    const x = gaussian(3 * 40, 3);
    x.fill(0, 40, 80);
    const { q, params } = quantizeDynamic(x, 3, 40);
    expect(params.granularity).toBe("per-token");
    expect(q).toBeInstanceOf(Uint8Array);
    expect(params.scale[1]).toBe(2 ** -23);
    const y = dequantize(q, params);
    expect(Array.from(y.subarray(40, 80))).toEqual(new Array(40).fill(0));
  });

  it("names the activations on NaN", () => {
    const x = gaussian(20, 4);
    x[11] = Number.NaN;
    expect(() => quantizeDynamic(x, 2, 10, { name: "attn_q input" })).toThrow(/"attn_q input".*index 11 \(row 1, column 1\)/);
  });
});

describe("argument checks", () => {
  const x = gaussian(8, 1);
  const p = computeQParams(x, [2, 4]);
  it.each([
    ["wrong length", () => quantize(new Float32Array(7), p), /shape \[2, 4\]/],
    ["short out", () => quantize(x, p, new Int8Array(3)), /output holds 3/],
    ["dequantize wrong length", () => dequantize(new Int8Array(9), p), /9/],
    ["non-finite input", () => quantize(new Float32Array(8).fill(Number.NaN), p), /non-finite/],
  ])("%s", (_l, fn, msg) => {
    expect(fn).toThrow(msg);
  });
});
