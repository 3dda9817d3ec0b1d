/** Helpers shared by the kernel tests (not exported from the package). */
import { type Rng, setKernelBackend } from "@lowbit/tensor";

export function normal(rng: Rng, n: number, std = 1): Float32Array {
  return rng.fillNormal(new Float32Array(n), 0, std);
}

/**
 * The largest per-row relative difference: max over rows of max|a - b| / max|b| (rows of `width`
 * values; a row of zeros in b compares absolutely).
 */
export function rowRelDiff(a: ArrayLike<number>, b: ArrayLike<number>, width: number): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let worst = 0;
  for (let o = 0; o < b.length; o += width) {
    let scale = 0;
    let diff = 0;
    for (let i = o; i < Math.min(o + width, b.length); i++) {
      scale = Math.max(scale, Math.abs(b[i]!));
      const d = Math.abs(a[i]! - b[i]!);
      diff = Number.isNaN(d) ? Number.POSITIVE_INFINITY : Math.max(diff, d);
    }
    worst = Math.max(worst, scale > 0 ? diff / scale : diff);
  }
  return worst;
}

/** Runs f with the "ref" kernel backend (the reference twins), restoring "wasm" afterwards. */
export function withRef<T>(f: () => T): T {
  setKernelBackend("ref");
  try {
    return f();
  } finally {
    setKernelBackend("wasm");
  }
}
