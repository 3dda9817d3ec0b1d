import { isLowbitError } from "@lowbit/tensor";
import { dataFile, hasData } from "@lowbit/testing";
import { beforeAll, describe, expect, it } from "vitest";
import { generate, type LlamaModel, loadLlama2c, loadModel, loadTokenizer } from "../src/index";

describe.runIf(hasData)("generate on stories260K", () => {
  let model: LlamaModel;
  let greedy: number[];
  beforeAll(async () => {
    model = await loadModel(dataFile("stories260K", "stories260K.bin")); // detected as llama2.c
    greedy = generate(model, [1], { maxTokens: 40, stopTokens: [] }).tokens;
  });

  it("stops at a stop token, which is not returned", () => {
    const stopAt = greedy.findIndex((t, i) => i >= 5 && greedy.indexOf(t) === i);
    const r = generate(model, [1], { maxTokens: 40, stopTokens: [greedy[stopAt]!] });
    expect(r.stopReason).toBe("eos");
    expect(r.tokens).toEqual(greedy.slice(0, stopAt));
  });

  it("stops when the callback returns false", () => {
    let n = 0;
    const r = generate(model, [1], { maxTokens: 40, stopTokens: [], onToken: () => ++n < 7 });
    expect(r.stopReason).toBe("callback");
    expect(r.tokens).toEqual(greedy.slice(0, 7));
  });

  it("stops at the context length", async () => {
    const short = await loadLlama2c(dataFile("stories260K", "stories260K.bin"), { overrides: { maxSeqLen: 12 } });
    const r = generate(short, [1, ...greedy.slice(0, 3)], { maxTokens: 40, stopTokens: [] });
    expect(r.stopReason).toBe("context");
    expect(r.promptTokens + r.tokens.length).toBe(13); // the last token is sampled from position 11's logits
    expect(r.tokens).toEqual(greedy.slice(3, 12));
  });

  it("a prompt longer than the context is a LowbitError naming both lengths, before any work", async () => {
    const short = await loadLlama2c(dataFile("stories260K", "stories260K.bin"), { overrides: { maxSeqLen: 12 } });
    const prompt = [1, ...greedy.slice(0, 12)]; // 13 tokens, context 12
    let err: unknown;
    try {
      generate(short, prompt, { maxTokens: 4, stopTokens: [] });
    } catch (e) {
      err = e;
    }
    expect(isLowbitError(err) && err.code).toBe("E_CONTEXT_LENGTH");
    expect((err as Error).message).toMatch(/prompt of 13 tokens exceeds the context length 12/);
    // a prompt that fills the context exactly is accepted and stops at the context
    const r = generate(short, prompt.slice(0, 12), { maxTokens: 4, stopTokens: [] });
    expect(r.stopReason).toBe("context");
  });

  it("a prompt continues the same story (prefill then decode), and sampling is reproducible per seed", async () => {
    const tok = await loadTokenizer(dataFile("stories260K", "tok512.bin"));
    const prompt = [1, ...greedy.slice(0, 10)];
    const r = generate(model, prompt, { maxTokens: 20, stopTokens: [], tokenizer: tok });
    expect(r.tokens).toEqual(greedy.slice(10, 30));
    expect(r.text).toBe(tok.decode(greedy.slice(10, 30)));
    const s1 = generate(model, [1], { maxTokens: 30, temperature: 1, topP: 0.9, seed: 5, stopTokens: [] }).tokens;
    const s2 = generate(model, [1], { maxTokens: 30, temperature: 1, topP: 0.9, seed: 5, stopTokens: [] }).tokens;
    const s3 = generate(model, [1], { maxTokens: 30, temperature: 1, topP: 0.9, seed: 6, stopTokens: [] }).tokens;
    expect(s1).toEqual(s2);
    expect(s3).not.toEqual(s1);
  });

  it("the llama2.c loader stops at EOS and, as run.c, at BOS", () => {
    expect(model.config.eosTokenIds).toEqual([2, 1]);
  });

  it("KV cache truncate rewinds the sequence", () => {
    const cache = model.createCache();
    model.forward([1, ...greedy.slice(0, 4)], cache);
    model.forward(greedy.slice(4, 9), cache);
    expect(cache.length).toBe(10);
    cache.truncate(5);
    const again = model.forward(greedy.slice(4, 5), cache);
    const fresh = model.createCache();
    model.forward([1, ...greedy.slice(0, 4)], fresh);
    const expected = model.forward(greedy.slice(4, 5), fresh);
    expect(Array.from(again)).toEqual(Array.from(expected));
    expect(() => cache.truncate(99)).toThrow(/truncate/);
  });
});
