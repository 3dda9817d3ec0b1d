import { readFile } from "node:fs/promises";
import { encodeDocuments, splitDocuments, type Tokenizer } from "@lowbit/runtime";
import { LowbitError } from "@lowbit/tensor";

/** Reads a text file for evaluation or calibration; errors say which file and what to do. */
export async function readText(path: string, flag: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new LowbitError(
      code === "ENOENT" ? "E_FILE_NOT_FOUND" : "E_IO",
      `${flag} file "${path}" ${code === "ENOENT" ? "not found" : `cannot be read (${(e as Error).message})`}; give a UTF-8 text file.`,
      { cause: e },
    );
  }
  if (text.includes("\u0000")) {
    throw new LowbitError("E_FORMAT", `${flag} file "${path}" looks binary (it contains NUL bytes); give a UTF-8 text file.`);
  }
  return text;
}

/** Tokens of a text file: documents (split on blank lines) each encoded with BOS, concatenated. */
export function tokenizeText(tokenizer: Tokenizer, text: string, maxTokens?: number): number[] {
  return encodeDocuments(tokenizer, splitDocuments(text), maxTokens);
}
