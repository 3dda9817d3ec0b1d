import { activeKernelThreads, getEngine, type KernelPart, runKernelParts } from "@lowbit/tensor";
import { RUNTIME_KERNEL_MODULES } from "./modules";

/**
 * Splitting the decoder's own kernels (attention, norms, RoPE, SwiGLU, residual adds) across the
 * kernel threads of @lowbit/tensor (`setKernelThreads`), the way the linears are split: one
 * dispatch per call, part 0 on the calling thread, each part a disjoint range of heads, rows or
 * elements computed by exactly the arithmetic a single call uses, so the results are bit-identical
 * for any thread count. Without threads (or with too little work) the kernel runs as one call.
 */

/** Work (about one multiply-add or element operation each) below which a share is not worth a thread. */
export const MIN_WORK_PER_THREAD = 1 << 16;

let minWorkOverride: number | undefined;

/**
 * Tests only: split every call with at least `minWork` of work per part, whatever its kind
 * (undefined restores the thresholds), so small shapes exercise the threaded paths. @internal
 */
export function overrideSplitThreshold(minWork: number | undefined): void {
  minWorkOverride = minWork;
}

/** How many parts a call with `work` over `units` splittable units uses (1 without threads). */
export function splitParts(work: number, units: number, minWork = MIN_WORK_PER_THREAD): number {
  const t = activeKernelThreads();
  if (t <= 1) return 1;
  return Math.max(1, Math.min(t, units, Math.floor(work / (minWorkOverride ?? minWork))));
}

/** Boundaries [0, ..., total] of `parts` near-equal ranges, the inner ones multiples of `align`. */
export function splitBounds(total: number, parts: number, align = 1): number[] {
  const units = Math.ceil(total / align);
  const out = [0];
  for (let i = 1; i < parts; i++) out.push(Math.min(total, Math.round((i * units) / parts) * align));
  out.push(total);
  return out;
}

/**
 * Runs the decoder-module export `fn` over [0, total) in `parts` ranges (inner bounds multiples of
 * `align`): `args(lo, hi, part)` are the export's arguments for range [lo, hi) and part index
 * `part` (for per-part scratch). One part: a plain call on this thread.
 */
export function runDecoderSplit(
  fn: string,
  total: number,
  parts: number,
  align: number,
  args: (lo: number, hi: number, part: number) => number[],
): void {
  const module = RUNTIME_KERNEL_MODULES[0]!;
  if (parts <= 1) {
    const f = getEngine().exports<Record<string, (...a: number[]) => unknown>>(module)[fn]!;
    f(...args(0, total, 0));
    return;
  }
  const b = splitBounds(total, parts, align);
  const list: KernelPart[] = [];
  for (let i = 0; i < parts; i++) if (b[i]! < b[i + 1]!) list.push({ module, fn, args: args(b[i]!, b[i + 1]!, i) });
  runKernelParts(list);
}
