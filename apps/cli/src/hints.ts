import type { LowbitErrorCode } from "@lowbit/tensor";

/**
 * What to do about an error, for messages from the libraries (which say what is wrong, naming the
 * file or tensor): one sentence per error code, appended unless the message already says what to do.
 */
const HINTS: Partial<Record<LowbitErrorCode, string>> = {
  E_FILE_NOT_FOUND: "Check the path.",
  E_IO: "Check that the file is readable and the disk has room.",
  E_FORMAT: "Check that the file is what the command expects (see --help).",
  E_SAFETENSORS_HEADER: "The file is damaged or not safetensors; re-download or re-export it.",
  E_SAFETENSORS_TENSOR: "The file is damaged or truncated; re-download or re-export it.",
  E_GGUF_HEADER: "The file is damaged or not GGUF v2/v3; re-download or re-convert it.",
  E_GGUF_METADATA: "The GGUF metadata is incomplete; re-convert the model with a current converter.",
  E_GGUF_TENSOR: "The GGUF tensors are damaged or of an unsupported type; re-convert the model.",
  E_LLAMA2C: "Give a llama2.c float32 checkpoint (the legacy run.c format) or another model format.",
  E_CONFIG: "Fix config.json, or use the model's original config.json.",
  E_TOKENIZER: "Pass the model's own tokenizer with --tokenizer FILE.",
  E_UNSUPPORTED_ARCHITECTURE: "lowbit runs LLaMA-family decoders (Llama, Mistral, Qwen2); use a model of that family.",
  E_MISSING_TENSOR: "The model files are incomplete; re-download or re-export the model.",
  E_SHAPE_MISMATCH: "The model's tensors do not fit its config; check that config and weights belong together.",
  E_UNSUPPORTED: "See lowbit <command> --help for what is supported.",
  E_CALIBRATION: "Give more calibration text with --calib, or a smaller --seq-len.",
  E_CONTEXT_LENGTH: "Use a shorter prompt or fewer --max-tokens.",
  E_NON_FINITE: "NaN or infinity appeared: check the model file, and report a bug if the model is sound.",
  E_NOT_POSITIVE_DEFINITE: "Raise --damp or give more calibration data (--samples).",
};

const SAYS_WHAT_TO_DO = /\b(give|pass|use|run|choose|set|check|drop|remove|add|quantize|convert|re-?download|re-?export|re-?convert|re-?quantize|fix|point|install|upgrade|write|raise|lower)\b[^.]*\.?\s*$/i;

export function withHint(code: LowbitErrorCode, message: string): string {
  const hint = HINTS[code];
  const last = message.split(/(?<=[.;])\s+/).pop() ?? message;
  if (!hint || SAYS_WHAT_TO_DO.test(last)) return message;
  return `${message.replace(/\s+$/, "")}${/[.!?]$/.test(message.trim()) ? "" : "."} ${hint}`;
}
