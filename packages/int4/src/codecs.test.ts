import { createHash } from "node:crypto";
import { byteSize, f16BitsToF32, LowbitError } from "@lowbit/tensor";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { packBits, unpackBits } from "./bitpack";
import { AWQ_ORDER, packAwq, unpackAwq } from "./codec-awq";
import {
  dequantizeQ4_0Ref,
  dequantizeQ4_1Ref,
  ggufInt4ToQuantizedMatrix,
  quantizedMatrixToGgufInt4,
  quantizeGgufInt4,
  quantizeQ4_0Ref,
  quantizeQ4_1Ref,
  registerGgufInt4DTypes,
} from "./codec-gguf";
import { packGptq, unpackGptq } from "./codec-gptq";
import { dequantizeQ4_KRef, q4kToQuantizedMatrix, quantizeQ4_KRef, registerQ4KDType } from "./codec-q4k";
import { packMatMulNBits, unpackMatMulNBits } from "./codec-matmulnbits";
import { GOLDEN_SHA256, goldenInput } from "./ggml-golden";
import { columnGroups, dequantizeMatrix, type QuantizedMatrix } from "./quantized-matrix";
import { quantizeRTN } from "./rtn";
import { TestRng } from "./test-rng";

const sha256 = (b: ArrayBufferView) =>
  createHash("sha256").update(new Uint8Array(b.buffer, b.byteOffset, b.byteLength)).digest("hex");

/** A random QuantizedMatrix with f16-exact scales and integer zeros in [zMin, maxq]. */
function randomQM(
  seed: number,
  bits: number,
  rows: number,
  cols: number,
  groupSize: number,
  opts: { zMin?: number; actOrder?: boolean; sym?: boolean } = {},
): QuantizedMatrix {
  const rng = new TestRng(seed);
  const maxq = (1 << bits) - 1;
  const ng = cols / groupSize;
  const q = new Uint8Array(rows * cols);
  for (let i = 0; i < q.length; i++) q[i] = rng.int(maxq + 1);
  const scales = new Float32Array(rows * ng);
  const zeros = new Float32Array(rows * ng);
  const zMin = opts.zMin ?? 0;
  for (let i = 0; i < scales.length; i++) {
    scales[i] = f16BitsToF32(0x1000 + rng.int(0x5000)); // positive normal halves
    zeros[i] = opts.sym ? 1 << (bits - 1) : zMin + rng.int(maxq + 1 - zMin);
  }
  const qm: QuantizedMatrix = { bits, groupSize, rows, cols, sym: opts.sym ?? false, q, scales, zeros };
  if (opts.actOrder) {
    const g = new Int32Array(cols);
    for (let c = 0; c < cols; c++) g[c] = Math.floor(c / groupSize);
    for (let i = cols - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [g[i], g[j]] = [g[j]!, g[i]!];
    }
    qm.gIdx = g;
  }
  return qm;
}

function expectSameQM(a: QuantizedMatrix, b: QuantizedMatrix): void {
  expect(a.bits).toBe(b.bits);
  expect(a.rows).toBe(b.rows);
  expect(a.cols).toBe(b.cols);
  expect(a.groupSize).toBe(b.groupSize);
  expect(Buffer.from(a.q).equals(Buffer.from(b.q))).toBe(true);
  expect([...a.zeros]).toEqual([...b.zeros]);
  expect([...a.scales]).toEqual([...b.scales]);
  expect([...columnGroups(a)]).toEqual([...columnGroups(b)]);
}

const shapeArb = (rowMult: number, colMult: number) =>
  fc.record({
    seed: fc.integer({ min: 0, max: 1 << 30 }),
    rows: fc.integer({ min: 1, max: 4 }).map((r) => r * rowMult),
    colBlocks: fc.integer({ min: 1, max: 4 }),
    groupsPerRow: fc.constantFrom(1, 2, 4),
  }).map((s) => ({ ...s, cols: s.colBlocks * colMult * s.groupsPerRow, groupSize: s.colBlocks * colMult }));

describe("bit packing", () => {
  it.each([1, 2, 3, 4, 5, 8])("pack/unpack %i-bit codes is lossless (property)", (bits) => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: (1 << bits) - 1 }), { maxLength: 200 }), (codes) => {
        const packed = packBits(codes, bits);
        expect(packed.length).toBe(Math.ceil((codes.length * bits) / 8));
        expect([...unpackBits(packed, bits, codes.length)]).toEqual(codes);
      }),
      { seed: bits, numRuns: 100 },
    );
  });
  it("4-bit is low nibble first; 3-bit is a little-endian stream", () => {
    expect([...packBits([1, 2, 3], 4)]).toEqual([0x21, 0x03]);
    expect([...packBits([7, 0, 5], 3)]).toEqual([0b01000111, 0b1]);
    expect(() => packBits([16], 4)).toThrow(/does not fit in 4 bits/);
  });
});

