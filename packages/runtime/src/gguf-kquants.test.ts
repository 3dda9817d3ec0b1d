/**
 * The k-quant and 5-bit ggml decoders: hand-worked blocks (values computed by hand from the block
 * layout), and seeded properties on random blocks with finite f16 scales: each decoder equals an
 * independent per-value reading of the layout (written from ggml-common.h's field order, the Q3_K
 * scales unpacked with ggml's u32 masks), decoding is deterministic, and wrong byte or value counts
 * are a LowbitError naming the tensor. Bit-exactness against libggml itself is checked by
 * apps/cli/test/llamacpp-kquants.test.ts on files llama.cpp writes.
 */
import { f32ToF16Bits, LowbitError } from "@lowbit/tensor";
import fc from "fast-check";
import { Q6_KLinear, Q6_KTiledLinear } from "@lowbit/int4";
import { describe, expect, it } from "vitest";
import {
  dequantizeQ2_K,
  dequantizeQ3_K,
  dequantizeQ5_0,
  dequantizeQ5_1,
  dequantizeQ5_K,
  dequantizeQ6_K,
  GGUF_KQUANT_TYPES,
  kQuantDecoder,
} from "./gguf-kquants";

const f = Math.fround;
const H = { one: 0x3c00, half: 0x3800, quarter: 0x3400, two: 0x4000, minusOne: 0xbc00 } as const;

function putF16(b: Uint8Array, o: number, bits: number): void {
  b[o] = bits & 255;
  b[o + 1] = bits >> 8;
}

/** Asserts exact values (Object.is: -0 is not 0) at the given indexes and `rest` everywhere else. */
function expectValues(y: Float32Array, at: Record<number, number>, rest: (i: number) => number): void {
  for (let i = 0; i < y.length; i++) expect([i, y[i]]).toEqual([i, at[i] ?? rest(i)]);
  for (const [i, v] of Object.entries(at)) expect(Object.is(y[Number(i)], v), `value ${i}: ${y[Number(i)]} vs ${v}`).toBe(true);
}

describe("hand-worked blocks", () => {
  it("Q5_0: (q - 16) * d with the 5th bit of value e at bit e of qh", () => {
    const b = new Uint8Array(22);
    putF16(b, 0, H.one);
    b[2] = 1; // bit 0: value 0
    b[4] = 1; // bit 16: value 16
    b[6] = 0x3a; // value 0: 10, value 16: 3
    expectValues(dequantizeQ5_0(b, 32), { 0: 10, 16: 3 }, () => -16);
  });

  it("Q5_1: q * d + m", () => {
    const b = new Uint8Array(24);
    putF16(b, 0, H.half);
    putF16(b, 2, H.minusOne);
    b[6] = 1; // bit 16
    b[8] = 0xf1; // value 0: 1, value 16: 15 | 16
    expectValues(dequantizeQ5_1(b, 32), { 0: -0.5, 16: 14.5 }, () => -1);
  });

  it("Q2_K: d*sc * q - dmin*m over 16 sub-blocks of 16", () => {
    const b = new Uint8Array(84);
    b[0] = 0x21; // sub-block 0: sc 1, m 2
    b[2] = 0x11; // sub-block 2 (values 32..47, bits 2-3): sc 1, m 1
    b[16] = 0xe7; // qs[0]: 3, 1, 2, 3 at shifts 0, 2, 4, 6
    putF16(b, 80, H.two);
    putF16(b, 82, H.quarter);
    const y = dequantizeQ2_K(b, 256);
    // value 0: 2*3 - 0.5; values 1-15: 0 - 0.5; value 32: 2*1 - 0.25; 33-47: -0.25; the rest 0 - 0 = 0
    expectValues(y, { 0: 5.5, 32: 1.75 }, (i) => (i < 16 ? -0.5 : i >= 32 && i < 48 ? -0.25 : 0));
  });

  it("Q3_K: d*(sc-32) * (q - 4 unless the hmask bit is set)", () => {
    const b = new Uint8Array(110);
    b[0] = 0x11; // hmask[0]: bit 0 (value 0), bit 4 (value 128)
    b[32] = 0x02; // qs[0]: value 0 -> 2
    b[64] = 0x03; // qs[32]: value 128 -> 3
    b[96] = 0x51; // scale 0 low 1, scale 8 low 5
    b[104] = 0x22; // scale 0 high 2 (-> 33), scale 8 high 2 (-> 37)
    putF16(b, 108, H.one);
    const y = dequantizeQ3_K(b, 256);
    // scales: 0 -> 1, 8 -> 5, all others 0 - 32
    const scale = (i: number) => {
      const is = 8 * (i >> 7) + 2 * ((i & 127) >> 5) + ((i >> 4) & 1);
      return is === 0 ? 1 : is === 8 ? 5 : -32;
    };
    expectValues(y, { 0: 2, 128: 15 }, (i) => scale(i) * -4);
    expect(y[1]).toBe(-4);
    expect(y[64]).toBe(128);
  });

  it("Q5_K: d*sc * q - dmin*m with 6-bit packed scales and the 5th bit in qh", () => {
    const b = new Uint8Array(176);
    putF16(b, 0, H.one);
    putF16(b, 2, H.half);
    b[4] = 0x42; // sc0 = 2; top bits 01 -> sc4 high bits
    b[8] = 0x03; // m0 = 3
    b[12] = 0x21; // sc4 = 1 | 16, m4 = 2
    b[16] = 0x01; // qh[0]: value 0 gets +16
    b[48] = 0x07; // qs[0] low: value 0
    b[48 + 64] = 0x0a; // qs[64] low: value 128
    const y = dequantizeQ5_K(b, 256);
    expectValues(y, { 0: 44.5, 128: 169 }, (i) => (i < 32 ? -1.5 : i >= 128 && i < 160 ? -1 : 0));
  });

  it("Q6_K: d*sc * (q - 32), signed 8-bit scales, -0 where the scale is 0", () => {
    const b = new Uint8Array(210);
    b[0] = 0x05; // ql[0] low: value 0
    b[128] = 0x02; // qh[0] bits 0-1: value 0 gets 2 << 4
    b[192] = 0xfd; // scale 0 = -3 (values 0-15)
    b[194] = 4; // scale 2 (values 32-47)
    putF16(b, 208, H.half);
    const y = dequantizeQ6_K(b, 256);
    expectValues(y, { 0: -7.5 }, (i) => (i < 16 ? 48 : i >= 32 && i < 48 ? -64 : -0));
  });
});

