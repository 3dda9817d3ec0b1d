// Byte-pair-encoding training for a llama2.c-style tokenizer (what run.c and lowbit's
// Llama2cTokenizer encode with): ids 0 <unk>, 1 <s>, 2 </s>, 3..258 the byte fallbacks <0x00>..<0xFF>,
// then the frequent single characters, then merged pieces. run.c encodes by looking up each UTF-8
// character and then repeatedly merging the adjacent pair whose merged piece has the highest score,
// so a merge learned earlier gets a higher score (score = -rank), which replays the training order.

export interface TrainedTokenizer {
  /** Token pieces as UTF-8 bytes, index = id. */
  tokens: Uint8Array[];
  scores: Float32Array;
}

const enc = new TextEncoder();

/** Splits a document the way the tokenizer is trained: words with their leading space, digits, punctuation. */
export function pretokenize(text: string): string[] {
  return text.match(/ ?[A-Za-z]+| ?[0-9]+| ?[^A-Za-z0-9\s]+|\s+/g) ?? [];
}

/**
 * Learns a vocabulary of `vocabSize` tokens from `documents` (each encoded as run.c does: a leading
 * space, then the text). Single characters seen at least `minCharCount` times get their own token;
 * rarer ones fall back to bytes.
 */
export function trainBpe(documents: readonly string[], vocabSize: number, minCharCount = 20): TrainedTokenizer {
  const pieces: string[] = ["<unk>", "\n<s>\n", "\n</s>\n"];
  for (let b = 0; b < 256; b++) pieces.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
  const scores: number[] = pieces.map(() => 0);

  const wordCounts = new Map<string, number>();
  const charCounts = new Map<string, number>();
  for (const d of documents) {
    for (const w of pretokenize(` ${d}`)) {
      wordCounts.set(w, (wordCounts.get(w) ?? 0) + 1);
      for (const ch of w) charCounts.set(ch, (charCounts.get(ch) ?? 0) + 1);
    }
  }
  const chars = [...charCounts.entries()].filter(([, n]) => n >= minCharCount).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const id = new Map<string, number>();
  for (const [ch] of chars) {
    if (pieces.length >= vocabSize) break;
    id.set(ch, pieces.length);
    pieces.push(ch);
    scores.push(-1e6); // single characters are looked up, never produced by a merge
  }
  // words as symbol sequences (characters without a token are kept as unmergeable -1)
  const words = [...wordCounts.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1));
  const seqs = words.map(([w]) => [...w].map((ch) => id.get(ch) ?? -1));
  const counts = words.map(([, n]) => n);
  let rank = 0;
  while (pieces.length < vocabSize) {
    const pairs = new Map<number, number>();
    let best = -1;
    let bestCount = 0;
    for (let i = 0; i < seqs.length; i++) {
      const s = seqs[i]!;
      for (let j = 0; j + 1 < s.length; j++) {
        const a = s[j]!;
        const b = s[j + 1]!;
        if (a < 0 || b < 0) continue;
        const key = a * 65536 + b;
        const c = (pairs.get(key) ?? 0) + counts[i]!;
        pairs.set(key, c);
        if (c > bestCount || (c === bestCount && key < best)) {
          bestCount = c;
          best = key;
        }
      }
    }
    if (best < 0 || bestCount < 2) break;
    const a = Math.floor(best / 65536);
    const b = best % 65536;
    const merged = pieces[a]! + pieces[b]!;
    if (id.has(merged)) {
      // the same string reached by another split: reuse it (keeps pieces unique)
      applyMerge(seqs, a, b, id.get(merged)!);
      continue;
    }
    const nid = pieces.length;
    id.set(merged, nid);
    pieces.push(merged);
    scores.push(-rank++);
    applyMerge(seqs, a, b, nid);
  }
  return { tokens: pieces.map((p) => enc.encode(p)), scores: Float32Array.from(scores) };
}

function applyMerge(seqs: number[][], a: number, b: number, to: number): void {
  for (const s of seqs) {
    for (let j = 0; j + 1 < s.length; j++) {
      if (s[j] === a && s[j + 1] === b) s.splice(j, 2, to);
    }
  }
}
