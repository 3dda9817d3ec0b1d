import { LowbitError } from "@lowbit/tensor";
import type { LlamaModel } from "./model";
import { Sampler, type SamplingOptions } from "./sampler";
import type { Tokenizer } from "./tokenizer/types";

export interface GenerateOptions extends SamplingOptions {
  /** Largest number of new tokens (default 256). */
  maxTokens?: number;
  /** Ids that stop generation (default: the model config's EOS ids); the stop id is not returned. */
  stopTokens?: readonly number[];
  /** Used to turn tokens into text for `onToken` and the result. */
  tokenizer?: Tokenizer;
  /**
   * Called for each new token with the text it completes (when a tokenizer is given). Return
   * false to stop.
   */
  onToken?: (id: number, text: string) => boolean | undefined;
}

export type StopReason = "eos" | "max_tokens" | "context" | "callback";

export interface GenerateResult {
  /** The new tokens (prompt and stop token excluded). */
  tokens: number[];
  /** Their text (empty without a tokenizer). */
  text: string;
  stopReason: StopReason;
  promptTokens: number;
  /** Wall time of the prompt's forward pass and of the decoding steps. */
  prefillMs: number;
  decodeMs: number;
}

/**
 * Autoregressive generation: one batched forward pass over the prompt (prefill), then one token
 * at a time with the KV cache. Stops on a stop token, after maxTokens, at the model's context
 * length, or when onToken returns false.
 */
export function generate(model: LlamaModel, prompt: readonly number[], options: GenerateOptions = {}): GenerateResult {
  if (prompt.length === 0) throw new LowbitError("E_INVALID_ARGUMENT", "generate: the prompt needs at least one token (e.g. BOS)");
  const maxTokens = options.maxTokens ?? 256;
  const stop = new Set(options.stopTokens ?? model.config.eosTokenIds);
  const sampler = new Sampler(options);
  const ctx = Math.min(model.config.maxSeqLen, prompt.length + maxTokens);
  if (prompt.length > ctx) {
    throw new LowbitError("E_CONTEXT_LENGTH", `generate: prompt of ${prompt.length} tokens exceeds the context length ${ctx}`);
  }
  const cache = model.createCache(Math.max(ctx, prompt.length));
  const decoder = options.tokenizer?.streamDecoder();
  // the prompt sets the decoder's context (e.g. no leading space right after BOS); its text is not returned
  if (decoder) for (const t of prompt) decoder.push(t);
  const t0 = performance.now();
  let logits = model.forward(prompt, cache);
  const t1 = performance.now();
  const tokens: number[] = [];
  let text = "";
  let stopReason: StopReason = "max_tokens";
  while (tokens.length < maxTokens) {
    const next = sampler.sample(logits);
    if (stop.has(next)) {
      stopReason = "eos";
      break;
    }
    tokens.push(next);
    const piece = decoder ? decoder.push(next) : "";
    text += piece;
    if (options.onToken?.(next, piece) === false) {
      stopReason = "callback";
      break;
    }
    if (tokens.length >= maxTokens) break;
    if (cache.length >= cache.maxLength) {
      stopReason = "context";
      break;
    }
    logits = model.forward([next], cache);
  }
  // bytes of an unfinished character at the end (shown as U+FFFD)
  if (decoder) text += decoder.flush();
  return { tokens, text, stopReason, promptTokens: prompt.length, prefillMs: t1 - t0, decodeMs: performance.now() - t1 };
}