/** A random block of `bytes` bytes with finite f16 values written at `scales` offsets. */
function blockArb(bytes: number, scales: number[]): fc.Arbitrary<Uint8Array> {
  const finite = fc.float({ min: -2, max: 2, noNaN: true, noDefaultInfinity: true });
  return fc.tuple(fc.uint8Array({ minLength: bytes, maxLength: bytes }), fc.array(finite, { minLength: scales.length, maxLength: scales.length })).map(([b, s]) => {
    for (const [k, o] of scales.entries()) putF16(b, o, f32ToF16Bits(s[k]!));
    return b;
  });
}

const half = (b: Uint8Array, o: number) => f16(b[o]! | (b[o + 1]! << 8));

/** f16 bits to a number, from the IEEE definition (not @lowbit/tensor's table). */
function f16(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 31;
  const m = h & 1023;
  return e === 0 ? s * m * 2 ** -24 : s * (1 + m / 1024) * 2 ** (e - 15);
}

/** The 6-bit scale and min of sub-block j of a Q4_K/Q5_K block, as get_scale_min_k4. */
function scaleMin(b: Uint8Array, s: number, j: number): [number, number] {
  return j < 4
    ? [b[s + j]! & 63, b[s + j + 4]! & 63]
    : [(b[s + j + 4]! & 0xf) | ((b[s + j - 4]! >> 6) << 4), (b[s + j + 4]! >> 4) | ((b[s + j]! >> 6) << 4)];
}

/** The 16 Q3_K scales (minus 32), unpacked as ggml does: u32 words and the kmask1/kmask2 masks. */
function q3Scales(b: Uint8Array, o: number): number[] {
  const v = new DataView(b.buffer, b.byteOffset + o, 12);
  const a0 = v.getUint32(0, true);
  const a1 = v.getUint32(4, true);
  const t = v.getUint32(8, true);
  const k1 = 0x03030303;
  const k2 = 0x0f0f0f0f;
  const words = [(a0 & k2) | (((t >>> 0) & k1) << 4), (a1 & k2) | (((t >>> 2) & k1) << 4), ((a0 >>> 4) & k2) | (((t >>> 4) & k1) << 4), ((a1 >>> 4) & k2) | (((t >>> 6) & k1) << 4)];
  return words.flatMap((w) => [0, 8, 16, 24].map((sh) => ((w >>> sh) & 255) - 32));
}

