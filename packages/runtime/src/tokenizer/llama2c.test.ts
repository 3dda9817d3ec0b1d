import fs from "node:fs";
import path from "node:path";
import { isLowbitError } from "@lowbit/tensor";
import { dataFile, hasData, tmpDir } from "@lowbit/testing";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { Llama2cTokenizer } from "./llama2c";

function stories(n: number): string[] {
  const text = fs.readFileSync(dataFile("text", "tinystories-valid.txt"), "utf8");
  return text
    .split(/\n\s*\n/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .slice(0, n);
}

function concatBytes(tok: Llama2cTokenizer, ids: number[]): number[] {
  return ids.flatMap((id) => Array.from(tok.pieceBytes(undefined, id)));
}

describe.runIf(hasData)("llama2.c tokenizer (tok512)", () => {
  let tok: Llama2cTokenizer;
  beforeAll(async () => {
    tok = await Llama2cTokenizer.fromFile(dataFile("stories260K", "tok512.bin"));
  });

  it("has 512 tokens, BOS 1, EOS 2", () => {
    expect(tok.vocabSize).toBe(512);
    expect(tok.bosId).toBe(1);
    expect(tok.eosIds).toEqual([2]);
  });

  it.each([
    ["", [1]],
    ["a", null],
    ["Once upon a time", null],
  ])("encode(%j) starts with BOS and a dummy-prefix space", (text, exact) => {
    const ids = tok.encode(text);
    if (exact) expect(ids).toEqual(exact);
    expect(ids[0]).toBe(1);
    if (text) {
      // the first piece carries the dummy prefix space
      expect(tok.pieceBytes(undefined, ids[1]!)[0]).toBe(0x20);
    }
  });

  it("round-trips 200 real stories, including the dataset's mojibake", () => {
    for (const s of stories(200)) expect(tok.decode(tok.encode(s))).toBe(s);
  });

  it.each(["🦀", "ж"])("falls back to byte tokens (+3) for %s, which is not in the vocabulary", (ch) => {
    const utf8 = Array.from(new TextEncoder().encode(ch));
    const inVocab = Array.from({ length: tok.vocabSize }, (_, id) => Array.from(tok.tokenBytes(id)).join()).includes(utf8.join());
    expect(inVocab).toBe(false);
    const ids = tok.encode(ch, { bos: false });
    expect(ids.slice(-utf8.length)).toEqual(utf8.map((b) => b + 3));
    expect(tok.decode(ids)).toBe(` ${ch}`);
  });

  it("property: token bytes concatenate to ' ' + text, and no adjacent pair is left that merges", () => {
    const mergeable = (a: number, b: number) => {
      const merged = [...tok.tokenBytes(a), ...tok.tokenBytes(b)];
      for (let id = 0; id < tok.vocabSize; id++) {
        const t = tok.tokenBytes(id);
        if (t.length === merged.length && t.every((x, i) => x === merged[i])) return true;
      }
      return false;
    };
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(..."abcdeht lo,.!'\né"), minLength: 1, maxLength: 30 }), (s) => {
        const ids = tok.encode(s, { bos: false });
        const bytes = concatBytes(tok, ids);
        expect(bytes).toEqual(Array.from(new TextEncoder().encode(` ${s}`)));
        for (let i = 0; i + 1 < ids.length; i++) expect(mergeable(ids[i]!, ids[i + 1]!)).toBe(false);
      }),
      { seed: 42, numRuns: 60 },
    );
  });

  it("decode strips the leading space after BOS only", () => {
    const ids = tok.encode("Hi there", { bos: false });
    expect(tok.decode([1, ...ids])).toBe("Hi there");
    expect(tok.decode(ids)).toBe(" Hi there");
  });

  it("streaming decoder yields the same text, holding back incomplete characters", () => {
    const s = "Lily said: “Wow!” €5";
    const ids = tok.encode(s);
    const d = tok.streamDecoder();
    let out = "";
    for (const id of ids) out += d.push(id);
    out += d.flush();
    expect(out).toBe(s);
  });

  it("encodes 1000 real stories exactly as run.c's encode does (a literal port of its merge loop)", () => {
    // run.c (llama2.c): BOS, a dummy-prefix " " for non-empty text, one token per UTF-8 character
    // (byte fallback id = byte + 3 when the character is not in the vocabulary), then repeatedly
    // merge the adjacent pair whose concatenation has the highest score (first such pair on ties).
    const buf = fs.readFileSync(dataFile("stories260K", "tok512.bin"));
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const latin1 = new TextDecoder("latin1");
    const pieces: string[] = [];
    const scores: number[] = [];
    let o = 4; // max_token_length
    for (let i = 0; i < 512; i++) {
      scores.push(dv.getFloat32(o, true));
      const len = dv.getInt32(o + 4, true);
      pieces.push(latin1.decode(buf.subarray(o + 8, o + 8 + len)));
      o += 8 + len;
    }
    const id = new Map<string, number>();
    pieces.forEach((p, i) => {
      if (!id.has(p)) id.set(p, i);
    });
    const runC = (text: string): number[] => {
      const bytes = new TextEncoder().encode(text);
      const t = [1];
      if (bytes.length > 0) t.push(id.get(" ")!);
      for (let i = 0; i < bytes.length; ) {
        let j = i + 1;
        while (j < bytes.length && (bytes[j]! & 0xc0) === 0x80 && j - i < 4) j++;
        const found = id.get(latin1.decode(bytes.subarray(i, j)));
        if (found !== undefined) t.push(found);
        else for (let k = i; k < j; k++) t.push(bytes[k]! + 3);
        i = j;
      }
      for (;;) {
        let best = -1e10;
        let at = -1;
        let merged = -1;
        for (let k = 0; k + 1 < t.length; k++) {
          const m = id.get(pieces[t[k]!]! + pieces[t[k + 1]!]!);
          if (m !== undefined && scores[m]! > best) {
            best = scores[m]!;
            at = k;
            merged = m;
          }
        }
        if (at < 0) return t;
        t.splice(at, 2, merged);
      }
    };
    const texts = [...stories(1000), "Hi \u{1F980} \u0436 \u00e9", "a", "  two  spaces", "tab\there"];
    const differing = texts.filter((s) => JSON.stringify(tok.encode(s)) !== JSON.stringify(runC(s)));
    expect(differing).toEqual([]);
  });

  it("a malformed tokenizer file is a LowbitError", async () => {
    const dir = tmpDir();
    const bad = path.join(dir, "bad.bin");
    fs.writeFileSync(bad, Uint8Array.of(16, 0, 0, 0, 0, 0, 128, 63, 100, 0, 0, 0, 65));
    const err = await Llama2cTokenizer.fromFile(bad).catch((e) => e);
    expect(isLowbitError(err)).toBe(true);
    expect(err.code).toBe("E_TOKENIZER");
  });
});
