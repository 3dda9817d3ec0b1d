import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { dequantizeQ8_0, dequantizeQ8_0Ref, Q8_0_BLOCK_BYTES, quantizeQ8_0, quantizeQ8_0Ref } from "./q8-0";
import { goldenQ8Input, Q8_GOLDEN_N, Q8_GOLDEN_SHA256 } from "./q8-0-golden";

const sha256 = (b: ArrayBufferView) => createHash("sha256").update(new Uint8Array(b.buffer, b.byteOffset, b.byteLength)).digest("hex");

// Hashes made by llama.cpp itself (packages/int4/test/ggml-golden.c against node-llama-cpp's
// libggml-base.so): quantize_row_q8_0_ref and dequantize_row_q8_0 on the golden input, whose
// blocks span 8 scales from 1e-4 to 1e6 with zero, constant, tied-extreme and integer blocks.
describe("Q8_0 against llama.cpp's golden vector", () => {
  it("the golden input is the one the C harness builds", () => {
    const x = goldenQ8Input();
    expect(x).toHaveLength(Q8_GOLDEN_N);
    expect(sha256(x)).toBe(Q8_GOLDEN_SHA256.input);
  });

  it.each([
    ["reference", quantizeQ8_0Ref],
    ["fast path", quantizeQ8_0],
  ] as const)("%s encoder reproduces quantize_row_q8_0_ref bit for bit", (_label, encode) => {
    const bytes = encode(goldenQ8Input());
    expect(bytes).toHaveLength((Q8_GOLDEN_N / 32) * Q8_0_BLOCK_BYTES);
    expect(sha256(bytes)).toBe(Q8_GOLDEN_SHA256.q8_0);
  });

  it.each([
    ["reference", dequantizeQ8_0Ref],
    ["fast path", dequantizeQ8_0],
  ] as const)("%s decoder reproduces dequantize_row_q8_0 bit for bit", (_label, decode) => {
    const back = decode(quantizeQ8_0Ref(goldenQ8Input()), Q8_GOLDEN_N);
    expect(back).toHaveLength(Q8_GOLDEN_N);
    expect(sha256(back)).toBe(Q8_GOLDEN_SHA256.decoded);
  });
});
