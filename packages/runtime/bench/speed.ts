import { argmax } from "../src/ops";
import type { LlamaModel } from "../src/index";

export interface Speed {
  prefillTokensPerSec: number;
  decodeTokensPerSec: number;
  /** Process CPU time / wall time during the best prefill and decode runs: well below 1 means a busy machine. */
  prefillCpuShare: number;
  decodeCpuShare: number;
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
  let prefillCpuShare = 1;
  let decodeCpuShare = 1;
  const cpuMs = (c: NodeJS.CpuUsage) => (c.user + c.system) / 1000;
  for (let r = 0; r <= repeats; r++) {
    const cache = model.createCache(prefill + decode + 1);
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    let logits = model.forward(prompt, cache);
    const t1 = performance.now();
    const c1 = process.cpuUsage();
    for (let s = 0; s < decode; s++) logits = model.forward([argmax(logits)], cache);
    const t2 = performance.now();
    const c2 = process.cpuUsage();
    if (r === 0) continue; // warm-up
    if (t1 - t0 < bestPrefill) {
      bestPrefill = t1 - t0;
      prefillCpuShare = (cpuMs(c1) - cpuMs(c0)) / (t1 - t0);
    }
    if (t2 - t1 < bestDecode) {
      bestDecode = t2 - t1;
      decodeCpuShare = (cpuMs(c2) - cpuMs(c1)) / (t2 - t1);
    }
  }
  return {
    prefillTokensPerSec: (prefill * 1000) / bestPrefill,
    decodeTokensPerSec: (decode * 1000) / bestDecode,
    prefillCpuShare,
    decodeCpuShare,
  };
}
