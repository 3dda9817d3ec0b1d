/** Helpers shared by the kernel tests (not exported from the package). */
import { Rng, setKernelBackend } from "@lowbit/tensor";
import { buildModel, expectedTensors, memorySource } from "../build";
import { type LlamaConfigInput, makeConfig } from "../config";
import type { LlamaModel } from "../model";

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

/**
 * A model with seeded random f32 weights: norms near 1, matrices N(0, 1/in) (the embedding 4x
 * that), biases N(0, 0.3).
 */
export async function randomModel(input: LlamaConfigInput, seed: number): Promise<LlamaModel> {
  const cfg = makeConfig(input);
  const rng = new Rng(seed);
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, shape] of expectedTensors(cfg)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (name.endsWith("norm.weight")) for (let i = 0; i < n; i++) data[i] = 1 + 0.2 * rng.normal();
    else if (name.endsWith(".bias")) rng.fillNormal(data, 0, 0.3);
    else rng.fillNormal(data, 0, (name === "token_embd.weight" ? 4 : 1) / Math.sqrt(shape.at(-1)!));
    tensors.set(name, { shape, data });
  }
  return buildModel(cfg, memorySource(tensors));
}
