import { LowbitError } from "@lowbit/tensor";
import type { LlamaModel } from "./model";
import { logitStats, STATS_STRIDE } from "./logit-stats";

/**
 * Evaluation convention (perplexity, KL, top-1), the same for every model compared:
 * - the token stream is cut into non-overlapping windows of `windowLength` L: window i covers
 *   tokens [i*L, (i+1)*L); a partial last window is dropped;
 * - token 0 of each window is replaced by BOS, and each window starts a fresh context;
 * - the L-1 next-token predictions of a window (positions 0..L-2 predicting tokens 1..L-1) are
 *   scored: perplexity = exp(mean negative log-likelihood over all scored predictions);
 * - against a reference model, at the same scored positions: KL(reference || model) of the two
 *   next-token distributions averaged over positions (nats), and top-1 agreement, the share of
 *   positions where both models' most likely tokens are the same.
 */
export interface EvaluateOptions {
  /** Window length L (tokens per window, BOS included). */
  windowLength: number;
  /** Evaluate at most this many windows (default: all full windows). */
  maxWindows?: number;
  /** Id placed at position 0 of every window (default: the model's BOS). */
  bosId?: number;
  /** Compare against this model (KL divergence, top-1 agreement, its perplexity). */
  reference?: LlamaModel;
  /** Called after each window. */
  onProgress?: (progress: EvalProgress) => void;
}

export interface EvalProgress {
  window: number;
  windows: number;
  elapsedMs: number;
  etaMs: number;
}

export interface EvalResult {
  perplexity: number;
  /** Mean negative log-likelihood per scored prediction (nats). */
  meanNll: number;
  /** Number of scored predictions: windows * (L - 1). */
  scored: number;
  windows: number;
  windowLength: number;
  /** With a reference: its perplexity on the same predictions. */
  referencePerplexity?: number;
  /** With a reference: mean KL(reference || model) per scored position (nats). */
  kl?: number;
  /** With a reference: share of scored positions with the same argmax. */
  top1?: number;
}

/** Windows of the convention above (token 0 of each replaced by BOS). */
export function evaluationWindows(tokens: ArrayLike<number>, windowLength: number, bosId: number, maxWindows = Number.POSITIVE_INFINITY): number[][] {
  if (!Number.isInteger(windowLength) || windowLength < 2) {
    throw new LowbitError("E_INVALID_ARGUMENT", `evaluation: windowLength must be an integer >= 2, got ${windowLength}`);
  }
  const n = Math.min(Math.floor(tokens.length / windowLength), maxWindows);
  const out: number[][] = [];
  for (let w = 0; w < n; w++) {
    const win = Array.from({ length: windowLength }, (_, t) => tokens[w * windowLength + t]!);
    win[0] = bosId;
    out.push(win);
  }
  return out;
}

/** Perplexity of `model` on `tokens` and, with a reference, KL divergence and top-1 agreement. */
export function evaluate(model: LlamaModel, tokens: ArrayLike<number>, options: EvaluateOptions): EvalResult {
  const L = options.windowLength;
  const bos = options.bosId ?? model.config.bosTokenId;
  const windows = evaluationWindows(tokens, L, bos, options.maxWindows);
  if (windows.length === 0) {
    throw new LowbitError("E_INVALID_ARGUMENT", `evaluation: ${tokens.length} tokens do not fill one window of ${L}`);
  }
  const ref = options.reference;
  if (ref && ref.config.vocabSize !== model.config.vocabSize) {
    throw new LowbitError(
      "E_SHAPE_MISMATCH",
      `evaluation: reference vocabulary (${ref.config.vocabSize}) differs from the model's (${model.config.vocabSize})`,
    );
  }
  const V = model.config.vocabSize;
  let nll = 0;
  let refNll = 0;
  let kl = 0;
  let agree = 0;
  let scored = 0;
  const t0 = performance.now();
  windows.forEach((win, w) => {
    const logits = model.forward(win, model.createCache(L), "all");
    const refLogits = ref ? ref.forward(win, ref.createCache(L), "all") : undefined;
    const stats = logitStats(logits, refLogits, win.slice(1), L - 1, V);
    for (let t = 0; t < L - 1; t++) {
      const s = t * STATS_STRIDE;
      const lnS = Math.log(stats[s + 1]!);
      nll += stats[s]! + lnS - stats[s + 2]!;
      if (refLogits) {
        const lnSr = Math.log(stats[s + 5]!);
        refNll += stats[s + 4]! + lnSr - stats[s + 6]!;
        // KL(ref || model) = sum_j p_j (r_j - rlse - x_j + lse)
        kl += stats[s + 7]! / stats[s + 5]! - (stats[s + 4]! - stats[s]!) - lnSr + lnS;
        if (stats[s + 3] === stats[s + 8]) agree++;
      }
      scored++;
    }
    if (options.onProgress) {
      const elapsedMs = performance.now() - t0;
      const done = w + 1;
      options.onProgress({ window: done, windows: windows.length, elapsedMs, etaMs: (elapsedMs / done) * (windows.length - done) });
    }
  });
  const result: EvalResult = {
    perplexity: Math.exp(nll / scored),
    meanNll: nll / scored,
    scored,
    windows: windows.length,
    windowLength: L,
  };
  if (ref) {
    result.referencePerplexity = Math.exp(refNll / scored);
    result.kl = kl / scored;
    result.top1 = agree / scored;
  }
  return result;
}
