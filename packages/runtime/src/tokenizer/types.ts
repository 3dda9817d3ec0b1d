/** Text <-> token ids, whatever the vocabulary format. */
export interface Tokenizer {
  readonly vocabSize: number;
  /** Beginning-of-sequence id, when the vocabulary has one. */
  readonly bosId: number | undefined;
  /** Ids that end a sequence. */
  readonly eosIds: readonly number[];
  /** Encodes text; `bos` (default true) prepends the BOS id, `eos` (default false) appends EOS. */
  encode(text: string, options?: EncodeOptions): number[];
  /** Decodes ids to text; special tokens (BOS/EOS/unknown) are skipped unless `skipSpecial: false`. */
  decode(ids: ArrayLike<number>, options?: DecodeOptions): string;
  /** A decoder for streaming: push ids one at a time, get the text they complete. */
  streamDecoder(): StreamDecoder;
}

export interface EncodeOptions {
  bos?: boolean;
  eos?: boolean;
}

export interface DecodeOptions {
  skipSpecial?: boolean;
}

export interface StreamDecoder {
  /** Text completed by this id ("" while a multi-byte character is incomplete). */
  push(id: number): string;
  /** Whatever is left (incomplete bytes become U+FFFD). */
  flush(): string;
}
