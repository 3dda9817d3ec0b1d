import type { Tokenizer } from "./tokenizer/types";

/**
 * Splits a text into documents on blank lines (lines holding only whitespace), trimming each and
 * dropping empty ones. For tinystories-valid.txt these are the stories.
 */
export function splitDocuments(text: string): string[] {
  return text
    .split(/\r?\n[ \t]*\r?\n/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** The first or second half of a list of documents (the second half takes the extra one). */
export function documentHalf(docs: readonly string[], half: "first" | "second"): string[] {
  const mid = Math.floor(docs.length / 2);
  return half === "first" ? docs.slice(0, mid) : docs.slice(mid);
}

/** Encodes each document with BOS and concatenates, stopping after `maxTokens`. */
export function encodeDocuments(tokenizer: Tokenizer, docs: readonly string[], maxTokens = Number.POSITIVE_INFINITY): number[] {
  const out: number[] = [];
  for (const d of docs) {
    if (out.length >= maxTokens) break;
    for (const id of tokenizer.encode(d, { bos: true })) out.push(id);
  }
  if (out.length > maxTokens) out.length = maxTokens;
  return out;
}
