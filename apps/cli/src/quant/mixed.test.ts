import { describe, expect, it } from "vitest";
import { mixedBitsFor, parseMixedRules } from "./mixed";

describe("--mixed rules", () => {
  const bitsFor = mixedBitsFor(parseMixedRules("ffn_down=8, blk.0.*=8, blk.2-3.attn_v=2, blk.4.attn_q:3, blk.0.attn_k=4"));
  it.each([
    [0, "attn_q", 8],
    [0, "attn_k", 4],
    [1, "attn_q", undefined],
    [1, "ffn_down", 8],
    [2, "attn_v", 2],
    [3, "attn_v", 2],
    [4, "attn_v", undefined],
    [4, "attn_q", 3],
  ] as const)("blk.%d.%s -> %s (last matching rule wins)", (layer, name, bits) => {
    expect(bitsFor(layer, name)).toBe(bits);
  });

  it.each([
    ["", /is empty/],
    ["ffn_down", /is not PATTERN=BITS/],
    ["ffn_down=5", /bits must be one of 2, 3, 4, 8/],
    ["blk.3-1.*=8", /range 3-1 is empty/],
    ["a b=4", /is not PATTERN=BITS/],
  ])("rejects %j", (text, msg) => {
    expect(() => parseMixedRules(text)).toThrow(msg);
  });
});
