import fs from "node:fs";
import path from "node:path";
import { tmpDir } from "@lowbit/testing";
import { isLowbitError } from "@lowbit/tensor";
import { describe, expect, it } from "vitest";
import { HfTokenizer } from "./hf";

const special = (id: number, content: string) => ({
  id,
  content,
  single_word: false,
  lstrip: false,
  rstrip: false,
  normalized: false,
  special: true,
});

/** A tiny byte-level BPE tokenizer.json, written by hand. */
const tokenizerJson = {
  version: "1.0",
  truncation: null,
  padding: null,
  added_tokens: [special(0, "<unk>"), special(1, "<s>"), special(2, "</s>")],
  normalizer: null,
  pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
  post_processor: null,
  decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
  model: {
    type: "BPE",
    dropout: null,
    unk_token: "<unk>",
    continuing_subword_prefix: null,
    end_of_word_suffix: null,
    fuse_unk: false,
    byte_fallback: false,
    vocab: { "<unk>": 0, "<s>": 1, "</s>": 2, h: 3, e: 4, l: 5, o: 6, "Ġ": 7, w: 8, r: 9, d: 10, he: 11, ll: 12, hell: 13, hello: 14, "Ġw": 15 },
    merges: ["h e", "l l", "he ll", "hell o", "Ġ w"],
  },
};

describe("Hugging Face tokenizer.json", () => {
  it("loads a folder offline, encodes with merges and BOS from tokenizer_config.json, decodes back", async () => {
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, "tokenizer.json"), JSON.stringify(tokenizerJson));
    fs.writeFileSync(path.join(dir, "tokenizer_config.json"), JSON.stringify({ bos_token: "<s>", eos_token: { content: "</s>" } }));
    const tok = await HfTokenizer.fromPath(dir);
    expect(tok.bosId).toBe(1);
    expect(tok.eosIds).toEqual([2]);
    expect(tok.vocabSize).toBe(16);
    const ids = tok.encode("hello world");
    expect(ids).toEqual([1, 14, 15, 6, 9, 5, 10]);
    expect(tok.encode("hello", { bos: false, eos: true })).toEqual([14, 2]);
    expect(tok.decode(ids)).toBe("hello world");
    const d = tok.streamDecoder();
    let out = "";
    for (const id of ids) out += d.push(id);
    expect(out + d.flush()).toBe("hello world");
  });

  it.each([
    ["not JSON", "{ nope"],
    ["no model", JSON.stringify({ version: "1.0" })],
    ["no decoder", JSON.stringify({ model: { type: "BPE", vocab: {}, merges: [] } })],
  ])("a malformed tokenizer.json (%s) is a LowbitError E_TOKENIZER", async (_what, text) => {
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, "tokenizer.json"), text);
    const err = await HfTokenizer.fromPath(dir).catch((e) => e);
    expect(isLowbitError(err)).toBe(true);
    expect(err.code).toBe("E_TOKENIZER");
    expect(err.message).toContain("tokenizer.json");
  });

  it("a missing tokenizer.json is E_FILE_NOT_FOUND", async () => {
    const err = await HfTokenizer.fromPath(tmpDir()).catch((e) => e);
    expect(err.code).toBe("E_FILE_NOT_FOUND");
  });
});
