import { LowbitError, Rng } from "@lowbit/tensor";
import type { Variable } from "../autograd/variable";

export interface CosineScheduleOptions {
  /** Peak learning rate (reached at the end of warmup). */
  lr: number;
  /** Total optimizer steps the schedule spans. */
  totalSteps: number;
  /** Linear warmup steps from lr / warmupSteps up to lr. Default 0. */
  warmupSteps?: number;
  /** Floor at the end of the cosine. Default 0. */
  minLr?: number;
}

/**
 * Learning rate at optimizer step `step` (0-based): linear warmup lr * (step + 1) / warmup, then
 * a cosine from lr down to minLr over the remaining steps (minLr after totalSteps).
 */
export function cosineLr(step: number, options: CosineScheduleOptions): number {
  const { lr, totalSteps } = options;
  const warmup = options.warmupSteps ?? 0;
  const minLr = options.minLr ?? 0;
  if (!(totalSteps > 0 && warmup >= 0 && warmup <= totalSteps)) {
    throw new LowbitError(
      "E_INVALID_ARGUMENT",
      `cosine schedule: need totalSteps > 0 and 0 <= warmupSteps <= totalSteps, got ${totalSteps} and ${warmup}`,
    );
  }
  if (step < warmup) return (lr * (step + 1)) / warmup;
  const span = totalSteps - warmup;
  if (span <= 0 || step >= totalSteps) return minLr;
  const progress = (step - warmup) / span;
  return minLr + 0.5 * (lr - minLr) * (1 + Math.cos(Math.PI * progress));
}

/**
 * Scales all gradients so that their global L2 norm is at most `maxNorm` (as
 * torch.nn.utils.clip_grad_norm_, factor maxNorm / (norm + 1e-6)); returns the norm before clipping.
 */
export function clipGradNorm(params: readonly Variable[], maxNorm: number): number {
  let ss = 0;
  for (const p of params) {
    const g = p.grad;
    if (!g) continue;
    for (let i = 0; i < g.length; i++) ss += g[i]! * g[i]!;
  }
  const norm = Math.sqrt(ss);
  if (!Number.isFinite(norm)) {
    throw new LowbitError("E_NON_FINITE", `clipGradNorm: the gradient norm is ${norm} (a NaN or infinite gradient)`);
  }
  const factor = maxNorm / (norm + 1e-6);
  if (factor < 1) {
    for (const p of params) {
      const g = p.grad;
      if (!g) continue;
      for (let i = 0; i < g.length; i++) g[i] = g[i]! * factor;
    }
  }
  return norm;
}

/**
 * The order of `n` examples in epoch `epoch`: a permutation drawn from a generator seeded by
 * (seed, epoch) alone, so a resumed run sees the same order without saving generator state.
 */
export function epochOrder(n: number, seed: number, epoch: number): Int32Array {
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const mixed = (Math.trunc(seed) ^ Math.imul(epoch + 1, 0x9e3779b1)) >>> 0;
  new Rng(mixed + Math.trunc(seed / 4294967296) * 4294967296).shuffle(order);
  return order;
}
