import { LowbitError } from "@lowbit/tensor";

/** Index of the first NaN or infinity in `x`, or -1. */
export function firstNonFinite(x: ArrayLike<number>, start = 0, end = x.length): number {
  for (let i = start; i < end; i++) {
    const v = x[i]!;
    if (v - v !== 0) return i;
  }
  return -1;
}

/**
 * Throws LowbitError E_NON_FINITE when `x` holds a NaN or infinity, naming the tensor, the
 * first bad index and (when `cols` is given) its row and column.
 */
export function assertFinite(x: ArrayLike<number>, name: string | undefined, cols?: number): void {
  const i = firstNonFinite(x);
  if (i >= 0) throw nonFiniteError(x, i, name, cols);
}

export function nonFiniteError(x: ArrayLike<number>, i: number, name: string | undefined, cols?: number): LowbitError {
  const where = cols && cols > 0 ? ` (row ${Math.floor(i / cols)}, column ${i % cols})` : "";
  return new LowbitError(
    "E_NON_FINITE",
    `${label(name)} has a non-finite value ${x[i]} at index ${i}${where}; int8 quantization needs finite values`,
  );
}

export function label(name: string | undefined, fallback = "tensor"): string {
  return name ? `${fallback} "${name}"` : fallback;
}