/** Value e of one block, read field by field from the layout. */
const SPEC: Record<string, { bytes: number; values: number; scales: number[]; value: (b: Uint8Array, e: number) => number }> = {
  Q5_0: {
    bytes: 22,
    values: 32,
    scales: [0],
    value: (b, e) => {
      const q = ((b[6 + (e & 15)]! >> (4 * (e >> 4))) & 15) | (((b[2 + (e >> 3)]! >> (e & 7)) & 1) << 4);
      return f((q - 16) * half(b, 0));
    },
  },
  Q5_1: {
    bytes: 24,
    values: 32,
    scales: [0, 2],
    value: (b, e) => {
      const q = ((b[8 + (e & 15)]! >> (4 * (e >> 4))) & 15) | (((b[4 + (e >> 3)]! >> (e & 7)) & 1) << 4);
      return f(f(q * half(b, 0)) + half(b, 2));
    },
  },
  Q2_K: {
    bytes: 84,
    values: 256,
    scales: [80, 82],
    value: (b, e) => {
      const [h, r] = [e >> 7, e & 127];
      const [sh, part, l] = [r >> 5, (r >> 4) & 1, r & 15];
      const sc = b[8 * h + 2 * sh + part]!;
      const q = (b[16 + 32 * h + 16 * part + l]! >> (2 * sh)) & 3;
      return f(f(f(half(b, 80) * (sc & 15)) * q) - f(half(b, 82) * (sc >> 4)));
    },
  },
  Q3_K: {
    bytes: 110,
    values: 256,
    scales: [108],
    value: (b, e) => {
      const [h, r] = [e >> 7, e & 127];
      const [sh, part, l] = [r >> 5, (r >> 4) & 1, r & 15];
      const q = ((b[32 + 32 * h + 16 * part + l]! >> (2 * sh)) & 3) - ((b[16 * part + l]! >> (4 * h + sh)) & 1 ? 0 : 4);
      return f(f(half(b, 108) * q3Scales(b, 96)[8 * h + 2 * sh + part]!) * q);
    },
  },
  Q5_K: {
    bytes: 176,
    values: 256,
    scales: [0, 2],
    value: (b, e) => {
      const [sub, l] = [e >> 5, e & 31];
      const q = ((b[48 + 32 * (sub >> 1) + l]! >> (4 * (sub & 1))) & 15) | (((b[16 + l]! >> sub) & 1) << 4);
      const [sc, m] = scaleMin(b, 4, sub);
      return f(f(f(half(b, 0) * sc) * q) - f(half(b, 2) * m));
    },
  },
  Q6_K: {
    bytes: 210,
    values: 256,
    scales: [208],
    value: (b, e) => {
      const [h, r] = [e >> 7, e & 127];
      const [quarter, l] = [r >> 5, r & 31];
      const low = (b[64 * h + 32 * (quarter & 1) + l]! >> (4 * (quarter >> 1))) & 15;
      const high = (b[128 + 32 * h + l]! >> (2 * quarter)) & 3;
      const sc = new Int8Array([b[192 + 8 * h + (l >> 4) + 2 * quarter]!])[0]!;
      return f(f(half(b, 208) * sc) * ((low | (high << 4)) - 32));
    },
  },
};

const IDS: Record<string, number> = { Q5_0: 6, Q5_1: 7, Q2_K: 10, Q3_K: 11, Q5_K: 13, Q6_K: 14 };

