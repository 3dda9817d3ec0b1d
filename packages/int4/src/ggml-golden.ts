import { ggmlGoldenInput } from "@lowbit/testing";

/**
 * Golden vectors for bit-identity with llama.cpp. The input generator below is mirrored by the C
 * harness packages/int4/test/ggml-golden.c, which feeds the same values to quantize_row_q4_0_ref /
 * q4_1_ref / q4_K_ref of the libggml-base.so shipped in @node-llama-cpp/linux-x64 3.21.1 (llama.cpp
 * release v0.4.0); the SHA-256 of each output is kept here. How to rebuild them is in that file's
 * header (its Q8_0 output is kept in packages/int8/src/q8-0-golden.ts). Internal (tests only).
 */
export const GOLDEN_N = 11264;
export const GOLDEN_SHA256 = {
  input: "ea8a58aa4544bbd5a2f602048f4567aec34ea56580b05fd8805e868973ba629a",
  q4_0: "d56bf461ab2922d102e2662b0d12a4f9b99c12289653d80be2c35e804172ccfc",
  q4_1: "40838c511ce99779a6dd1b7d75744deb5d8cb9ee7498c3bb0d23b0da2a7bbb7c",
  q4_K: "838807d0023e80096d42cb9c72ef8076798dd0fe4420d79f460bae6c38204bef",
} as const;

/** The golden input (the same generator as @lowbit/int8's Q8_0 golden: ggmlGoldenInput of @lowbit/testing). */
export function goldenInput(n = GOLDEN_N, seed = 12345): Float32Array {
  return ggmlGoldenInput(n, seed);
}
