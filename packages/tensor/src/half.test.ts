import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  bf16BitsToF32,
  decodeBf16,
  decodeF16,
  encodeBf16,
  encodeF16,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
} from "./half";

// Independent references written with exact double arithmetic (no bit tricks).

/** The value of f16 bits by the IEEE definition. */
function f16Value(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 31;
  const m = h & 1023;
  if (e === 31) return m === 0 ? s * Number.POSITIVE_INFINITY : Number.NaN;
  if (e === 0) return s * m * 2 ** -24;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

function bf16Value(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 7) & 255;
  const m = h & 127;
  if (e === 255) return m === 0 ? s * Number.POSITIVE_INFINITY : Number.NaN;
  if (e === 0) return s * m * 2 ** -133;
  return s * (1 + m / 128) * 2 ** (e - 127);
}

function roundHalfEven(n: number): number {
  const f = Math.floor(n);
  const d = n - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** Rounds the f32 value x to the nearest float with `mantBits` stored bits, min normal exponent `emin`. */
function roundRef(x: number, mantBits: number, emin: number, maxFinite: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  const neg = x < 0 || Object.is(x, -0);
  const a = Math.abs(x);
  let v: number;
  if (a === Number.POSITIVE_INFINITY) v = a;
  else if (a === 0) v = 0;
  else {
    let e = Math.floor(Math.log2(a));
    while (2 ** e > a) e--;
    while (2 ** (e + 1) <= a) e++;
    const q = 2 ** (Math.max(e, emin) - mantBits);
    v = roundHalfEven(a / q) * q;
    if (v > maxFinite) v = Number.POSITIVE_INFINITY;
  }
  return neg ? -v : v;
}
const f16Ref = (x: number) => roundRef(x, 10, -14, 65504);
const bf16Ref = (x: number) => roundRef(x, 7, -126, (2 - 2 ** -7) * 2 ** 127);

const u32 = new Uint32Array(1);
const f32 = new Float32Array(u32.buffer);
function bitsToF32(b: number): number {
  u32[0] = b;
  return f32[0]!;
}
function f32Bits(x: number): number {
  f32[0] = x;
  return u32[0]!;
}
const nextUp = (x: number) => bitsToF32(f32Bits(x) + 1); // for positive finite x
const nextDown = (x: number) => bitsToF32(f32Bits(x) - 1);

describe("f16", () => {
  it("decodes all 65,536 halves exactly (scalar and array)", () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const dec = decodeF16(all);
    const decBits = new Uint32Array(dec.buffer);
    for (let h = 0; h < 65536; h++) {
      const want = f16Value(h);
      const got = f16BitsToF32(h);
      if (Number.isNaN(want)) {
        expect(Number.isNaN(got) && Number.isNaN(dec[h]!)).toBe(true);
        // payload and sign kept in the array decoder (read as bits: reading a NaN as a number may quiet it)
        expect(decBits[h]).toBe((((h & 0x8000) << 16) | 0x7f800000 | ((h & 0x3ff) << 13)) >>> 0);
      } else {
        if (!Object.is(got, want) || !Object.is(dec[h], want)) expect([h, got, dec[h]]).toEqual([h, want, want]);
      }
    }
  });

  it("round-trips every non-NaN half and keeps NaN a NaN of the same sign", () => {
    for (let h = 0; h < 65536; h++) {
      const back = f32ToF16Bits(f16BitsToF32(h));
      if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) {
        expect((back & 0x7c00) === 0x7c00 && (back & 0x3ff) !== 0 && (back & 0x8000) === (h & 0x8000)).toBe(true);
      } else if (back !== h) expect(back).toBe(h);
    }
  });

  it("rounds every midpoint to even and its neighbours to the nearer half", () => {
    for (let h = 0; h < 0x7c00; h++) {
      const lo = f16Value(h);
      const hi = f16Value(h + 1); // h = 0x7bff: hi is +inf; the overflow midpoint is 65520
      const mid = h === 0x7bff ? 65520 : (lo + hi) / 2;
      expect(Math.fround(mid)).toBe(mid);
      const even = (h & 1) === 0 ? h : h + 1;
      if (f32ToF16Bits(mid) !== even) expect([h, f32ToF16Bits(mid)]).toEqual([h, even]);
      if (f32ToF16Bits(nextDown(mid)) !== h) expect([h, "below"]).toEqual([h, f32ToF16Bits(nextDown(mid))]);
      if (f32ToF16Bits(nextUp(mid)) !== h + 1) expect([h, "above"]).toEqual([h, f32ToF16Bits(nextUp(mid))]);
      expect(f32ToF16Bits(-mid)).toBe(even | 0x8000);
    }
  });

  it.each([
    [1, 0x3c00],
    [-2, 0xc000],
    [0, 0],
    [-0, 0x8000],
    [65504, 0x7bff],
    [65519.99, 0x7bff],
    [65520, 0x7c00],
    [1e10, 0x7c00],
    [-1e10, 0xfc00],
    [Number.POSITIVE_INFINITY, 0x7c00],
    [2 ** -14, 0x0400],
    [2 ** -24, 0x0001],
    [2 ** -25, 0x0000],
    [1.5 * 2 ** -25, 0x0001],
    [2 ** -26, 0x0000],
    [1e-40, 0x0000],
    [1 / 3, 0x3555],
    [0.1, 0x2e66],
    [Math.PI, 0x4248],
  ])("f32ToF16Bits(%d) = %i", (x, bits) => {
    expect(f32ToF16Bits(x)).toBe(bits);
  });

  it("matches the exact-arithmetic reference on random f32 (fast-check, seeded)", () => {
    fc.assert(
      fc.property(fc.float({ noNaN: true }), (x) => {
        expect(f16BitsToF32(f32ToF16Bits(x))).toBe(f16Ref(x));
      }),
      { seed: 42, numRuns: 20000 },
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (b) => {
        const x = bitsToF32(b);
        const got = f16BitsToF32(f32ToF16Bits(x));
        if (Number.isNaN(x)) expect(Number.isNaN(got)).toBe(true);
        else expect(got).toBe(f16Ref(x));
      }),
      { seed: 7, numRuns: 20000 },
    );
  });

  it("array codec equals the scalar codec", () => {
    const src = new Float32Array(4096);
    for (let i = 0; i < src.length; i++) src[i] = bitsToF32((Math.imul(i, 0x9e3779b1) ^ (i << 7)) >>> 0);
    const enc = encodeF16(src);
    for (let i = 0; i < src.length; i++) expect(enc[i]).toBe(f32ToF16Bits(src[i]!));
    // works on a view with an offset too
    const view = src.subarray(3, 100);
    expect(Array.from(encodeF16(view))).toEqual(Array.from(enc.subarray(3, 100)));
  });
});

