// Test helpers: GGUF Q6_K blocks from chosen codes and scales (the layout codec-q6k.ts documents).
import { f32ToF16Bits } from "@lowbit/tensor";
import { Q6_K_BLOCK_BYTES } from "./codec-q6k";
import type { TestRng } from "./test-rng";

export interface Q6Block {
  q: Uint8Array; // 256 codes, 0..63
  sc: Int8Array; // 16 sub-block scales
  d: number; // f16 bits
}

/** Packs blocks into GGUF Q6_K bytes (the layout codec-q6k.ts documents), for tests. */
export function packQ6K(blocks: Q6Block[]): Uint8Array {
  const out = new Uint8Array(blocks.length * Q6_K_BLOCK_BYTES);
  blocks.forEach(({ q, sc, d }, i) => {
    const o = i * Q6_K_BLOCK_BYTES;
    for (let h = 0; h < 2; h++) {
      for (let l = 0; l < 32; l++) {
        const [q0, q1, q2, q3] = [0, 32, 64, 96].map((t) => q[128 * h + t + l]!) as [number, number, number, number];
        out[o + 64 * h + l] = (q0 & 15) | ((q2 & 15) << 4);
        out[o + 64 * h + l + 32] = (q1 & 15) | ((q3 & 15) << 4);
        out[o + 128 + 32 * h + l] = (q0 >> 4) | ((q1 >> 4) << 2) | ((q2 >> 4) << 4) | ((q3 >> 4) << 6);
      }
    }
    for (let j = 0; j < 16; j++) out[o + 192 + j] = sc[j]! & 255;
    out[o + 208] = d & 255;
    out[o + 209] = d >> 8;
  });
  return out;
}

export function randomQ6Blocks(n: number, rng: TestRng): Q6Block[] {
  return Array.from({ length: n }, () => ({
    q: Uint8Array.from({ length: 256 }, () => rng.int(64)),
    // the full int8 range, zero and negative scales included
    sc: Int8Array.from({ length: 16 }, (_, j) => (j === 5 ? 0 : j === 6 ? -128 : rng.int(256) - 128)),
    d: f32ToF16Bits(0.0005 + rng.uniform() * 0.002),
  }));
}

