/**
 * The input of the llama.cpp golden vectors (packages/int4/src/ggml-golden.ts for Q4_0/Q4_1/Q4_K,
 * packages/int8/src/q8-0-golden.ts for Q8_0). The C harness packages/int4/test/ggml-golden.c builds
 * the same values and feeds them to libggml's reference quantizers; its SHA-256 is kept beside the
 * hashes of the outputs.
 */
const SCALES = [1.0, 0.01, 100.0, 3.5, 1e-4, 0.25, 7.0, 1e6].map(Math.fround);

/** The golden input: xorshift32 uniform blocks at 8 scales, with zero, constant, tie and integer blocks. */
export function ggmlGoldenInput(n = 11264, seed = 12345): Float32Array {
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
