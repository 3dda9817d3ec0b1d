/*
 * The C side of the ggml golden vectors (packages/int4/src/ggml-golden.ts and
 * packages/int8/src/q8-0-golden.ts). It builds the same golden input as goldenInput() there and
 * writes what llama.cpp's reference row quantizers (and row decoders) of libggml-base.so make of
 * it to stdout, raw. The library is the prebuilt one that node-llama-cpp ships in
 * @node-llama-cpp/linux-x64 3.21.1 (llama.cpp release v0.4.0), loaded with dlopen, so nothing of
 * llama.cpp is built here.
 *
 * Rebuilding the hashes (from the repository root, Debian packages gcc and libc6-dev):
 *
 *   BINS=$(dirname $(node -e 'const {createRequire}=require("module");
 *     const r=createRequire(createRequire(process.cwd()+"/apps/cli/").resolve("node-llama-cpp"));
 *     console.log(r.resolve("@node-llama-cpp/linux-x64"))'))/../bins/linux-x64
 *   gcc -O1 -std=c11 -o /tmp/ggml-golden packages/int4/test/ggml-golden.c -ldl
 *   for k in input q4_0 q4_1 q4_K q8_0 q8_0-decoded; do
 *     printf '%-13s ' $k; /tmp/ggml-golden "$BINS/libggml-base.so" $k | sha256sum
 *   done
 *
 * input:        the golden input itself, 11264 little-endian f32 (checks the mirror of goldenInput)
 * q4_0, q4_1,
 * q4_K, q8_0:   quantize_row_<type>_ref(input)
 * q8_0-decoded: dequantize_row_q8_0(quantize_row_q8_0_ref(input)), f32
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GOLDEN_N 11264

/* goldenInput() of ggml-golden.ts: xorshift32 uniform blocks at 8 scales, with zero, constant,
 * tie and integer blocks. (float)(a * sc) of two floats is exact in double and rounds once, as
 * Math.fround of the product does. */
static void golden_input(float *x, int n, uint32_t seed) {
  static const float scales[8] = {1.0f, 0.01f, 100.0f, 3.5f, 1e-4f, 0.25f, 7.0f, 1e6f};
  uint32_t st = seed;
  for (int b = 0; b < n / 32; b++) {
    const float sc = scales[b % 8];
    for (int j = 0; j < 32; j++) {
      st ^= st << 13;
      st ^= st >> 17;
      st ^= st << 5;
      const float u = (float)((double)(st >> 8) / 16777216.0 - 0.5);
      x[b * 32 + j] = u * sc;
    }
    const int kind = b % 11;
    if (kind == 3)
      for (int j = 0; j < 32; j++) x[b * 32 + j] = 0.0f;
    if (kind == 5)
      for (int j = 0; j < 32; j++) x[b * 32 + j] = sc * 0.375f;
    if (kind == 7) {
      x[b * 32 + 4] = 2.0f * sc;
      x[b * 32 + 20] = -2.0f * sc;
    }
    if (kind == 9) {
      x[b * 32 + 2] = -2.0f * sc;
      x[b * 32 + 30] = 2.0f * sc;
    }
    if (kind == 10)
      for (int j = 0; j < 32; j++) x[b * 32 + j] = (float)(j - 16);
  }
}

typedef void (*quantize_fn)(const float *, void *, int64_t);
typedef void (*decode_fn)(const void *, float *, int64_t);

static void *sym(void *lib, const char *name) {
  void *f = dlsym(lib, name);
  if (!f) {
    fprintf(stderr, "symbol %s not found: %s\n", name, dlerror());
    exit(3);
  }
  return f;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: ggml-golden <path/to/libggml-base.so> input|q4_0|q4_1|q4_K|q8_0|q8_0-decoded > out.bin\n");
    return 2;
  }
  static const struct { const char *name, *fn; size_t bytes; } kinds[] = {
      {"q4_0", "quantize_row_q4_0_ref", GOLDEN_N / 32 * 18},
      {"q4_1", "quantize_row_q4_1_ref", GOLDEN_N / 32 * 20},
      {"q4_K", "quantize_row_q4_K_ref", GOLDEN_N / 256 * 144},
      {"q8_0", "quantize_row_q8_0_ref", GOLDEN_N / 32 * 34},
  };
  static float x[GOLDEN_N];
  golden_input(x, GOLDEN_N, 12345u);
  const char *kind = argv[2];
  if (strcmp(kind, "input") == 0) return fwrite(x, sizeof x, 1, stdout) == 1 ? 0 : 1;

  void *lib = dlopen(argv[1], RTLD_NOW);
  if (!lib) {
    fprintf(stderr, "cannot load %s: %s\n", argv[1], dlerror());
    return 3;
  }
  const int decoded = strcmp(kind, "q8_0-decoded") == 0;
  if (decoded) kind = "q8_0";
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
    if (strcmp(kind, kinds[i].name) != 0) continue;
    unsigned char *y = calloc(1, kinds[i].bytes);
    ((quantize_fn)sym(lib, kinds[i].fn))(x, y, GOLDEN_N);
    if (!decoded) return fwrite(y, kinds[i].bytes, 1, stdout) == 1 ? 0 : 1;
    static float back[GOLDEN_N];
    ((decode_fn)sym(lib, "dequantize_row_q8_0"))(y, back, GOLDEN_N);
    return fwrite(back, sizeof back, 1, stdout) == 1 ? 0 : 1;
  }
  fprintf(stderr, "unknown output %s\n", argv[2]);
  return 2;
}
