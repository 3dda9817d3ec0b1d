/**
 * The one error class of lowbit. Every failure a user can cause (bad files, bad shapes, bad
 * options) is a LowbitError with a stable code; the message names the file, tensor or field and
 * what was expected.
 */
export type LowbitErrorCode =
  | "E_INVALID_ARGUMENT"
  | "E_SHAPE_MISMATCH"
  | "E_DTYPE"
  | "E_NOT_POSITIVE_DEFINITE"
  | "E_NON_FINITE"
  | "E_IO"
  | "E_FILE_NOT_FOUND"
  | "E_FORMAT"
  | "E_SAFETENSORS_HEADER"
  | "E_SAFETENSORS_TENSOR"
  | "E_GGUF_HEADER"
  | "E_GGUF_METADATA"
  | "E_GGUF_TENSOR"
  | "E_LLAMA2C"
  | "E_CONFIG"
  | "E_TOKENIZER"
  | "E_UNSUPPORTED_ARCHITECTURE"
  | "E_MISSING_TENSOR"
  | "E_UNSUPPORTED"
  | "E_KERNEL"
  | "E_CONTEXT_LENGTH"
  | "E_CALIBRATION"
  | "E_INTERNAL";

export class LowbitError extends Error {
  readonly code: LowbitErrorCode;

  constructor(code: LowbitErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "LowbitError";
    this.code = code;
  }
}

export function isLowbitError(e: unknown): e is LowbitError {
  return e instanceof LowbitError || (e instanceof Error && e.name === "LowbitError" && "code" in e);
}

/** Wraps anything thrown into a LowbitError (kept as is when it already is one). */
export function toLowbitError(e: unknown, code: LowbitErrorCode = "E_INTERNAL", context?: string): LowbitError {
  if (isLowbitError(e)) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new LowbitError(code, context ? `${context}: ${msg}` : msg, { cause: e });
}

/** Cheap assertion for hot paths: the message is built only on failure. */
export function assert(
  cond: unknown,
  message: () => string,
  code: LowbitErrorCode = "E_INVALID_ARGUMENT",
): asserts cond {
  if (!cond) throw new LowbitError(code, message());
}
