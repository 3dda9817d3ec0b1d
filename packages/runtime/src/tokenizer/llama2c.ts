import { readLlama2cTokenizer, type Llama2cTokenizer as Llama2cTokenizerData } from "@lowbit/formats";
import { LowbitError } from "@lowbit/tensor";
import type { DecodeOptions, EncodeOptions, StreamDecoder, Tokenizer } from "./types";

const BOS = 1;
const EOS = 2;
/** Byte-fallback tokens <0x00>..<0xFF> start at id 3. */
const BYTE_OFFSET = 3;

/** A byte string as a JS string of code units 0..255 (a Map key that compares bytes exactly). */
function bytesKey(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]!);
  return s;
}

/**
 * The llama2.c tokenizer (SentencePiece-style BPE by scores), encoding and decoding exactly as
 * its run.c: BOS, a dummy prefix space, each UTF-8 code point looked up in the vocabulary (raw
 * bytes + 3 when absent), then repeatedly merge the adjacent pair whose merged token has the
 * highest score. Decoding strips the leading space of the token after BOS and maps <0xXX>
 * tokens to their byte.
 */
export class Llama2cTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId = BOS;
  readonly eosIds: readonly number[];
  private readonly tokens: Uint8Array[];
  private readonly scores: Float32Array;
  private readonly lookup = new Map<string, number>();
  private readonly pieces: Uint8Array[];
  /** bytesKey of every token. */
  private readonly keys: string[];
  /** Memo of merge lookups: a * vocabSize + b -> id of the merged piece, or -1. */
  private readonly merges = new Map<number, number>();

  constructor(data: Llama2cTokenizerData, options: { eosIds?: number[] } = {}) {
    if (data.tokens.length !== data.scores.length || data.tokens.length < BYTE_OFFSET + 256) {
      throw new LowbitError(
        "E_TOKENIZER",
        `llama2.c tokenizer: needs at least ${BYTE_OFFSET + 256} tokens with scores (3 specials + 256 byte tokens), got ${data.tokens.length} tokens and ${data.scores.length} scores`,
      );
    }
    this.tokens = data.tokens;
    this.scores = data.scores;
    this.vocabSize = data.tokens.length;
    this.eosIds = options.eosIds ?? [EOS];
    this.keys = data.tokens.map(bytesKey);
    this.keys.forEach((k, i) => {
      if (!this.lookup.has(k)) this.lookup.set(k, i);
    });
    this.pieces = data.tokens.map((t) => {
      const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(bytesKey(t));
      return m ? Uint8Array.of(Number.parseInt(m[1]!, 16)) : t;
    });
  }

  /** Reads a llama2.c tokenizer.bin. */
  static async fromFile(path: string, options: { expectedVocabSize?: number } = {}): Promise<Llama2cTokenizer> {
    return new Llama2cTokenizer(await readLlama2cTokenizer(path, options));
  }

  /** Raw bytes of a token. */
  tokenBytes(id: number): Uint8Array {
    const t = this.tokens[id];
    if (!t) throw new LowbitError("E_INVALID_ARGUMENT", `token id ${id} outside the vocabulary [0, ${this.vocabSize})`);
    return t;
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const ids: number[] = [];
    if (options.bos ?? true) ids.push(BOS);
    if (text.length > 0) {
      const space = this.lookup.get(" ");
      if (space !== undefined) ids.push(space);
    }
    const bytes = new TextEncoder().encode(text);
    let i = 0;
    while (i < bytes.length) {
      // one UTF-8 code point: a lead byte and up to 3 continuation bytes (as run.c groups them)
      let j = i + 1;
      while (j < bytes.length && (bytes[j]! & 0xc0) === 0x80 && j - i < 4) j++;
      const cp = bytes.subarray(i, j);
      const id = this.lookup.get(bytesKey(cp));
      if (id !== undefined) ids.push(id);
      else for (const b of cp) ids.push(b + BYTE_OFFSET);
      i = j;
    }
    // greedy merges of the best-scoring adjacent pair (the first one on ties); like run.c the scan
    // includes BOS, whose piece never merges
    for (;;) {
      let bestScore = Number.NEGATIVE_INFINITY;
      let bestId = -1;
      let bestIdx = -1;
      for (let k = 0; k < ids.length - 1; k++) {
        const id = this.mergeOf(ids[k]!, ids[k + 1]!);
        if (id >= 0 && this.scores[id]! > bestScore) {
          bestScore = this.scores[id]!;
          bestId = id;
          bestIdx = k;
        }
      }
      if (bestIdx < 0) break;
      ids.splice(bestIdx, 2, bestId);
    }
    if (options.eos) ids.push(EOS);
    return ids;
  }

  /** The token whose bytes are those of a followed by b, or -1 (memoized). */
  private mergeOf(a: number, b: number): number {
    const key = a * this.vocabSize + b;
    let id = this.merges.get(key);
    if (id === undefined) {
      id = this.lookup.get(this.keys[a]! + this.keys[b]!) ?? -1;
      // bounded: large vocabularies see many distinct pairs
      if (this.merges.size >= 1 << 20) this.merges.clear();
      this.merges.set(key, id);
    }
    return id;
  }

  /** The bytes run.c prints for `id` following `prev`. */
  pieceBytes(prev: number | undefined, id: number): Uint8Array {
    const piece = this.pieces[id];
    if (!piece) throw new LowbitError("E_INVALID_ARGUMENT", `token id ${id} outside the vocabulary [0, ${this.vocabSize})`);
    // run.c strips the raw piece's leading space before parsing <0xXX>, so <0x20> is kept
    if (prev === BOS && this.tokens[id]![0] === 0x20) return piece.subarray(1);
    return piece;
  }

  private isSpecial(id: number): boolean {
    return id === 0 || id === BOS || id === EOS;
  }

  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    const skip = options.skipSpecial ?? true;
    const parts: Uint8Array[] = [];
    let prev: number | undefined;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (!(skip && this.isSpecial(id))) parts.push(this.pieceBytes(prev, id));
      prev = id;
    }
    let n = 0;
    for (const p of parts) n += p.length;
    const all = new Uint8Array(n);
    let o = 0;
    for (const p of parts) {
      all.set(p, o);
      o += p.length;
    }
    return new TextDecoder().decode(all);
  }

  streamDecoder(): StreamDecoder {
    const td = new TextDecoder();
    let prev: number | undefined;
    return {
      push: (id) => {
        const special = this.isSpecial(id);
        const bytes = special ? new Uint8Array(0) : this.pieceBytes(prev, id);
        prev = id;
        return td.decode(bytes, { stream: true });
      },
      flush: () => td.decode(),
    };
  }
}
