/**
 * Golden vector for Q8_0 bit-identity with llama.cpp. The C harness packages/int4/test/ggml-golden.c
 * builds the same input as goldenQ8Input() below (a copy of goldenInput() in
 * packages/int4/src/ggml-golden.ts: @lowbit/int8 does not depend on @lowbit/int4, and the input
 * hash, the same in both files, keeps the copies in step) and feeds it to quantize_row_q8_0_ref
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

const SCALES = [1.0, 0.01, 100.0, 3.5, 1e-4, 0.25, 7.0, 1e6].map(Math.fround);

/** The golden input: xorshift32 uniform blocks at 8 scales, with zero, constant, tie and integer blocks. */
export function goldenQ8Input(n = Q8_GOLDEN_N, seed = 12345): Float32Array {
  const x = new Float32Array(n);
  let st = seed >>> 0;
  const next = (): number => {
    st ^= st << 13;
    st >>>= 0;
    st ^= st >>> 17;
    st ^= st << 5;
    st >>>= 0;
    return st;
  };
  for (let b = 0; b < n / 32; b++) {
    const sc = SCALES[b % 8]!;
    for (let j = 0; j < 32; j++) {
      const u = next();
      x[b * 32 + j] = Math.fround(Math.fround((u >>> 8) / 16777216 - 0.5) * sc);
    }
    const kind = b % 11;
    if (kind === 3) x.fill(0, b * 32, b * 32 + 32);
    if (kind === 5) x.fill(Math.fround(sc * 0.375), b * 32, b * 32 + 32);
    if (kind === 7) {
      x[b * 32 + 4] = Math.fround(2 * sc);
      x[b * 32 + 20] = Math.fround(-2 * sc);
    }
    if (kind === 9) {
      x[b * 32 + 2] = Math.fround(-2 * sc);
      x[b * 32 + 30] = Math.fround(2 * sc);
    }
    if (kind === 10) for (let j = 0; j < 32; j++) x[b * 32 + j] = j - 16;
  }
  return x;
}