describe("GPTQ v1/v2", () => {
  it.each([2, 3, 4, 8])("%i-bit pack -> unpack gives the same integers (property, v1 and v2, act-order)", (bits) => {
    const mult = bits === 3 ? 32 : 32 / bits;
    fc.assert(
      fc.property(shapeArb(mult, mult), fc.constantFrom<1 | 2>(1, 2), fc.boolean(), (s, version, actOrder) => {
        const qm = randomQM(s.seed, bits, s.rows, s.cols, s.groupSize, { zMin: version === 1 ? 1 : 0, actOrder });
        const p = packGptq(qm, { version });
        expect(p.qweight.length).toBe(((s.cols * bits) / 32) * s.rows);
        expect(p.shapes.qzeros).toEqual([s.groupsPerRow, (s.rows * bits) / 32]);
        const back = unpackGptq(p, { bits, inFeatures: s.cols, outFeatures: s.rows, version });
        expectSameQM(back, qm);
      }),
      { seed: 100 + bits, numRuns: 60 },
    );
  });

  it("4-bit qweight word r holds inputs 8r..8r+7 of each output, low nibble first; v1 stores zero - 1", () => {
    const rows = 8;
    const cols = 16;
    const q = new Uint8Array(rows * cols);
    for (let o = 0; o < rows; o++) for (let i = 0; i < cols; i++) q[o * cols + i] = (i + o) & 15;
    const zeros = new Float32Array(rows).map((_, o) => o + 1);
    const qm: QuantizedMatrix = { bits: 4, groupSize: 16, rows, cols, sym: false, q, scales: new Float32Array(rows).fill(1), zeros };
    const p = packGptq(qm);
    // output 0, word 0: inputs 0..7 -> nibbles 0..7 = 0x76543210
    expect(p.qweight[0]! >>> 0).toBe(0x76543210);
    // output 1, word 1: inputs 8..15 with +1 -> 9..16&15 = 0x0fedcba9
    expect(p.qweight[1 * rows + 1]! >>> 0).toBe(0x0fedcba9);
    // qzeros row 0: outputs 0..7 storing zero-1 = 0..7
    expect(p.qzeros[0]! >>> 0).toBe(0x76543210);
    expect(packGptq(qm, { version: 2 }).qzeros[0]! >>> 0).toBe(0x87654321);
    expect([...p.gIdx]).toEqual(new Array(16).fill(0));
  });

  it("v1 refuses an asymmetric zero point of 0 and points at v2", () => {
    const qm = quantizeRTN(new Float32Array(64).map((_, i) => i), 8, 8, { bits: 4, groupSize: 8, sym: false });
    expect(qm.zeros.some((z) => z === 0)).toBe(true);
    expect(() => packGptq(qm, { version: 1, name: "blk.0.ffn_up.weight" })).toThrow(/zero point 0.*gptq_v2/);
    const p = packGptq(qm, { version: 2 });
    const back = unpackGptq(p, { bits: 4, inFeatures: 8, outFeatures: 8, version: 2 });
    expect([...back.zeros]).toEqual([...qm.zeros]);
  });

  it("RTN -> GPTQ -> dequant matches the RTN dequant up to f16 scale rounding", () => {
    const w = new TestRng(4).normals(64 * 128);
    const qm = quantizeRTN(w, 64, 128, { bits: 4, groupSize: 32, sym: true });
    const back = unpackGptq(packGptq(qm), { bits: 4, inFeatures: 128, outFeatures: 64 });
    expect(back.sym).toBe(true);
    const a = dequantizeMatrix(qm);
    const b = dequantizeMatrix(back);
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThanOrEqual(Math.abs(a[i]!) * 1e-3 + 1e-6);
  });

  it.each([
    [4, 12, 8, /in_features 12 must be a multiple of 8/],
    [4, 16, 12, /out_features 12 must be a multiple of 8/],
    [3, 16, 32, /in_features 16 must be a multiple of 32/],
    [5, 32, 32, /bits must be one of 2, 3, 4, 8/],
  ])("%i-bit in=%i out=%i is refused", (bits, cols, rows, msg) => {
    const qm = randomQM(1, Math.min(bits, 8), rows, cols, cols, { zMin: 1 });
    expect(() => packGptq(qm)).toThrow(msg);
  });
});

