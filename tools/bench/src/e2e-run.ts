/**
 * lowbit's side of the end-to-end suite: greedy prefill + decode with @lowbit/runtime, timed per
 * phase in wall and process CPU time, and the small statistics the suite reports.
 */
import type { KVCache, LlamaModel } from "@lowbit/runtime";

/** Wall and CPU time of one greedy run and the tokens it produced (decode + 1 tokens). */
export interface PhaseTimes {
  /** The prompt's forward pass and the first token's choice. */
  prefillMs: number;
  /** `decode` single-token steps (forward pass + choice of the next token). */
  decodeMs: number;
  prefillCpuMs: number;
  decodeCpuMs: number;
  tokens: number[];
}

/** Process CPU time (user + system, every thread of the process), milliseconds. */
export function cpuMsNow(): number {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
}

export function argmax(x: Float32Array): number {
  let best = 0;
  let bv = x[0]!;
  for (let i = 1; i < x.length; i++) {
    const v = x[i]!;
    if (v > bv) {
      bv = v;
      best = i;
    }
  }
  return best;
}

/** The same run as LlamaCppRunner.run, through LlamaModel.forward with a fresh KV cache. */
export function lowbitRun(model: LlamaModel, prompt: readonly number[], decode: number): PhaseTimes {
  const cache: KVCache = model.createCache(prompt.length + decode + 1);
  const tokens: number[] = [];
  const c0 = cpuMsNow();
  const t0 = performance.now();
  let tok = argmax(model.forward(prompt, cache, "last"));
  const t1 = performance.now();
  const c1 = cpuMsNow();
  tokens.push(tok);
  for (let s = 0; s < decode; s++) {
    tok = argmax(model.forward([tok], cache, "last"));
    tokens.push(tok);
  }
  const t2 = performance.now();
  const c2 = cpuMsNow();
  return { prefillMs: t1 - t0, decodeMs: t2 - t1, prefillCpuMs: c1 - c0, decodeCpuMs: c2 - c1, tokens };
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
}

/** Length of the common prefix of two token lists. */
export function agreeing(a: readonly number[], b: readonly number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

/**
 * lowbit's gap between its two largest logits after `prompt` + `tokens[0..n)` (how near a tie
 * the choice at step n was; a greedy divergence at a small gap is a rounding flip, not an error).
 */
export function topTwoGap(model: LlamaModel, prompt: readonly number[], tokens: readonly number[], n: number): number {
  const seq = [...prompt, ...tokens.slice(0, n)];
  const logits = model.forward(seq, model.createCache(seq.length), "last");
  let a = Number.NEGATIVE_INFINITY;
  let b = Number.NEGATIVE_INFINITY;
  for (const v of logits) {
    if (v > a) {
      b = a;
      a = v;
    } else if (v > b) b = v;
  }
  return a - b;
}
