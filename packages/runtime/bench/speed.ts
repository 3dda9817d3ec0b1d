import { argmax } from "../src/ops";
import type { LlamaModel } from "../src/index";

export interface Speed {
  prefillTokensPerSec: number;
  decodeTokensPerSec: number;
}

/**
 * Prefill: one batched forward pass over a `prefill`-token prompt (fresh cache); decode: `decode`
 * single-token steps after it (greedy). Best of `repeats` runs, after one warm-up.
 */
export function measureSpeed(model: LlamaModel, prefill: number, decode: number, repeats = 2): Speed {
  const V = model.config.vocabSize;
  const prompt = Array.from({ length: prefill }, (_, i) => (i === 0 ? 1 : (i * 7919) % V));
  let bestPrefill = Number.POSITIVE_INFINITY;
  let bestDecode = Number.POSITIVE_INFINITY;
  for (let r = 0; r <= repeats; r++) {
    const cache = model.createCache(prefill + decode + 1);
    const t0 = performance.now();
    let logits = model.forward(prompt, cache);
    const t1 = performance.now();
    for (let s = 0; s < decode; s++) logits = model.forward([argmax(logits)], cache);
    const t2 = performance.now();
    if (r === 0) continue; // warm-up
    bestPrefill = Math.min(bestPrefill, t1 - t0);
    bestDecode = Math.min(bestDecode, t2 - t1);
  }
  return { prefillTokensPerSec: (prefill * 1000) / bestPrefill, decodeTokensPerSec: (decode * 1000) / bestDecode };
}