describe("AWQ GEMM", () => {
  it("pack -> unpack gives the same integers (property)", () => {
    fc.assert(
      fc.property(shapeArb(8, 1), (s) => {
        const qm = randomQM(s.seed, 4, s.rows, s.cols, s.groupSize);
        const p = packAwq(qm);
        expect(p.shapes.qweight).toEqual([s.cols, s.rows / 8]);
        expectSameQM(unpackAwq(p, { inFeatures: s.cols, outFeatures: s.rows }), qm);
      }),
      { seed: 7, numRuns: 80 },
    );
  });
  it("nibble i of a word holds output column order[i] = [0,2,4,6,1,3,5,7]; zeros packed the same, no -1", () => {
    expect(AWQ_ORDER).toEqual([0, 2, 4, 6, 1, 3, 5, 7]);
    const q = new Uint8Array(8).map((_, o) => o + 1); // 8 outputs x 1 input: q[o] = o + 1
    const zeros = new Float32Array(8).map((_, o) => 15 - o);
    const qm: QuantizedMatrix = { bits: 4, groupSize: 1, rows: 8, cols: 1, sym: false, q, scales: new Float32Array(8).fill(0.5), zeros };
    const p = packAwq(qm);
    expect(p.qweight[0]! >>> 0).toBe(0x86427531); // nibbles (low first): 1,3,5,7,2,4,6,8
    expect(p.qzeros[0]! >>> 0).toBe(0x8ace9bdf); // zeros 15..8 in the same order
  });
  it.each([
    [4, 12, /out_features 12 must be a positive multiple of 8/],
    [3, 16, /only 4-bit/],
  ])("%i-bit out=%i is refused", (bits, rows, msg) => {
    const qm = randomQM(2, bits, rows, 32, 32);
    expect(() => packAwq(qm)).toThrow(msg);
  });
  it("act-order matrices are refused", () => {
    const qm = randomQM(3, 4, 8, 64, 16, { actOrder: true });
    expect(() => packAwq(qm)).toThrow(/g_idx/);
  });
});

describe("ONNX Runtime MatMulNBits", () => {
  it.each([2, 4, 8])("%i-bit pack -> unpack gives the same integers (property, with and without zero points)", (bits) => {
    fc.assert(
      fc.property(shapeArb(1, 16), fc.boolean(), fc.constantFrom(16, 32, 64, 128), (s, sym, block) => {
        const cols = block * s.groupsPerRow;
        const qm = randomQM(s.seed, bits, s.rows, cols, block, { sym });
        qm.sym = sym;
        const p = packMatMulNBits(qm);
        expect(p.shapes.B).toEqual([s.rows, s.groupsPerRow, (block * bits) / 8]);
        expect(p.zeroPoints === undefined).toBe(qm.zeros.every((z) => z === 1 << (bits - 1)));
        expectSameQM(unpackMatMulNBits(p), qm);
      }),
      { seed: 30 + bits, numRuns: 60 },
    );
  });
  it("4-bit B is low nibble first; zero points packed per row, padded to a byte", () => {
    const q = new Uint8Array(48).map((_, i) => i & 15);
    const zeros = new Float32Array([1, 2, 3]);
    const qm: QuantizedMatrix = { bits: 4, groupSize: 16, rows: 1, cols: 48, sym: false, q, scales: new Float32Array(3).fill(1), zeros };
    const p = packMatMulNBits(qm);
    expect([...p.B.subarray(0, 3)]).toEqual([0x10, 0x32, 0x54]);
    expect([...p.zeroPoints!]).toEqual([0x21, 0x03]);
  });
  it.each([
    [24, /block size 24 must be a power of two/],
    [8, /block size 8 must be a power of two >= 16/],
  ])("block %i is refused", (g, msg) => {
    const qm = randomQM(1, 4, 2, 48, g);
    expect(() => packMatMulNBits(qm)).toThrow(msg);
  });
});

