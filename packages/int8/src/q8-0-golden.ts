import { ggmlGoldenInput } from "@lowbit/testing";

/**
 * Golden vector for Q8_0 bit-identity with llama.cpp. The C harness packages/int4/test/ggml-golden.c
 * builds the same input as goldenQ8Input() below (ggmlGoldenInput of @lowbit/testing, shared with
 * the Q4 golden vectors of @lowbit/int4) and feeds it to quantize_row_q8_0_ref
 * and dequantize_row_q8_0 of the libggml-base.so shipped in @node-llama-cpp/linux-x64 3.21.1
 * (llama.cpp release v0.4.0); the SHA-256 of each output is kept here. How to rebuild them is in
 * the harness's header. Internal (tests only).
 */
export const Q8_GOLDEN_N = 11264;
export const Q8_GOLDEN_SHA256 = {
  /** The input, 11264 little-endian f32 (equal to GOLDEN_SHA256.input of @lowbit/int4). */
  input: "ea8a58aa4544bbd5a2f602048f4567aec34ea56580b05fd8805e868973ba629a",
  /** quantize_row_q8_0_ref(input): 352 blocks of 34 bytes. */
  q8_0: "2655038be966e0d577588a67b7220c37d766dd408ec0d450afed7bc245a38a4a",
  /** dequantize_row_q8_0 of those blocks, 11264 little-endian f32. */
  decoded: "4cbbb365d8398a84e23cdbf0b45c4e413ea1fccbd882e66aea048b1ec09ff370",
} as const;

/** The golden input (ggmlGoldenInput of @lowbit/testing). */
export function goldenQ8Input(n = Q8_GOLDEN_N, seed = 12345): Float32Array {
  return ggmlGoldenInput(n, seed);
}
