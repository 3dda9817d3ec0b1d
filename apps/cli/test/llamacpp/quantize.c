/*
 * llama.cpp itself, driven from a test: quantizes a GGUF with llama_model_quantize and dequantizes
 * raw ggml blocks with libggml's own row decoders. It dlopens the prebuilt libraries that
 * node-llama-cpp ships (@node-llama-cpp/linux-x64, llama.cpp release v0.4.0), so nothing of
 * llama.cpp is built here. Used by apps/cli/test/llamacpp-written.test.ts and
 * llamacpp-kquants.test.ts.
 *
 *   gcc -O1 -o quantize quantize.c -ldl
 *   quantize <bins dir> quantize <in.gguf> <out.gguf> <f16|q8_0|q4_0|q4_1|q5_0|q5_1|q2_k|q3_k_m|q4_k_m|q5_k_m|q6_k>
 *       llama_model_quantize with llama_model_quantize_default_params() and the chosen ftype, one
 *       thread: what `llama-quantize in.gguf out.gguf TYPE 1` writes, llama.cpp's own choice of
 *       type per tensor included (a tied embedding goes to Q6_K under Q4_x, or Q8_0 when its rows
 *       are not whole 256-blocks; rows not a multiple of 32 fall back to F16; the k-quant mixes
 *       (q2_k, q3_k_m, q4_k_m, q5_k_m) raise some tensors to other k-quants, as llama-quantize does).
 *   quantize <bins dir> dequant <f16|q8_0|q4_0|q4_1|q5_0|q5_1|q2_k|q3_k|q4_k|q5_k|q6_k> <in.bin> <out.f32> <n values>
 *       ggml_fp16_to_fp32_row / dequantize_row_<type> of libggml-base.so (a ggml tensor type, not
 *       a file type: q4_k, not q4_k_m).
 *
 * Exit status 0 on success; errors go to stderr with what was missing.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* enum llama_ftype values (include/llama.h): what `quantize` writes */
static const struct { const char *name; int ftype; } FILE_TYPES[] = {
    {"f16", 1},     {"q4_0", 2},    {"q4_1", 3},    {"q8_0", 7},    {"q5_0", 8},   {"q5_1", 9},
    {"q2_k", 10},   {"q3_k_m", 12}, {"q4_k_m", 15}, {"q5_k_m", 17}, {"q6_k", 18}};

/* ggml tensor types `dequant` decodes: block of `block` values in `bytes` bytes (ggml-common.h),
 * decoded by libggml-base's `fn` */
static const struct { const char *name; int block, bytes; const char *fn; } TENSOR_TYPES[] = {
    {"f16", 1, 2, "ggml_fp16_to_fp32_row"},    {"q8_0", 32, 34, "dequantize_row_q8_0"},
    {"q4_0", 32, 18, "dequantize_row_q4_0"},   {"q4_1", 32, 20, "dequantize_row_q4_1"},
    {"q5_0", 32, 22, "dequantize_row_q5_0"},   {"q5_1", 32, 24, "dequantize_row_q5_1"},
    {"q2_k", 256, 84, "dequantize_row_q2_K"},  {"q3_k", 256, 110, "dequantize_row_q3_K"},
    {"q4_k", 256, 144, "dequantize_row_q4_K"}, {"q5_k", 256, 176, "dequantize_row_q5_K"},
    {"q6_k", 256, 210, "dequantize_row_q6_K"}};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* struct llama_model_quantize_params, field for field as include/llama.h of llama.cpp v0.4.0
 * (enums are int-sized). Returned by value, so its size must match the library's exactly. */
typedef struct {
  int32_t nthread;
  int32_t ftype;
  int32_t output_tensor_type;
  int32_t token_embedding_type;
  bool allow_requantize;
  bool quantize_output_tensor;
  bool only_copy;
  bool pure;
  bool keep_split;
  bool dry_run;
  const void *imatrix;
  const void *kv_overrides;
  const void *tt_overrides;
  const int32_t *prune_layers;
  size_t max_buf_size;
} quantize_params;
_Static_assert(sizeof(quantize_params) == 64, "llama_model_quantize_params layout of llama.cpp v0.4.0");

static void *open_lib(const char *dir, const char *name) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  void *h = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
  if (!h) {
    fprintf(stderr, "cannot load %s: %s\n", path, dlerror());
    exit(3);
  }
  return h;
}

static void *sym(void *lib, const char *name) {
  void *f = dlsym(lib, name);
  if (!f) {
    fprintf(stderr, "symbol %s not found: %s\n", name, dlerror());
    exit(3);
  }
  return f;
}