describe("GGUF Q4_0 / Q4_1", () => {
  it("registers q4_0 (32/18) and q4_1 (32/20) dtypes", () => {
    registerGgufInt4DTypes();
    expect(byteSize("q4_0", 64)).toBe(36);
    expect(byteSize("q4_1", 64)).toBe(40);
  });

  it("Q4_0 of a fixed vector equals the bytes worked out by hand", () => {
    // x[j] = j - 16: the largest magnitude is -16 (first), so d = -16 / -8 = 2 (f16 0x4000), id = 0.5;
    // element j -> trunc(x/d + 8.5) = trunc(j/2 + 0.5); element j+16 -> min(15, trunc(j/2 + 8.5)).
    const x = Float32Array.from({ length: 32 }, (_, j) => j - 16);
    const expected = [
      0x00, 0x40, // d = 2.0 as f16, little endian
      0x80, 0x91, 0x91, 0xa2, 0xa2, 0xb3, 0xb3, 0xc4, 0xc4, 0xd5, 0xd5, 0xe6, 0xe6, 0xf7, 0xf7, 0xf8,
    ];
    expect([...quantizeQ4_0Ref(x)]).toEqual(expected);
    const back = dequantizeQ4_0Ref(quantizeQ4_0Ref(x), 32);
    expect(back[0]).toBe(-16);
    expect(back[31]).toBe(14); // 15 clamps to code 15: (15 - 8) * 2
  });

  it.each([
    ["q4_0", GOLDEN_SHA256.q4_0],
    ["q4_1", GOLDEN_SHA256.q4_1],
    ["q4_K", GOLDEN_SHA256.q4_K],
  ] as const)("%s is bit-identical with llama.cpp's reference quantizer on the golden input", (fmt, hash) => {
    const x = goldenInput();
    expect(sha256(x)).toBe(GOLDEN_SHA256.input);
    const bytes = fmt === "q4_0" ? quantizeQ4_0Ref(x) : fmt === "q4_1" ? quantizeQ4_1Ref(x) : quantizeQ4_KRef(x);
    expect(sha256(bytes)).toBe(hash);
  });

  it.each(["q4_0", "q4_1"] as const)("%s bytes -> QuantizedMatrix -> bytes is bit-exact (property)", (fmt) => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1 << 30 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 4 }), (seed, rows, blocks) => {
        const cols = blocks * 32;
        const rng = new TestRng(seed);
        const w = rng.normals(rows * cols, 0.1 + rng.uniform() * 10);
        const bytes = quantizeGgufInt4(fmt, w, rows, cols);
        const qm = ggufInt4ToQuantizedMatrix(fmt, bytes, rows, cols);
        expect(Buffer.from(quantizedMatrixToGgufInt4(fmt, qm)).equals(Buffer.from(bytes))).toBe(true);
        const ref = fmt === "q4_0" ? dequantizeQ4_0Ref(bytes, rows * cols) : dequantizeQ4_1Ref(bytes, rows * cols);
        const viaQm = dequantizeMatrix(qm);
        for (let i = 0; i < ref.length; i++) {
          if (fmt === "q4_0") expect(viaQm[i]).toBe(ref[i]);
          else expect(Math.abs(viaQm[i]! - ref[i]!)).toBeLessThanOrEqual(Math.abs(ref[i]!) * 1e-6 + 1e-6);
        }
      }),
      { seed: fmt === "q4_0" ? 40 : 41, numRuns: 60 },
    );
  });

  it("Q4_K: 144-byte super-blocks; QuantizedMatrix view dequantizes like llama.cpp (property)", () => {
    registerQ4KDType();
    expect(byteSize("q4_k", 512)).toBe(288);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1 << 30 }), fc.integer({ min: 1, max: 3 }), (seed, rows) => {
        const rng = new TestRng(seed);
        const w = rng.normals(rows * 256, 0.01 + rng.uniform());
        if (seed % 3 === 0) w.fill(0.25, 0, 32); // a constant sub-block
        const bytes = quantizeQ4_KRef(w);
        const ref = dequantizeQ4_KRef(bytes, rows * 256);
        const viaQm = dequantizeMatrix(q4kToQuantizedMatrix(bytes, rows, 256));
        for (let i = 0; i < ref.length; i++) expect(Math.abs(viaQm[i]! - ref[i]!)).toBeLessThanOrEqual(Math.abs(ref[i]!) * 2e-6 + 1e-6);
      }),
      { seed: 42, numRuns: 30 },
    );
  });

  it("Q4_1 constant blocks (d = 0) decode exactly and re-encode", () => {
    const w = new Float32Array(64).fill(0.75);
    const bytes = quantizeGgufInt4("q4_1", w, 1, 64);
    const qm = ggufInt4ToQuantizedMatrix("q4_1", bytes, 1, 64);
    expect([...dequantizeMatrix(qm)]).toEqual([...w]);
    expect(Buffer.from(quantizedMatrixToGgufInt4("q4_1", qm)).equals(Buffer.from(bytes))).toBe(true);
  });

  it.each([
    ["q4_0", 48, /row length 48 is not a multiple of 32/],
    ["q4_1", 20, /row length 20 is not a multiple of 32/],
  ] as const)("%s with rows of %i values is refused", (fmt, cols, msg) => {
    expect(() => quantizeGgufInt4(fmt, new Float32Array(cols * 2), 2, cols)).toThrow(msg);
  });

  it("Q4_0 refuses zero points other than 8 and NaN weights", () => {
    const qm = quantizeRTN(new TestRng(1).normals(64), 1, 64, { bits: 4, groupSize: 32, sym: false });
    expect(() => quantizedMatrixToGgufInt4("q4_0", qm)).toThrow(/zero point/);
    const w = new Float32Array(64);
    w[40] = Number.NaN;
    expect(() => quantizeGgufInt4("q4_0", w, 2, 32, "output.weight")).toThrow(LowbitError);
    expect(() => quantizeGgufInt4("q4_0", w, 2, 32, "output.weight")).toThrow(/output.weight: element 40/);
  });
});
