/** Test helpers shared by the llama2.c reader and writer tests (not exported from the package). */
import type { Llama2cConfig } from "./llama2c";

/** Seeded tensors with arbitrary f32 bit patterns (NaN payloads, infinities, subnormals included). */
export function randomTensors(c: Llama2cConfig, seed: number): Map<string, { shape: number[]; data: Float32Array }> {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
  const kvDim = (c.dim * c.nKvHeads) / c.nHeads;
  const shapes: Array<[string, number[]]> = [["token_embd.weight", [c.vocabSize, c.dim]]];
  for (let l = 0; l < c.nLayers; l++) {
    const p = `blk.${l}.`;
    shapes.push(
      [`${p}attn_norm.weight`, [c.dim]],
      [`${p}attn_q.weight`, [c.dim, c.dim]],
      [`${p}attn_k.weight`, [kvDim, c.dim]],
      [`${p}attn_v.weight`, [kvDim, c.dim]],
      [`${p}attn_output.weight`, [c.dim, c.dim]],
      [`${p}ffn_norm.weight`, [c.dim]],
      [`${p}ffn_gate.weight`, [c.hiddenDim, c.dim]],
      [`${p}ffn_down.weight`, [c.dim, c.hiddenDim]],
      [`${p}ffn_up.weight`, [c.hiddenDim, c.dim]],
    );
  }
  shapes.push(["output_norm.weight", [c.dim]]);
  if (!c.sharedClassifier) shapes.push(["output.weight", [c.vocabSize, c.dim]]);
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, shape] of shapes) {
    const bits = new Uint32Array(shape.reduce((a, d) => a * d, 1));
    for (let i = 0; i < bits.length; i++) bits[i] = next();
    out.set(name, { shape, data: new Float32Array(bits.buffer) });
  }
  return out;
}