describe("bf16", () => {
  it("decodes all 65,536 bfloat16 values exactly and round-trips the non-NaN ones", () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const dec = decodeBf16(all);
    for (let h = 0; h < 65536; h++) {
      const want = bf16Value(h);
      if (Number.isNaN(want)) {
        expect(Number.isNaN(bf16BitsToF32(h)) && Number.isNaN(dec[h]!)).toBe(true);
        const back = f32ToBf16Bits(dec[h]!);
        expect((back & 0x7f80) === 0x7f80 && (back & 0x7f) !== 0).toBe(true);
        continue;
      }
      if (!Object.is(bf16BitsToF32(h), want) || !Object.is(dec[h], want)) expect([h, dec[h]]).toEqual([h, want]);
      const back = f32ToBf16Bits(want);
      if (back !== h) expect([h, back]).toEqual([h, h]);
    }
  });

  it("rounds every midpoint to even and its neighbours to the nearer value", () => {
    for (let h = 0; h < 0x7f80; h++) {
      const lo = bf16Value(h);
      // above the largest finite bf16 the next value is 2^128 (infinity); the midpoint 2^128 - 2^119
      // is an f32 (0x7f7f8000) and is a tie that rounds to the even neighbour, infinity
      const hi = h === 0x7f7f ? 2 ** 128 : bf16Value(h + 1);
      const mid = (lo + hi) / 2;
      expect(Math.fround(mid)).toBe(mid);
      const even = (h & 1) === 0 ? h : h + 1;
      if (f32ToBf16Bits(mid) !== even) expect([h, f32ToBf16Bits(mid)]).toEqual([h, even]);
      if (f32ToBf16Bits(nextDown(mid)) !== h) expect([h, "below"]).toEqual([h, f32ToBf16Bits(nextDown(mid))]);
      if (f32ToBf16Bits(nextUp(mid)) !== h + 1) expect([h, "above"]).toEqual([h, f32ToBf16Bits(nextUp(mid))]);
    }
    expect(f32ToBf16Bits(bitsToF32(0x7f7f8000))).toBe(0x7f80);
    expect(f32ToBf16Bits(bitsToF32(0x7f7f7fff))).toBe(0x7f7f);
  });

  it.each([
    [1, 0x3f80],
    [-0, 0x8000],
    [1 / 3, 0x3eab],
    [Math.PI, 0x4049],
    [3.4028234663852886e38, 0x7f80],
    [Number.NEGATIVE_INFINITY, 0xff80],
    [2 ** -133, 0x0001],
    [2 ** -134, 0x0000],
    [1.5 * 2 ** -134, 0x0001],
  ])("f32ToBf16Bits(%d) = %i", (x, bits) => {
    expect(f32ToBf16Bits(x)).toBe(bits);
  });

  it("matches the exact-arithmetic reference on random f32 bit patterns (fast-check, seeded)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (b) => {
        const x = bitsToF32(b);
        const got = bf16BitsToF32(f32ToBf16Bits(x));
        if (Number.isNaN(x)) expect(Number.isNaN(got)).toBe(true);
        else expect(got).toBe(bf16Ref(x));
      }),
      { seed: 11, numRuns: 30000 },
    );
  });

  it("array codec equals the scalar codec", () => {
    const src = new Float32Array(4096);
    for (let i = 0; i < src.length; i++) src[i] = bitsToF32((Math.imul(i, 0x2545f491) ^ (i << 3)) >>> 0);
    const enc = encodeBf16(src);
    for (let i = 0; i < src.length; i++) expect(enc[i]).toBe(f32ToBf16Bits(src[i]!));
  });
});
