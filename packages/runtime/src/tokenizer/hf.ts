import { Tokenizer as HfTokenizerImpl } from "@huggingface/tokenizers";
import { LowbitError } from "@lowbit/tensor";
import type { DecodeOptions, EncodeOptions, StreamDecoder, Tokenizer } from "./types";

type Json = Record<string, unknown>;

function tokenContent(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as Json).content === "string") return (v as Json).content as string;
  return undefined;
}

/**
 * A Hugging Face `tokenizer.json` (BPE, Unigram, WordPiece ...) through @huggingface/tokenizers,
 * offline. BOS/EOS come from tokenizer_config.json when present (else from the options). Encoding
 * never relies on the file's post-processor: `bos` decides whether the BOS id is prepended.
 */
export class HfTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosIds: readonly number[];
  private readonly impl: HfTokenizerImpl;
  private readonly special: Set<number>;

  constructor(
    tokenizerJson: unknown,
    tokenizerConfig: unknown = {},
    options: { bosId?: number; eosIds?: number[]; source?: string } = {},
  ) {
    const source = options.source ?? "tokenizer.json";
    if (!tokenizerJson || typeof tokenizerJson !== "object" || !("model" in tokenizerJson)) {
      throw new LowbitError("E_TOKENIZER", `${source}: not a Hugging Face tokenizer (no "model" object)`);
    }
    const cfg = (tokenizerConfig && typeof tokenizerConfig === "object" ? tokenizerConfig : {}) as Json;
    try {
      this.impl = new HfTokenizerImpl(tokenizerJson, cfg);
    } catch (e) {
      throw new LowbitError("E_TOKENIZER", `${source}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    this.vocabSize = this.impl.get_vocab(true).size;
    const idOf = (v: unknown) => {
      const s = tokenContent(v);
      return s === undefined ? undefined : this.impl.token_to_id(s);
    };
    this.bosId = options.bosId ?? idOf(cfg.bos_token);
    const eos = options.eosIds ?? [idOf(cfg.eos_token)].filter((x): x is number => x !== undefined);
    this.eosIds = eos;
    this.special = new Set([...this.impl.get_added_tokens_decoder().entries()].filter(([, t]) => t.special).map(([id]) => id));
  }

  /** Loads tokenizer.json (and tokenizer_config.json when present) from a model folder or a file path. */
  static async fromPath(dirOrFile: string, options: { bosId?: number; eosIds?: number[] } = {}): Promise<HfTokenizer> {
    const file = dirOrFile.endsWith(".json") ? dirOrFile : joinPath(dirOrFile, "tokenizer.json");
    const json = await readJson(file, true);
    const cfg = await readJson(joinPath(dirName(file), "tokenizer_config.json"), false);
    return new HfTokenizer(json, cfg ?? {}, { ...options, source: file });
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const ids = this.impl.encode(text, { add_special_tokens: false }).ids;
    if ((options.bos ?? true) && this.bosId !== undefined) ids.unshift(this.bosId);
    if (options.eos && this.eosIds[0] !== undefined) ids.push(this.eosIds[0]);
    return ids;
  }

  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    return this.impl.decode(Array.from(ids), {
      skip_special_tokens: options.skipSpecial ?? true,
      clean_up_tokenization_spaces: false,
    });
  }

  streamDecoder(): StreamDecoder {
    // decode the whole sequence so far and emit the new suffix; hold back while the text ends in
    // an incomplete character (U+FFFD)
    const ids: number[] = [];
    let emitted = 0;
    return {
      push: (id) => {
        ids.push(id);
        if (this.special.has(id)) return "";
        const text = this.decode(ids);
        if (text.endsWith("\uFFFD")) return "";
        const out = text.slice(emitted);
        emitted = text.length;
        return out;
      },
      flush: () => {
        const text = this.decode(ids);
        const out = text.slice(emitted);
        emitted = text.length;
        return out;
      },
    };
  }
}

function joinPath(dir: string, name: string): string {
  return dir.endsWith("/") || dir.endsWith("\\") ? dir + name : `${dir}/${name}`;
}

function dirName(file: string): string {
  const i = Math.max(file.lastIndexOf("/"), file.lastIndexOf("\\"));
  return i < 0 ? "." : file.slice(0, i) || "/";
}

async function readJson(file: string, required: boolean): Promise<unknown> {
  // imported on use, so the module also loads in browsers (which construct from JSON instead)
  const { readFile } = await import("node:fs/promises");
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    if (!required) return undefined;
    throw new LowbitError("E_FILE_NOT_FOUND", `tokenizer file not found: ${file}`, { cause: e });
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new LowbitError("E_TOKENIZER", `${file}: malformed JSON (${e instanceof Error ? e.message : String(e)})`, { cause: e });
  }
}
