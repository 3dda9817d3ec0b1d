import { activeKernelThreads, getEngine, type KernelModule, type KernelPart, runKernelParts } from "@lowbit/tensor";

/** Multiply-adds below which a share of a call is not worth a thread (about 0.1 ms of work). */
const MIN_MACS_PER_THREAD = 1 << 18;
/** Column splits are multiples of the kernels' 4-column register tile. */
const COLUMN_ALIGN = 4;

/** Boundaries [0, ..., n] of `parts` near-equal column ranges, the inner ones multiples of 4. */
export function splitColumns(n: number, parts: number): number[] {
  const units = Math.ceil(n / COLUMN_ALIGN);
  const out = [0];
  for (let i = 1; i < parts; i++) out.push(Math.min(n, Math.round((i * units) / parts) * COLUMN_ALIGN));
  out.push(n);
  return out;
}

/** How many threads a call of `macs` multiply-adds over n output columns uses. */
export function columnParts(macs: number, n: number): number {
  const t = activeKernelThreads();
  if (t <= 1) return 1;
  return Math.max(1, Math.min(t, Math.ceil(n / COLUMN_ALIGN), Math.floor(macs / MIN_MACS_PER_THREAD)));
}

/**
 * Runs the kernel export `fn` of `module` over output columns [0, n): on one thread with
 * `args(0, n)`, or, with kernel threads on (`setKernelThreads` of @lowbit/tensor) and enough work,
 * split into one column range per thread (multiples of 4, the kernels' register tile), one
 * dispatch. Every output column runs the same code path and arithmetic as on one thread, so the
 * results are bit-identical. `args(j0, j1, part)` are the kernel's arguments for columns [j0, j1);
 * `part` (0 up to `parts`) tells the parts apart, for per-part scratch. `parts` defaults to
 * `columnParts(macs, n)`; a caller that sizes per-part scratch computes it once and passes it.
 */
export function runColumns(
  module: KernelModule,
  fn: string,
  n: number,
  macs: number,
  args: (j0: number, j1: number, part: number) => number[],
  parts = columnParts(macs, n),
): void {
  if (parts === 1) {
    const f = getEngine().exports<Record<string, (...a: number[]) => unknown>>(module)[fn]!;
    f(...args(0, n, 0));
    return;
  }
  const b = splitColumns(n, parts);
  const list: KernelPart[] = [];
  for (let i = 0; i < parts; i++) if (b[i]! < b[i + 1]!) list.push({ module, fn, args: args(b[i]!, b[i + 1]!, i) });
  runKernelParts(list);
}