describe.each(Object.entries(SPEC))("%s (seeded properties)", (type, spec) => {
  const decode = kQuantDecoder(IDS[type]!)!;

  it("the type table and kQuantDecoder agree on the block", () => {
    const t = GGUF_KQUANT_TYPES.find((x) => x.name === type)!;
    expect([t.id, t.blockSize, t.blockBytes]).toEqual([IDS[type], spec.values, spec.bytes]);
    expect(decode).toBeTypeOf("function");
  });

  it("random blocks with finite f16 scales decode to the layout's values, deterministically", () => {
    fc.assert(
      fc.property(fc.array(blockArb(spec.bytes, spec.scales), { minLength: 1, maxLength: 3 }), (list) => {
        const bytes = new Uint8Array(list.length * spec.bytes);
        for (const [i, b] of list.entries()) bytes.set(b, i * spec.bytes);
        const n = list.length * spec.values;
        const y = decode(bytes, n, "t");
        const expected = new Float32Array(n);
        for (let i = 0; i < n; i++) {
          const k = Math.floor(i / spec.values);
          expected[i] = spec.value(list[k]!, i % spec.values);
        }
        expect(new Uint32Array(y.buffer)).toEqual(new Uint32Array(expected.buffer));
        expect(y.every(Number.isFinite)).toBe(true);
        // same bytes, same bits; the table entry decodes the same; decoding into `out` too
        expect(new Uint32Array(decode(bytes.slice(), n).buffer)).toEqual(new Uint32Array(y.buffer));
        const t = GGUF_KQUANT_TYPES.find((x) => x.name === type)!;
        expect(new Uint32Array(t.toF32(bytes, n).buffer)).toEqual(new Uint32Array(y.buffer));
        const out = new Float32Array(n + 3).fill(7);
        decode(bytes, n, "t", out);
        expect(new Uint32Array(out.buffer, 0, n)).toEqual(new Uint32Array(y.buffer));
        expect(out[n]).toBe(7);
      }),
      { seed: 0x6b71 + spec.bytes, numRuns: 30 },
    );
  });

  it.each([
    ["one byte short", -1, 0],
    ["one byte long", 1, 0],
    ["values not whole blocks", 0, 1],
  ])("wrong sizes are a LowbitError naming the tensor: %s", (_what, extraBytes, extraValues) => {
    const bytes = new Uint8Array(2 * spec.bytes + extraBytes);
    const call = () => decode(bytes, 2 * spec.values + extraValues, "blk.3.ffn_down.weight");
    expect(call).toThrow(LowbitError);
    expect(call).toThrow(/blk\.3\.ffn_down\.weight/);
    expect(call).toThrow(new RegExp(type));
  });
});

describe("the Q4_K entry", () => {
  it("decodes through @lowbit/int4 and checks sizes the same way", () => {
    const t = GGUF_KQUANT_TYPES.find((x) => x.name === "Q4_K")!;
    expect([t.id, t.blockSize, t.blockBytes, typeof t.linear]).toEqual([12, 256, 144, "function"]);
    const b = new Uint8Array(144);
    putF16(b, 0, H.one);
    putF16(b, 2, H.half);
    b[4] = 2; // sc0 = 2
    b[8] = 3; // m0 = 3
    b[16] = 0x75; // value 0: 5, value 32: 7 (sub-block 1: sc 0, m 0)
    const y = kQuantDecoder(12)!(b, 256, "output.weight");
    expect([y[0], y[1], y[32], y[33]]).toEqual([2 * 5 - 1.5, -1.5, 0, 0]);
    expect(() => kQuantDecoder(12)!(b.subarray(1), 256, "output.weight")).toThrow(/output\.weight.*Q4_K/);
    expect(kQuantDecoder(2)).toBeUndefined();
  });
});

describe("the Q6_K entry", () => {
  it("has a linear whose weight is the decoder's values bit for bit, f32 activations unless quantized ones are asked for", () => {
    const t = GGUF_KQUANT_TYPES.find((x) => x.name === "Q6_K")!;
    expect(typeof t.linear).toBe("function");
    fc.assert(
      fc.property(fc.array(blockArb(210, [208]), { minLength: 2, maxLength: 4 }), (list) => {
        const rows = list.length;
        const bytes = new Uint8Array(rows * 210);
        for (const [i, b] of list.entries()) bytes.set(b, i * 210);
        const want = kQuantDecoder(14)!(bytes, rows * 256, "t");
        for (const act of [undefined, "quantized"] as const) {
          const lin = t.linear!(bytes, rows, 256, undefined, "blk.0.ffn_down.weight", act);
          expect(lin.kind).toBe(act ? "q6_k-a8" : "q6_k");
          expect(lin).toBeInstanceOf(act ? Q6_KTiledLinear : Q6_KLinear);
          expect(new Uint32Array(lin.dequantizedWeight().buffer)).toEqual(new Uint32Array(want.buffer));
          lin.dispose?.();
        }
      }),
      { seed: 0x6b76, numRuns: 20 },
    );
  });
});