/* The libllama*.so of a bins folder (not libllama-common*.so). */
static const char *find_llama(const char *dir) {
  static char found[1024];
  DIR *d = opendir(dir);
  if (!d) {
    fprintf(stderr, "cannot open %s (node-llama-cpp's prebuilt binaries)\n", dir);
    exit(3);
  }
  found[0] = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    size_t len = strlen(e->d_name);
    if (strncmp(e->d_name, "libllama", 8) == 0 && strncmp(e->d_name, "libllama-", 9) != 0 && len > 3 &&
        strcmp(e->d_name + len - 3, ".so") == 0 && len < sizeof found) {
      snprintf(found, sizeof found, "%s", e->d_name);
    }
  }
  closedir(d);
  if (!found[0]) {
    fprintf(stderr, "no libllama*.so in %s\n", dir);
    exit(3);
  }
  return found;
}

static int file_type_of(const char *name) {
  for (size_t i = 0; i < COUNT(FILE_TYPES); i++) {
    if (strcmp(name, FILE_TYPES[i].name) == 0) return FILE_TYPES[i].ftype;
  }
  fprintf(stderr, "unknown file type %s (expected one of:", name);
  for (size_t i = 0; i < COUNT(FILE_TYPES); i++) fprintf(stderr, " %s", FILE_TYPES[i].name);
  fprintf(stderr, ")\n");
  return -1;
}

static int tensor_type_of(const char *name) {
  for (size_t i = 0; i < COUNT(TENSOR_TYPES); i++) {
    if (strcmp(name, TENSOR_TYPES[i].name) == 0) return (int)i;
  }
  fprintf(stderr, "unknown tensor type %s (expected one of:", name);
  for (size_t i = 0; i < COUNT(TENSOR_TYPES); i++) fprintf(stderr, " %s", TENSOR_TYPES[i].name);
  fprintf(stderr, ")\n");
  return -1;
}

static int run_quantize(const char *dir, int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: quantize <bins dir> quantize <in.gguf> <out.gguf> <type>\n");
    return 2;
  }
  int ftype = file_type_of(argv[2]);
  if (ftype < 0) return 2;
  /* libllama.<version>.so in node-llama-cpp's build, libllama.so in a plain one */
  void *llama = open_lib(dir, find_llama(dir));

  void (*backend_init)(void) = (void (*)(void))sym(llama, "llama_backend_init");
  void (*backend_free)(void) = (void (*)(void))sym(llama, "llama_backend_free");
  quantize_params (*defaults)(void) = (quantize_params(*)(void))sym(llama, "llama_model_quantize_default_params");
  uint32_t (*quantize)(const char *, const char *, const quantize_params *) =
      (uint32_t(*)(const char *, const char *, const quantize_params *))sym(llama, "llama_model_quantize");

  backend_init();
  quantize_params p = defaults();
  p.nthread = 1;
  p.ftype = ftype;
  uint32_t rc = quantize(argv[0], argv[1], &p);
  backend_free();
  if (rc != 0) {
    fprintf(stderr, "llama_model_quantize(%s -> %s, %s) failed with %u\n", argv[0], argv[1], argv[2], rc);
    return 1;
  }
  return 0;
}

static int run_dequant(const char *dir, int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: quantize <bins dir> dequant <type> <in.bin> <out.f32> <n>\n");
    return 2;
  }
  int t = tensor_type_of(argv[0]);
  if (t < 0) return 2;
  long long n = atoll(argv[3]);
  if (n <= 0 || n % TENSOR_TYPES[t].block != 0) {
    fprintf(stderr, "bad value count %lld for %s (whole blocks of %d)\n", n, argv[0], TENSOR_TYPES[t].block);
    return 2;
  }
  size_t in_bytes = (size_t)(n / TENSOR_TYPES[t].block) * (size_t)TENSOR_TYPES[t].bytes;
  void *base = open_lib(dir, "libggml-base.so");
  void (*decode)(const void *, float *, int64_t) = (void (*)(const void *, float *, int64_t))sym(base, TENSOR_TYPES[t].fn);

  unsigned char *in = malloc(in_bytes);
  float *out = malloc((size_t)n * sizeof(float));
  FILE *f = fopen(argv[1], "rb");
  if (!f || !in || !out || fread(in, 1, in_bytes, f) != in_bytes) {
    fprintf(stderr, "cannot read %zu bytes from %s\n", in_bytes, argv[1]);
    return 1;
  }
  fclose(f);
  decode(in, out, n);
  f = fopen(argv[2], "wb");
  if (!f || fwrite(out, sizeof(float), (size_t)n, f) != (size_t)n || fclose(f) != 0) {
    fprintf(stderr, "cannot write %s\n", argv[2]);
    return 1;
  }
  free(in);
  free(out);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: quantize <bins dir> quantize|dequant ...\n");
    return 2;
  }
  if (strcmp(argv[2], "quantize") == 0) return run_quantize(argv[1], argc - 3, argv + 3);
  if (strcmp(argv[2], "dequant") == 0) return run_dequant(argv[1], argc - 3, argv + 3);
  fprintf(stderr, "unknown command %s (quantize or dequant)\n", argv[2]);
  return 2;
}
