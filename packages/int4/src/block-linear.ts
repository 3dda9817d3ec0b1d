import { ggufInt4ToQuantizedMatrix } from "./codec-gguf";
import { q4kToQuantizedMatrix } from "./codec-q4k";
import { q6kToQuantizedMatrix } from "./codec-q6k";
import { Int4Linear, type Int4LinearOptions } from "./int4-linear";

/**
 * A linear layer over GGUF Q4_0 bytes (weight [rows, cols], GGUF ne = [cols, rows], cols a multiple
 * of 32): codes and scales are moved into Int4Linear's kernel layout (4-bit codes, one f32 scale
 * and zero 8 per 32-value block). dequantizedWeight() equals llama.cpp's dequantize_row_q4_0
 * exactly. With `activations: "int8"` the activations are quantized per token and 32-value block,
 * as llama.cpp does (q8_0), though rounding ties to even and keeping the scale in f32.
 */
export class Q4_0Linear extends Int4Linear {
  constructor(bytes: Uint8Array, rows: number, cols: number, options: Int4LinearOptions = {}) {
    super(ggufInt4ToQuantizedMatrix("q4_0", bytes, rows, cols, options.name), {
      ...options,
      kind: options.kind ?? `q4_0${options.activations === "int8" ? "-a8" : ""}`,
    });
  }
}

/**
 * A linear layer over GGUF Q4_1 bytes: value = n * d + m becomes scale d, zero -m/d (a float zero),
 * so dequantizedWeight() agrees with llama.cpp's dequantize_row_q4_1 to f32 rounding.
 */
export class Q4_1Linear extends Int4Linear {
  constructor(bytes: Uint8Array, rows: number, cols: number, options: Int4LinearOptions = {}) {
    super(ggufInt4ToQuantizedMatrix("q4_1", bytes, rows, cols, options.name), {
      ...options,
      kind: options.kind ?? `q4_1${options.activations === "int8" ? "-a8" : ""}`,
    });
  }
}

/**
 * A linear layer over GGUF Q4_K bytes (cols a multiple of 256): each 32-value sub-block becomes a
 * group with scale d*sc and float zero dmin*m/(d*sc), so dequantizedWeight() agrees with
 * llama.cpp's dequantize_row_q4_K to f32 rounding.
 */
export class Q4_KLinear extends Int4Linear {
  constructor(bytes: Uint8Array, rows: number, cols: number, options: Int4LinearOptions = {}) {
    super(q4kToQuantizedMatrix(bytes, rows, cols, options.name), {
      ...options,
      kind: options.kind ?? `q4_k${options.activations === "int8" ? "-a8" : ""}`,
    });
  }
}

/**
 * A linear layer over GGUF Q6_K bytes (cols a multiple of 256): each 16-value sub-block becomes a
 * group with scale f32(d * sc) and zero 32, its 6-bit codes in 8-bit containers (about 1.3 bytes per
 * weight in kernel memory against 4 for f32), so dequantizedWeight() equals llama.cpp's
 * dequantize_row_q6_K exactly. Q4_K_M files keep some linears and usually the classifier in Q6_K.
 */
export class Q6_KLinear extends Int4Linear {
  constructor(bytes: Uint8Array, rows: number, cols: number, options: Int4LinearOptions = {}) {
    super(q6kToQuantizedMatrix(bytes, rows, cols, options.name), {
      ...options,
      kind: options.kind ?? `q6_k${options.activations === "int8" ? "-a8" : ""}`,
    });
  }
}
