/**
 * A llama2.c-format tokenizer of any vocabulary size for generated models: stories260K's 512-token
 * SentencePiece vocabulary (tok512.bin: <unk>, <s>, </s>, 256 byte fallbacks, 253 pieces) extended
 * with distinct extra pieces, each the concatenation of two existing pieces (so it is reachable by
 * merges), scored below every original piece. Written as `tokenizer.bin` in a Hugging Face folder,
 * the lowbit CLI reads it (an HF folder may carry a llama2.c tokenizer.bin) and `lowbit convert
 * --to gguf` writes it as a llama.cpp "llama" (SentencePiece) vocabulary.
 */
import { type Llama2cTokenizer, readLlama2cTokenizer } from "@lowbit/formats";
import { LowbitError, Rng } from "@lowbit/tensor";

/** Longest extra piece in bytes (LLaMA's own pieces are at most 16 bytes). */
const MAX_PIECE_BYTES = 16;
/** First id after <unk>, <s>, </s> and the 256 byte tokens. */
const FIRST_PIECE = 3 + 256;

/**
 * Extends `base` to `vocabSize` tokens (or truncates to it, keeping the specials and byte tokens).
 * Deterministic in `seed`.
 */
export function extendVocabulary(base: Llama2cTokenizer, vocabSize: number, seed: number): Llama2cTokenizer {
  if (vocabSize < FIRST_PIECE + 1) {
    throw new LowbitError("E_INVALID_ARGUMENT", `vocabulary size ${vocabSize} is too small: a byte-fallback vocabulary needs at least ${FIRST_PIECE + 1} tokens`);
  }
  if (vocabSize <= base.tokens.length) {
    return { maxTokenLength: base.maxTokenLength, tokens: base.tokens.slice(0, vocabSize), scores: base.scores.slice(0, vocabSize) };
  }
  const dec = new TextDecoder("utf-8", { fatal: true });
  const enc = new TextEncoder();
  const pieces: string[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < base.tokens.length; i++) {
    const text = dec.decode(base.tokens[i]!);
    seen.add(text);
    if (i >= FIRST_PIECE) pieces.push(text);
  }
  const tokens = base.tokens.slice();
  const scores = Array.from(base.scores);
  let lowest = Math.min(...scores.slice(FIRST_PIECE));
  let maxLen = base.maxTokenLength;
  const rng = new Rng(seed);
  let attempts = 0;
  while (tokens.length < vocabSize) {
    if (++attempts > vocabSize * 200) {
      throw new LowbitError("E_INVALID_ARGUMENT", `could not find ${vocabSize - base.tokens.length} distinct extra pieces of at most ${MAX_PIECE_BYTES} bytes`);
    }
    const a = pieces[rng.int(pieces.length)]!;
    const b = pieces[rng.int(pieces.length)]!;
    // pieces carry their word's leading space only at the start, as SentencePiece's do
    if (b.startsWith(" ")) continue;
    const text = a + b;
    const bytes = enc.encode(text);
    if (bytes.length > MAX_PIECE_BYTES || seen.has(text)) continue;
    seen.add(text);
    pieces.push(text);
    tokens.push(bytes);
    lowest -= 1;
    scores.push(lowest);
    maxLen = Math.max(maxLen, bytes.length);
  }
  return { maxTokenLength: maxLen, tokens, scores: Float32Array.from(scores) };
}

/** The llama2.c tokenizer file: int32 max_token_length, then per token f32 score, int32 length, bytes. */
export function encodeLlama2cTokenizer(tok: Llama2cTokenizer): Uint8Array {
  let size = 4;
  for (const t of tok.tokens) size += 8 + t.length;
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  dv.setInt32(0, tok.maxTokenLength, true);
  let pos = 4;
  tok.tokens.forEach((t, i) => {
    dv.setFloat32(pos, tok.scores[i]!, true);
    dv.setInt32(pos + 4, t.length, true);
    out.set(t, pos + 8);
    pos += 8 + t.length;
  });
  return out;
}

/** stories260K's tok512.bin extended to `vocabSize`, as llama2.c tokenizer bytes. */
export async function generatedTokenizerBytes(tok512Path: string, vocabSize: number, seed: number): Promise<Uint8Array> {
  const base = await readLlama2cTokenizer(tok512Path);
  return encodeLlama2cTokenizer(extendVocabulary(base, vocabSize, seed));
}
